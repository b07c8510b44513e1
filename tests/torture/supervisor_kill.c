/*
 * supervisor-kill: a named pool (2 workers, 8 slots) under load: 4
 * producer processes hold a long task each (2 running, 2 queued), then
 * two block in fp_submit (each holds its share: max(1, 6 / 4) = 1) and two
 * in fp_wait. SIGKILL
 * the server. Every producer must get -EPIPE within a second of the kill,
 * every worker must be gone within a second, the stale segment must refuse
 * producers (-ECONNREFUSED), and the name must be served again: each round
 * serves the name the previous round's dead server left behind.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "torture.h"

#define ROUNDS 5
#define NPROD 4
#define WORKERS 2u
#define SLOTS 8u /* a share of max(1, (8 - 8/4) / NPROD) = 1 task each */
#define LIMIT_MS 1000u

struct sk_shared {
  _Atomic int ready;       /* producers holding their tasks */
  _Atomic uint64_t t_kill; /* CLOCK_MONOTONIC ns of the SIGKILL */
  struct {
    _Atomic int err; /* what the blocked call returned */
    _Atomic uint64_t t_err;
  } prod[NPROD];
};
static struct sk_shared *sh;

/* "hang": run until killed (10 s at most: a bound, never reached). */
static int sk_handler(void *arg, const void *in, size_t n, void *out,
                      size_t cap, size_t *out_len) {
  (void)arg;
  if (n == 4 && memcmp(in, "hang", 4) == 0)
    for (int k = 0; k < 1000; k++) tt_sleep_us(10000);
  if (n > cap) return EINVAL;
  memcpy(out, in, n);
  *out_len = n;
  return 0;
}

__attribute__((noreturn)) static void producer(const char *name, int k) {
  alarm(20);
  fp_pool *q;
  uint64_t id[3];
  if (fp_pool_open(&q, name, 0) != 0 ||
      fp_submit(q, "hang", 4, 5000, &id[0]) != 0)
    _exit(3);
  atomic_fetch_add(&sh->ready, 1);
  while (atomic_load(&sh->ready) < NPROD) tt_sleep_us(1000); /* all 4 */
  int r;
  if (k % 2 == 0) {
    r = fp_submit(q, "late", 4, FP_FOREVER, &id[2]); /* its share is full */
  } else {
    fp_result res;
    fp_result_init(&res);
    r = fp_wait(q, id[0], &res, FP_FOREVER); /* it hangs, or is queued */
  }
  atomic_store(&sh->prod[k].t_err, tt_now_ns());
  atomic_store(&sh->prod[k].err, r);
  _exit(0);
}

/* One round; its figures go through the pointers. */
static void round_once(const char *name, int round, uint64_t *rng,
                       uint64_t *max_epipe, uint64_t *max_gone, int *epipes) {
  memset(sh, 0, sizeof(*sh));
  if (round > 0) {
    fp_pool *stale = NULL;
    int r = fp_pool_open(&stale, name, 0);
    TT_CHECK(r == -ECONNREFUSED,
             "round %d: attaching to the dead server's "
             "segment gave %s, expected ECONNREFUSED",
             round, fp_strerror(r));
    if (r == 0) fp_pool_free(stale);
  }
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = WORKERS;
  cfg.slots = SLOTS;
  cfg.max_input = 16;
  cfg.max_output = 256;
  cfg.handler = sk_handler;
  pid_t server = tt_serve(name, &cfg, 1000);
  if (server <= 0) {
    tt_fail("round %d: the name could not be served again", round);
    return;
  }
  pid_t prod[NPROD];
  for (int k = 0; k < NPROD; k++) {
    fflush(NULL);
    prod[k] = fork();
    if (prod[k] == 0) producer(name, k);
  }
  uint64_t t0 = tt_now_ns();
  while (atomic_load(&sh->ready) < NPROD && tt_ms_since(t0) < 5000)
    tt_sleep_us(1000);
  TT_CHECK(atomic_load(&sh->ready) == NPROD,
           "round %d: producers not "
           "ready",
           round);
  /* Let them block (submitters sleep on the queue, waiters on results). */
  tt_sleep_us(50000 + tt_rand_below(rng, 100000));
  int wfd[WORKERS];
  fp_pool *mon = tt_attach(name, FP_OPEN_MONITOR);
  pid_t wpid[WORKERS] = {0};
  if (mon != NULL) {
    tt_worker_pids(mon, wpid, WORKERS);
    fp_pool_free(mon);
  }
  for (unsigned w = 0; w < WORKERS; w++) wfd[w] = tt_pidfd(wpid[w]);

  uint64_t t_kill = tt_now_ns();
  atomic_store(&sh->t_kill, t_kill);
  kill(server, SIGKILL);
  tt_reap(server, 5000);

  for (unsigned w = 0; w < WORKERS; w++) {
    if (wfd[w] < 0) {
      TT_CHECK(wpid[w] > 0, "round %d: no worker in row %u", round, w);
      continue;
    }
    uint64_t spent = tt_ms_since(t_kill);
    int gone = tt_pidfd_wait_exit(
        wfd[w], spent >= LIMIT_MS ? 0 : (int)(LIMIT_MS - spent));
    uint64_t ms = tt_ms_since(t_kill);
    close(wfd[w]);
    if (ms > *max_gone) *max_gone = ms;
    TT_CHECK(gone,
             "round %d: worker %d still alive %u ms after the "
             "supervisor's death",
             round, (int)wpid[w], LIMIT_MS);
  }
  for (int k = 0; k < NPROD; k++) {
    int ws = tt_reap(prod[k], 3000);
    int err = atomic_load(&sh->prod[k].err);
    uint64_t t = atomic_load(&sh->prod[k].t_err);
    uint64_t ms = t > t_kill ? (t - t_kill) / 1000000u : 0;
    if (ws < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || t == 0) {
      tt_fail("round %d: producer %d (%s) never returned (status %#x)", round,
              k, k % 2 ? "fp_wait" : "fp_submit", ws);
      continue;
    }
    if (ms > *max_epipe) *max_epipe = ms;
    *epipes += err == -EPIPE;
    TT_CHECK(err == -EPIPE && ms < LIMIT_MS,
             "round %d: producer %d's %s "
             "returned %s after %llu ms (want EPIPE within %u ms)",
             round, k, k % 2 ? "fp_wait" : "fp_submit", fp_strerror(err),
             (unsigned long long)ms, LIMIT_MS);
  }
}

int tt_supervisor_kill(void) {
  char name[40];
  tt_pool_name(name, sizeof(name));
  sh = tt_shared(sizeof(*sh));
  uint64_t rng = tt_seed ^ 0x5u;
  uint64_t max_epipe = 0, max_gone = 0;
  int epipes = 0;
  for (int r = 0; r < ROUNDS; r++)
    round_once(name, r, &rng, &max_epipe, &max_gone, &epipes);

  /* Served once more: it works, and a clean stop removes the name. */
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = 1;
  cfg.slots = 4;
  cfg.handler = sk_handler;
  const char *reserve = "failed";
  pid_t server = tt_serve(name, &cfg, 1000);
  if (server > 0) {
    fp_pool *p = tt_attach(name, 0);
    uint64_t id;
    fp_result res;
    fp_result_init(&res);
    if (p != NULL && fp_submit(p, "ping", 4, 1000, &id) == 0 &&
        fp_wait(p, id, &res, 3000) == 0 && res.status == FP_OK)
      reserve = "ok";
    fp_result_release(&res);
    fp_pool_free(p);
    kill(server, SIGTERM);
    int ws = tt_reap(server, 5000);
    TT_CHECK(ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
             "the last server did not stop cleanly (status %#x)", ws);
    fp_pool *gone = NULL;
    int r = fp_pool_open(&gone, name, FP_OPEN_MONITOR);
    TT_CHECK(r == -ENOENT, "after a clean stop, attaching gave %s",
             fp_strerror(r));
    if (r == 0) fp_pool_free(gone);
  }
  TT_CHECK(strcmp(reserve, "ok") == 0, "the re-served pool did not run a "
                                       "task");
  return tt_summary("rounds=%d kills=%d producers=%d epipe=%d "
                    "max_epipe_ms=%llu max_workers_gone_ms=%llu "
                    "served_again=%s",
                    ROUNDS, ROUNDS, ROUNDS * NPROD, epipes,
                    (unsigned long long)max_epipe, (unsigned long long)max_gone,
                    reserve);
}
