/*
 * Ending the pool: draining (refuse new tasks, finish the queued ones
 * within a grace period), stopping now (cancel what is queued, kill what
 * runs, settle everything), and a start that failed.
 *
 * A stop is bounded whatever another process does: no lock is needed (slot
 * states decide, slot.h), and a canceller stopped between its claim and
 * its end is waited for STOP_CANCELLER_NS at most. It keeps invariant 1 of
 * DESIGN.md: every task ends in one terminal status. A READY task is ended
 * only after claiming it READY -> ENDING (against workers and fp_cancel:
 * one wins); a RUNNING one only once its worker is reaped (invariant 2);
 * the pool's state is STOPPING (seq_cst) before the first claim, so a
 * producer publishing meanwhile sees it or is seen (client.c).
 */
#include <unistd.h>

#include "queue.h"
#include "sup.h"

/*
 * How long a canceller may take between its claim and its end at stop
 * (fp_cancel makes them back to back: a live one takes microseconds),
 * looked at every STOP_POLL_US. One still there after 100 ms is dead or
 * stopped, and the stop must not wait on it.
 */
#define STOP_CANCELLER_NS (100 * FP__NS_PER_MS)
#define STOP_POLL_US 1000 /* 1 ms */

/* Wake everyone who might sleep on the pool: workers, producers. */
static void wake_all(struct fp__sup *sp) {
  struct fp__hdr *h = sp->s->hdr;
  for (uint32_t k = fp__pcount(&h->w_asleep, sp->s->nrows); k > 0; k--)
    fp__hint_post(&h->q.work_hint);
  for (uint32_t k = fp__pcount(&h->p_asleep, sp->s->nclients); k > 0; k--)
    fp__hint_post(&h->q.space_hint);
  for (uint32_t c = 0; c < sp->s->nclients; c++) fp__wake_owner(sp->s, c);
  fp__futex_wake(&h->state);
}

/*
 * End every READY task as cancelled, each claimed READY -> ENDING first
 * (against workers and fp_cancel: one wins). Returns how many.
 */
static uint64_t cancel_queued(struct fp__sup *sp, uint64_t now) {
  struct fp__seg *s = sp->s;
  uint64_t n = 0;
  for (uint32_t i = 0; i < s->nslots; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    uint32_t w = fp__slot_word(sl);
    if ((w & FP__SLOT_STATE_MASK) != FP__SLOT_READY ||
        !fp__slot_claim_end(sl, w, FP__END_BY_SUP))
      continue;
    fp__sup_end_task(sp, sl, FP_CANCELLED, 0, -1, now, NULL, 0);
    n++;
  }
  return n;
}

/* Slots some canceller claimed and has not ended yet. */
static uint32_t count_ending(const struct fp__seg *s) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < s->nslots; i++)
    n += fp__slot_state(fp__slot_at(s, i)) == FP__SLOT_ENDING;
  return n;
}

/* Kill every worker for the stop; returns how many were running a task. */
static int kill_workers(struct fp__sup *sp) {
  int killed = 0;
  for (uint32_t r = 0; r < sp->nrows; r++) {
    struct fp__row *row = fp__row_at(sp->s, r);
    if (sp->rc[r].pid > 0) {
      killed += atomic_load(&row->slot) != FP__NONE;
      fp__sup_kill_worker(sp, r, FP__KILL_STOP, 0);
    }
  }
  return killed;
}

/*
 * With every worker reaped, end whatever is still pending (as cancelled);
 * returns how many queued tasks it cancelled.
 */
static uint64_t settle_left(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  /*
   * Belt and braces: with every worker reaped, nothing may stay pending.
   * READY: published while we stopped (its producer takes it back unless
   * we claim it first). RUNNING: ours alone, its worker is reaped.
   * ENDING: a canceller between its claim and its end; one still there
   * after 100 ms is dead or stopped, and the task ends all the same (it
   * was counted at its claim; nothing reuses the slot after a stop).
   */
  uint64_t now = fp__now_ns();
  uint64_t cancelled = cancel_queued(sp, now);
  for (uint32_t i = 0; i < s->nslots; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    if (fp__slot_state(sl) == FP__SLOT_RUNNING)
      fp__sup_end_task(sp, sl, FP_CANCELLED, 0, -1, now, NULL, 0);
  }
  while (count_ending(s) > 0 && fp__now_ns() - now < STOP_CANCELLER_NS)
    usleep(STOP_POLL_US);
  for (uint32_t i = 0; i < s->nslots; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    if (fp__slot_state(sl) == FP__SLOT_ENDING) fp__slot_end_cancelled(s, sl);
  }
  return cancelled;
}

/*
 * Settle everything and mark the pool STOPPED; the loop then ends. Bounded
 * whatever another process does: no lock is needed (slot states decide,
 * slot.h), and a canceller stopped between its claim and its end is
 * waited for 100 ms at most.
 */
void fp__sup_stop_now(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  if (sp->stopped) return;
  /* seq_cst: a producer publishing now sees it or is seen (client.c). */
  if (atomic_load(&s->hdr->state) < FP__POOL_STOPPING)
    fp__sup_set_state(sp, FP__POOL_STOPPING);
  uint64_t cancelled = cancel_queued(sp, fp__now_ns());
  int killed = kill_workers(sp);
  fp__sup_reap(sp, 1);
  fp__sup_sweep_strays(sp, FP__SWEEP_STOP_NS);
  if (sp->strays_left)
    fp__sup_log(sp, FP_LOG_ERROR,
                "stopping with processes left by workers "
                "that would not die in %llu ms",
                FP__SWEEP_STOP_NS / FP__NS_PER_MS);
  cancelled += settle_left(sp);
  if (cancelled + (uint64_t)killed > 0)
    fp__sup_log(sp, FP_LOG_WARN,
                "stopped with %llu queued task(s) cancelled and %d running "
                "task(s) killed",
                (unsigned long long)cancelled, killed);
  fp__sup_set_state(sp, FP__POOL_STOPPED);
  wake_all(sp);
  sp->stopped = 1;
}

void fp__sup_fail_start(struct fp__sup *sp, int err) {
  atomic_store(&sp->s->hdr->start_error, err);
  for (uint32_t r = 0; r < sp->nrows; r++)
    fp__sup_kill_worker(sp, r, FP__KILL_STOP, 0);
  fp__sup_set_state(sp, FP__POOL_FAILED);
  fp__sup_reap(sp, 1);
  sp->stopped = 1;
}

void fp__sup_begin_drain(struct fp__sup *sp, int grace_ms) {
  if (atomic_load(&sp->s->hdr->state) != FP__POOL_RUNNING) return;
  sp->drain_deadline = grace_ms < 0
                           ? UINT64_MAX
                           : fp__now_ns() + (uint64_t)grace_ms * FP__NS_PER_MS;
  fp__sup_set_state(sp, FP__POOL_DRAINING);
  fp__sup_log(sp, FP_LOG_INFO,
              "draining: refusing new tasks, finishing %u "
              "queued (grace %d ms)",
              fp__q_queued(sp->s), grace_ms);
  wake_all(sp);
}
