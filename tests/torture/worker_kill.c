/*
 * worker-kill: trivial tasks flow through a private pool of 4 workers while
 * a killer thread SIGKILLs random workers at random instants (0..300 us
 * apart), until at least 200000 tasks went through and 4000 kills were
 * made. The handler takes microseconds, so most kills land outside it: in
 * take, publish, the queue lock, spinning or sleeping. Every task must get
 * exactly one result (ok with the right output, or crashed by SIGKILL),
 * results must keep flowing (no gap of a second), the pool's counters must
 * match our own tally, and an idle pool must answer as fast after the storm
 * as before it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "torture.h"

#define TASKS 200000u       /* at least this many... */
#define KILLS 4000u         /* ...and until this many kills were made */
#define MAX_TASKS 20000000u /* bounds the run (and the bitmap: 20 MB) */
#define MAX_RUN_MS 20000u
#define WORKERS 4u
#define SLOTS 64u
#define WINDOW SLOTS /* in flight: the whole queue, so EAGAIN means a leak */
#define KILL_GAP_US 300u
#define HANG_MS 5000u /* no progress this long: report a hang, exit */
#define PROBES 20u    /* idle round trips before and after the storm */
#define PROBE_LIMIT_MS 100u

static uint64_t expect_of(uint64_t seq) {
  return seq * UINT64_C(0x9e3779b97f4a7c15) ^ UINT64_C(0x5bd1e995);
}

/* Input: the task's 8-byte sequence number; output: it and expect_of(it). */
static int echo(void *arg, const void *in, size_t in_len, void *out,
                size_t out_cap, size_t *out_len) {
  (void)arg;
  uint64_t v[2];
  if (in_len != sizeof(v[0]) || out_cap < sizeof(v)) return EINVAL;
  memcpy(&v[0], in, sizeof(v[0]));
  v[1] = expect_of(v[0]);
  memcpy(out, v, sizeof(v));
  *out_len = sizeof(v);
  return 0;
}

/* Everything the producer tallies; the watchdog prints it on a hang. */
static struct {
  fp_pool *pool;
  pid_t sup;
  _Atomic int stop; /* the killer */
  _Atomic int done; /* the watchdog */
  _Atomic unsigned kills;
  unsigned kills_starting, kills_idle, kills_busy; /* row state seen */
  _Atomic uint64_t progress_ns;                    /* last call that returned */
  _Atomic int in_call; /* 0, or what the producer is inside */
  uint64_t sent, results, ok, crashed, dup, wrong, eagain, max_stall_ms;
} run;

static const char *call_names[] = {"nothing", "fp_submit(FP_NOWAIT)",
                                   "fp_collect(250 ms)", "an idle probe"};

static void *killer_main(void *arg) {
  uint64_t rng = tt_seed ^ UINT64_C(0x1234567);
  /* A SIGKILLed worker may run on (and keep its row) for a while before
   * it dies: never count one twice. */
  static pid_t recent[1024];
  unsigned kills = 0;
  (void)arg;
  while (!atomic_load(&run.stop) && kills < KILLS) {
    tt_sleep_us(tt_rand_below(&rng, KILL_GAP_US + 1));
    fp_worker_info wi;
    unsigned row = (unsigned)tt_rand_below(&rng, WORKERS);
    if (fp_pool_worker(run.pool, row, &wi) != 0 || wi.pid <= 0) continue;
    int seen = 0;
    for (int j = 0; j < 1024; j++) seen |= recent[j] == wi.pid;
    if (seen) continue;
    if (tt_kill_child_of(wi.pid, run.sup, SIGKILL) == 0) {
      if (wi.state == FP_WORKER_STARTING) run.kills_starting++;
      else if (wi.state == FP_WORKER_BUSY) run.kills_busy++;
      else run.kills_idle++;
      recent[kills++ % 1024] = wi.pid;
      atomic_store(&run.kills, kills);
    }
  }
  return NULL;
}

/* A call that never returns is a hang: say where, print the figures and
 * end the scenario (main.c cleans up what is left). */
static void *watchdog_main(void *arg) {
  (void)arg;
  while (!atomic_load(&run.done)) {
    tt_sleep_us(100000);
    uint64_t t = atomic_load(&run.progress_ns);
    if (tt_ms_since(t) < HANG_MS) continue;
    tt_fail("the producer is stuck in %s for %u ms (hang)",
            call_names[atomic_load(&run.in_call)], HANG_MS);
    tt_summary("tasks=%llu kills=%u ok=%llu crashed=%llu lost=? "
               "max_stall_ms=%llu+ (hung)",
               (unsigned long long)run.sent, atomic_load(&run.kills),
               (unsigned long long)run.ok, (unsigned long long)run.crashed,
               (unsigned long long)tt_ms_since(t));
    fflush(NULL);
    _exit(1);
  }
  return NULL;
}

/* In flight: id -> sequence number (crashed results carry no output). */
static struct tt_flight fl;

/*
 * An idle pool's latency: with every worker asleep, submit one task at a
 * time, each after a pause; the slowest round trip in ms, or UINT64_MAX
 * when a task did not end ok. Workers killed while counted as asleep,
 * spinning or idle must not leave the wake-up policy believing in workers
 * that are gone: a task would then wait for a sleeper's timeout.
 */
static uint64_t idle_latency_ms(fp_pool *p) {
  uint64_t worst = 0;
  fp_result res;
  fp_result_init(&res);
  atomic_store(&run.in_call, 3);
  tt_sleep_us(1200000);
  for (uint64_t k = 0; k < PROBES; k++) {
    atomic_store(&run.progress_ns, tt_now_ns());
    tt_sleep_us(30000);
    uint64_t id, t0 = tt_now_ns();
    if (fp_submit(p, &k, sizeof(k), 1000, &id) != 0 ||
        fp_wait(p, id, &res, 3000) != 0 || res.status != FP_OK) {
      worst = UINT64_MAX;
      break;
    }
    run.ok++;
    run.sent++;
    uint64_t us = (tt_now_ns() - t0) / 1000u;
    if (us > worst) worst = us;
    if (worst >= PROBE_LIMIT_MS * 1000u) break; /* slow: one is enough */
  }
  fp_result_release(&res);
  atomic_store(&run.in_call, 0);
  atomic_store(&run.progress_ns, tt_now_ns());
  return worst == UINT64_MAX ? worst : worst / 1000u;
}

/* Collect one result and check it against what we sent. 0, or -errno. */
static int collect_one(fp_pool *p, fp_result *res, uint8_t *seen) {
  atomic_store(&run.in_call, 2);
  int r = fp_collect(p, res, 250);
  atomic_store(&run.in_call, 0);
  if (r == -ETIMEDOUT)
    tt_debug_pool(p, "no result for %llu ms",
                  (unsigned long long)tt_ms_since(run.progress_ns));
  if (r != 0) return r;
  uint64_t now = tt_now_ns();
  uint64_t gap = tt_ms_since(atomic_load(&run.progress_ns));
  if (gap > run.max_stall_ms) run.max_stall_ms = gap;
  atomic_store(&run.progress_ns, now);
  run.results++;
  uint64_t seq;
  if (!tt_flight_take(&fl, res->id, &seq)) {
    run.dup++; /* an id not in flight: delivered twice, or never ours */
    return 0;
  }
  if (seen[seq]++) run.dup++;
  if (res->status == FP_OK) {
    uint64_t v[2] = {0, 0};
    if (res->output_len == sizeof(v)) memcpy(v, res->output, sizeof(v));
    if (v[0] != seq || v[1] != expect_of(seq)) run.wrong++;
    run.ok++;
  } else if (res->status == FP_CRASHED && res->signal == SIGKILL) {
    run.crashed++;
  } else {
    run.wrong++;
    tt_fail("task %llu ended %s (code %d, signal %d, exit %d)",
            (unsigned long long)seq, fp_status_name(res->status), res->code,
            res->signal, res->exit_code);
  }
  return 0;
}

/* The storm: keep WINDOW tasks in flight until enough went through. */
static void storm(fp_pool *p, uint8_t *seen) {
  fp_result res;
  fp_result_init(&res);
  uint64_t t0 = tt_now_ns();
  uint64_t base = run.sent; /* probe tasks came first */
  int more = 1;
  while (fl.n > 0 || more) {
    uint64_t n = run.sent - base;
    if (more && ((n >= TASKS && atomic_load(&run.kills) >= KILLS) ||
                 n >= MAX_TASKS || tt_ms_since(t0) > MAX_RUN_MS))
      more = 0;
    while (more && fl.n < WINDOW) {
      uint64_t id, seq = run.sent - base;
      atomic_store(&run.in_call, 1);
      int r = fp_submit(p, &seq, sizeof(seq), FP_NOWAIT, &id);
      if (r == -EAGAIN) {
        /*
         * FP_NOWAIT only tries the queue lock: a worker killed inside it,
         * or a preempted holder, is -EAGAIN too. A timed submit tells
         * that from a leak.
         */
        r = fp_submit(p, &seq, sizeof(seq), 1000, &id);
        if (r == -ETIMEDOUT) r = -EAGAIN;
      }
      atomic_store(&run.in_call, 0);
      if (r == -EAGAIN) {
        run.eagain++; /* fewer than SLOTS are ours: a slot leaked */
        break;
      }
      if (r != 0) {
        tt_fail("fp_submit of task %llu: %s", (unsigned long long)seq,
                fp_strerror(r));
        more = 0;
        break;
      }
      tt_flight_put(&fl, id, seq);
      run.sent++;
    }
    int r = collect_one(p, &res, seen);
    if (r != 0 && r != -ETIMEDOUT) {
      tt_fail("fp_collect: %s", fp_strerror(r));
      break;
    }
  }
  fp_result_release(&res);
}

int tt_worker_kill(void) {
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = WORKERS;
  cfg.slots = SLOTS;
  cfg.max_input = 16;
  cfg.max_output = 256;
  cfg.handler = echo;
  fp_pool *p;
  int r = fp_pool_start(&p, &cfg); /* before our threads exist */
  uint8_t *seen = calloc(MAX_TASKS, 1);
  if (r != 0 || seen == NULL) {
    tt_fail("fp_pool_start: %s", fp_strerror(r));
    return tt_summary("tasks=0");
  }
  fp_stats st;
  fp_pool_stats(p, &st);
  run.pool = p;
  run.sup = st.supervisor;
  atomic_store(&run.progress_ns, tt_now_ns());
  pthread_t killer, watchdog;
  pthread_create(&watchdog, NULL, watchdog_main, NULL);
  uint64_t lat_before = idle_latency_ms(p);
  uint64_t storm_base = run.sent;
  pthread_create(&killer, NULL, killer_main, NULL);
  uint64_t t0 = tt_now_ns();
  storm(p, seen);
  double secs = (double)(tt_now_ns() - t0) / 1e9;
  uint64_t tasks = run.sent - storm_base;
  atomic_store(&run.stop, 1);
  pthread_join(killer, NULL);
  for (int k = 0; k < 300; k++) { /* respawns: up to 1 s of backoff */
    if (fp_pool_stats(p, &st) == 0 && st.alive == WORKERS) break;
    tt_sleep_us(10000);
  }
  uint64_t lat_after = idle_latency_ms(p);
  atomic_store(&run.done, 1);
  pthread_join(watchdog, NULL);
  fp_pool_stop(p, FP_STOP_DRAIN, 5000);
  fp_pool_stats(p, &st);

  uint64_t lost = 0;
  for (uint64_t s = 0; s < tasks; s++) lost += seen[s] == 0;
  unsigned kills = atomic_load(&run.kills);
  TT_CHECK(tasks >= TASKS && kills >= KILLS,
           "%llu tasks, %u kills in "
           "%u ms",
           (unsigned long long)tasks, kills, MAX_RUN_MS);
  TT_CHECK(lost + run.dup + run.wrong == 0,
           "%llu task(s) without a result, "
           "%llu duplicate or unknown, %llu wrong output or status",
           (unsigned long long)lost, (unsigned long long)run.dup,
           (unsigned long long)run.wrong);
  TT_CHECK(run.max_stall_ms < 1000, "results stalled for %llu ms",
           (unsigned long long)run.max_stall_ms);
  TT_CHECK(run.eagain == 0,
           "fp_submit said the queue was full %llu time(s) while fewer than "
           "%u tasks were ours",
           (unsigned long long)run.eagain, SLOTS);
  TT_CHECK(run.crashed <= kills, "%llu crashed results from %u kills",
           (unsigned long long)run.crashed, kills);
  TT_CHECK(lat_before < PROBE_LIMIT_MS && lat_after < PROBE_LIMIT_MS,
           "idle round trip: %llu ms before the storm, %llu ms after "
           "(limit %u)",
           (unsigned long long)lat_before, (unsigned long long)lat_after,
           PROBE_LIMIT_MS);
  TT_CHECK(st.submitted == run.sent, "stats.submitted %llu, we sent %llu",
           (unsigned long long)st.submitted, (unsigned long long)run.sent);
  TT_CHECK(st.ok == run.ok && st.crashed == run.crashed,
           "stats: ok %llu "
           "crashed %llu; we got %llu and %llu",
           (unsigned long long)st.ok, (unsigned long long)st.crashed,
           (unsigned long long)run.ok, (unsigned long long)run.crashed);
  TT_CHECK(st.failed + st.timeout + st.cancelled + st.corrupt + st.retried +
                   st.quarantined ==
               0,
           "stats: failed %llu timeout %llu cancelled %llu corrupt %llu "
           "retried %llu quarantined %llu, expected none",
           (unsigned long long)st.failed, (unsigned long long)st.timeout,
           (unsigned long long)st.cancelled, (unsigned long long)st.corrupt,
           (unsigned long long)st.retried, (unsigned long long)st.quarantined);
  /* Every kill costs one restart; no worker may die otherwise. */
  TT_CHECK(st.restarts == kills, "stats.restarts %llu for %u kills",
           (unsigned long long)st.restarts, kills);
  fp_pool_free(p);
  free(seen);
  return tt_summary(
      "tasks=%llu kills=%u (starting=%u idle=%u busy=%u) ok=%llu "
      "crashed=%llu lost=%llu duplicated=%llu max_stall_ms=%llu repairs=%llu "
      "restarts=%llu idle_rtt_ms=%llu/%llu storm_s=%.1f",
      (unsigned long long)tasks, kills, run.kills_starting, run.kills_idle,
      run.kills_busy, (unsigned long long)run.ok,
      (unsigned long long)run.crashed, (unsigned long long)lost,
      (unsigned long long)run.dup, (unsigned long long)run.max_stall_ms,
      (unsigned long long)st.repairs, (unsigned long long)st.restarts,
      (unsigned long long)lat_before, (unsigned long long)lat_after, secs);
}
