/*
 * Producers' submit path (client.c), as other producer files use it: the
 * spawned tasks' submission, a client row's rings, and the slot half of
 * zero-copy submissions (view.c).
 */
#ifndef FP_CLIENT_H
#define FP_CLIENT_H

#include "pool.h"

/*
 * Submit the spawned tasks queued in tree.c while slots are free
 * (mu NOT held; FP_NOWAIT each). Never fails: a task refused for good (a
 * stop began, too big) leaves its tree; one without a free slot goes back
 * to the head of the queue, for the next call.
 */
FP__HIDDEN void fp__submit_spawned(struct fp_pool *p);

/*
 * We hold client row p->client now: take over its rings (their
 * tails are ours to write from here on; a damaged pair is restarted empty
 * and the supervisor asked to sweep) and make workers look at them.
 */
FP__HIDDEN void fp__rings_join(struct fp_pool *p);

/*
 * Reserve a FILLING slot as fp_submit_prio() would (its waits, share and
 * errors; mu NOT held on entry). Returns 0 with *slot set and p->mu held,
 * or a negative errno with nothing held.
 */
FP__HIDDEN int fp__slot_begin(struct fp_pool *p, int timeout_ms,
                              uint32_t *slot);
/*
 * Publish our FILLING slot i whose input (len bytes, len <= max_input) is
 * in place (mu held, and still held after): seal it, queue it on our ring
 * (waiting for room within timeout_ms), kick a worker, and store its id.
 * Returns 0; -EAGAIN or -ETIMEDOUT when our ring stayed full (the slot
 * stays ours, FILLING, unqueued); -ESHUTDOWN (a stop began) or -EPIPE
 * (the slot is given back as by fp__slot_give_back).
 */
FP__HIDDEN int fp__slot_commit(struct fp_pool *p, uint32_t i, size_t len,
                               int prio, int timeout_ms, uint64_t *id);

#endif /* FP_CLIENT_H */
