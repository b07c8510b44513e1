/*
 * Reorder window: a ring of entries plus a hash map id -> ring position.
 *
 * The map is an open-addressing table at most half full, with linear
 * probing and backward-shift deletion (no tombstones), so lookups stay
 * short however many tasks pass through it. Task ids are never 0, which
 * makes 0 the empty marker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reorder.h"

/* Fibonacci hashing: spreads sequential ids over the whole table. */
static size_t map_home(const struct cli_window *w, uint64_t id)
{
  return (size_t)((id * 0x9e3779b97f4a7c15ull) >> w->map_shift);
}

static void map_put(struct cli_window *w, uint64_t id, size_t pos)
{
  size_t i = map_home(w, id);

  while (w->map_id[i] != 0)
    i = (i + 1) & w->map_mask;
  w->map_id[i] = id;
  w->map_pos[i] = pos;
}

/* Returns the table index holding id, or (size_t)-1. */
static size_t map_find(const struct cli_window *w, uint64_t id)
{
  size_t i = map_home(w, id);

  while (w->map_id[i] != 0) {
    if (w->map_id[i] == id)
      return i;
    i = (i + 1) & w->map_mask;
  }
  return (size_t)-1;
}

/* Remove table index i, shifting back later members of its probe run so
 * that no lookup ever stops early at the hole. */
static void map_del(struct cli_window *w, size_t i)
{
  size_t j = i;

  for (;;) {
    size_t home;

    j = (j + 1) & w->map_mask;
    if (w->map_id[j] == 0)
      break;
    home = map_home(w, w->map_id[j]);
    /* Entry j may move to the hole i unless its home lies cyclically in
     * (i, j]: then i is before where its probe starts. */
    if ((j > i && (home <= i || home > j)) ||
        (j < i && (home <= i && home > j))) {
      w->map_id[i] = w->map_id[j];
      w->map_pos[i] = w->map_pos[j];
      i = j;
    }
  }
  w->map_id[i] = 0;
}

int cli_window_init(struct cli_window *w, size_t cap)
{
  size_t msize = 2;
  unsigned bits = 1;

  memset(w, 0, sizeof *w);
  while (msize < 2 * cap) {
    msize <<= 1;
    bits++;
  }
  w->e = calloc(cap, sizeof *w->e);
  w->map_id = calloc(msize, sizeof *w->map_id);
  w->map_pos = calloc(msize, sizeof *w->map_pos);
  if (!w->e || !w->map_id || !w->map_pos) {
    cli_window_free(w);
    return -ENOMEM;
  }
  /* calloc() already gave zeroed results, which fp_collect() accepts. */
  w->cap = cap;
  w->map_mask = msize - 1;
  w->map_shift = 64 - bits;
  return 0;
}

void cli_window_free(struct cli_window *w)
{
  size_t i;

  if (w->e)
    for (i = 0; i < w->cap; i++)
      fp_result_release(&w->e[i].res);
  free(w->e);
  free(w->map_id);
  free(w->map_pos);
  memset(w, 0, sizeof *w);
}

static struct cli_entry *push(struct cli_window *w, uint64_t *seq)
{
  *seq = w->head + w->count;
  w->count++;
  return &w->e[*seq % w->cap];
}

uint64_t cli_window_push_task(struct cli_window *w, uint64_t id)
{
  uint64_t seq;
  struct cli_entry *e = push(w, &seq);

  e->state = CLI_ENTRY_RUNNING;
  e->id = id;
  e->input_len = 0;
  e->t_ns = 0;
  map_put(w, id, (size_t)(seq % w->cap));
  w->running++;
  return seq;
}

uint64_t cli_window_push_oversize(struct cli_window *w, uint64_t input_len)
{
  uint64_t seq;
  struct cli_entry *e = push(w, &seq);

  e->state = CLI_ENTRY_OVERSIZE;
  e->id = 0;
  e->input_len = input_len;
  e->t_ns = 0;
  return seq;
}

int cli_window_complete(struct cli_window *w, fp_result *res)
{
  size_t i = map_find(w, res->id);
  struct cli_entry *e;
  fp_result spare;

  if (i == (size_t)-1)
    return -ENOENT;
  e = &w->e[w->map_pos[i]];
  map_del(w, i);
  spare = e->res;
  e->res = *res;
  *res = spare;
  e->state = CLI_ENTRY_DONE;
  w->running--;
  return 0;
}

void cli_window_expire_head(struct cli_window *w)
{
  struct cli_entry *e = &w->e[w->head % w->cap];
  size_t i = map_find(w, e->id);

  if (i != (size_t)-1)
    map_del(w, i);
  e->state = CLI_ENTRY_EXPIRED;
  w->running--;
}

struct cli_entry *cli_window_ready_head(struct cli_window *w)
{
  struct cli_entry *e;

  if (w->count == 0)
    return NULL;
  e = &w->e[w->head % w->cap];
  return e->state == CLI_ENTRY_RUNNING ? NULL : e;
}

uint64_t cli_window_pop(struct cli_window *w)
{
  uint64_t seq = w->head;

  w->head++;
  w->count--;
  return seq;
}
