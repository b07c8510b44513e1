/*
 * A small open-addressing map from task id to a producer's local index,
 * for forkpool bench (ids are opaque: we do not decode them).
 */
#ifndef FORKPOOL_CLI_BENCH_MAP_H
#define FORKPOOL_CLI_BENCH_MAP_H

#include <stdint.h>
#include <stdlib.h>

struct bench_map {
  uint64_t *keys; /* 0 = empty (task ids are never 0) */
  uint64_t *vals;
  uint64_t mask;
};

static inline int bench_map_init(struct bench_map *m, unsigned cap) {
  uint64_t n = 16;
  while (n < 2ull * cap) n <<= 1;
  m->keys = calloc(n, sizeof(*m->keys));
  m->vals = calloc(n, sizeof(*m->vals));
  m->mask = n - 1;
  return m->keys && m->vals ? 0 : -1;
}

static inline void bench_map_free(struct bench_map *m) {
  free(m->keys);
  free(m->vals);
  m->keys = m->vals = NULL;
}

static inline uint64_t bench_hash(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  return k ^ (k >> 33);
}

static inline void bench_map_put(struct bench_map *m, uint64_t k, uint64_t v) {
  uint64_t i = bench_hash(k) & m->mask;
  while (m->keys[i] != 0) i = (i + 1) & m->mask;
  m->keys[i] = k;
  m->vals[i] = v;
}

/* Remove k, storing its value; 0 when absent. Backward-shift deletion. */
static inline int bench_map_take(struct bench_map *m, uint64_t k,
                                 uint64_t *v) {
  uint64_t i = bench_hash(k) & m->mask;
  while (m->keys[i] != k) {
    if (m->keys[i] == 0) return 0;
    i = (i + 1) & m->mask;
  }
  *v = m->vals[i];
  uint64_t j = i;
  for (;;) {
    j = (j + 1) & m->mask;
    if (m->keys[j] == 0) break;
    uint64_t h = bench_hash(m->keys[j]) & m->mask;
    /* Move j back into the hole at i unless h lies cyclically in (i, j]. */
    if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  }
  m->keys[i] = 0;
  return 1;
}

#endif /* FORKPOOL_CLI_BENCH_MAP_H */
