/*
 * fastpath-kill: the submit/take/publish/collect fast path at full speed
 * under SIGKILL (issue 14). A named pool (2 workers, 512 slots) in a forked
 * server; 3 producer processes attach and submit 8-byte tasks with
 * FP_NOWAIT until their share of the slots is full (a deep window: up to
 * 128 each), then collect, in a loop. The scenario process is the killer:
 * every 0..KILL_GAP_US it SIGKILLs one random process of its own, a
 * producer (its child) or a worker (the server's child, checked through a
 * pidfd), and forks a new producer in place of a killed one, until at
 * least TORTURE_FASTPATH_TASKS results (default 1000000) were checked and
 * TORTURE_FASTPATH_KILLS kills (default 5000) made.
 *
 * Each producer generation g numbers its tasks (g << 32) | n; the handler
 * echoes the number and a hash of it, so a result that is not the one the
 * producer sent under that id, or that comes twice, or that belongs to
 * another producer, is caught. At the end the producers alive stop, collect
 * all they have in flight and must have lost none. Then a fresh producer
 * must get its whole share back within 3 s, and the counters must add up:
 * submitted == ok + crashed (nothing failed, timed out or was cancelled),
 * restarts == worker kills, and abandoned == what the dead producers never
 * collected (up to one result each that was delivered as it died).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "torture.h"

#define TASKS 1000000u /* results checked, at least... */
#define KILLS 5000u    /* ...and kills made, at least (both: TORTURE_*) */
#define WORKERS 2u
#define NPROD 3
#define SLOTS 512u
/* clang-format off */
#define MAX_GEN 16384u     /* producer records; then only workers are killed */
#define KILL_GAP_US 1500u  /* between kills: uniform in 0..this */
#define MAX_RUN_MS 60000u  /* bounds the storm at the default sizes (the
                              guard is 120 s); scaled up with them */
#define HANG_MS 5000u      /* a live producer without progress this long */
/* clang-format on */
#define STALL_LIMIT_MS 2000u
#define REFILL_MS 3000u
#define PROD_AS_BYTES (512ull << 20) /* RLIMIT_AS of a producer */

/* Written by each producer generation for the killer. */
struct fk_rec {
  _Atomic uint64_t submitted;   /* fp_submit returned 0 */
  _Atomic uint64_t collected;   /* results checked, counted after the check */
  _Atomic uint64_t crashed;     /* of collected: FP_CRASHED by SIGKILL */
  _Atomic uint64_t bad;         /* unknown id, wrong output or status */
  _Atomic uint64_t lost;        /* at the end: in flight, never delivered */
  _Atomic uint64_t progress_ns; /* last submit accepted or result taken */
  _Atomic uint32_t max_gap_ms;  /* longest time without progress */
  _Atomic int err;              /* an unexpected return (negative errno) */
  _Atomic int phase;            /* see phase_names */
  _Atomic int done;             /* 1: drained and detached cleanly */
};
static const char *phase_names[] = {"start",   "open",  "submit",
                                    "collect", "other", "drain"};
#define NPHASE 6

struct fk_shared {
  _Atomic int stop; /* producers: stop submitting, drain, exit */
  struct fk_rec rec[MAX_GEN];
};
static struct fk_shared *sh;
static unsigned prod_alarm_s; /* the storm's limit plus a minute */

/* Input: the task's 8-byte number; output: it and tt_expect_of(it). */
static int fk_echo(void *arg, const void *in, size_t in_len, void *out,
                   size_t out_cap, size_t *out_len) {
  (void)arg;
  uint64_t v[2];
  if (in_len != sizeof(v[0]) || out_cap < sizeof(v)) return EINVAL;
  memcpy(&v[0], in, sizeof(v[0]));
  v[1] = tt_expect_of(v[0]);
  memcpy(out, v, sizeof(v));
  *out_len = sizeof(v);
  return 0;
}

static void progress(struct fk_rec *me, uint64_t *last) {
  uint64_t now = tt_now_ns();
  uint64_t gap = (now - *last) / 1000000u;
  if (gap > atomic_load_explicit(&me->max_gap_ms, memory_order_relaxed))
    atomic_store(&me->max_gap_ms, (uint32_t)gap);
  *last = now;
  atomic_store_explicit(&me->progress_ns, now, memory_order_relaxed);
}

/* Check one result against what we sent; counts it. */
static void take_result(struct fk_rec *me, const fp_result *res) {
  uint64_t seq;
  if (!tt_fl_take(res->id, &seq)) {
    atomic_fetch_add(&me->bad, 1); /* twice, or never ours */
    return;
  }
  if (res->status == FP_OK) {
    uint64_t v[2] = {0, 0};
    if (res->output_len == sizeof(v)) memcpy(v, res->output, sizeof(v));
    if (v[0] != seq || v[1] != tt_expect_of(seq)) atomic_fetch_add(&me->bad, 1);
  } else if (res->status == FP_CRASHED && res->signal == SIGKILL) {
    atomic_fetch_add(&me->crashed, 1);
  } else {
    atomic_fetch_add(&me->bad, 1);
  }
  atomic_fetch_add(&me->collected, 1);
}

/* A producer generation: attach, then fill the window and collect until
 * told to stop (or killed); then drain and exit 0. */
__attribute__((noreturn)) static void producer(const char *name, unsigned gen) {
  struct fk_rec *me = &sh->rec[gen];
  alarm(prod_alarm_s); /* bounds a leaked producer */
  struct rlimit rl = {PROD_AS_BYTES, PROD_AS_BYTES};
  setrlimit(RLIMIT_AS, &rl);
  uint64_t last = tt_now_ns();
  atomic_store(&me->progress_ns, last);
  atomic_store(&me->phase, 1);
  fp_pool *q;
  int r = fp_pool_open(&q, name, 0);
  if (r != 0) {
    atomic_store(&me->err, r);
    _exit(3);
  }
  progress(me, &last);
  fp_result res;
  fp_result_init(&res);
  uint64_t seq = (uint64_t)gen << 32;
  while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
    /* FP_NOWAIT until the share (or the queue) is full. */
    while (tt_fl_count() < SLOTS) {
      uint64_t id;
      atomic_store_explicit(&me->phase, 2, memory_order_relaxed);
      r = fp_submit(q, &seq, sizeof(seq), FP_NOWAIT, &id);
      atomic_store_explicit(&me->phase, 4, memory_order_relaxed);
      if (r == -EAGAIN) break;
      if (r != 0) {
        atomic_store(&me->err, r);
        _exit(4);
      }
      tt_fl_put(id, seq++);
      atomic_fetch_add_explicit(&me->submitted, 1, memory_order_relaxed);
      progress(me, &last);
    }
    if (tt_fl_count() == 0) {
      /* No slot to be had and none of ours in flight: the slots dead
       * producers held come back at the supervisor's next reclaim. */
      tt_sleep_us(200);
      continue;
    }
    atomic_store_explicit(&me->phase, 3, memory_order_relaxed);
    r = fp_collect(q, &res, 250);
    atomic_store_explicit(&me->phase, 4, memory_order_relaxed);
    if (r == -ETIMEDOUT) continue;
    if (r != 0) {
      atomic_store(&me->err, r);
      _exit(5);
    }
    take_result(me, &res);
    progress(me, &last);
  }
  /* Stop: every task still in flight must come back, once. */
  atomic_store(&me->phase, 5);
  while (fp_pending(q) > 0) {
    r = fp_collect(q, &res, 5000);
    if (r != 0) {
      atomic_store(&me->err, r);
      break;
    }
    take_result(me, &res);
    progress(me, &last);
  }
  atomic_store(&me->lost, tt_fl_count());
  fp_result_release(&res);
  fp_pool_free(q);
  atomic_store(&me->done, 1);
  _exit(0);
}

struct live {
  pid_t pid;
  unsigned gen;
  uint64_t born_ns;
};

static pid_t start_producer(const char *name, unsigned gen) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) tt_fail("fork of producer %u: %s", gen, strerror(errno));
  if (pid == 0) producer(name, gen);
  return pid;
}

/* What the storm counted. */
static struct {
  unsigned gens, prod_kills, work_kills, where[NPHASE];
  unsigned w_starting, w_idle, w_busy;
} ks;

static uint64_t collected_so_far(void) {
  uint64_t n = 0;
  for (unsigned g = 0; g < ks.gens; g++)
    n += atomic_load_explicit(&sh->rec[g].collected, memory_order_relaxed);
  return n;
}

/* How long the storm may last: MAX_RUN_MS, scaled with larger sizes. */
static uint64_t storm_limit_ms(uint64_t want_tasks, uint64_t want_kills) {
  return MAX_RUN_MS * (1 + want_tasks / (TASKS + 1) + want_kills / (KILLS + 1));
}

/* The killer: returns when enough went through, or on a failure. */
static void storm(const char *name, pid_t server, const fp_pool *mon,
                  struct live *live, uint64_t want_tasks, uint64_t want_kills) {
  uint64_t rng = tt_seed ^ UINT64_C(0xfa57);
  uint64_t max_ms = storm_limit_ms(want_tasks, want_kills);
  static pid_t recent[1024]; /* workers killed: never count one twice */
  uint64_t t0 = tt_now_ns();
  for (;;) {
    tt_sleep_us(tt_rand_below(&rng, KILL_GAP_US + 1));
    uint64_t now = tt_now_ns();
    if (ks.prod_kills + ks.work_kills >= want_kills &&
        collected_so_far() >= want_tasks)
      return;
    if (tt_ms_since(t0) > max_ms) {
      tt_fail("%llu results and %u kills in %llu ms, wanted %llu and %llu",
              (unsigned long long)collected_so_far(),
              ks.prod_kills + ks.work_kills, (unsigned long long)max_ms,
              (unsigned long long)want_tasks, (unsigned long long)want_kills);
      return;
    }
    for (int k = 0; k < NPROD; k++) { /* a producer that ended by itself */
      int ws;
      if (waitpid(live[k].pid, &ws, WNOHANG) != live[k].pid) {
        struct fk_rec *pr = &sh->rec[live[k].gen];
        uint64_t seen = atomic_load(&pr->progress_ns);
        if (seen < live[k].born_ns) seen = live[k].born_ns; /* not yet run */
        if (now > seen && now - seen > (uint64_t)HANG_MS * 1000000u) {
          tt_fail("producer %u stuck in %s for %u ms", live[k].gen,
                  phase_names[atomic_load(&pr->phase) % NPHASE], HANG_MS);
          tt_debug_pool(mon, "hang");
          return;
        }
        continue;
      }
      struct fk_rec *pr = &sh->rec[live[k].gen];
      tt_fail("producer %u ended by itself (status %#x) in %s: %s, %llu bad "
              "result(s)",
              live[k].gen, ws, phase_names[atomic_load(&pr->phase) % NPHASE],
              fp_strerror(atomic_load(&pr->err)),
              (unsigned long long)atomic_load(&pr->bad));
      live[k].pid = 0;
      return;
    }
    unsigned v = (unsigned)tt_rand_below(&rng, NPROD + WORKERS);
    if (v < NPROD && ks.gens < MAX_GEN) {
      struct live *l = &live[v];
      kill(l->pid, SIGKILL); /* our child, not yet reaped */
      int ph = atomic_load(&sh->rec[l->gen].phase);
      int ws;
      while (waitpid(l->pid, &ws, 0) < 0 && errno == EINTR) {
      }
      ks.where[ph >= 0 && ph < NPHASE ? ph : 4]++;
      if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL) {
        struct fk_rec *pr = &sh->rec[l->gen];
        tt_fail("producer %u ended by itself (status %#x): %s, %llu bad "
                "result(s)",
                l->gen, ws, fp_strerror(atomic_load(&pr->err)),
                (unsigned long long)atomic_load(&pr->bad));
        l->pid = 0;
        return;
      }
      ks.prod_kills++;
      l->gen = ks.gens++;
      l->born_ns = tt_now_ns();
      l->pid = start_producer(name, l->gen);
      if (l->pid < 0) {
        l->pid = 0;
        return;
      }
    } else {
      fp_worker_info wi;
      unsigned row = (unsigned)tt_rand_below(&rng, WORKERS);
      if (fp_pool_worker(mon, row, &wi) != 0 || wi.pid <= 0) continue;
      int seen = 0;
      for (int j = 0; j < 1024; j++) seen |= recent[j] == wi.pid;
      if (seen || tt_kill_child_of(wi.pid, server, SIGKILL) != 0) continue;
      if (wi.state == FP_WORKER_STARTING) ks.w_starting++;
      else if (wi.state == FP_WORKER_BUSY) ks.w_busy++;
      else ks.w_idle++;
      recent[ks.work_kills++ % 1024] = wi.pid;
    }
  }
}

int tt_fastpath_kill(void) {
  uint64_t want_tasks = tt_param("TORTURE_FASTPATH_TASKS", TASKS);
  uint64_t want_kills = tt_param("TORTURE_FASTPATH_KILLS", KILLS);
  prod_alarm_s =
      (unsigned)(storm_limit_ms(want_tasks, want_kills) / 1000u) + 60u;
  char name[40];
  tt_pool_name(name, sizeof(name));
  sh = tt_shared(sizeof(*sh));
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = WORKERS;
  cfg.slots = SLOTS;
  cfg.max_input = 16;
  cfg.max_output = 64;
  cfg.handler = fk_echo;
  pid_t server = tt_serve(name, &cfg, 5000);
  if (server <= 0) return tt_summary("tasks=0");
  fp_pool *mon = tt_attach(name, FP_OPEN_MONITOR);
  if (mon == NULL) {
    tt_kill_reap(&server);
    return tt_summary("tasks=0");
  }

  struct live live[NPROD];
  memset(live, 0, sizeof(live));
  for (int k = 0; k < NPROD; k++) {
    live[k].gen = ks.gens++;
    live[k].born_ns = tt_now_ns();
    live[k].pid = start_producer(name, live[k].gen);
    if (live[k].pid < 0) live[k].pid = 0;
  }
  uint64_t t_storm = tt_now_ns();
  if (tt_failures == 0) storm(name, server, mon, live, want_tasks, want_kills);
  double storm_s = (double)(tt_now_ns() - t_storm) / 1e9;

  /* The producers alive stop, drain and must have lost nothing. */
  atomic_store(&sh->stop, 1);
  unsigned survivors = 0;
  for (int k = 0; k < NPROD; k++) {
    if (live[k].pid <= 0) continue;
    int ws = tt_reap(live[k].pid, 20000);
    struct fk_rec *pr = &sh->rec[live[k].gen];
    if (TT_CHECK(ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 &&
                     atomic_load(&pr->done),
                 "producer %u did not drain and exit (status %#x, in %s: "
                 "%s)",
                 live[k].gen, ws, phase_names[atomic_load(&pr->phase) % NPHASE],
                 fp_strerror(atomic_load(&pr->err))))
      survivors++;
  }
  int ws;
  TT_CHECK(waitpid(server, &ws, WNOHANG) == 0, "the server died in the storm");

  /* The whole share comes back (reclaiming is periodic: allow 3 s). */
  fp_pool *p = tt_attach(name, 0);
  uint64_t ids[SLOTS], wrong = 0, refill_ms = 0;
  unsigned placed = 0;
  fp_result res;
  fp_result_init(&res);
  if (p != NULL) {
    uint64_t t0 = tt_now_ns();
    for (; placed < SLOTS - SLOTS / 4; placed++) {
      uint64_t v = UINT64_C(0xffffffff00000000) + placed;
      uint64_t spent = tt_ms_since(t0);
      int left = spent >= REFILL_MS ? 0 : (int)(REFILL_MS - spent);
      int r = fp_submit(p, &v, sizeof(v), left, &ids[placed]);
      if (r != 0) {
        tt_fail("only %u of %u slots came back within %u ms: %s", placed,
                SLOTS - SLOTS / 4, REFILL_MS, fp_strerror(r));
        break;
      }
    }
    refill_ms = tt_ms_since(t0);
    for (unsigned k = 0; k < placed; k++) {
      uint64_t v = UINT64_C(0xffffffff00000000) + k;
      int r = fp_wait(p, ids[k], &res, 5000);
      uint64_t o[2] = {0, 0};
      if (r == 0 && res.output_len == sizeof(o))
        memcpy(o, res.output, sizeof(o));
      if (r != 0 || res.status != FP_OK || o[0] != v || o[1] != tt_expect_of(v))
        wrong++;
    }
  }
  TT_CHECK(wrong == 0,
           "%llu of the fresh producer's tasks did not come back "
           "ok",
           (unsigned long long)wrong);

  uint64_t collected = 0, crashed = 0, bad = 0, lost = 0, max_gap = 0;
  for (unsigned g = 0; g < ks.gens; g++) {
    struct fk_rec *pr = &sh->rec[g];
    collected += atomic_load(&pr->collected);
    crashed += atomic_load(&pr->crashed);
    bad += atomic_load(&pr->bad);
    lost += atomic_load(&pr->lost);
    if (atomic_load(&pr->max_gap_ms) > max_gap)
      max_gap = atomic_load(&pr->max_gap_ms);
  }
  fp_stats st;
  memset(&st, 0, sizeof(st));
  if (p != NULL) fp_pool_stats(p, &st);
  uint64_t ended = st.ok + st.failed + st.crashed + st.timeout + st.cancelled;
  TT_CHECK(lost == 0 && bad == 0,
           "%llu task(s) of live producers without a "
           "result, %llu result(s) duplicated, foreign or wrong",
           (unsigned long long)lost, (unsigned long long)bad);
  TT_CHECK(st.queued == 0 && st.running == 0,
           "not idle: %u queued, %u "
           "running",
           st.queued, st.running);
  TT_CHECK(st.submitted == ended,
           "submitted %llu but %llu ended (ok %llu "
           "failed %llu crashed %llu timeout %llu cancelled %llu)",
           (unsigned long long)st.submitted, (unsigned long long)ended,
           (unsigned long long)st.ok, (unsigned long long)st.failed,
           (unsigned long long)st.crashed, (unsigned long long)st.timeout,
           (unsigned long long)st.cancelled);
  TT_CHECK(st.failed + st.timeout + st.cancelled + st.corrupt + st.retried +
                   st.quarantined ==
               0,
           "stats: failed %llu timeout %llu cancelled %llu corrupt %llu "
           "retried %llu quarantined %llu, expected none",
           (unsigned long long)st.failed, (unsigned long long)st.timeout,
           (unsigned long long)st.cancelled, (unsigned long long)st.corrupt,
           (unsigned long long)st.retried, (unsigned long long)st.quarantined);
  TT_CHECK(crashed <= st.crashed && st.crashed <= ks.work_kills,
           "crashed: %llu collected, %llu counted, from %u worker kills",
           (unsigned long long)crashed, (unsigned long long)st.crashed,
           ks.work_kills);
  TT_CHECK(st.restarts == ks.work_kills,
           "stats.restarts %llu for %u worker "
           "kills",
           (unsigned long long)st.restarts, ks.work_kills);
  /* Results nobody collected are abandoned; a producer may die between a
   * delivery and its count: one each. */
  uint64_t most = st.submitted >= placed + collected
                      ? st.submitted - placed - collected
                      : 0;
  uint64_t least = most > ks.prod_kills ? most - ks.prod_kills : 0;
  TT_CHECK(st.submitted >= placed + collected,
           "submitted %llu < %llu "
           "collected",
           (unsigned long long)st.submitted,
           (unsigned long long)(placed + collected));
  TT_CHECK(st.abandoned >= least && st.abandoned <= most,
           "abandoned %llu, expected %llu..%llu (submitted %llu, collected "
           "%llu + %u)",
           (unsigned long long)st.abandoned, (unsigned long long)least,
           (unsigned long long)most, (unsigned long long)st.submitted,
           (unsigned long long)collected, placed);
  TT_CHECK(st.clients == 1,
           "%u producers attached, expected 1 (the fresh "
           "one)",
           st.clients);
  TT_CHECK(max_gap < STALL_LIMIT_MS,
           "a producer went %llu ms without a "
           "result or an accepted task",
           (unsigned long long)max_gap);
  fp_result_release(&res);
  fp_pool_free(p);
  fp_pool_free(mon);
  kill(server, SIGTERM);
  ws = tt_reap(server, 5000);
  TT_CHECK(ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
           "server did not stop cleanly (status %#x)", ws);
  return tt_summary(
      "tasks=%llu results=%llu kills=%u (producers=%u: open=%u submit=%u "
      "collect=%u other=%u; workers=%u: starting=%u idle=%u busy=%u) "
      "crashed=%llu abandoned=%llu lost=%llu duplicated=%llu "
      "max_stall_ms=%llu refill_ms=%llu survivors=%u storm_s=%.1f",
      (unsigned long long)st.submitted, (unsigned long long)collected,
      ks.prod_kills + ks.work_kills, ks.prod_kills, ks.where[1], ks.where[2],
      ks.where[3], ks.where[0] + ks.where[4] + ks.where[5], ks.work_kills,
      ks.w_starting, ks.w_idle, ks.w_busy, (unsigned long long)st.crashed,
      (unsigned long long)st.abandoned, (unsigned long long)lost,
      (unsigned long long)bad, (unsigned long long)max_gap,
      (unsigned long long)refill_ms, survivors, storm_s);
}
