/*
 * The queue: READY tasks in ready rings, free slots on a stack.
 *
 * Ready rings (no lock). Every client row has two rings, normal and high
 * priority, and the supervisor has one more, the retry ring. A ring's
 * entries and tail have a single writer, its producer (the supervisor for
 * the retry ring); head is moved on by compare-and-swap by whoever takes
 * an entry. A producer publishes a task in three stores:
 *     slot READY (release), entry[tail % cap] = slot, tail + 1 (seq_cst).
 * A worker takes one in two compare-and-swaps:
 *     read head h < tail and entry[h]; claim slot READY -> RUNNING|row;
 *     move head h -> h + 1 (helping: also when the claim failed).
 * The slot's state word is the only truth: an entry is a pointer that may
 * be stale. An entry names its slot and its task's generation, and claims
 * only that task (READY with that generation): an entry whose task ended,
 * was cancelled or was claimed through a duplicate is skipped; no task
 * runs twice (one claim wins), none is lost (its own entry is behind head
 * or still ahead of it), and no task is claimed before its producer
 * counted it (tail). Entries may be duplicated at will. That is what makes
 * every repair a plain "queue each READY slot that no ring holds on the
 * retry ring" (fp__q_sweep).
 *
 * If the process running a step is SIGKILLed between any two stores:
 *   producer after READY, before tail: a READY slot no ring holds; the
 *       supervisor sweeps when it finds the producer gone, queues the slot
 *       on the retry ring and counts it submitted (q.rescued).
 *   producer after the entry, before tail: the same (tail is the commit).
 *   worker after the claim, before head: head still names an entry whose
 *       slot is not READY any more; the next taker skips it. The claimed
 *       task is the reaped worker's (RUNNING|row): settled by
 *       fp__sup_on_death (sup_death.c).
 *   worker reading, before the claim: nothing changed.
 * A stopped process stops only its own steps: nobody waits for a store of
 * another (a taker that finds head behind helps it on).
 *
 * Free slots need no lock either: a producer that needs a slot it never
 * used scans the slot states from its own cursor and claims a FREE one by
 * compare-and-swap, FREE -> FILLING naming itself (slot.h); q.nfree says
 * whether a scan is worth it. A producer reuses the slots it collected
 * without any scan (held.c). So no process, whatever it does or
 * whenever it stops, holds anything another process must wait for.
 *
 * Damage (a stray write into a ring: head past tail, or more than cap
 * between them) reads as an empty ring and raises q.sweep; the supervisor
 * then resets the ring and sweeps. Every index read from a ring is
 * checked against nslots.
 */
#ifndef FP_QUEUE_H
#define FP_QUEUE_H

#include "slot.h"
#include "wake.h"

/*
 * Fair shares of a named pool's slots (struct fp__hdr, producer_share): a
 * producer may hold max(1, (nslots - nslots / 4) / producers) uncollected
 * tasks, and take one of the last quarter of the free slots only while it
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

/* Free slots. */

/*
 * Claim a FREE slot for client row `owner` at gen `owner_gen`, scanning
 * the slot states from *cursor (the caller's own, moved past the slot
 * taken): FREE -> FILLING naming the owner, then stamped (slot.h). Returns
 * its index, or NONE when q.nfree says none is free or a whole scan found
 * none.
 */
FP__HIDDEN uint32_t fp__q_take_free(struct fp__seg *s, uint32_t owner,
                                    uint32_t owner_gen, uint32_t *cursor);

/* Move slot i, the caller's (or a dead producer's), to FREE. */
FP__HIDDEN void fp__q_put_free(struct fp__seg *s, uint32_t i);

/*
 * Move slot i COLLECTED -> FREE, unless its producer took it back for a
 * new task first (that move is a compare-and-swap too: held.c,
 * fp__slot_reuse). Returns 1 if freed.
 */
FP__HIDDEN int fp__q_free_collected(struct fp__seg *s, uint32_t i);

/*
 * Supervisor: count the FREE slots into q.nfree (a racy count of moving
 * states: right within the moves made while it ran). Returns the count.
 */
FP__HIDDEN uint32_t fp__q_recount(struct fp__seg *s);

/* The ready rings: no lock. */

/* Ring k (fp__nrings) and its entries. The retry ring is the last. */
static inline struct fp__ring *fp__q_ring(const struct fp__seg *s, uint32_t k) {
  if (k >= 2 * s->nclients) return &s->hdr->q.retry;
  return &fp__client_at(s, k / 2)->rq[k % 2];
}

static inline _Atomic uint32_t *fp__q_ents(const struct fp__seg *s,
                                           uint32_t k) {
  return s->ents + (uint64_t)k * s->ring_cap;
}

#define FP__RING_RETRY(s) (2 * (s)->nclients)

/* Ring counters at or above this are damage (2^62 tasks: centuries). */
#define FP__RING_SANE (1ull << 62)

/*
 * Queue slot i, FILLING and the caller's, on ring k, which the caller
 * writes alone: *w is its own copy of the ring's tail (kept by the
 * writer, so a stray write to the shared one is undone at the next push)
 * and of the head it last saw.
 * The slot becomes READY, then its entry and the tail are stored, then a
 * full barrier orders them before the caller's look at the sleepers
 * (fp__wake_kick). Returns 0, or -ENOSPC with nothing changed when the
 * ring holds cap entries that takers have not passed yet (stale ones at
 * its head are skipped here first); the caller retries later.
 */
FP__HIDDEN int fp__q_push(struct fp__seg *s, uint32_t k,
                          struct fp__ring_writer *w, uint32_t i);

/*
 * The same for a slot that is READY already (a retry, a rescue): only the
 * entry and the tail. The supervisor's, on the retry ring.
 */
FP__HIDDEN int fp__q_push_ready(struct fp__seg *s, uint32_t k,
                                struct fp__ring_writer *w, uint32_t i);

/*
 * A worker's place in its round of the rings (private to the worker), and
 * the tail it last read of each ring (tails: fp__nrings() entries, or
 * NULL to read every tail afresh): a take reads the producer's line only
 * when it has passed what it saw there before.
 */
struct fp__taker {
  uint32_t cursor;    /* next client row to serve */
  uint32_t hi_streak; /* high-priority tasks taken in a row */
  uint64_t *tails;
};

/*
 * Which ring to serve: the retry ring first (its tasks are the oldest),
 * then high priority, but after FP__HI_BURST high tasks in a row a waiting
 * normal one goes, so normal tasks never starve; between producers, in
 * turn from the taker's cursor.
 */
#define FP__HI_BURST 4u

/*
 * Claim a READY task for worker row `row`: its slot, now RUNNING|row, or
 * NONE when every ring is empty. Before each claim it stores the candidate
 * slot in *row_slot (the worker row's slot field): a claim that succeeds
 * is therefore always named by its row (the supervisor looks there).
 */
FP__HIDDEN uint32_t fp__q_take(struct fp__seg *s, struct fp__taker *tk,
                               uint32_t row, _Atomic uint32_t *row_slot);

/* Entries not yet passed in all rings: READY tasks, give or take stale
 * entries (racy, for wake-ups and stats). */
FP__HIDDEN uint32_t fp__q_queued(const struct fp__seg *s);

/* Is any ring non-empty? A few loads per ring in use. */
FP__HIDDEN int fp__q_any(const struct fp__seg *s);

/* Is the producer of client row `owner` at gen `gen` gone for good? */
typedef int (*fp__gone_fn)(void *ctx, uint32_t owner, uint32_t gen);

/*
 * Supervisor: make every READY slot reachable. Reads the slot states,
 * then every ring from its head, and queues on the retry ring (through
 * *retry, the supervisor's copy of its tail) each READY slot that no ring
 * holds and whose producer gone(ctx, ...) says is gone (NULL: none is),
 * or any such slot when a ring was damaged (q.sweep raised, or a ring
 * found damaged here, which is then reset to empty), or one that
 * suspect[i] (the caller's memory of nslots words, or NULL) says was
 * already READY with the same word and held by no ring at the previous
 * sweep that was given suspect: lost (a stray write into its entry or its
 * word), or its live producer stopped between READY and tail for that
 * long, which is harmless (its tail still counts it; its entry is then
 * stale). *rescued (may be NULL) gets how many belong to a gone producer:
 * tasks it made READY but never counted (it died before its tail), which
 * the caller counts submitted. A racing producer may get a task queued
 * twice: harmless.
 * Returns how many slots it queued, or -ENOMEM (nothing done).
 */
FP__HIDDEN int fp__q_sweep(struct fp__seg *s, struct fp__ring_writer *retry,
                           fp__gone_fn gone, void *ctx, uint32_t *suspect,
                           uint32_t *rescued);

/* fp_stats.submitted: every producer ring's tail, plus the rescued. */
FP__HIDDEN uint64_t fp__q_submitted(const struct fp__seg *s);

#endif /* FP_QUEUE_H */
