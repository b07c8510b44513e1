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
 * A copied output (fp_wait's) is a malloc'ed block that starts with this
 * header; res->output points just after it. Its tag is the data's address
 * XOR a secret of this process (random, drawn once): what tells a copy,
 * whose capacity we may use and which we may free, from a view, which
 * points into a slot (preceded there by the slot's own bytes). Only a
 * writer that knows the secret could make a slot's bytes pass for a copy;
 * the segment's other users cannot read it. The struct keeps no private
 * field for it (forkpool.h, ABI policy).
 */
struct fp__outbuf {
  size_t cap; /* bytes of data after the header */
  uintptr_t tag;
};
/* The capacity of a copied output, or 0 when out is NULL or no copy. */
FP__HIDDEN size_t fp__outbuf_cap(const unsigned char *out);
/*
 * Room for n bytes (and a spare one, so callers may NUL-terminate text)
 * in res->output, a copy of ours or NULL (never a view). Returns 0, or
 * -ENOMEM with *res unchanged.
 */
FP__HIDDEN int fp__outbuf_room(fp_result *res, size_t n);
/* Free a copied output (NULL: nothing). */
FP__HIDDEN void fp__outbuf_free(unsigned char *out);
/* A view: output that is not a copy of ours. */
static inline int fp__is_view(const fp_result *res) {
  return res->output != NULL && fp__outbuf_cap(res->output) == 0;
}

/*
 * A caller's fp_result, of the layout its header has (res->size; 0: ours;
 * forkpool.h, ABI policy), as a full one of ours: the caller's itself
 * when the layouts agree, else a copy in *tmp, its fields past the
 * caller's zero. NULL for a size below the fields every layout has.
 * fp__res_done() writes a copy back, only the caller's size of it (bytes
 * past ours zeroed), and keeps the caller's size field.
 */
#define FP__RES_MIN FP__END_OF(fp_result, output_len)
static inline fp_result *fp__res_adopt(fp_result *user, fp_result *tmp) {
  size_t size = user->size ? user->size : sizeof(*user);
  if (size == sizeof(*user)) return user;
  if (size < FP__RES_MIN) return NULL;
  __builtin_memset(tmp, 0, sizeof(*tmp));
  __builtin_memcpy(tmp, user, size < sizeof(*tmp) ? size : sizeof(*tmp));
  return tmp;
}
static inline void fp__res_done(fp_result *user, fp_result *r) {
  if (r == user) return;
  size_t size = user->size;
  fp__sized_out(user, size, r, sizeof(*r));
  user->size = size;
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
