/*
 * The worker loop: take a READY task, run the handler on the slot's input,
 * write the result, mark the slot DONE and wake its producer.
 *
 * If this process is SIGKILLed between any two instructions:
 *   - while taking a task (no lock: queue.h): a claim not made changed
 *     nothing; one made (slot RUNNING under our row, row->slot naming it)
 *     is found by the supervisor after reaping us: it ends that task
 *     CRASHED (or retries it);
 *   - after storing DONE: the result stands; the task is not touched again.
 *
 * Ending a task: the time limit and the kill handshake.
 *
 * The supervisor kills a worker to end its task (timeout, fp_cancel), but
 * between its decision and the kill the worker may have finished that task
 * and taken the next: a late kill landed on an innocent task (issue 13.1).
 * Two rules keep a kill on the task it was meant for, at the cost of one
 * load per task (the seq_cst store of task_id = 0 was there already; no
 * system call):
 *
 *   1. A task that overran its limit never ends ok. When the handler
 *      returns at or after row->started_ns + timeout (the supervisor's own
 *      test, on the same CLOCK_MONOTONIC), the worker publishes nothing: it
 *      parks with task_id still set. The supervisor, which must see the same
 *      deadline pass, kills it as for any hung task, so the task ends
 *      FP_TIMEOUT with the usual counting, retries and report. (The hang
 *      report's signal cuts a handler's sleep short: without this rule such
 *      a task returned "ok" after its limit.)
 *
 *   2. A kill is aimed, Dekker-style, with two words of the row:
 *        supervisor:  doom = A;  then reads task_id
 *        worker:      task_id = 0 (after publishing A);  then reads doom
 *      (all seq_cst). If the supervisor reads task_id == A, the worker's
 *      store comes later in the single total order, so the worker's read of
 *      doom sees A: it parks before it can take another task, and the kill
 *      finds it in A or idle after A, never in a later task. If the
 *      supervisor reads anything else, A is over: it withdraws the doom
 *      (doom = 0, doom_gen + 1, futex wake for a worker that parked because
 *      both saw each other) and kills nothing. The supervisor sends the hang
 *      report's signal only once committed, and passes A in sigqueue's value;
 *      the dump handler ignores a dump meant for another task.
 *
 * A worker that finished A in time but publishes it after the supervisor's
 * deadline check is spared when the supervisor sees A committed (fin_task ==
 * A, stored before DONE: by rule 1 only an in-time result is committed): it
 * withdraws the doom, for up to 100 ms, after which a worker still stuck
 * publishing is killed and its committed result published by the reaper.
 * Only between its clock read and that commit store can a worker be doomed
 * for a task it finished in time: it parks after publishing and dies idle,
 * A keeps its result, and the death counts toward no crash loop. If the worker is SIGKILLed or SIGSTOPped between any two of
 * these stores: task_id still A means A is still the task a kill ends (the
 * supervisor's usual reaping settles it, committed or not); task_id 0 means
 * the supervisor withdraws its doom and kills nothing, and a stopped idle
 * worker holds no task.
 */
#include <signal.h>
#include <string.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "proc.h"
#include "room.h"
#include "queue.h"
#include "report.h"
#include "spin.h"
#include "sum.h"

/* A worker that could not end a task's descendants exits after it. */
static int must_exit;

/* When the current task started, in our own memory (see run_task). */
static uint64_t task_t0;
/*
 * When the last task ended, if the worker went straight on from there (no
 * system call that may block came after): the next task's start, read
 * without a clock call. A clock read costs 85 ns on the 2-vCPU VM this was
 * measured on (bench: 10% of a worker's time at 16-byte tasks); the start
 * is then early by the take itself (about 100 ns), which only makes a
 * timeout fire that much sooner. 0: read the clock.
 */
static uint64_t went_on_ns;
struct take_ctx {
  struct fp__seg *s;
  struct fp__row *row;
};

static int ready_or_stopping(void *arg) {
  struct take_ctx *c = arg;
  return fp__q_any(c->s) ||
         atomic_load(&c->s->hdr->state) >= FP__POOL_DRAINING ||
         atomic_load(&c->row->retire);
}

/* Our place in the round of the rings (queue.h). */
static struct fp__taker taker;

/*
 * Claim the oldest READY task for row `r`, without a lock (queue.c). Returns
 * its slot index, or NONE when the pool is draining with nothing queued,
 * stopping, the row is retired, or the supervisor is gone: the worker
 * should then exit.
 */
static uint32_t take(struct fp__seg *s, uint32_t r, pid_t self, pid_t sup) {
  struct fp__hdr *h = s->hdr;
  struct fp__row *row = fp__row_at(s, r);
  struct take_ctx ctx = {s, row};
  for (;;) {
    uint32_t st = atomic_load(&h->state);
    /* Retired (reload, shrink): exit between tasks, never inside one. */
    if (st >= FP__POOL_STOPPING || atomic_load(&row->retire)) return FP__NONE;
    /*
     * The claim names our row in the slot's state word, and row->slot
     * names the slot before it: killed at any point after, the supervisor
     * finds the task RUNNING under our row and settles it.
     */
    uint32_t i = fp__q_take(s, &taker, r, &row->slot);
    uint64_t then = went_on_ns;
    went_on_ns = 0;
    if (i != FP__NONE) {
      struct fp__slot *sl = fp__slot_at(s, i);
      sl->row = r;
      atomic_store_explicit(&sl->worker, self, memory_order_release);
      /*
       * Dying before task_id is set leaves task_id naming no task of ours:
       * the handler never began, and the supervisor puts the RUNNING slot
       * back in the queue (not a run, not a retry); the stale snapshots
       * are never read (they matter only once task_id names this task; see
       * struct fp__row). started_ns goes before task_id for the timeout
       * check's seqlock.
       */
      uint64_t now = then != 0 ? then : fp__now_ns();
      task_t0 = now;
      sl->started_ns = now;
      atomic_store(&row->ok_snap, atomic_load(&row->ok));
      atomic_store(&row->failed_snap, atomic_load(&row->failed));
      atomic_store(&row->started_ns, now);
      atomic_store(&row->task_id, atomic_load(&sl->id));
      atomic_store(&row->state, FP__ROW_BUSY);
      /* More waiting: maybe another worker should help (cascade). */
      fp__wake_kick(s);
      return i;
    }
    atomic_store(&row->slot, FP__NONE);
    if (st >= FP__POOL_DRAINING) return FP__NONE;
    /* Idle and awake: producers count on us before they wake a sleeper. */
    fp__pset(&h->w_idle, r);
    uint32_t idle = fp__pcount(&h->w_idle, s->nrows);
    /*
     * Spin only while a core is free for it: busy workers plus one
     * producer already fill the others, and spinning then steals the CPU
     * the work needs.
     */
    uint32_t alive = atomic_load(&h->workers_alive);
    uint32_t asleep = fp__pcount(&h->w_asleep, s->nrows);
    uint32_t busy = alive > asleep + idle ? alive - asleep - idle : 0;
    int hit = busy + 1 < h->ncpu &&
              fp__spin(h, &h->w_spin, r, s->nrows, ready_or_stopping, &ctx);
    fp__pclr(&h->w_idle, r);
    if (hit) continue;
    fp__wake_sleep(&h->q.work_hint, &h->w_asleep, r, 1000000000u,
                   ready_or_stopping, &ctx);
    /* PR_SET_PDEATHSIG covers this; the check covers a lost race. */
    if (getppid() != sup) return FP__NONE;
  }
}

/*
 * The one place the handler is called from (both call paths below), so
 * that a crash or hang report can end its backtrace at this frame: below
 * it are forkpool and the host (report.c). noinline keeps the frame and
 * noclone one copy of it (the probe must return into the same code as the
 * tasks); the empty asm after the call keeps it from being a tail call (a
 * jump would leave no frame of ours on the stack). Returns the handler's
 * value.
 */
#if defined(__has_attribute)
#if __has_attribute(noclone)
#define FP__NOCLONE __attribute__((noclone))
#endif
#endif
#ifndef FP__NOCLONE
#define FP__NOCLONE
#endif
__attribute__((noinline)) FP__NOCLONE static int call_handler(
    const fp_config *cfg, const void *in, size_t in_len, void *out,
    size_t out_cap, size_t *out_len) {
  int rc = cfg->handler(cfg->arg, in, in_len, out, out_cap, out_len);
  __asm__ __volatile__("" : "+r"(rc) : : "memory");
  return rc;
}

/*
 * A handler that tells call_handler's return address: the pc a backtrace
 * shows for call_handler's frame. Called once per worker, through
 * call_handler, before any task.
 */
static const void *call_ret;
__attribute__((noinline)) static int probe_handler(void *arg, const void *in,
                                                   size_t in_len, void *out,
                                                   size_t out_cap,
                                                   size_t *out_len) {
  (void)arg, (void)in, (void)in_len, (void)out, (void)out_cap;
  *out_len = 0;
  call_ret = __builtin_return_address(0);
  return 0;
}

/*
 * Seal mode: the segment (with its guard pages) is PROT_NONE while user
 * code runs; the handler works on private copies.
 */
static unsigned char *seal_in, *seal_out;

static int call_sealed(const struct fp__seg *s, const fp_config *cfg,
                       struct fp__slot *sl, uint32_t in_len, size_t *out_len) {
  memcpy(seal_in, fp__slot_in(sl), in_len);
  unsigned char *out = fp__slot_out(s, sl);
  fp__seal(s, 1);
  int rc = call_handler(cfg, seal_in, in_len, seal_out, s->max_output, out_len);
  /* clang-format off */
  fp__room_after_user_code(); /* a child must not unseal (its mprotect would fail
                        anyway: it has no mapping) */
  /* clang-format on */
  fp__seal(s, 0);
  if (*out_len <= s->max_output) memcpy(out, seal_out, *out_len);
  return rc;
}

/*
 * Park this worker for good or until the supervisor withdraws its doom on
 * task `id` (see "Ending a task" above). late != 0: the task overran, the
 * worker waits for the kill and never returns. late == 0: returns once doom
 * no longer names `id`. Exits (status 1) when the supervisor is gone. Wakes
 * every second at least: a futex wake lost to a race costs that, no more.
 */
static void park(struct fp__row *row, uint64_t id, int late, pid_t sup) {
  for (;;) {
    uint32_t g = atomic_load(&row->doom_gen);
    if (!late && atomic_load(&row->doom) != id) return;
    (void)fp__futex_wait(&row->doom_gen, g, 1000000000u); /* EINTR: loop */
    if (getppid() != sup) _exit(1);
  }
}

/*
 * Run the handler on slot i and publish the result; or, when it returned
 * past the time limit, park until the supervisor kills us (rule 1 above).
 * sup: the supervisor's pid, for parking.
 */
static void run_task(struct fp__seg *s, uint32_t r, uint32_t i,
                     const fp_config *cfg, pid_t sup) {
  struct fp__hdr *h = s->hdr;
  struct fp__slot *sl = fp__slot_at(s, i);
  struct fp__row *row = fp__row_at(s, r);
  size_t out_len = 0, spawn_len = 0;
  const unsigned char *spawn_buf = NULL;
  int rc;
  uint32_t in_len = sl->in_len;
  uint64_t id = atomic_load(&sl->id);
  int damaged =
      in_len > s->max_input || fp__in_sum(sl, id, in_len) != sl->in_sum;
  if (damaged) {
    rc = 0; /* a damaged input never reaches the handler */
    atomic_fetch_add(&h->c.corrupt, 1);
  } else {
    fp__spawn_begin(s->max_input);
    rc = seal_in != NULL
             ? call_sealed(s, cfg, sl, in_len, &out_len)
             : call_handler(cfg, fp__slot_in(sl), in_len, fp__slot_out(s, sl),
                            s->max_output, &out_len);
    if (seal_in == NULL) fp__room_after_user_code();
    spawn_len = fp__spawn_end(&spawn_buf);
  }
  uint64_t end = fp__now_ns();
  /* Rule 1: past the limit, nothing is published; the timeout kill ends it. */
  uint64_t t0 = atomic_load(&row->started_ns);
  uint64_t limit = (uint64_t)cfg->timeout_ms * 1000000u;
  if (limit != 0 && end >= t0 + limit) {
    fp__report_late(id, end - t0, cfg->timeout_ms);
    park(row, id, 1, sup);
  }
  /* Before the result is published: it arrives with its processes gone. */
  /* task_t0, not the slot's copy, which a stray write could change. */
  int quick = end - task_t0 < FP__MIN_SPAWN_NS && !fp__room_has_init_kids();
  if (fp__room_end_descendants(end - task_t0) < 0) must_exit = 1;
  /*
   * Moving average (1/8) of run time, for the wake-up policy (wake.h): a
   * line every worker writes, so only every 8th task of a row does.
   */
  uint64_t row_done = atomic_load_explicit(&row->done, memory_order_relaxed);
  if ((row_done & 7) == 0) {
    int64_t avg = atomic_load_explicit(&h->avg_task_ns, memory_order_relaxed);
    int64_t d = (int64_t)(end - task_t0);
    if (d > UINT32_MAX) d = UINT32_MAX;
    atomic_store_explicit(&h->avg_task_ns, (uint32_t)(avg + (d - avg) / 8),
                          memory_order_relaxed);
  }
  if (damaged) {
    sl->status = FP_CORRUPT;
    sl->code = EBADMSG;
    out_len = 0;
  } else if (rc < 0 || out_len > s->max_output) {
    sl->status = FP_FAILED;
    sl->code = EPROTO; /* handler broke its contract */
    out_len = out_len > s->max_output ? 0 : out_len;
  } else {
    sl->status = rc == 0 ? FP_OK : FP_FAILED;
    sl->code = rc;
  }
  sl->spawn_len = 0;
  if (!damaged && spawn_len > 0) {
    if (out_len + spawn_len <= s->max_output) {
      memcpy(fp__slot_out(s, sl) + out_len, spawn_buf, spawn_len);
      sl->spawn_len = (uint32_t)spawn_len;
    } else {
      /* Output and spawned tasks must fit in max_output together. */
      sl->status = FP_FAILED;
      sl->code = ENOSPC;
    }
  }
  sl->sig = 0;
  sl->exit_code = -1;
  sl->out_len = (uint32_t)out_len;
  sl->run_us = (end - sl->started_ns) / 1000u;
  fp__row_duration(row, sl->run_us);
  sl->res_sum = fp__res_sum(s, sl, id);
  sl->attempts++; /* this run (struct fp__slot), before the commit */
  uint32_t owner = sl->owner;
  int ok = sl->status == FP_OK;
  /* Commit (see struct fp__row), publish, count: three single stores. */
  atomic_store(&row->fin_status, (uint32_t)sl->status);
  atomic_store(&row->fin_task, atomic_load(&row->task_id));
  /* Release: the producer that sees DONE sees every field above. */
  fp__slot_set(sl, FP__SLOT_DONE);
  if (ok) atomic_store(&row->ok, atomic_load(&row->ok_snap) + 1);
  else atomic_store(&row->failed, atomic_load(&row->failed_snap) + 1);
  atomic_store(&row->task_id, 0);
  atomic_store(&row->slot, FP__NONE);
  atomic_store(&row->state, FP__ROW_IDLE);
  /* Single writer (this worker; the supervisor only once it is reaped). */
  atomic_store_explicit(&row->done, row_done + 1, memory_order_relaxed);
  atomic_store_explicit(
      &row->total_done,
      atomic_load_explicit(&row->total_done, memory_order_relaxed) + 1,
      memory_order_relaxed);
  fp__wake_owner(s, owner);
  if (quick) went_on_ns = end;
  /* Rule 2: task_id = 0 above was seq_cst; a doom on this task parks us. */
  if (FP__NEVER(atomic_load(&row->doom) == id)) park(row, id, 0, sup);
}

void fp__worker_main(struct fp__seg *s, uint32_t r, const fp_config *cfg,
                     pid_t sup, const int *fds, int nfds) {
  /* Die with the supervisor; then make sure it did not die already. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != sup) _exit(1);
  /* Own process group, so a timeout kill takes the task's children too. */
  setpgid(0, 0);
  /*
   * Orphaned descendants of a task become ours, whatever group or session
   * they moved to, so fp__room_end_descendants() finds them. Fails only before
   * Linux 3.4: then only our direct children are ended.
   */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  for (int k = 0; k < nfds; k++)
    if (fds[k] >= 0) close(fds[k]);
  struct fp__row *row = fp__row_at(s, r);
  fp__task_api_init(row);
  /* The sealed room (room.c). */
  if (fp__room_enter(s) < 0) {
    atomic_store(&row->init_error, ENOMEM);
    _exit(FP__EXIT_INIT);
  }
  /* Crash and hang reports; a worker without them still works. */
  fp__report_arm(s, r);
  fp_config probe;
  memset(&probe, 0, sizeof(probe));
  probe.handler = probe_handler;
  size_t probe_len;
  call_handler(&probe, NULL, 0, NULL, 0, &probe_len);
  fp__report_cut_at(call_ret);

  pid_t self = getpid();
  if (cfg->flags & FP_CONFIG_SEAL) {
    seal_in = malloc(s->max_input ? s->max_input : 1);
    seal_out = malloc(s->max_output);
    if (seal_in == NULL || seal_out == NULL) _exit(FP__EXIT_INIT);
  }
  int lerr = fp__room_limit_memory(cfg->max_memory_mb);
  if (lerr < 0) {
    atomic_store(&row->init_error, (uint32_t)-lerr);
    _exit(FP__EXIT_INIT);
  }
  if (cfg->worker_init != NULL) {
    int rc = cfg->worker_init(cfg->arg);
    if (rc != 0) {
      atomic_store(&row->init_error, rc > 0 ? (uint32_t)rc : EPROTO);
      _exit(FP__EXIT_INIT);
    }
  }
  /* Tails seen per ring (queue.h); without the memory, read afresh. */
  taker.tails = calloc(fp__nrings(s->nclients), sizeof(uint64_t));
  /* The hook's children live on; a task's do not (end_descendants). */
  fp__room_note_init_kids();
  atomic_store(&row->state, FP__ROW_IDLE);

  uint64_t done = 0;
  while (cfg->max_tasks == 0 || done < cfg->max_tasks) {
    uint32_t i = take(s, r, self, sup);
    if (i == FP__NONE) break;
    run_task(s, r, i, cfg, sup);
    done++;
    if (must_exit) break; /* the supervisor ends what we could not */
    /* Recycle between tasks: the supervisor logs it and forks anew. */
    uint32_t kb = cfg->max_rss_mb ? fp__room_rss_over(cfg->max_rss_mb) : 0;
    if (kb != 0) {
      atomic_store(&row->rss_exit_kb, kb);
      break;
    }
  }
  if (cfg->worker_fini != NULL) cfg->worker_fini(cfg->arg);
  _exit(0);
}
