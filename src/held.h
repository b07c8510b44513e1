/*
 * What a producer handle holds in its own memory (held.c): its pending
 * list, its batch of collected slots, and its holds (begun submissions and
 * views). mu held for all of it unless said otherwise.
 */
#ifndef FP_HELD_H
#define FP_HELD_H

#include "pool.h"

/*
 * Slot i, FILLING and ours, was just published as task `id` of tree
 * `root` (0: its own root), spawned by `parent` (0: none): append it to
 * the pending list. Never fails (the arrays are sized for every slot).
 */
FP__HIDDEN void fp__pend_add(struct fp_pool *p, uint32_t i, uint64_t id,
                             uint64_t root, uint64_t parent);
/* Take our pending slot i off the list (its result was handed over). */
FP__HIDDEN void fp__pend_del(struct fp_pool *p, uint32_t i);

/*
 * One of our collected slots, taken back for a new task: FILLING, naming
 * us, stamped as fp__q_take_free does. FP__NONE when the batch holds none
 * that the supervisor did not free meanwhile (those are dropped from it).
 */
FP__HIDDEN uint32_t fp__slot_reuse(struct fp_pool *p);
/*
 * Give our unpublished FILLING slot i back: COLLECTED, on our batch, so
 * our next submit reuses it (a full batch is freed first). Never fails.
 */
FP__HIDDEN void fp__slot_give_back(struct fp_pool *p, uint32_t i);
/*
 * Our DONE slot i (task `id`), off the pending list, is done with:
 * COLLECTED, on our batch, which is freed for everyone when full, when a
 * producer waits for space, or when a named pool's producer has nothing
 * pending. Never fails; the slot may be FREE already after it.
 */
FP__HIDDEN void fp__slot_retire(struct fp_pool *p, uint32_t i, uint64_t id);

/*
 * The hold array, allocated at first use (and the handle registered for
 * fp__view_forget). Returns 0, or -ENOMEM with nothing changed.
 */
FP__HIDDEN int fp__hold_ready(struct fp_pool *p);
/* End hold i (begun or view): the slot is no longer held. */
FP__HIDDEN void fp__unhold(struct fp_pool *p, uint32_t i);
/* 1 when ptr points into this pool's slots (mu not needed). */
FP__HIDDEN int fp__in_slots(const struct fp_pool *p, const void *ptr);
/*
 * fp_result marks a view as output != NULL with output_cap 0 (a copy
 * always has a capacity of at least 1).
 */
static inline int fp__is_view(const fp_result *res) {
  return res->output != NULL && res->output_cap == 0;
}
/*
 * If *res holds a view of this pool, give its slot back and reset *res:
 * 0; -ENOENT for a stale one (not held by this handle: a copy of a result
 * released already), *res reset and no slot touched; -EINVAL for another
 * pool's view, *res untouched. 0 and nothing done when *res holds no
 * view. A viewed slot found damaged is counted corrupt and not touched.
 */
FP__HIDDEN int fp__view_drop(struct fp_pool *p, fp_result *res);
/*
 * fp_result_release() of a view (mu NOT held): find the registered handle
 * whose slots it points into and drop it there. *res is reset whatever
 * happens (no handle maps it: its pool was freed, nothing to give back).
 */
FP__HIDDEN void fp__view_forget(fp_result *res);

/*
 * Allocate a fresh handle's local bookkeeping for n slots (an empty
 * pending list). Returns 0, or -ENOMEM: then call fp__held_free() to
 * release what was had.
 */
FP__HIDDEN int fp__held_alloc(struct fp_pool *p, uint32_t n);
/*
 * Free all of a handle's local bookkeeping (pending arrays, holds, the
 * tree's queue and table) and unregister it. Touches no slot: what the
 * handle still held is the supervisor's to reclaim.
 */
FP__HIDDEN void fp__held_free(struct fp_pool *p);

#endif /* FP_HELD_H */
