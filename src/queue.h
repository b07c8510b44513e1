/*
 * The queue: READY slots in one FIFO list per producer and priority, served
 * in turn, and a LIFO stack of FREE ones, all under one robust
 * process-shared mutex, plus semaphores that put
 * sleeping workers and producers to bed.
 *
 * Semaphores are wake-up hints only: the truth is the slot state words and
 * the ring under the lock. Every sleep is timed and rechecks, so a post lost
 * with a dead process costs a timeout, never a hang. Posts are made only when
 * a sleeper is registered, so the fast path makes no system call.
 */
#ifndef FP_QUEUE_H
#define FP_QUEUE_H

#include "segment.h"

/*
 * Take the queue lock. If its previous holder died inside, rebuild the ring
 * and stack from the slot states first (the holder may have died between any
 * two instructions) and mark the lock consistent. Returns 0, or
 * -ENOTRECOVERABLE when the lock was left unusable.
 */
FP__HIDDEN int fp__q_lock(struct fp__seg *s);

/*
 * The same, giving up with -ETIMEDOUT at CLOCK_MONOTONIC deadline_ns. A
 * deadline already past (0, say) only tries: a few attempts in user space
 * and one that does not sleep, never a wait for the holder. Nothing is held
 * after -ETIMEDOUT.
 */
FP__HIDDEN int fp__q_lock_until(struct fp__seg *s, uint64_t deadline_ns);
FP__HIDDEN void fp__q_unlock(struct fp__seg *s);

/*
 * The thread id the queue lock's word names as its holder, 0 when free.
 * glibc keeps the owner's TID in the low bits of a robust mutex's lock word
 * (__data.__lock & FUTEX_TID_MASK); a single-threaded holder's TID is its
 * pid. A racy read of a word anyone can write: a diagnosis only. Never
 * signal it unless it is one of the supervisor's own worker pids.
 */
static inline pid_t fp__q_holder(const struct fp__seg *s) {
  _Atomic uint32_t *w = (_Atomic uint32_t *)(void *)&s->hdr->q.lock.__data.__lock;
  return (pid_t)(atomic_load_explicit(w, memory_order_relaxed) &
                 FUTEX_TID_MASK);
}

/*
 * Fair shares of a named pool's slots (struct fp__hdr, producer_share): a
 * producer may hold max(1, (nslots - nslots / 4) / producers) uncollected
 * tasks, and take from the last quarter of the free stack only while it
 * holds fewer than max(1, (nslots / 4) / producers): whatever the others
 * hold, a newcomer finds a slot.
 */
static inline uint32_t fp__share_of(uint32_t nslots, uint32_t producers) {
  uint32_t share = (nslots - nslots / 4) / (producers > 0 ? producers : 1);
  return share > 0 ? share : 1;
}

static inline uint32_t fp__reserve_of(uint32_t nslots, uint32_t producers) {
  uint32_t r = (nslots / 4) / (producers > 0 ? producers : 1);
  return r > 0 ? r : 1;
}

/* The following require the lock. */

/*
 * Pop a free slot, stamp it with its owner (client row and gen) and move it
 * FREE -> FILLING, all under the lock: a FILLING slot always names the
 * producer that holds it. NONE when there is none.
 */
FP__HIDDEN uint32_t fp__q_take_free(struct fp__seg *s, uint32_t owner,
                                    uint32_t owner_gen);

/*
 * Stamp slot i, just taken for a new task, with its producer (client row
 * and that row's gen) and a new id (a new gen of the slot).
 */
static inline void fp__slot_stamp(struct fp__slot *sl, uint32_t i,
                                  uint32_t owner, uint32_t owner_gen) {
  sl->gen++;
  sl->owner = owner;
  sl->owner_gen = owner_gen;
  atomic_store(&sl->id, (sl->gen << FP__ID_SHIFT) | i);
}

/* Move slot i to FREE and push it on the free stack. */
FP__HIDDEN void fp__q_put_free(struct fp__seg *s, uint32_t i);

/*
 * Move slot i COLLECTED -> FREE and push it, unless its producer took it
 * back for a new task first (that move is a compare-and-swap without the
 * lock: client.c, reuse_slot). Returns 1 if freed.
 */
FP__HIDDEN int fp__q_free_collected(struct fp__seg *s, uint32_t i);

/* Move slot i FILLING -> READY with the next sequence number; push it. */
FP__HIDDEN void fp__q_put_ready(struct fp__seg *s, uint32_t i);

/*
 * Pop the oldest READY slot, skipping entries whose slot is not READY (only
 * a corrupt ring has them). NONE when empty. The caller moves it on.
 */
FP__HIDDEN uint32_t fp__q_take_ready(struct fp__seg *s);

/* Remove READY slot i from its list (cancel). 0 or -ENOENT. */
FP__HIDDEN int fp__q_unlink_ready(struct fp__seg *s, uint32_t i);

/* Move slot i RUNNING -> READY again (a retry) and push it. */
FP__HIDDEN void fp__q_requeue(struct fp__seg *s, uint32_t i);

/* Rebuild ring and stack from slot states (lock held, any state). */
FP__HIDDEN void fp__q_rebuild(struct fp__seg *s);

/*
 * After tasks became READY: wake one sleeping worker if the READY tasks
 * outnumber the idle awake workers, unless a busy worker will take them
 * sooner (short tasks, no backlog). Cheap when nobody sleeps.
 */
#define FP__WAKE_WORTH_NS 20000u /* tasks shorter than this: let busy ones */
#define FP__WAKE_BACKLOG 64u     /* ...unless this many wait */
FP__HIDDEN void fp__q_kick(struct fp__seg *s);

/* Wake sleeping workers (up to n) / producers, only if any sleep. */
FP__HIDDEN void fp__q_wake_workers(struct fp__seg *s, uint32_t n);
FP__HIDDEN void fp__q_wake_space(struct fp__seg *s);

/*
 * Sleep on sem for at most rel_ns, registered as `me` in *sleepers, unless
 * recheck(arg) says the wait is over after registering. Returns when woken,
 * timed out, interrupted, or recheck was true; the caller rechecks.
 */
FP__HIDDEN void fp__q_sleep(struct fp__hint *sem, struct fp__presence *sleepers,
                            uint32_t me, uint64_t rel_ns,
                            int (*recheck)(void *), void *arg);

#endif /* FP_QUEUE_H */
