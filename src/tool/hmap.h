/*
 * A hash map from 64-bit keys to 64-bit values, for the forkpool CLI: task
 * id -> position in `forkpool run`'s reorder window (src/cli/reorder.c),
 * task id -> sequence number in `forkpool bench`.
 *
 * Open addressing at most half full, linear probing, backward-shift
 * deletion (no tombstones), so lookups stay short however many keys pass
 * through it. Fibonacci hashing spreads sequential keys over the whole
 * table. Key 0 marks an empty row: task ids are never 0. The table does
 * not grow: init sizes it for the most keys it will hold at once.
 *
 * The lookups are inline: bench calls put and take once per task.
 */
#ifndef FORKPOOL_TOOL_HMAP_H
#define FORKPOOL_TOOL_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct tool_hmap {
  uint64_t *keys; /* 0 = empty */
  uint64_t *vals;
  size_t mask;    /* rows - 1 (rows a power of two) */
  unsigned shift; /* 64 - log2(rows) */
};

#define TOOL_HMAP_NONE ((size_t)-1)

/* An empty map for up to cap keys at once. Returns 0, or -ENOMEM (the map
 * then holds nothing to free, though tool_hmap_free() is harmless). */
int tool_hmap_init(struct tool_hmap *m, size_t cap);

/* Release the table; the map is empty and unusable until init. */
void tool_hmap_free(struct tool_hmap *m);

static inline size_t tool_hmap_home(const struct tool_hmap *m, uint64_t k) {
  return (size_t)((k * 0x9e3779b97f4a7c15ull) >> m->shift);
}

/* Insert k (not 0, not in the map; fewer than cap keys held). */
static inline void tool_hmap_put(struct tool_hmap *m, uint64_t k, uint64_t v) {
  size_t i = tool_hmap_home(m, k);

  while (m->keys[i] != 0) i = (i + 1) & m->mask;
  m->keys[i] = k;
  m->vals[i] = v;
}

/* The row holding k, or TOOL_HMAP_NONE. */
static inline size_t tool_hmap_find(const struct tool_hmap *m, uint64_t k) {
  size_t i = tool_hmap_home(m, k);

  while (m->keys[i] != 0) {
    if (m->keys[i] == k) return i;
    i = (i + 1) & m->mask;
  }
  return TOOL_HMAP_NONE;
}

/* Remove row i (from tool_hmap_find()), shifting back later members of its
 * probe run so that no lookup ever stops early at the hole. */
static inline void tool_hmap_del_at(struct tool_hmap *m, size_t i) {
  size_t j = i;

  for (;;) {
    size_t home;

    j = (j + 1) & m->mask;
    if (m->keys[j] == 0) break;
    home = tool_hmap_home(m, m->keys[j]);
    /* Row j may move to the hole i unless its home lies cyclically in
     * (i, j]: then i is before where its probe starts. */
    if ((j > i && (home <= i || home > j)) ||
        (j < i && (home <= i && home > j))) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  }
  m->keys[i] = 0;
}

/* Remove k, storing its value in *v. Returns 1, or 0 when k is absent
 * (nothing changed). */
static inline int tool_hmap_take(struct tool_hmap *m, uint64_t k, uint64_t *v) {
  size_t i = tool_hmap_find(m, k);

  if (i == TOOL_HMAP_NONE) return 0;
  *v = m->vals[i];
  tool_hmap_del_at(m, i);
  return 1;
}

#endif /* FORKPOOL_TOOL_HMAP_H */
