/*
 * Handing a finished task's result over to its producer (result.c): the
 * copy/verify half (read the slot's fields once, check them over what is
 * handed out) and the bookkeeping half (tree, pending list, slot), shared
 * by copies (fp__deliver) and views (view.c). mu held for all of it.
 */
#ifndef FP_RESULT_H
#define FP_RESULT_H

#include "pool.h"

/* A result's fields, each read once from the shared slot. */
struct fp__res_fields {
  uint32_t out_len, spawn_len;
  int32_t status, code, sig, exit_code;
  uint64_t sum;
};

/*
 * Read slot sl's result fields once into *f. Returns 1, or 0 when the
 * lengths together exceed max_output (damage): then both are 0 in *f, so
 * that nothing beyond the slot is ever read through them.
 */
FP__HIDDEN int fp__res_read(const struct fp__seg *s, struct fp__slot *sl,
                            struct fp__res_fields *f);
/*
 * 1 when f's status is a valid one and its check value, for task id,
 * matches the out_len + spawn_len bytes at `bytes` (the bytes handed out:
 * a copy, or the slot itself for a view); 0 otherwise.
 */
FP__HIDDEN int fp__res_good(uint64_t id, const struct fp__res_fields *f,
                            const unsigned char *bytes);
/*
 * Fill *res with what it says of our pending task in slot i: its id, tree
 * links, the status fields of *f, and the slot's attempts, worker and run
 * time. The output fields are the caller's. Never fails.
 */
FP__HIDDEN void fp__res_fill(struct fp_pool *p, uint32_t i,
                             const struct fp__res_fields *f, fp_result *res);
/*
 * The bookkeeping half, once *res is filled: our pending task in slot i is
 * handed over. If `good`, its spawn records (spawn_len bytes at `spawns`)
 * join its tree (a malformed list makes it not good); it leaves its tree
 * (unless it is the root) and the pending list. Good: the slot is retired,
 * or with `keep` stays DONE and ours, for the caller to hold (a view). Not
 * good: *res becomes FP_CORRUPT with no output (output_len 0; its bytes are
 * the caller's), counted corrupt, and the slot is retired unless its state
 * says it is free or another producer's (then it is never touched).
 * Returns whether the result is good. Never fails.
 */
FP__HIDDEN int fp__settle(struct fp_pool *p, uint32_t i, int good,
                          const unsigned char *spawns, uint32_t spawn_len,
                          int keep, fp_result *res);
/*
 * Move the DONE result of our pending slot i into *res, copying its output
 * (a view in *res is released first), and free the slot. Returns 0
 * (FP_CORRUPT in *res when it failed verification); -ENOMEM, the result
 * then stays pending; -EINVAL when *res holds another pool's view (nothing
 * changed).
 */
FP__HIDDEN int fp__deliver(struct fp_pool *p, uint32_t i, fp_result *res);

#endif /* FP_RESULT_H */
