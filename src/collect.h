/*
 * Producers waiting for results (collect.c): the one wait loop behind
 * fp_wait, fp_collect, fp_collect_tree, fp_wait_view and fp_collect_view.
 */
#ifndef FP_COLLECT_H
#define FP_COLLECT_H

#include "pool.h"

/* What a wait is for. */
enum fp__want {
  FP__WANT_TASK, /* task `id` (fp_wait, fp_wait_view) */
  FP__WANT_ANY,  /* any task of this handle (fp_collect, fp_collect_view) */
  FP__WANT_TREE  /* any task of the tree rooted at `id` (fp_collect_tree) */
};

/*
 * Hand a finished pending task's result (slot i, mu held) over to *res:
 * fp__deliver copies it, view.c's take points into the slot. Returns 0 or
 * -errno (the result then stays pending).
 */
typedef int (*fp__take_fn)(struct fp_pool *p, uint32_t i, fp_result *res);

/*
 * Wait for what `want` names (`id`: the task, or the tree's root; 0 for
 * FP__WANT_ANY) to have a result, within timeout_ms, submitting queued
 * spawned tasks meanwhile, and hand the oldest such result over with
 * take(). Returns take()'s return; -EINVAL (p or res NULL), -EPERM (a
 * monitor handle), -ENOENT (nothing left to wait for: as fp_wait,
 * fp_collect and fp_collect_tree say), -ETIMEDOUT, -EPIPE (the supervisor
 * is gone). Nothing changes on error but spawned tasks submitted; the
 * awaited results stay pending.
 */
FP__HIDDEN int fp__wait_for(struct fp_pool *p, enum fp__want want, uint64_t id,
                            fp_result *res, int timeout_ms, fp__take_fn take);

#endif /* FP_COLLECT_H */
