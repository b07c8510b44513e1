/*
 * Reorder window: a ring of entries plus a hash map id -> ring position
 * (src/tool/hmap.h: lookups stay short however many tasks pass through).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reorder.h"

int cli_window_init(struct cli_window *w, size_t cap) {
  memset(w, 0, sizeof *w);
  w->e = calloc(cap, sizeof *w->e);
  if (w->e == NULL || tool_hmap_init(&w->map, cap) < 0) {
    cli_window_free(w);
    return -ENOMEM;
  }
  /* calloc() already gave zeroed results, which fp_collect() accepts. */
  w->cap = cap;
  return 0;
}

void cli_window_free(struct cli_window *w) {
  size_t i;

  if (w->e)
    for (i = 0; i < w->cap; i++) fp_result_release(&w->e[i].res);
  free(w->e);
  tool_hmap_free(&w->map);
  memset(w, 0, sizeof *w);
}

static struct cli_entry *push(struct cli_window *w, uint64_t *seq) {
  *seq = w->head + w->count;
  w->count++;
  return &w->e[*seq % w->cap];
}

uint64_t cli_window_push_task(struct cli_window *w, uint64_t id) {
  uint64_t seq;
  struct cli_entry *e = push(w, &seq);

  e->state = CLI_ENTRY_RUNNING;
  e->id = id;
  e->input_len = 0;
  e->t_ns = 0;
  tool_hmap_put(&w->map, id, seq % w->cap);
  w->running++;
  return seq;
}

uint64_t cli_window_push_oversize(struct cli_window *w, uint64_t input_len) {
  uint64_t seq;
  struct cli_entry *e = push(w, &seq);

  e->state = CLI_ENTRY_OVERSIZE;
  e->id = 0;
  e->input_len = input_len;
  e->t_ns = 0;
  return seq;
}

int cli_window_complete(struct cli_window *w, fp_result *res) {
  struct cli_entry *e;
  fp_result spare;
  uint64_t pos;

  if (!tool_hmap_take(&w->map, res->id, &pos)) return -ENOENT;
  e = &w->e[pos];
  spare = e->res;
  e->res = *res;
  *res = spare;
  e->state = CLI_ENTRY_DONE;
  w->running--;
  return 0;
}

void cli_window_expire_head(struct cli_window *w) {
  struct cli_entry *e = &w->e[w->head % w->cap];
  size_t i = tool_hmap_find(&w->map, e->id);

  if (i != TOOL_HMAP_NONE) tool_hmap_del_at(&w->map, i);
  e->state = CLI_ENTRY_EXPIRED;
  w->running--;
}

struct cli_entry *cli_window_ready_head(struct cli_window *w) {
  struct cli_entry *e;

  if (w->count == 0) return NULL;
  e = &w->e[w->head % w->cap];
  return e->state == CLI_ENTRY_RUNNING ? NULL : e;
}

uint64_t cli_window_pop(struct cli_window *w) {
  uint64_t seq = w->head;

  w->head++;
  w->count--;
  return seq;
}
