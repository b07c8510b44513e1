/*
 * Recursive pools, producer side (tree.c): the queue of spawned tasks not
 * yet submitted and the count of each tree's outstanding tasks. Everything
 * here runs with the handle's mu held and touches only the producer's own
 * memory; none of it fails but by -ENOMEM or on a malformed record list.
 */
#ifndef FP_TREE_H
#define FP_TREE_H

#include "pool.h"

/*
 * Add d to the count of tree `root`'s outstanding tasks (spawned, queued
 * here or pending). Without memory to grow the table the change is lost
 * (the tree then ends early or late by that much); nothing else changes.
 */
FP__HIDDEN void fp__tree_add(struct fp_pool *p, uint64_t root, int64_t d);
/* Tree `root`'s outstanding tasks; 0 for a tree never seen. */
FP__HIDDEN int64_t fp__tree_get(const struct fp_pool *p, uint64_t root);
/*
 * Queue the spawn records buf[0..len) of task `parent` in tree `root`
 * (each a 4-byte length, then that many bytes of input, at most max_input).
 * Returns 0, or -EBADMSG for a malformed record list (nothing queued),
 * -ENOMEM (the records before the failing one stay queued and counted).
 */
FP__HIDDEN int fp__tree_take(struct fp_pool *p, uint64_t root, uint64_t parent,
                             const unsigned char *buf, size_t len);
/*
 * Take the oldest queued spawn off the queue: the caller owns it now (it
 * submits it, then frees it, or gives it back with fp__tree_unpop). NULL
 * when none is queued. Its tree still counts it.
 */
FP__HIDDEN struct fp__spawn *fp__tree_pop(struct fp_pool *p);
/* Give back a spawn taken by fp__tree_pop: it goes first next time. */
FP__HIDDEN void fp__tree_unpop(struct fp_pool *p, struct fp__spawn *n);
/* 1 when spawns wait here to be submitted (read without mu: a hint). */
static inline int fp__tree_queued(const struct fp_pool *p) {
  return p->sq_head != NULL;
}
/* fp_pool_free: free the queue and the table (mu not needed: no user). */
FP__HIDDEN void fp__tree_free(struct fp_pool *p);

#endif /* FP_TREE_H */
