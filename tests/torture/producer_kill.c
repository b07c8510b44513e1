/*
 * producer-kill: a named pool (2 workers, 64 slots) in a forked server;
 * 300 producer processes, 4 at a time, attach and submit / collect / wait
 * in a loop (instant and 1..3 ms tasks, every kind of timeout) and are
 * SIGKILLed 0..20 ms after they were forked: in fp_pool_open, in submit,
 * in wait, holding filled, queued, running, finished and collected slots.
 * Afterwards a fresh producer must get the whole capacity back within 3 s
 * and every task back ok, and the counters must account for every task:
 * submitted == ok + failed + crashed + timeout + cancelled, and abandoned
 * == what the dead producers never collected.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "torture.h"

#define PRODUCERS 300
#define AT_ONCE 4
#define KILL_MAX_US 20000u
#define SLOTS 64u
#define REFILL_MS 3000u

/* Written by each producer for the parent: what it saw before it died. */
struct prod_rec {
  _Atomic uint32_t collected;   /* results checked, counted after the check */
  _Atomic uint32_t max_wait_ms; /* longest successful submit/wait/collect */
  _Atomic int err;              /* unexpected error (negative errno) */
  _Atomic uint32_t bad;         /* results not ours or with a wrong output */
  _Atomic int phase;            /* where it is: see phase_names */
};
static const char *phase_names[] = {"start", "open", "submit", "wait", "other"};
static struct prod_rec *rec;

/* "i:<producer>:<n>" echoes; "s<ms>:<producer>:<n>" sleeps first. */
static int pk_handler(void *arg, const void *in, size_t n, void *out,
                      size_t cap, size_t *out_len) {
  (void)arg;
  const char *s = in;
  if (n > cap || n < 2) return EINVAL;
  if (s[0] == 's') tt_sleep_us((uint64_t)(s[1] - '0') * 1000u);
  memcpy(out, in, n);
  *out_len = n;
  return 0;
}

static void note_wait(struct prod_rec *me, uint64_t t0) {
  uint32_t ms = (uint32_t)tt_ms_since(t0);
  if (ms > atomic_load(&me->max_wait_ms)) atomic_store(&me->max_wait_ms, ms);
}

/* Check a result against the input we kept for its id; 0 if right. */
static int check(const fp_result *res, uint64_t *ids, char (*txt)[32]) {
  for (unsigned k = 0; k < SLOTS; k++) {
    if (ids[k] != res->id || ids[k] == 0) continue;
    ids[k] = 0;
    size_t n = strlen(txt[k]);
    return res->status == FP_OK && res->output_len == n &&
                   memcmp(res->output, txt[k], n) == 0
               ? 0
               : -1;
  }
  return -1;
}

/* A producer: attach, then submit and collect until killed. */
__attribute__((noreturn)) static void producer(const char *name, int me_k) {
  struct prod_rec *me = &rec[me_k];
  alarm(10); /* the parent kills us within 20 ms; this bounds a leak */
  uint64_t rng = tt_seed ^ ((uint64_t)me_k << 20) ^ 0x9e37u;
  fp_pool *q;
  atomic_store(&me->phase, 1);
  int r = fp_pool_open(&q, name, 0);
  atomic_store(&me->phase, 4);
  if (r != 0) {
    atomic_store(&me->err, r);
    _exit(3);
  }
  static uint64_t ids[SLOTS];
  static char txt[SLOTS][32];
  fp_result res;
  fp_result_init(&res);
  for (unsigned n = 0;; n++) {
    /* Submit a few: instant or 1..3 ms, NOWAIT, 20 ms or FOREVER. */
    unsigned burst = 1 + (unsigned)tt_rand_below(&rng, 8);
    for (unsigned b = 0; b < burst; b++, n++) {
      unsigned k = 0;
      while (k < SLOTS && ids[k] != 0) k++;
      if (k == SLOTS) break;
      unsigned kind = (unsigned)tt_rand_below(&rng, 4);
      int len = kind == 0
                    ? snprintf(txt[k], 32, "s%u:%d:%u",
                               1 + (unsigned)tt_rand_below(&rng, 3), me_k, n)
                    : snprintf(txt[k], 32, "i:%d:%u", me_k, n);
      int tmo = (int)tt_rand_below(&rng, 3);
      tmo = tmo == 0 ? FP_NOWAIT : tmo == 1 ? 20 : FP_FOREVER;
      uint64_t t0 = tt_now_ns();
      atomic_store(&me->phase, 2);
      r = fp_submit(q, txt[k], (size_t)len, tmo, &ids[k]);
      atomic_store(&me->phase, 4);
      /* -EDEADLK: its share holds only its own finished results. */
      if (r == -EAGAIN || r == -ETIMEDOUT || r == -EDEADLK) {
        ids[k] = 0;
        break;
      }
      if (r != 0) {
        atomic_store(&me->err, r);
        _exit(4);
      }
      note_wait(me, t0);
    }
    /* Then take some back: any, a given one, or whatever is done. */
    unsigned takes = (unsigned)tt_rand_below(&rng, 6);
    for (unsigned t = 0; t < takes && fp_pending(q) > 0; t++) {
      unsigned how = (unsigned)tt_rand_below(&rng, 3);
      uint64_t t0 = tt_now_ns();
      atomic_store(&me->phase, 3);
      if (how == 0) {
        unsigned k = (unsigned)tt_rand_below(&rng, SLOTS);
        while (ids[k] == 0) k = (k + 1) % SLOTS;
        r = fp_wait(q, ids[k], &res, FP_FOREVER);
      } else {
        r = fp_collect(q, &res, how == 1 ? FP_FOREVER : FP_NOWAIT);
      }
      atomic_store(&me->phase, 4);
      if (r == -ETIMEDOUT) continue;
      if (r != 0) {
        atomic_store(&me->err, r);
        _exit(5);
      }
      note_wait(me, t0);
      if (check(&res, ids, txt) != 0) {
        atomic_fetch_add(&me->bad, 1);
        _exit(6);
      }
      atomic_fetch_add(&me->collected, 1);
    }
  }
}

struct live {
  pid_t pid;
  int k;
  uint64_t kill_at;
};

int tt_producer_kill(void) {
  char name[40];
  tt_pool_name(name, sizeof(name));
  rec = tt_shared(sizeof(struct prod_rec) * PRODUCERS);
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = 2;
  cfg.slots = SLOTS;
  cfg.max_input = 32;
  cfg.max_output = 256;
  cfg.handler = pk_handler;
  pid_t server = tt_serve(name, &cfg, 5000);
  if (server <= 0) return tt_summary("tasks=0");

  uint64_t rng = tt_seed ^ 0x5eedu;
  struct live live[AT_ONCE] = {{0, 0, 0}};
  int started = 0, killed = 0, alive = 0, where[5] = {0};
  uint64_t t_storm = tt_now_ns();
  while (started < PRODUCERS || alive > 0) {
    for (int s = 0; s < AT_ONCE && started < PRODUCERS; s++) {
      if (live[s].pid > 0) continue;
      fflush(NULL);
      pid_t pid = fork();
      if (pid < 0) {
        tt_fail("fork: %s", strerror(errno));
        started = PRODUCERS;
        break;
      }
      if (pid == 0) producer(name, started);
      live[s] = (struct live){pid, started++, 0};
      live[s].kill_at = tt_now_ns() + tt_rand_below(&rng, KILL_MAX_US) * 1000u;
      alive++;
    }
    for (int s = 0; s < AT_ONCE; s++) {
      if (live[s].pid <= 0 || tt_now_ns() < live[s].kill_at) continue;
      kill(live[s].pid, SIGKILL); /* our child, not yet reaped */
      int ph = atomic_load(&rec[live[s].k].phase);
      where[ph >= 0 && ph < 5 ? ph : 4]++;
      int ws;
      while (waitpid(live[s].pid, &ws, 0) < 0 && errno == EINTR) {
      }
      if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL) {
        killed++;
      } else {
        struct prod_rec *pr = &rec[live[s].k];
        tt_fail("producer %d ended by itself (status %#x): error %s, %u bad "
                "result(s)",
                live[s].k, ws, fp_strerror(atomic_load(&pr->err)),
                atomic_load(&pr->bad));
      }
      live[s].pid = 0;
      alive--;
    }
    tt_sleep_us(200);
  }
  double storm_s = (double)(tt_now_ns() - t_storm) / 1e9;
  int ws;
  TT_CHECK(waitpid(server, &ws, WNOHANG) == 0, "the server died in the storm");

  /* The whole capacity comes back (reclaiming is periodic: allow 3 s). */
  fp_pool *p = tt_attach(name, 0);
  uint64_t ids[SLOTS], got = 0, wrong = 0, refill_ms = 0;
  unsigned placed = 0;
  fp_result res;
  fp_result_init(&res);
  if (p != NULL) {
    uint64_t t0 = tt_now_ns();
    /* A lone producer's share: 3/4 of the slots (include/forkpool.h). */
    for (; placed < SLOTS - SLOTS / 4; placed++) {
      char in[32];
      int n = snprintf(in, sizeof(in), "i:fresh:%u", placed);
      uint64_t spent = tt_ms_since(t0);
      int left = spent >= REFILL_MS ? 0 : (int)(REFILL_MS - spent);
      int r = fp_submit(p, in, (size_t)n, left, &ids[placed]);
      if (r != 0) {
        tt_fail("only %u of %u slots came back within %u ms: %s", placed,
                SLOTS - SLOTS / 4, REFILL_MS, fp_strerror(r));
        break;
      }
    }
    refill_ms = tt_ms_since(t0);
    for (unsigned k = 0; k < placed; k++) {
      char want[32];
      int n = snprintf(want, sizeof(want), "i:fresh:%u", k);
      uint64_t spent = tt_ms_since(t0); /* one 5 s budget for them all */
      int r = fp_wait(p, ids[k], &res, spent >= 5000 ? 0 : 5000 - (int)spent);
      if (r == 0 && res.status == FP_OK && res.output_len == (size_t)n &&
          memcmp(res.output, want, (size_t)n) == 0)
        got++;
      else wrong++;
    }
  }
  TT_CHECK(wrong == 0,
           "%llu of the fresh producer's tasks did not come back "
           "ok",
           (unsigned long long)wrong);

  /* Every task accounted for; what the dead never collected is abandoned. */
  fp_stats st;
  memset(&st, 0, sizeof(st));
  if (p != NULL) fp_pool_stats(p, &st);
  uint64_t ended = st.ok + st.failed + st.crashed + st.timeout + st.cancelled;
  uint64_t lost = st.submitted > ended ? st.submitted - ended : 0;
  uint64_t collected = 0, bad = 0, max_wait = 0;
  for (int k = 0; k < PRODUCERS; k++) {
    collected += atomic_load(&rec[k].collected);
    bad += atomic_load(&rec[k].bad);
    if (atomic_load(&rec[k].max_wait_ms) > max_wait)
      max_wait = atomic_load(&rec[k].max_wait_ms);
  }
  /* A producer may die between a delivery and its count: one each. */
  uint64_t most = st.submitted >= placed + collected
                      ? st.submitted - placed - collected
                      : 0;
  TT_CHECK(st.submitted >= placed + collected,
           "submitted %llu < %llu "
           "collected",
           (unsigned long long)st.submitted,
           (unsigned long long)(placed + collected));
  uint64_t least = most > (uint64_t)killed ? most - (uint64_t)killed : 0;
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
  TT_CHECK(st.ok == st.submitted, "%llu task(s) did not end ok",
           (unsigned long long)(st.submitted - st.ok));
  TT_CHECK(st.abandoned >= least && st.abandoned <= most,
           "abandoned %llu, expected %llu..%llu (submitted %llu, collected "
           "%llu + %u)",
           (unsigned long long)st.abandoned, (unsigned long long)least,
           (unsigned long long)most, (unsigned long long)st.submitted,
           (unsigned long long)collected, placed);
  TT_CHECK(bad == 0,
           "%llu result(s) delivered to the wrong producer or "
           "with a wrong output",
           (unsigned long long)bad);
  TT_CHECK(st.clients == 1, "%u producers attached, expected 1 (us)",
           st.clients);
  TT_CHECK(max_wait < 1000, "a producer waited %llu ms in one call",
           (unsigned long long)max_wait);
  fp_result_release(&res);
  fp_pool_free(p);
  kill(server, SIGTERM);
  ws = tt_reap(server, 5000);
  TT_CHECK(ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
           "server did not stop cleanly (status %#x)", ws);
  char in[96];
  snprintf(in, sizeof(in), "%s=%d,%s=%d,%s=%d,%s=%d,%s=%d", phase_names[0],
           where[0], phase_names[1], where[1], phase_names[2], where[2],
           phase_names[3], where[3], phase_names[4], where[4]);
  return tt_summary("tasks=%llu producers=%d kills=%d (in %s) abandoned=%llu "
                    "lost=%llu duplicated=%llu max_stall_ms=%llu "
                    "refill_ms=%llu storm_s=%.1f",
                    (unsigned long long)st.submitted, started, killed, in,
                    (unsigned long long)st.abandoned, (unsigned long long)lost,
                    (unsigned long long)bad, (unsigned long long)max_wait,
                    (unsigned long long)refill_ms, storm_s);
}
