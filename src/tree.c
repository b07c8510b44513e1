/*
 * Recursive pools, producer side: tasks spawned by handlers (fp_spawn) come
 * back with their parent's result; we queue them here, in the producer's
 * memory, and hand them back one at a time (fp__tree_pop) to the submit
 * path (client.c), which submits them as slots free up. A tree's spawned
 * tasks are counted per root until collected, so fp_collect_tree() knows
 * when the whole tree is done.
 *
 * This file touches no shared memory and calls nothing of the submit or
 * collect paths: it owns the spawn queue and the per-root counts, both
 * under the handle's mu. A spawn record list is checked whole before any
 * of it is queued (all or nothing): a damaged list queues nothing.
 *
 * Why here and not in the worker: a worker that blocked on a full queue to
 * submit its children would hold a slot and a worker while waiting for
 * slots that only collecting frees: with every worker doing it, the pool
 * deadlocks. The producer can always collect, so it never does.
 */
#include <stdlib.h>
#include <string.h>

#include "tree.h"

static uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  return k ^ (k >> 33);
}

static size_t find(const struct fp_pool *p, uint64_t root) {
  size_t m = p->tree_cap - 1, i = mix(root) & m;
  while (p->tree_keys[i] != 0 && p->tree_keys[i] != root) i = (i + 1) & m;
  return i;
}

static int grow(struct fp_pool *p) {
  size_t cap = p->tree_cap ? p->tree_cap * 2 : 64;
  uint64_t *keys = calloc(cap, sizeof(*keys));
  int64_t *vals = calloc(cap, sizeof(*vals));
  if (keys == NULL || vals == NULL) {
    free(keys);
    free(vals);
    return -ENOMEM;
  }
  uint64_t *ok = p->tree_keys;
  int64_t *ov = p->tree_vals;
  size_t ocap = p->tree_cap;
  p->tree_keys = keys;
  p->tree_vals = vals;
  p->tree_cap = cap;
  p->tree_n = 0;
  for (size_t k = 0; k < ocap; k++)
    if (ok[k] != 0 && ov[k] != 0) {
      size_t i = find(p, ok[k]);
      p->tree_keys[i] = ok[k];
      p->tree_vals[i] = ov[k];
      p->tree_n++;
    }
  free(ok);
  free(ov);
  return 0;
}

int64_t fp__tree_get(const struct fp_pool *p, uint64_t root) {
  if (p->tree_cap == 0) return 0;
  size_t i = find(p, root);
  return p->tree_keys[i] == root ? p->tree_vals[i] : 0;
}

void fp__tree_add(struct fp_pool *p, uint64_t root, int64_t d) {
  if (d == 0) return;
  /* Keep it under half full; entries that reach 0 stay as tombstones
   * until the next growth drops them. */
  if ((p->tree_n + 1) * 2 > p->tree_cap && grow(p) < 0) return;
  size_t i = find(p, root);
  if (p->tree_keys[i] == 0) {
    p->tree_keys[i] = root;
    p->tree_n++;
  }
  p->tree_vals[i] += d;
}

int fp__tree_take(struct fp_pool *p, uint64_t root, uint64_t parent,
                  const unsigned char *buf, size_t len) {
  /* Check the whole record list first: all or nothing. */
  size_t off = 0;
  while (off < len) {
    uint32_t l;
    if (len - off < 4) return -EBADMSG;
    memcpy(&l, buf + off, 4);
    if (l > p->seg.max_input || l > len - off - 4) return -EBADMSG;
    off += 4 + (size_t)l;
  }
  for (off = 0; off < len;) {
    uint32_t l;
    memcpy(&l, buf + off, 4);
    struct fp__spawn *n = malloc(sizeof(*n) + l);
    if (n == NULL) return -ENOMEM;
    n->next = NULL;
    n->root = root;
    n->parent = parent;
    n->len = l;
    memcpy(n->data, buf + off + 4, l);
    if (p->sq_tail) p->sq_tail->next = n;
    else p->sq_head = n;
    p->sq_tail = n;
    fp__tree_add(p, root, 1);
    off += 4 + (size_t)l;
  }
  return 0;
}

struct fp__spawn *fp__tree_pop(struct fp_pool *p) {
  struct fp__spawn *n = p->sq_head;
  if (n != NULL) {
    /* Taken off first: another thread cannot submit it twice. */
    p->sq_head = n->next;
    if (p->sq_head == NULL) p->sq_tail = NULL;
  }
  return n;
}

void fp__tree_unpop(struct fp_pool *p, struct fp__spawn *n) {
  /* Back at the head, to go first next time. */
  n->next = p->sq_head;
  p->sq_head = n;
  if (p->sq_tail == NULL) p->sq_tail = n;
}

void fp__tree_free(struct fp_pool *p) {
  struct fp__spawn *n = p->sq_head;
  while (n != NULL) {
    struct fp__spawn *next = n->next;
    free(n);
    n = next;
  }
  p->sq_head = p->sq_tail = NULL;
  free(p->tree_keys);
  free(p->tree_vals);
  p->tree_keys = NULL;
  p->tree_vals = NULL;
  p->tree_cap = p->tree_n = 0;
}
