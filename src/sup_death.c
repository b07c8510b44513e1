/*
 * A worker's death, after waitpid has reaped it: settle the task it held,
 * then plan its row's restart.
 *
 * Settling (invariants 1 and 2 of DESIGN.md): nothing is decided about a
 * task before its worker is reaped, and then exactly one thing happens to
 * it. The row names the task (slot and task id) only as a hint; the slot's
 * own state word decides, since the worker's claim wrote its row into it:
 *   - the worker had committed its result (row->fin_task): the task ends as
 *     the handler said, published and counted here if the worker died
 *     before it could;
 *   - it was killed after its claim, before it named the task in its row:
 *     the handler never began, and the task goes back to the queue as if
 *     never taken (worker.c sets task_id first);
 *   - otherwise the run killed it: the task is retried while attempts
 *     remain (at-least-once), else ends crashed, timed out (our deadline
 *     kill) or cancelled (our cancel or stop kill), with the crash or hang
 *     report as its output. One that used all its attempts is poison: said
 *     once, with an excerpt of its input.
 * Before any of that, the dead worker's process group and strays are
 * killed, so that a result arrives with the task's processes gone.
 *
 * Planning (invariant 6): workers that keep dying without finishing a task
 * are a crash loop, and their restarts back off (BACKOFF_BASE_NS doubling
 * up to BACKOFF_MAX_NS), logged once per burst. A death in start-up fails
 * the pool's start instead.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "queue.h"
#include "report.h"
#include "sup.h"

/*
 * Crash-loop backoff (DESIGN.md, invariant 6): the second death in a row
 * without a finished task delays its row's restart by BACKOFF_BASE_NS, each
 * further one doubles the delay, up to BACKOFF_MAX_NS. The base is short
 * enough that a pool hit by two unlucky crashes hardly notices it; the cap
 * bounds a crash loop to about one fork per row per second while a fixed
 * handler (or a reload) is still picked up within a second. The README
 * promises "10 ms, 20 ms, ... up to 1 s".
 */
#define BACKOFF_BASE_NS (10 * FP__NS_PER_MS)
#define BACKOFF_MAX_NS (1000 * FP__NS_PER_MS)

/* What one reaping knows of the worker it reaped (fp__sup_on_death). */
struct death {
  uint32_t r;       /* its row */
  pid_t pid;        /* its pid, as we forked it */
  int ws;           /* its wait status */
  int sig;          /* the signal that ended it, or 0 */
  int code;         /* its exit code, or -1 */
  uint64_t now;     /* when it was reaped */
  int had_task;     /* it died running a task (settle_run) */
  uint64_t task_id; /* ...that task */
  fp_status st;     /* ...and how its run ended */
};

void fp__sup_end_task(struct fp__sup *sp, struct fp__slot *sl, fp_status st,
                      int sig, int exit_code, uint64_t now, const char *report,
                      size_t rlen) {
  struct fp__hdr *h = sp->s->hdr;
  if (report != NULL && rlen > 0) {
    if (rlen > sp->s->max_output) rlen = sp->s->max_output;
    memcpy(fp__slot_out(sp->s, sl), report, rlen);
  } else {
    rlen = 0;
  }
  uint32_t owner = sl->owner;
  fp__slot_end(sp->s, sl, st, 0, sig, exit_code, (uint32_t)rlen,
               sl->started_ns != 0 && now > sl->started_ns
                   ? (now - sl->started_ns) / FP__NS_PER_US
                   : 0);
  _Atomic uint64_t *ctr = st == FP_CRASHED   ? &h->c.crashed
                          : st == FP_TIMEOUT ? &h->c.timeout
                                             : &h->c.cancelled;
  atomic_fetch_add(ctr, 1);
  fp__wake_owner(sp->s, owner);
}

/* Up to 32 bytes of a task's input, escaped, for a log line. */
static void input_excerpt(struct fp__sup *sp, struct fp__slot *sl, char *out,
                          size_t cap) {
  uint32_t n = sl->in_len;
  if (n > sp->s->max_input) n = 0;
  const unsigned char *in = fp__slot_in(sl);
  size_t o = 0;
  for (uint32_t k = 0; k < n && k < 32 && o + 5 < cap; k++) {
    unsigned char c = in[k];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') out[o++] = (char)c;
    else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
  }
  if (n > 32 && o + 4 < cap) o += (size_t)snprintf(out + o, cap - o, "...");
  out[o] = '\0';
}

/* "SIGSEGV" or "exit=3" (static buffer: the supervisor is one thread). */
static const char *death_name(int sig, int code) {
  static char buf[48];
  if (sig) snprintf(buf, sizeof(buf), "SIG%s", fp__sup_signame(sig));
  else snprintf(buf, sizeof(buf), "exit=%d", code);
  return buf;
}

/* One log line per worker death with a task, plus its report if any. */
static void log_death(struct fp__sup *sp, pid_t pid, uint64_t task_id, int sig,
                      int code, uint64_t ran_us, fp_status st,
                      struct fp__slot *sl, const char *rep, size_t rlen) {
  if (sp->o->log == NULL) return;
  /* One line per event: the report's lines joined with " | ". */
  char flat[600];
  size_t o = 0;
  for (size_t k = 0; k < rlen && o + 4 < sizeof(flat); k++) {
    if (rep[k] == '\n') {
      memcpy(flat + o, " | ", 3);
      o += 3;
    } else {
      flat[o++] = rep[k];
    }
  }
  flat[o] = '\0';
  fp__sup_log(
      sp, FP_LOG_WARN,
      "worker %d died running task %llu (attempt "
      "%u): %s after %llu.%03llu ms (%s)%s%s",
      (int)pid, (unsigned long long)task_id, sl->attempts,
      st == FP_TIMEOUT ? "timeout, killed by SIGKILL" : death_name(sig, code),
      (unsigned long long)(ran_us / 1000), (unsigned long long)(ran_us % 1000),
      fp_status_name(st), o ? ": " : "", flat);
}

/*
 * Put slot i, RUNNING under a worker we reaped, back in the queue: READY
 * again, then on the retry ring (which we alone write). 0, or -ENOSPC with
 * the slot left RUNNING (the caller ends it).
 */
static int requeue(struct fp__sup *sp, uint32_t i) {
  struct fp__seg *s = sp->s;
  struct fp__slot *sl = fp__slot_at(s, i);
  atomic_store(&sl->worker, 0);
  /* Its generation stays: the READY word of the same task (slot.h). */
  return fp__q_push(s, FP__RING_RETRY(s), &sp->retry, i);
}

/*
 * Row r's worker died holding task tid in slot i after committing its
 * result (row->fin_task == tid).
 */
static void settle_committed(struct fp__sup *sp, uint32_t r, uint32_t i,
                             uint64_t tid) {
  struct fp__row *row = fp__row_at(sp->s, r);
  /*
   * It died after committing its result: the handler finished and every
   * result field is written. Publish it if it did not, count it if it
   * did not (see struct fp__row): the task ends as the handler said.
   */
  struct fp__slot *sl = fp__slot_at(sp->s, i);
  if (fp__slot_running_by(fp__slot_word(sl), r) &&
      atomic_load(&sl->id) == tid) {
    uint32_t owner = sl->owner;
    fp__slot_set(sl, FP__SLOT_DONE);
    fp__wake_owner(sp->s, owner);
  }
  if (atomic_load(&row->ok) == atomic_load(&row->ok_snap) &&
      atomic_load(&row->failed) == atomic_load(&row->failed_snap)) {
    if (atomic_load(&row->fin_status) == FP_OK) atomic_fetch_add(&row->ok, 1);
    else atomic_fetch_add(&row->failed, 1);
  }
}

/* How the run of task_id ended, from our kill of it, if any. */
static fp_status run_status(const struct fp__rowctl *rc, uint64_t task_id) {
  if (rc->kill_reason == FP__KILL_STOP) return FP_CANCELLED;
  if (rc->kill_reason == FP__KILL_CANCEL && rc->kill_task == task_id)
    return FP_CANCELLED;
  if (rc->kill_reason == FP__KILL_TIMEOUT && rc->kill_task == task_id)
    return FP_TIMEOUT;
  return FP_CRASHED;
}

/* A task that killed every worker that ran it: count and say so. */
static void quarantine(struct fp__sup *sp, const struct death *d,
                       struct fp__slot *sl) {
  char ex[160];
  input_excerpt(sp, sl, ex, sizeof(ex));
  atomic_fetch_add(&sp->s->hdr->c.quarantined, 1);
  fp__sup_log(sp, FP_LOG_ERROR,
              "task %llu quarantined as poison: it "
              "killed %u worker(s), last by %s; input '%s'",
              (unsigned long long)d->task_id, sl->attempts,
              d->st == FP_TIMEOUT ? "timeout" : death_name(d->sig, d->code),
              ex);
}

/*
 * The run of d->task_id in slot i ended as d->st: run it again while
 * attempts remain, else end it with its report (rep, rlen).
 */
static void retry_or_end(struct fp__sup *sp, const struct death *d, uint32_t i,
                         struct fp__slot *sl, const char *rep, size_t rlen) {
  struct fp__hdr *h = sp->s->hdr;
  unsigned max = sp->cfg->max_attempts > 1 ? sp->cfg->max_attempts : 1;
  if (d->st != FP_CANCELLED && sl->attempts < max &&
      atomic_load(&h->state) < FP__POOL_STOPPING && requeue(sp, i) == 0) {
    /* At-least-once: run it again, only now that the worker is reaped. */
    atomic_fetch_add(&h->c.retried, 1);
    fp__wake_workers(sp->s, 1);
    return;
  }
  /* (Not for a retry refused because the retry ring was full.) */
  if (d->st != FP_CANCELLED && max > 1 && sl->attempts >= max)
    quarantine(sp, d, sl);
  fp__sup_end_task(sp, sl, d->st, d->sig, d->code, d->now, rep, rlen);
}

/*
 * The worker died running the task in slot i (RUNNING under its row):
 * count the run, log it with its report, then retry or end the task.
 */
static void settle_run(struct fp__sup *sp, struct death *d, uint32_t i,
                       struct fp__slot *sl) {
  struct fp__row *row = fp__row_at(sp->s, d->r);
  d->task_id = atomic_load(&sl->id);
  sl->attempts++; /* this run: see struct fp__slot */
  d->st = run_status(&sp->rc[d->r], d->task_id);
  char rep[FP__REPORT_BYTES];
  size_t rlen = d->st == FP_CANCELLED
                    ? 0
                    : fp__report_render(fp__report_at(sp->s, d->r), d->task_id,
                                        rep, sizeof(rep));
  uint64_t ran_us =
      d->now > sl->started_ns ? (d->now - sl->started_ns) / FP__NS_PER_US : 0;
  d->had_task = 1;
  if (d->st != FP_CANCELLED) fp__row_duration(row, ran_us);
  log_death(sp, d->pid, d->task_id, d->sig, d->code, ran_us, d->st, sl, rep,
            rlen);
  retry_or_end(sp, d, i, sl, rep, rlen);
}

/* Settle the task the dead worker held, if any (see the top of the file). */
static void settle_task(struct fp__sup *sp, struct death *d) {
  struct fp__hdr *h = sp->s->hdr;
  uint32_t r = d->r;
  struct fp__row *row = fp__row_at(sp->s, r);
  uint32_t i = atomic_load(&row->slot);
  uint64_t tid = atomic_load(&row->task_id);
  if (i < sp->s->nslots && tid != 0 && atomic_load(&row->fin_task) == tid) {
    settle_committed(sp, r, i, tid);
  } else if (i < sp->s->nslots) {
    /*
     * The task is ours to end only if it is still RUNNING under this row
     * (the row pointer is a hint; the slot's own state word decides: the
     * worker's claim wrote our row into it).
     */
    struct fp__slot *sl = fp__slot_at(sp->s, i);
    if (fp__slot_running_by(fp__slot_word(sl), r) &&
        atomic_load(&row->task_id) != atomic_load(&sl->id) &&
        sp->rc[r].kill_reason != FP__KILL_STOP &&
        atomic_load(&h->state) < FP__POOL_STOPPING && requeue(sp, i) == 0) {
      /*
       * Claimed, but killed before it named the task in its row: the
       * handler never began (worker.c sets task_id first). Not a run: back
       * in the queue as if never taken (no retry counted, attempts as
       * they were).
       */
      fp__wake_workers(sp->s, 1);
    } else if (fp__slot_running_by(fp__slot_word(sl), r)) {
      settle_run(sp, d, i, sl);
    }
  }
}

/* Row r is empty now: nobody else will clear what its worker held. */
static void clear_row(struct fp__sup *sp, uint32_t r) {
  struct fp__hdr *h = sp->s->hdr;
  struct fp__row *row = fp__row_at(sp->s, r);
  sp->rc[r].pid = 0;
  atomic_store(&row->pid, 0);
  atomic_fetch_sub(&h->workers_alive, 1);
  /* It cannot clear its own presence bits any more (killed asleep...). */
  fp__pclr(&h->w_idle, r);
  fp__pclr(&h->w_asleep, r);
  fp__pclr(&h->w_spin, r);
  atomic_store(&row->slot, FP__NONE);
  atomic_store(&row->task_id, 0);
  atomic_store(&row->state, FP__ROW_EMPTY);
}

/* A worker died while the pool started: say why, and fail the start. */
static void died_starting(struct fp__sup *sp, const struct death *d) {
  uint32_t ie = atomic_load(&fp__row_at(sp->s, d->r)->init_error);
  if (d->code == FP__EXIT_INIT && ie != 0)
    fp__sup_log(sp, FP_LOG_ERROR, "worker %d: init hook failed with %u",
                (int)d->pid, ie);
  else
    fp__sup_log(
        sp, FP_LOG_ERROR, "worker %d died during start-up (%s%s)", (int)d->pid,
        d->sig ? "signal " : "exit ",
        d->sig ? fp__sup_signame(d->sig) : (d->code == 0 ? "0" : "non-zero"));
  fp__sup_fail_start(sp, ECHILD);
}

/* A worker died holding no task (had_task 0): say how. ours: our kill. */
static void log_idle_death(struct fp__sup *sp, const struct death *d,
                           int reason, int ours) {
  if (d->had_task) return;
  if (ours) /* The task it was aimed at had just finished in time (worker.c). */
    fp__sup_log(sp, FP_LOG_INFO,
                "worker %d killed idle: task %llu, which it was to end "
                "(%s), had just finished",
                (int)d->pid, (unsigned long long)sp->rc[d->r].kill_task,
                reason == FP__KILL_TIMEOUT ? "timeout" : "cancel");
  else if (WIFEXITED(d->ws) && d->code == FP_EXIT_DECLINED)
    /* fp_task_decline(): its task went back to the queue above. */
    fp__sup_log(sp, FP_LOG_WARN,
                "worker %d declined its task (the handler "
                "could not run it) and exited; the task is queued again",
                (int)d->pid);
  else
    fp__sup_log(sp, FP_LOG_WARN, "worker %d died while idle: %s", (int)d->pid,
                death_name(d->sig, d->code));
}

/*
 * The restart delay the crash-loop streak calls for: none before the
 * second death in a row, then growing, capped. Logs the loop once a burst.
 */
static uint64_t backoff_delay(struct fp__sup *sp) {
  if (sp->streak < 2) return 0;
  uint32_t e = sp->streak - 2 < 20 ? sp->streak - 2 : 20;
  uint64_t delay = BACKOFF_BASE_NS << e;
  if (delay > BACKOFF_MAX_NS) delay = BACKOFF_MAX_NS;
  if (!sp->backoff_logged) {
    fp__sup_log(sp, FP_LOG_WARN,
                "crash loop: workers keep dying without "
                "finishing a task; restarts back off up to %llu ms",
                BACKOFF_MAX_NS / FP__NS_PER_MS);
    sp->backoff_logged = 1;
  }
  return delay;
}

/* When to fork row d->r again: at once, or after the crash-loop backoff. */
static void plan_restart(struct fp__sup *sp, const struct death *d) {
  uint32_t r = d->r;
  struct fp__row *row = fp__row_at(sp->s, r);
  int clean = !d->had_task && WIFEXITED(d->ws) && d->code == 0;
  uint32_t rss_kb = clean ? atomic_load(&row->rss_exit_kb) : 0;
  if (rss_kb != 0)
    fp__sup_log(sp, FP_LOG_WARN,
                "worker %d recycled: resident set %u.%u MiB "
                "above the limit of %u MiB",
                (int)d->pid, rss_kb / 1024u, (rss_kb % 1024u) * 10u / 1024u,
                sp->cfg->max_rss_mb);
  if (clean) {
    sp->rc[r].spawn_at = d->now; /* recycled, retired or reloaded */
    return;
  }
  int reason = sp->rc[r].kill_reason;
  /* Our own kill: a cancel, a stop, or one aimed at a task (timeout). */
  int ours = d->sig == SIGKILL && reason != FP__KILL_NONE;
  log_idle_death(sp, d, reason, ours);
  /*
   * A crash loop is workers that die without finishing a task: a task
   * killed its worker (crash or timeout), or the worker died by itself
   * before its first one (init). A SIGKILL from outside to an idle or
   * starting worker is not the work's doing and does not count, nor is
   * our own kill for a cancel or a stop. Any task finished anywhere in the
   * pool ends the loop (fp__sup_note_progress() resets the streak).
   */
  int blameless = ours && (reason == FP__KILL_CANCEL ||
                           reason == FP__KILL_STOP || !d->had_task);
  if (atomic_load(&row->done) > 0) sp->streak = 0, sp->backoff_logged = 0;
  else if (!blameless && (d->had_task || d->sig != SIGKILL)) sp->streak++;
  uint64_t delay = backoff_delay(sp);
  sp->rc[r].spawn_at = d->now + delay;
  if (delay > 0) atomic_store(&row->state, FP__ROW_BACKOFF);
}

/* A worker in row r exited with wait status ws: settle its task, plan. */
void fp__sup_on_death(struct fp__sup *sp, uint32_t r, int ws) {
  struct fp__hdr *h = sp->s->hdr;
  struct death d = {.r = r, .pid = sp->rc[r].pid, .ws = ws};
  d.now = fp__now_ns();
  d.sig = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
  d.code = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  d.st = FP_CRASHED;

  fp__out_reap(sp, r); /* its last output, under the task it ran */
  /*
   * Its orphans became ours before it could be reaped: end them before its
   * task does, so that a crashed, timed-out or cancelled task's result
   * arrives with its processes gone, as an ok one's does (worker.c).
   */
  kill(-d.pid, SIGKILL); /* leftovers in its process group, if any */
  fp__sup_sweep_strays(sp, FP__SWEEP_TURN_NS);
  /* The worker is reaped: it can no longer touch its slot or row. */
  if (WIFSIGNALED(ws) && atomic_load(&h->state) < FP__POOL_STOPPING)
    fp__sup_verify(sp);
  settle_task(sp, &d);
  clear_row(sp, r);

  uint32_t pst = atomic_load(&h->state);
  if (pst == FP__POOL_STARTING && !sp->stopped) {
    died_starting(sp, &d);
    return;
  }
  if (pst >= FP__POOL_STOPPING) return;
  plan_restart(sp, &d);
}

/* Tasks finished in the whole pool (ok or failed). */
static uint64_t finished(struct fp__sup *sp) {
  uint64_t n = 0;
  for (uint32_t r = 0; r < sp->nrows; r++) {
    struct fp__row *row = fp__row_at(sp->s, r);
    n += atomic_load(&row->ok) + atomic_load(&row->failed);
  }
  return n;
}

void fp__sup_note_progress(struct fp__sup *sp) {
  uint64_t done = finished(sp);
  if (done != sp->last_finished) {
    sp->last_finished = done;
    sp->streak = 0; /* work gets done: no crash loop, whatever died */
    sp->backoff_logged = 0;
  }
}
