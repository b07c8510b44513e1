/*
 * A task slot's life: its state word and every legal move of it. No other
 * file stores to a slot's state word; everyone else reads it through
 * fp__slot_state().
 *
 * The word is enum fp__slot_state in its low 8 bits, and above them: for
 * READY the low 24 bits of the task's generation (its id >> FP__ID_SHIFT),
 * so that a compare-and-swap from "READY, task X" cannot succeed on a later
 * task Y in the same slot; for FILLING the producer that holds it (client
 * row, and the low 12 bits of that row's gen); for RUNNING the worker row
 * that claimed the task; for ENDING who ends it without running it (FP__END_BY_SUP, or
 * client row + 1 for fp_cancel). A claim is one compare-and-swap, so the
 * claim and the claimer's name land together: whoever dies just after it
 * is found by the word alone.
 *
 * Who may make each move, and what a SIGKILL or SIGSTOP of the mover
 * between any two of its stores leaves behind:
 *
 *   FREE -> FILLING|who     a producer, by CAS (take_free, a scan), or
 *   COLLECTED -> FILLING|who  its own producer, by CAS (reuse). The word
 *                           names the producer (row and gen) at once; the
 *                           slot's owner fields are stamped right after.
 *                           Killed between: the word still names it, and
 *                           the supervisor's reclaim frees FILLING slots of
 *                           a row whose holder is gone or of another gen
 *                           (sup_clients.c), whatever the stale stamp says.
 *   FILLING -> READY        its producer (publish), then its ring entry and
 *                           the ring's tail. Killed between: a READY slot
 *                           no ring holds; the supervisor's reclaim of the
 *                           dead row finds it (fp__q_sweep) and queues it on
 *                           the retry ring. Stopped between: that one task
 *                           waits for its producer, nothing else does.
 *   READY -> FILLING        its producer, by CAS, withdrawing a task it
 *                           published as a stop began (client.c, publish).
 *   READY -> RUNNING|row    a worker, by CAS (claim). Killed after: the
 *                           supervisor reaps it, finds row's slot RUNNING
 *                           under that row, and ends or retries the task.
 *   READY -> ENDING|who     fp_cancel or the supervisor's stop, by CAS; the
 *                           winner of the three-way race (worker, canceller,
 *                           stop) is the only one to move the slot on.
 *   ENDING -> DONE          the same `who`, after writing the result. A
 *                           canceller killed between: the supervisor ends it
 *                           when it finds that client row gone; a stopped
 *                           one delays that one result until it goes on.
 *   RUNNING -> DONE         the holder's worker (result written first), or
 *                           the supervisor after reaping it (crashed, timed
 *                           out, cancelled, or its committed result).
 *   RUNNING -> READY        the supervisor after reaping it (a retry), then
 *                           onto the retry ring (its single writer).
 *   DONE -> COLLECTED       its producer, after copying the result.
 *   FILLING -> COLLECTED    its producer, giving back a slot it could not
 *                           publish (kept for its next submit).
 *   COLLECTED -> FREE       its producer or the supervisor, by CAS.
 *   any -> FREE             the supervisor for a dead producer's FILLING,
 *                           DONE (abandoned) and ENDING slots.
 * Every move to or from FREE also counts in q.nfree (a hint; recounted by
 * the supervisor every tick).
 *   any -> DONE (corrupt)   the supervisor, for a word no move could make.
 *
 * Loads that decide a move are acquire, and every publishing store is a
 * release: whoever sees READY sees the input, whoever sees DONE the result.
 */
#ifndef FP_SLOT_H
#define FP_SLOT_H

#include "segment.h"

#define FP__SLOT_STATE_MASK 0xffu
#define FP__SLOT_HOLDER_SHIFT 8u
#define FP__END_BY_SUP 0u /* ENDING holder: the supervisor (stop) */

static inline uint32_t fp__slot_word(const struct fp__slot *sl) {
  return atomic_load_explicit(&((struct fp__slot *)sl)->state,
                              memory_order_acquire);
}

/* The state (enum fp__slot_state) alone. */
static inline uint32_t fp__slot_state(const struct fp__slot *sl) {
  return fp__slot_word(sl) & FP__SLOT_STATE_MASK;
}

/* The holder of a RUNNING or ENDING word (a row; see above). */
static inline uint32_t fp__slot_holder(uint32_t word) {
  return word >> FP__SLOT_HOLDER_SHIFT;
}

static inline uint32_t fp__slot_make(uint32_t state, uint32_t holder) {
  return state | holder << FP__SLOT_HOLDER_SHIFT;
}

/* Plain moves of a slot the caller holds (see the table above). */
static inline void fp__slot_set(struct fp__slot *sl, uint32_t state) {
  atomic_store_explicit(&sl->state, state, memory_order_release);
}

/* A move by compare-and-swap from exactly `from`. 1 when made. */
static inline int fp__slot_cas(struct fp__slot *sl, uint32_t from,
                               uint32_t to) {
  return atomic_compare_exchange_strong(&sl->state, &from, to);
}

/* The FILLING word of a slot held by client row `row` at gen `gen`. */
static inline uint32_t fp__slot_filling_word(uint32_t row, uint32_t gen) {
  return fp__slot_make(FP__SLOT_FILLING, (row & 0xfffu) | (gen & 0xfffu) << 12);
}

/* The client row of a FILLING word, and whether gen matches it. */
static inline uint32_t fp__slot_filler(uint32_t word) {
  return fp__slot_holder(word) & 0xfffu;
}

static inline int fp__slot_filled_at(uint32_t word, uint32_t gen) {
  return (fp__slot_holder(word) >> 12) == (gen & 0xfffu);
}

/* The READY word of task `id`. */
static inline uint32_t fp__slot_ready_word(uint64_t id) {
  return fp__slot_make(FP__SLOT_READY,
                       (uint32_t)(id >> FP__ID_SHIFT) & 0xffffffu);
}

/*
 * READY -> RUNNING|row: a worker's claim, from the READY word it read.
 * 1 when the task is its own.
 */
static inline int fp__slot_claim(struct fp__slot *sl, uint32_t ready_word,
                                 uint32_t row) {
  return fp__slot_cas(sl, ready_word, fp__slot_make(FP__SLOT_RUNNING, row));
}

/* READY -> ENDING|who: to end it unrun. 1 when it is ours to end. */
static inline int fp__slot_claim_end(struct fp__slot *sl, uint32_t ready_word,
                                     uint32_t who) {
  return fp__slot_cas(sl, ready_word, fp__slot_make(FP__SLOT_ENDING, who));
}

/* Is the word RUNNING under worker row r? */
static inline int fp__slot_running_by(uint32_t word, uint32_t r) {
  return word == fp__slot_make(FP__SLOT_RUNNING, r);
}

/* Not finished yet: READY, RUNNING or ENDING (a pending task's states). */
static inline int fp__slot_unfinished(uint32_t state) {
  return state == FP__SLOT_READY || state == FP__SLOT_RUNNING ||
         state == FP__SLOT_ENDING;
}

/*
 * Stamp slot i, just taken for a new task, with its producer (client row
 * and that row's gen) and a new id (a new gen of the slot). The slot is
 * FILLING and the caller's.
 */
static inline void fp__slot_stamp(struct fp__slot *sl, uint32_t i,
                                  uint32_t owner, uint32_t owner_gen) {
  sl->gen++;
  sl->owner = owner;
  sl->owner_gen = owner_gen;
  atomic_store(&sl->id, (sl->gen << FP__ID_SHIFT) | i);
}

/*
 * Write a result into a slot the caller holds (RUNNING, ENDING, or any
 * state the supervisor found damaged), then move it to DONE (release: the
 * producer that sees DONE sees the fields). The output bytes, if any, are
 * in the slot already.
 */
FP__HIDDEN void fp__slot_end(const struct fp__seg *s, struct fp__slot *sl,
                             int32_t status, int32_t code, int32_t sig,
                             int32_t exit_code, uint32_t out_len,
                             uint64_t run_us);

/*
 * End a task unrun or cut off as FP_CANCELLED (no output, not counted:
 * the caller counts), then wake its producer.
 */
FP__HIDDEN void fp__slot_end_cancelled(const struct fp__seg *s,
                                       struct fp__slot *sl);

#endif /* FP_SLOT_H */
