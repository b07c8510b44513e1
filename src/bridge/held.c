/*
 * The entries a bridge holds: a fixed array of --inflight rows (at most
 * BRIDGE_INFLIGHT_MAX), searched linearly. Lookups happen once per result
 * and per claimed entry, over a few dozen rows by default: a scan of a
 * small array beats a hash here, and there is nothing to keep consistent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

int held_init(struct held_table *t, unsigned cap) {
  unsigned i;

  memset(t, 0, sizeof *t);
  t->e = calloc(cap, sizeof *t->e);
  if (t->e == NULL) return -ENOMEM;
  t->cap = cap;
  for (i = 0; i < cap; i++) fp_result_init(&t->e[i].res);
  t->n[HELD_FREE] = cap;
  return 0;
}

void held_free(struct held_table *t) {
  unsigned i;

  for (i = 0; i < t->cap; i++) {
    free(t->e[i].data);
    fp_result_release(&t->e[i].res);
  }
  free(t->e);
  memset(t, 0, sizeof *t);
}

unsigned held_count(const struct held_table *t) {
  return t->cap - t->n[HELD_FREE];
}

struct held *held_add(struct held_table *t, const char *id, const void *data,
                      size_t len, int has_data, unsigned deliveries) {
  struct held *h = NULL;
  unsigned i;

  if (strlen(id) >= BRIDGE_ID_MAX)
    return NULL; /* not a stream id: Redis never sends one this long */
  for (i = 0; i < t->cap; i++)
    if (t->e[i].state == HELD_FREE) {
      h = &t->e[i];
      break;
    }
  if (h == NULL) return NULL;
  free(h->data);
  h->data = NULL;
  h->len = 0;
  if (has_data && len > 0) {
    h->data = malloc(len);
    if (h->data == NULL) return NULL;
    memcpy(h->data, data, len);
    h->len = len;
  }
  h->has_data = has_data;
  strcpy(h->id, id);
  h->deliveries = deliveries;
  h->lost = 0;
  h->reject = 0;
  h->task = 0;
  held_set(t, h, HELD_BACKLOG);
  return h;
}

void held_set(struct held_table *t, struct held *h, enum held_state st) {
  t->n[h->state]--;
  h->state = st;
  t->n[st]++;
}

void held_drop(struct held_table *t, struct held *h) {
  free(h->data);
  h->data = NULL;
  h->len = 0;
  h->id[0] = '\0';
  h->task = 0;
  held_set(t, h, HELD_FREE);
}

struct held *held_by_id(struct held_table *t, const char *id) {
  unsigned i;

  for (i = 0; i < t->cap; i++)
    if (t->e[i].state != HELD_FREE && !strcmp(t->e[i].id, id)) return &t->e[i];
  return NULL;
}

struct held *held_by_task(struct held_table *t, uint64_t task) {
  unsigned i;

  for (i = 0; i < t->cap; i++)
    if (t->e[i].state == HELD_RUNNING && t->e[i].task == task) return &t->e[i];
  return NULL;
}
