/*
 * Whom the supervisor kills, and when: a task past its deadline (after a
 * hang dump), and a running task fp_cancel() asked to end. It signals only
 * pids it forked itself (struct fp__rowctl), never one read from shared
 * memory.
 *
 * A kill meant for a task must never land on the next one: every kill of a
 * running task is aimed first (aim_kill: the supervisor's half of the
 * handshake described at the top of worker.c, "Ending a task"), and made
 * only once the worker is committed to that task. If the worker is
 * SIGKILLed or SIGSTOPped between any two of its stores, the handshake's
 * two words (row->task_id, row->doom) still say whether it is committed:
 * task_id still naming the task means it is, and its reaping settles the
 * task; anything else means the kill is withdrawn.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "queue.h"
#include "report.h"
#include "sup.h"

void fp__sup_kill_worker(struct fp__sup *sp, uint32_t r, int reason,
                         uint64_t id) {
  pid_t pid = sp->rc[r].pid;
  if (pid <= 0) return;
  if (sp->rc[r].kill_reason == FP__KILL_NONE) {
    sp->rc[r].kill_reason = reason;
    sp->rc[r].kill_task = id;
  }
  kill(-pid, SIGKILL); /* the task's children, in its process group */
  kill(pid, SIGKILL);
}

/*
 * How long a worker may take to publish a result it committed in time.
 * Publishing is a few stores: a running worker needs microseconds, so only
 * a stopped one runs out of it, and a kill it spares is late by 100 ms at
 * most (then its reaping publishes the result, see aim_kill).
 */
#define PUBLISH_GRACE_NS (100 * FP__NS_PER_MS)

/*
 * Aim a kill at task `id` of row r (the handshake of worker.c, "Ending a
 * task", rule 2): store doom, then read task_id, both seq_cst. Returns 1
 * when the worker is committed: it still runs `id`, and cannot take another
 * task before it sees the doom and parks, so a kill now or later (until it
 * is reaped) can only end `id` or an idle worker. Returns 0 when `id` is
 * over: the doom is withdrawn, a worker parked on it woken, and nothing may
 * be killed. Also 0 while the worker publishes a result it committed
 * (fin_task == id: by rule 1 it finished in time), for PUBLISH_GRACE_NS
 * from the first such look: killing it would cost a fork for nothing. A
 * worker still not done after that is stuck (stopped?): 1, and its reaping
 * publishes the committed result. Cannot fail (the wake is a hint).
 */
static int aim_kill(struct fp__sup *sp, uint32_t r, uint64_t id, uint64_t now) {
  struct fp__row *row = fp__row_at(sp->s, r);
  struct fp__rowctl *rc = &sp->rc[r];
  atomic_store(&row->doom, id);
  if (atomic_load(&row->task_id) == id) {
    if (atomic_load(&row->fin_task) != id) return 1;
    if (rc->spare_task != id) {
      rc->spare_task = id;
      rc->spare_until = now + PUBLISH_GRACE_NS;
    }
    if (now >= rc->spare_until) return 1;
  }
  atomic_store(&row->doom, 0);
  atomic_fetch_add(&row->doom_gen, 1);
  fp__futex_wake(&row->doom_gen);
  return 0;
}

/*
 * How long a stuck worker gets to write its stack before SIGKILL. Its
 * handler walks the stack and reads /proc/self/maps, well inside 100 ms
 * unless the worker is stopped or starved; the README promises "waits up
 * to 100 ms for it", which bounds how late a hung task's timeout ends.
 */
#define DUMP_GRACE_NS (100 * FP__NS_PER_MS)

/*
 * While a hang dump is pending, look this often whether it is written: the
 * worker is killed at most 2 ms after its stack is in its report, so the
 * dump adds little to a timeout's lateness beyond the time it takes.
 */
#define DUMP_POLL_NS (2 * FP__NS_PER_MS)

/*
 * Tasks past their deadline: first ask the worker for the stack it is stuck
 * in (FP__SIG_DUMP), then, once it wrote it or after DUMP_GRACE_NS, kill it
 * with its process group. Returns the next instant to look again.
 */
uint64_t fp__sup_check_timeouts(struct fp__sup *sp, uint64_t now) {
  uint64_t next = UINT64_MAX;
  uint64_t limit = (uint64_t)sp->cfg->timeout_ms * FP__NS_PER_MS;
  if (limit == 0) return next;
  for (uint32_t r = 0; r < sp->nrows; r++) {
    struct fp__row *row = fp__row_at(sp->s, r);
    struct fp__rowctl *rc = &sp->rc[r];
    pid_t pid = sp->rc[r].pid;
    if (pid <= 0) continue;
    if (rc->kill_reason == FP__KILL_TIMEOUT && rc->dump_at != 0) {
      /* Dump asked for: kill once written, or when the grace is over. */
      if (atomic_load(&fp__report_at(sp->s, r)->done) ||
          now >= rc->dump_at + DUMP_GRACE_NS) {
        rc->dump_at = 0;
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
      } else if (rc->dump_at + DUMP_GRACE_NS < next) {
        next = now + DUMP_POLL_NS; /* poll for the dump every 2 ms */
      }
      continue;
    }
    if (rc->kill_reason != FP__KILL_NONE) continue;
    /* Seqlock-style read: the start time must belong to this task. */
    uint64_t id = atomic_load(&row->task_id);
    uint64_t t0 = atomic_load(&row->started_ns);
    if (id == 0 || atomic_load(&row->task_id) != id) continue;
    if (now >= t0 + limit) {
      /* It may have finished meanwhile: kill only a worker committed to id. */
      if (!aim_kill(sp, r, id, now)) continue;
      rc->kill_reason = FP__KILL_TIMEOUT;
      rc->kill_task = id;
      rc->dump_at = now;
      atomic_store(&fp__report_at(sp->s, r)->done, 0);
      /* The id travels with the signal: a dump is only for its own task. */
      union sigval v = {.sival_ptr = (void *)(uintptr_t)id};
      if (sigqueue(pid, fp__dump_signal(), v) != 0)
        rc->dump_at = now - DUMP_GRACE_NS; /* no dump: kill on the next look */
      if (now + DUMP_POLL_NS < next) next = now + DUMP_POLL_NS;
    } else if (t0 + limit < next) {
      next = t0 + limit;
    }
  }
  return next;
}

/* Kill the workers of running tasks that fp_cancel() asked to stop. */
void fp__sup_check_cancels(struct fp__sup *sp) {
  for (uint32_t r = 0; r < sp->nrows; r++) {
    struct fp__row *row = fp__row_at(sp->s, r);
    if (sp->rc[r].pid <= 0 || sp->rc[r].kill_reason != FP__KILL_NONE) continue;
    uint32_t i = atomic_load(&row->slot);
    uint64_t id = atomic_load(&row->task_id);
    if (i >= sp->s->nslots || id == 0) continue;
    struct fp__slot *sl = fp__slot_at(sp->s, i);
    if (atomic_load(&sl->cancel) && atomic_load(&sl->id) == id &&
        aim_kill(sp, r, id, fp__now_ns())) {
      fp__sup_log(sp, FP_LOG_INFO,
                  "task %llu cancelled while running: "
                  "killing worker %d",
                  (unsigned long long)id, (int)sp->rc[r].pid);
      fp__sup_kill_worker(sp, r, FP__KILL_CANCEL, id);
    }
  }
}
