/*
 * sigstop: SIGSTOP and SIGCONT under load (issue 14; README "Every wait is
 * bounded"). A named pool (2 workers, 256 slots, a 200 ms task limit) in a
 * forked server; 3 producer processes submit small tasks (1 in 256 sleeps
 * 1..3 ms) with FP_NOWAIT, 50 ms or 200 ms timeouts, 40 in flight each, and
 * collect with fp_collect or fp_wait (100 ms), for RUN_MS (6 s). Meanwhile the
 * scenario process stops random processes of its own, one or two at a
 * time, and continues them after a random interval: a producer (1..200
 * ms, or one time in six 1.2..1.7 s), the supervisor (1..50 ms), a worker
 * (1..50 ms; one found busy is kept stopped past its task's limit one
 * time in three). Every 0..4 ms it also stops a random producer for a
 * moment and probes with a submit of its own (FP_NOWAIT): when that says
 * -EAGAIN, the producer was stopped holding what a submit needs (the
 * queue lock today; rare: it holds it a fraction of a percent of the
 * time), and it is kept stopped for 1.2..1.7 s. Whatever a stopped
 * process held (a lock, slots, a task), checks:
 *   - no task lost or duplicated: every producer survives and collects
 *     every task it submitted exactly once, ok with the right output, or
 *     timeout / crashed (SIGKILL) when its worker was stopped;
 *   - a producer that is not stopped makes progress (a task accepted or a
 *     result) at least every PROGRESS_MS (1 s), whatever else is
 *     stopped: below the long stops (1.2..1.7 s), so a stopped process
 *     holding what others need fails it (before issue 14, a producer
 *     stopped in the queue lock stalled every take and submit until it was
 *     continued; seen: no progress for 802..1586 ms). About 100 ms is
 *     typical here;
 *   - a timed call returns by its deadline (plus OVERRUN_MS of slack for
 *     this loaded machine) unless the caller itself was stopped in it; a
 *     probe (FP_NOWAIT) too;
 *   - a worker stopped holding a task past the limit is killed by the
 *     supervisor (and replaced) before its stop ends; at random, and once
 *     on purpose at the end (a 150 ms task of our own, which must then end
 *     FP_TIMEOUT);
 *   - the counters add up: submitted == ok + timeout + crashed (ours and
 *     the producers'), nothing failed, cancelled or abandoned.
 * Only processes of this scenario are stopped (workers through a pidfd
 * checked to be the server's child), and every one is continued before
 * the scenario returns.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "torture.h"

#define WORKERS 2u
#define NPROD 3
#define SLOTS 256u
/* clang-format off */
#define LIMIT_MS 200u        /* the pool's task timeout */
#define RUN_MS 6000u         /* stopping and continuing for this long
                                (TORTURE_SIGSTOP_MS; the guard is 60 s) */
#define MAX_STOPPED 2        /* processes stopped at once */
#define PROGRESS_MS 1000u    /* a producer not stopped: progress within
                                (TORTURE_SIGSTOP_PROGRESS_MS) */
#define OVERRUN_MS 1000u     /* a timed call's slack past its deadline */
#define PROD_LONG_MS 1200u   /* a long producer stop: 1200..1700 ms */
#define KILLED_WITHIN_MS 3000u /* a busy worker past the limit: killed */
/* clang-format on */
#define PROD_AS_BYTES (512ull << 20)
/* clang-format off */
#define WINDOW 40u           /* in flight per producer: under its share
                                (48: 4 producer handles, ours included),
                                so a timed submit waits only for the
                                queue lock or a stopped holder */
/* clang-format on */

struct ss_rec {
  _Atomic uint64_t stops; /* odd while the parent stops it (see below) */
  _Atomic uint64_t progress_ns;
  _Atomic uint64_t submitted, collected, ok, timeout, crashed, bad, lost;
  _Atomic uint64_t max_overrun_ms; /* past a deadline, not stopped */
  _Atomic uint64_t calls_timed;    /* timed calls measured */
  _Atomic int err, phase, attached, done;
};
static const char *phase_names[] = {"start", "open",  "submit", "collect",
                                    "wait",  "other", "drain"};
#define NPHASE 7

struct ss_shared {
  _Atomic int stop;
  struct ss_rec rec[NPROD];
};
static struct ss_shared *sh;
static uint64_t run_ms, progress_ms; /* RUN_MS, PROGRESS_MS or the env's */

/* Input: 8-byte number, 4-byte microseconds to sleep; output: the number
 * and tt_expect_of(it). */
static int ss_handler(void *arg, const void *in, size_t in_len, void *out,
                      size_t out_cap, size_t *out_len) {
  (void)arg;
  uint64_t v[2];
  uint32_t us;
  if (in_len != sizeof(v[0]) + sizeof(us) || out_cap < sizeof(v)) return EINVAL;
  memcpy(&v[0], in, sizeof(v[0]));
  memcpy(&us, (const char *)in + sizeof(v[0]), sizeof(us));
  if (us > 0) tt_sleep_us(us);
  v[1] = tt_expect_of(v[0]);
  memcpy(out, v, sizeof(v));
  *out_len = sizeof(v);
  return 0;
}

/*
 * A timed call's measure. The parent adds 1 to me->stops before it sends
 * SIGSTOP and 1 after SIGCONT: a call during which the count stayed the
 * same and even ran while we were not stopped, so its time is the
 * library's alone.
 */
struct timed {
  uint64_t t0, stops0;
};
static void timed_begin(struct ss_rec *me, struct timed *t) {
  t->stops0 = atomic_load(&me->stops);
  t->t0 = tt_now_ns();
}
static void timed_end(struct ss_rec *me, const struct timed *t, int limit) {
  uint64_t ms = tt_ms_since(t->t0);
  uint64_t s1 = atomic_load(&me->stops);
  if (s1 != t->stops0 || (s1 & 1) != 0) return;
  atomic_fetch_add_explicit(&me->calls_timed, 1, memory_order_relaxed);
  uint64_t over = ms > (uint64_t)limit ? ms - (uint64_t)limit : 0;
  if (over > atomic_load(&me->max_overrun_ms))
    atomic_store(&me->max_overrun_ms, over);
}

static void take_result(struct ss_rec *me, const fp_result *res) {
  uint64_t seq;
  if (!tt_fl_take(res->id, &seq)) {
    atomic_fetch_add(&me->bad, 1);
    return;
  }
  if (res->status == FP_OK) {
    uint64_t v[2] = {0, 0};
    if (res->output_len == sizeof(v)) memcpy(v, res->output, sizeof(v));
    if (v[0] != seq || v[1] != tt_expect_of(seq)) atomic_fetch_add(&me->bad, 1);
    else atomic_fetch_add(&me->ok, 1);
  } else if (res->status == FP_TIMEOUT) {
    atomic_fetch_add(&me->timeout, 1);
  } else if (res->status == FP_CRASHED && res->signal == SIGKILL) {
    atomic_fetch_add(&me->crashed, 1);
  } else {
    atomic_fetch_add(&me->bad, 1);
  }
  atomic_fetch_add(&me->collected, 1);
  atomic_store(&me->progress_ns, tt_now_ns());
}

__attribute__((noreturn)) static void producer(const char *name, int k) {
  struct ss_rec *me = &sh->rec[k];
  alarm(run_ms / 1000u + 40u); /* bounds a leaked producer */
  struct rlimit rl = {PROD_AS_BYTES, PROD_AS_BYTES};
  setrlimit(RLIMIT_AS, &rl);
  uint64_t rng = tt_seed ^ ((uint64_t)k << 40) ^ 0x5709u;
  atomic_store(&me->phase, 1);
  fp_pool *q;
  int r = fp_pool_open(&q, name, 0);
  if (r != 0) {
    atomic_store(&me->err, r);
    _exit(3);
  }
  atomic_store(&me->progress_ns, tt_now_ns());
  atomic_store(&me->attached, 1);
  fp_result res;
  fp_result_init(&res);
  uint64_t seq = (uint64_t)k << 32;
  while (!atomic_load(&sh->stop)) {
    unsigned burst = 1 + (unsigned)tt_rand_below(&rng, 64);
    for (unsigned b = 0; b < burst && tt_fl_count() < WINDOW; b++) {
      unsigned char in[12];
      uint32_t us = tt_rand_below(&rng, 256) == 0
                        ? 1000u + (uint32_t)tt_rand_below(&rng, 2001)
                        : 0;
      memcpy(in, &seq, sizeof(seq));
      memcpy(in + sizeof(seq), &us, sizeof(us));
      unsigned how = (unsigned)tt_rand_below(&rng, 3);
      int tmo = how == 0 ? FP_NOWAIT : how == 1 ? 50 : 200;
      uint64_t id;
      struct timed t;
      atomic_store(&me->phase, 2);
      timed_begin(me, &t);
      r = fp_submit(q, in, sizeof(in), tmo, &id);
      timed_end(me, &t, tmo);
      atomic_store(&me->phase, 5);
      if (r == -EAGAIN || r == -ETIMEDOUT || r == -EDEADLK) break;
      if (r != 0) {
        atomic_store(&me->err, r);
        _exit(4);
      }
      tt_fl_put(id, seq++);
      atomic_fetch_add(&me->submitted, 1);
      atomic_store(&me->progress_ns, tt_now_ns());
    }
    unsigned takes = 1 + (unsigned)tt_rand_below(&rng, 64);
    for (unsigned t = 0; t < takes && tt_fl_count() > 0; t++) {
      struct timed tm;
      uint64_t want = tt_rand_below(&rng, 4) == 0 ? tt_fl_any(&rng) : 0;
      atomic_store(&me->phase, want ? 4 : 3);
      timed_begin(me, &tm);
      r = want ? fp_wait(q, want, &res, 100) : fp_collect(q, &res, 100);
      timed_end(me, &tm, 100);
      atomic_store(&me->phase, 5);
      if (r == -ETIMEDOUT) break;
      if (r != 0) {
        atomic_store(&me->err, r);
        _exit(5);
      }
      take_result(me, &res);
    }
  }
  atomic_store(&me->phase, 6);
  while (fp_pending(q) > 0) {
    r = fp_collect(q, &res, 5000);
    if (r != 0) {
      atomic_store(&me->err, r);
      break;
    }
    take_result(me, &res);
  }
  atomic_store(&me->lost, tt_fl_count());
  fp_result_release(&res);
  fp_pool_free(q);
  atomic_store(&me->done, 1);
  _exit(0);
}

enum { V_PROD, V_WORKER, V_SUP };

struct stopped {
  int fd;      /* pidfd; -1: entry unused */
  int kind, k; /* V_*, producer index or worker row */
  pid_t pid;
  uint64_t t_stop, until;
  int busy_long; /* a worker held a task: kept past the limit */
  int holding;   /* a producer held what submits need (probe_holder) */
};

static struct {
  unsigned stops[3], busy_long, killed, cont_fail, lock_stops, probes;
  uint64_t max_stop_ms, max_probe_ms;
  uint64_t own_sub, own_ok, own_tmo, own_bad; /* our own handle's tasks */
} ss;

/* Our own producer handle: probes, and the deliberate stop at the end. */
static fp_pool *own;
#define PROBE_SEQ UINT64_C(0xfffffffe00000000)

/* Collect our own finished probes (ok, right output); 0 or -errno. */
static int collect_own(int timeout_ms) {
  fp_result res;
  fp_result_init(&res);
  int r;
  while ((r = fp_collect(own, &res, timeout_ms)) == 0) {
    uint64_t v[2] = {0, 0};
    if (res.output_len == sizeof(v)) memcpy(v, res.output, sizeof(v));
    if (res.status == FP_OK && (v[0] >> 32) == (PROBE_SEQ >> 32) &&
        v[1] == tt_expect_of(v[0]))
      ss.own_ok++;
    else ss.own_bad++;
  }
  fp_result_release(&res);
  return r == -ETIMEDOUT || r == -ENOENT ? 0 : r;
}

/*
 * With producer pid just sent SIGSTOP: wait until it is stopped, then try
 * a submit of our own with FP_NOWAIT. -EAGAIN although we hold nothing
 * and most slots are free means the stopped producer holds what a submit
 * must take (today: the queue lock). Returns 1 then, else 0 (a probe task
 * submitted, or not stopped in time). Every probe is timed: FP_NOWAIT must
 * not wait for the stopped holder.
 */
static int probe_holder(pid_t pid) {
  for (int n = 0; n < 2000 && !tt_proc_stopped(pid); n++) tt_sleep_us(50);
  if (!tt_proc_stopped(pid)) return 0;
  unsigned char in[12] = {0};
  uint64_t seq = PROBE_SEQ + ss.own_sub, id;
  memcpy(in, &seq, sizeof(seq));
  uint64_t t0 = tt_now_ns();
  int r = fp_submit(own, in, sizeof(in), FP_NOWAIT, &id);
  uint64_t ms = tt_ms_since(t0);
  if (ms > ss.max_probe_ms) ss.max_probe_ms = ms;
  if (r == 0) ss.own_sub++;
  else
    TT_CHECK(r == -EAGAIN, "a probe fp_submit(FP_NOWAIT): %s", fp_strerror(r));
  return r == -EAGAIN;
}

static struct stopped stp[MAX_STOPPED];

/* SIGCONT entry e and forget it. */
static void cont_one(struct stopped *e) {
  if (e->fd < 0) return;
  /* Fails (ESRCH) only for a worker the supervisor killed meanwhile. */
  if (pidfd_send_signal(e->fd, SIGCONT, NULL, 0) != 0 && e->kind != V_WORKER)
    ss.cont_fail++;
  if (e->kind == V_PROD) atomic_fetch_add(&sh->rec[e->k].stops, 1); /* even */
  uint64_t ms = tt_ms_since(e->t_stop);
  if (ms > ss.max_stop_ms) ss.max_stop_ms = ms;
  close(e->fd);
  e->fd = -1;
}

static void cont_all(void) {
  for (int j = 0; j < MAX_STOPPED; j++) cont_one(&stp[j]);
}

static int is_stopped_now(pid_t pid) {
  for (int j = 0; j < MAX_STOPPED; j++)
    if (stp[j].fd >= 0 && stp[j].pid == pid) return 1;
  return 0;
}

/*
 * Stop a random process of ours in free entry e for a random interval.
 * Returns 0 when one was stopped, -1 when the pick was not possible.
 */
static int stop_one(struct stopped *e, uint64_t *rng, pid_t server,
                    const pid_t *prod, const fp_pool *mon) {
  unsigned v = (unsigned)tt_rand_below(rng, NPROD + WORKERS + 1);
  e->busy_long = 0;
  e->holding = 0;
  if (v < NPROD) {
    e->kind = V_PROD;
    e->k = (int)v;
    e->pid = prod[v];
    if (is_stopped_now(e->pid) || (e->fd = tt_pidfd(e->pid)) < 0) return -1;
    atomic_fetch_add(&sh->rec[v].stops, 1); /* before the stop: odd */
    /* Mostly short; one in six longer than a call's slack past its
     * deadline, so a call that waits for a stopped holder is caught. */
    e->until = tt_rand_below(rng, 6) == 0
                   ? PROD_LONG_MS + tt_rand_below(rng, 500)
                   : 1 + tt_rand_below(rng, 200);
  } else if (v < NPROD + WORKERS) {
    fp_worker_info wi;
    e->kind = V_WORKER;
    e->k = (int)(v - NPROD);
    if (fp_pool_worker(mon, (unsigned)e->k, &wi) != 0 || wi.pid <= 0 ||
        is_stopped_now(wi.pid))
      return -1;
    e->pid = wi.pid;
    if ((e->fd = tt_pidfd_child_of(e->pid, server)) < 0) return -1;
    e->until = 1 + tt_rand_below(rng, 50);
  } else {
    e->kind = V_SUP;
    e->k = 0;
    e->pid = server;
    if (is_stopped_now(server) || (e->fd = tt_pidfd(server)) < 0) return -1;
    e->until = 1 + tt_rand_below(rng, 50);
  }
  e->t_stop = tt_now_ns();
  if (pidfd_send_signal(e->fd, SIGSTOP, NULL, 0) != 0) {
    if (e->kind == V_PROD) atomic_fetch_add(&sh->rec[e->k].stops, 1);
    close(e->fd);
    e->fd = -1;
    return -1;
  }
  ss.stops[e->kind]++;
  if (e->kind == V_WORKER) {
    /* Once it is stopped its row holds still: does it hold a task? */
    for (int n = 0;
         n < 2000 && !tt_proc_stopped(e->pid) && !tt_pidfd_wait_exit(e->fd, 0);
         n++)
      tt_sleep_us(50);
    fp_worker_info wi;
    if (tt_proc_stopped(e->pid) && !tt_pidfd_wait_exit(e->fd, 0) &&
        fp_pool_worker(mon, (unsigned)e->k, &wi) == 0 && wi.pid == e->pid &&
        wi.state == FP_WORKER_BUSY && wi.task_id != 0 &&
        tt_rand_below(rng, 3) == 0) {
      e->busy_long = 1;
      e->until = LIMIT_MS + 300u + tt_rand_below(rng, 300);
      ss.busy_long++;
    }
  }
  e->until = e->t_stop + e->until * 1000000u;
  return 0;
}

/*
 * A quick stop of a random producer (not stopped already), at a random
 * instant: probe_holder, then SIGCONT at once, unless it holds what
 * submits need and entry e is free: then e keeps it stopped for
 * PROD_LONG_MS..+500 ms. The lock, or whatever a submit takes, is held a
 * small part of the time: the many quick stops are what find it held.
 */
static void quick_probe(struct stopped *e, uint64_t *rng, const pid_t *prod) {
  int k = (int)tt_rand_below(rng, NPROD);
  if (prod[k] <= 0 || is_stopped_now(prod[k])) return;
  int fd = tt_pidfd(prod[k]);
  if (fd < 0) return;
  atomic_fetch_add(&sh->rec[k].stops, 1); /* odd */
  uint64_t t0 = tt_now_ns();
  int held =
      pidfd_send_signal(fd, SIGSTOP, NULL, 0) == 0 && probe_holder(prod[k]);
  ss.probes++;
  if (held && e != NULL) {
    *e = (struct stopped){.fd = fd,
                          .kind = V_PROD,
                          .k = k,
                          .pid = prod[k],
                          .t_stop = t0,
                          .holding = 1};
    e->until = t0 + (PROD_LONG_MS + tt_rand_below(rng, 500)) * 1000000u;
    ss.stops[V_PROD]++;
    ss.lock_stops++;
    return;
  }
  if (pidfd_send_signal(fd, SIGCONT, NULL, 0) != 0) ss.cont_fail++;
  atomic_fetch_add(&sh->rec[k].stops, 1); /* even */
  close(fd);
}

/* A worker stopped with a task past the limit: it must be gone. */
static void check_killed(const struct stopped *e) {
  uint64_t ms = tt_ms_since(e->t_stop);
  int left = ms >= KILLED_WITHIN_MS ? 0 : (int)(KILLED_WITHIN_MS - ms);
  if (TT_CHECK(tt_pidfd_wait_exit(e->fd, left),
               "worker %d, stopped holding a task, still lives %u ms later "
               "(task limit %u ms)",
               (int)e->pid, KILLED_WITHIN_MS, LIMIT_MS))
    ss.killed++;
}

/*
 * The same on purpose, once: our own task sleeps 150 ms (under the limit);
 * stop the worker running it, with the producers' load going on. It must
 * be killed within KILLED_WITHIN_MS and the task must end FP_TIMEOUT. If
 * the task was over before the stop took hold (a slow machine), the worker
 * is continued and another task tried, up to 5. Our tasks are counted in
 * ss.own_* (for the counters check).
 */
static void stop_running_task(pid_t server, const fp_pool *mon) {
  fp_result res;
  fp_result_init(&res);
  int caught = 0;
  for (int attempt = 0; attempt < 5 && !caught && tt_failures == 0; attempt++) {
    unsigned char in[12];
    uint64_t seq = UINT64_C(0xffffffff00000000) + (uint64_t)attempt;
    uint32_t us = 150000;
    memcpy(in, &seq, sizeof(seq));
    memcpy(in + sizeof(seq), &us, sizeof(us));
    uint64_t id;
    int r = fp_submit(own, in, sizeof(in), 2000, &id);
    if (!TT_CHECK(r == 0, "our own sleeping task: fp_submit: %s",
                  fp_strerror(r)))
      break;
    ss.own_sub++;
    struct stopped e = {.fd = -1, .kind = V_WORKER};
    uint64_t t0 = tt_now_ns();
    while (e.fd < 0 && tt_ms_since(t0) < 2000) {
      for (unsigned row = 0; row < WORKERS && e.fd < 0; row++) {
        fp_worker_info wi;
        if (fp_pool_worker(mon, row, &wi) != 0 || wi.task_id != id ||
            wi.pid <= 0 || (e.fd = tt_pidfd_child_of(wi.pid, server)) < 0)
          continue;
        e.pid = wi.pid;
        e.k = (int)row;
        e.t_stop = tt_now_ns();
        if (pidfd_send_signal(e.fd, SIGSTOP, NULL, 0) != 0) {
          close(e.fd);
          e.fd = -1;
        }
      }
      if (e.fd < 0) tt_sleep_us(200);
    }
    if (!TT_CHECK(e.fd >= 0, "our own task did not start within 2 s")) break;
    ss.stops[V_WORKER]++;
    /* Stopped, and still on our task? */
    for (int n = 0;
         n < 2000 && !tt_proc_stopped(e.pid) && !tt_pidfd_wait_exit(e.fd, 0);
         n++)
      tt_sleep_us(50);
    fp_worker_info wi;
    caught = tt_proc_stopped(e.pid) && !tt_pidfd_wait_exit(e.fd, 0) &&
             fp_pool_worker(mon, (unsigned)e.k, &wi) == 0 && wi.pid == e.pid &&
             wi.task_id == id;
    if (caught) {
      ss.busy_long++;
      check_killed(&e);
    }
    cont_one(&e);
    r = fp_wait(own, id, &res, 5000);
    if (!TT_CHECK(r == 0, "our own task: fp_wait: %s", fp_strerror(r))) break;
    if (res.status == FP_TIMEOUT) ss.own_tmo++;
    if (res.status == FP_OK) ss.own_ok++;
    TT_CHECK(res.status == (caught ? FP_TIMEOUT : FP_OK),
             "our own task, its worker %s, ended %s",
             caught ? "stopped past the limit" : "stopped after it",
             fp_status_name(res.status));
  }
  TT_CHECK(caught, "never caught a worker running our own task");
  fp_result_release(&res);
}

int tt_sigstop(void) {
  run_ms = tt_param("TORTURE_SIGSTOP_MS", RUN_MS);
  progress_ms = tt_param("TORTURE_SIGSTOP_PROGRESS_MS", PROGRESS_MS);
  char name[40];
  tt_pool_name(name, sizeof(name));
  sh = tt_shared(sizeof(*sh));
  for (int j = 0; j < MAX_STOPPED; j++) stp[j].fd = -1;
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = WORKERS;
  cfg.slots = SLOTS;
  cfg.max_input = 16;
  cfg.max_output = 4096; /* room for a hang report */
  cfg.timeout_ms = LIMIT_MS;
  cfg.handler = ss_handler;
  pid_t server = tt_serve(name, &cfg, 5000);
  if (server <= 0) return tt_summary("tasks=0");
  fp_pool *mon = tt_attach(name, FP_OPEN_MONITOR);
  own = tt_attach(name, 0);
  pid_t prod[NPROD] = {0};
  for (int k = 0; k < NPROD && mon != NULL && own != NULL; k++) {
    fflush(NULL);
    prod[k] = fork();
    if (prod[k] < 0) {
      tt_fail("fork: %s", strerror(errno));
      prod[k] = 0;
      break;
    }
    if (prod[k] == 0) producer(name, k);
  }
  /* Every producer attached before anything is stopped. */
  for (int n = 0; n < 5000 && tt_failures == 0; n++) {
    int all = 1;
    for (int k = 0; k < NPROD; k++) all &= atomic_load(&sh->rec[k].attached);
    if (all) break;
    tt_sleep_us(1000);
  }

  uint64_t rng = tt_seed ^ UINT64_C(0x5105);
  uint64_t t0 = tt_now_ns(), next_stop = t0, next_probe = t0;
  uint64_t last_cont[NPROD];
  uint64_t max_no_progress = 0;
  for (int k = 0; k < NPROD; k++) last_cont[k] = t0;
  while (tt_failures == 0 && tt_ms_since(t0) < run_ms) {
    tt_sleep_us(500);
    uint64_t now = tt_now_ns();
    for (int j = 0; j < MAX_STOPPED; j++) {
      struct stopped *e = &stp[j];
      if (e->fd < 0 || now < e->until) continue;
      if (e->busy_long) check_killed(e);
      if (e->kind == V_PROD) last_cont[e->k] = tt_now_ns();
      cont_one(e);
    }
    int r = collect_own(FP_NOWAIT);
    TT_CHECK(r == 0, "collecting our probes: %s", fp_strerror(r));
    /* Quick probes while nobody is held stopped as a holder (a probe
     * would then find that one's hold). */
    if (now >= next_probe) {
      struct stopped *free_e = NULL;
      int holding = 0;
      for (int j = 0; j < MAX_STOPPED; j++) {
        holding |= stp[j].fd >= 0 && stp[j].holding;
        if (stp[j].fd < 0) free_e = &stp[j];
      }
      if (!holding) quick_probe(free_e, &rng, prod);
      next_probe = tt_now_ns() + tt_rand_below(&rng, 4000) * 1000u;
    }
    for (int j = 0; j < MAX_STOPPED && now >= next_stop; j++) {
      if (stp[j].fd >= 0) continue;
      if (stop_one(&stp[j], &rng, server, prod, mon) == 0)
        next_stop = now + tt_rand_below(&rng, 10000) * 1000u;
      break;
    }
    now = tt_now_ns();
    for (int k = 0; k < NPROD; k++) {
      struct ss_rec *pr = &sh->rec[k];
      int ws;
      if (prod[k] <= 0) continue;
      if (waitpid(prod[k], &ws, WNOHANG) == prod[k]) {
        tt_fail("producer %d ended (status %#x) in %s: %s", k, ws,
                phase_names[atomic_load(&pr->phase) % NPHASE],
                fp_strerror(atomic_load(&pr->err)));
        prod[k] = 0;
        break;
      }
      if (is_stopped_now(prod[k])) continue;
      uint64_t seen = atomic_load(&pr->progress_ns);
      if (seen < last_cont[k]) seen = last_cont[k];
      uint64_t idle = now > seen ? (now - seen) / 1000000u : 0;
      if (idle > max_no_progress) max_no_progress = idle;
      if (idle > progress_ms) {
        tt_fail("producer %d, not stopped, made no progress for %llu ms "
                "(in %s)",
                k, (unsigned long long)idle,
                phase_names[atomic_load(&pr->phase) % NPHASE]);
        tt_debug_pool(mon, "stalled");
        break;
      }
    }
  }
  for (int j = 0; j < MAX_STOPPED; j++)
    if (stp[j].fd >= 0 && stp[j].busy_long) check_killed(&stp[j]);
  cont_all();
  uint64_t submitted = 0, collected = 0, ok = 0, timeout = 0, crashed = 0;
  while (tt_failures == 0 && fp_pending(own) > 0) {
    int r = collect_own(5000);
    if (!TT_CHECK(r == 0, "collecting our probes: %s", fp_strerror(r))) break;
  }
  if (tt_failures == 0) stop_running_task(server, mon);
  atomic_store(&sh->stop, 1);
  uint64_t bad = 0, lost = 0, overrun = 0, timed = 0;
  for (int k = 0; k < NPROD; k++) {
    if (prod[k] <= 0) continue;
    int ws = tt_reap(prod[k], 20000);
    struct ss_rec *pr = &sh->rec[k];
    TT_CHECK(ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 &&
                 atomic_load(&pr->done),
             "producer %d did not drain and exit (status %#x, in %s: %s)", k,
             ws, phase_names[atomic_load(&pr->phase) % NPHASE],
             fp_strerror(atomic_load(&pr->err)));
  }
  for (int k = 0; k < NPROD; k++) {
    struct ss_rec *pr = &sh->rec[k];
    submitted += atomic_load(&pr->submitted);
    collected += atomic_load(&pr->collected);
    ok += atomic_load(&pr->ok);
    timeout += atomic_load(&pr->timeout);
    crashed += atomic_load(&pr->crashed);
    bad += atomic_load(&pr->bad);
    lost += atomic_load(&pr->lost);
    timed += atomic_load(&pr->calls_timed);
    if (atomic_load(&pr->max_overrun_ms) > overrun)
      overrun = atomic_load(&pr->max_overrun_ms);
  }
  int ws;
  TT_CHECK(waitpid(server, &ws, WNOHANG) == 0, "the server died");
  fp_stats st;
  memset(&st, 0, sizeof(st));
  if (mon != NULL) fp_pool_stats(mon, &st);
  TT_CHECK(lost == 0 && bad == 0 && collected == submitted,
           "%llu task(s) without a result, %llu duplicated, foreign or wrong "
           "result(s); %llu submitted, %llu collected",
           (unsigned long long)lost, (unsigned long long)bad,
           (unsigned long long)submitted, (unsigned long long)collected);
  TT_CHECK(st.submitted == submitted + ss.own_sub && st.ok == ok + ss.own_ok &&
               st.timeout == timeout + ss.own_tmo && st.crashed == crashed,
           "stats: submitted %llu ok %llu timeout %llu crashed %llu; the "
           "producers got %llu, %llu, %llu, %llu",
           (unsigned long long)st.submitted, (unsigned long long)st.ok,
           (unsigned long long)st.timeout, (unsigned long long)st.crashed,
           (unsigned long long)submitted, (unsigned long long)ok,
           (unsigned long long)timeout, (unsigned long long)crashed);
  TT_CHECK(st.failed + st.cancelled + st.corrupt + st.abandoned == 0,
           "stats: failed %llu cancelled %llu corrupt %llu abandoned %llu, "
           "expected none",
           (unsigned long long)st.failed, (unsigned long long)st.cancelled,
           (unsigned long long)st.corrupt, (unsigned long long)st.abandoned);
  TT_CHECK(overrun < OVERRUN_MS && ss.max_probe_ms < OVERRUN_MS,
           "a timed call returned %llu ms past its deadline, a probe "
           "FP_NOWAIT submit took %llu ms",
           (unsigned long long)overrun, (unsigned long long)ss.max_probe_ms);
  TT_CHECK(ss.own_bad == 0, "%llu probe(s) ended wrong",
           (unsigned long long)ss.own_bad);
  TT_CHECK(ss.cont_fail == 0,
           "%u SIGCONT(s) of a producer or the "
           "supervisor failed",
           ss.cont_fail);
  TT_CHECK(ss.killed == ss.busy_long,
           "%u of %u workers stopped with a "
           "task past the limit were killed",
           ss.killed, ss.busy_long);
  fp_pool_free(own);
  fp_pool_free(mon);
  kill(server, SIGTERM);
  ws = tt_reap(server, 10000);
  TT_CHECK(ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
           "server did not stop cleanly (status %#x)", ws);
  return tt_summary(
      "tasks=%llu ok=%llu timeout=%llu crashed=%llu stops=%u (producers=%u "
      "workers=%u supervisor=%u) quick_probes=%u found_holding=%u "
      "busy_past_limit=%u killed=%u restarts=%llu "
      "lost=%llu duplicated=%llu max_no_progress_ms=%llu "
      "max_overrun_ms=%llu (of %llu timed calls) max_probe_ms=%llu "
      "max_stop_ms=%llu",
      (unsigned long long)submitted, (unsigned long long)ok,
      (unsigned long long)timeout, (unsigned long long)crashed,
      ss.stops[0] + ss.stops[1] + ss.stops[2], ss.stops[V_PROD],
      ss.stops[V_WORKER], ss.stops[V_SUP], ss.probes, ss.lock_stops,
      ss.busy_long, ss.killed, (unsigned long long)st.restarts,
      (unsigned long long)lost, (unsigned long long)bad,
      (unsigned long long)max_no_progress, (unsigned long long)overrun,
      (unsigned long long)timed, (unsigned long long)ss.max_probe_ms,
      (unsigned long long)ss.max_stop_ms);
}
