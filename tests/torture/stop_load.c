/*
 * stop-under-load: a named pool (2 workers, 64 slots, grace 300 ms) with
 * its queue full of 20 ms tasks (up to 640 ms of work: each producer fills
 * what its share lets it) and another producer process blocked in
 * fp_submit, its own share full. SIGTERM the server: new
 * submits get -ESHUTDOWN at once, the blocked submitter too, every queued
 * task gets exactly one result, ok or cancelled (the drain runs some, the
 * grace cuts the rest), the server exits 0 within the grace, its workers
 * are gone, and the segment is removed (fp_pool_open: ENOENT).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "torture.h"

#define ROUNDS 3
#define WORKERS 2u
#define SLOTS 64u
#define GRACE_MS 300
#define TASK_MS 20u

struct sl_shared {
  _Atomic int full;       /* the parent filled the queue */
  _Atomic int sub_full;   /* the submitter filled its share: it blocks next */
  _Atomic unsigned sub_n; /* tasks it submitted before blocking */
  _Atomic int err;        /* what the blocked fp_submit returned */
  _Atomic uint64_t t_err;
};
static struct sl_shared *sh;

/* Sleeps TASK_MS, then echoes. */
static int sl_handler(void *arg, const void *in, size_t n, void *out,
                      size_t cap, size_t *out_len) {
  (void)arg;
  tt_sleep_us(TASK_MS * 1000u);
  if (n > cap) return EINVAL;
  memcpy(out, in, n);
  *out_len = n;
  return 0;
}

__attribute__((noreturn)) static void blocked_submitter(const char *name) {
  alarm(20);
  fp_pool *q;
  uint64_t id;
  if (fp_pool_open(&q, name, 0) != 0) _exit(3);
  while (!atomic_load(&sh->full)) tt_sleep_us(1000);
  /* What its share (or the slots left) allows; then it blocks. */
  unsigned n = 0;
  while (n < SLOTS && fp_submit(q, "mine", 4, FP_NOWAIT, &id) == 0) n++;
  atomic_store(&sh->sub_n, n);
  atomic_store(&sh->sub_full, 1);
  int r = fp_submit(q, "late", 4, FP_FOREVER, &id);
  atomic_store(&sh->t_err, tt_now_ns());
  atomic_store(&sh->err, r);
  _exit(0);
}

struct tally {
  uint64_t tasks, ok, cancelled, other, dup, lost, exit_ms, max_block_ms;
};

static void round_once(int round, uint64_t *rng, struct tally *t) {
  char name[40];
  tt_pool_name(name, sizeof(name));
  memset(sh, 0, sizeof(*sh));
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = WORKERS;
  cfg.slots = SLOTS;
  cfg.max_input = 32;
  cfg.max_output = 256;
  cfg.handler = sl_handler;
  pid_t server = tt_serve(name, &cfg, GRACE_MS);
  if (server <= 0) return;
  fflush(NULL);
  pid_t sub = fork();
  if (sub == 0) blocked_submitter(name);
  fp_pool *p = tt_attach(name, 0);
  if (p == NULL) {
    tt_kill_reap(&sub);
    tt_kill_reap(&server);
    return;
  }
  /* Fill every slot; keep each id and its text. */
  static uint64_t ids[SLOTS + 1];
  unsigned n = 0;
  for (; n < SLOTS; n++) {
    char in[32];
    int len = snprintf(in, sizeof(in), "r%dt%u", round, n);
    if (fp_submit(p, in, (size_t)len, FP_NOWAIT, &ids[n]) != 0) break;
  }
  /* Its share: two producers attached, max(1, 48 / 2) = 24 at least. */
  TT_CHECK(n >= (SLOTS - SLOTS / 4) / 2 && n <= SLOTS - SLOTS / 4,
           "round %d: %u slots taken, want its share", round, n);
  pid_t wpid[WORKERS];
  tt_worker_pids(p, wpid, WORKERS);
  int wfd[WORKERS];
  for (unsigned w = 0; w < WORKERS; w++) wfd[w] = tt_pidfd(wpid[w]);
  atomic_store(&sh->full, 1);
  for (int k = 0; k < 2000 && !atomic_load(&sh->sub_full); k++)
    tt_sleep_us(1000);
  tt_sleep_us(30000 + tt_rand_below(rng, 40000)); /* it blocks; 2 run */

  uint64_t t_term = tt_now_ns();
  kill(server, SIGTERM);
  char late[32];
  int late_len = snprintf(late, sizeof(late), "r%dt%u", round, n);
  int r = fp_submit(p, late, (size_t)late_len, FP_NOWAIT, &ids[n]);
  for (int k = 0; k < 100 && r == -EAGAIN; k++) {
    tt_sleep_us(1000); /* the drain starts when the server reads SIGTERM */
    r = fp_submit(p, late, (size_t)late_len, FP_NOWAIT, &ids[n]);
  }
  if (r == 0) n++; /* a slot freed before the drain began: it counts */
  else
    TT_CHECK(r == -ESHUTDOWN, "round %d: submit after SIGTERM gave %s", round,
             fp_strerror(r));

  /* Every task: exactly one result, ok (right output) or cancelled. */
  fp_result res;
  fp_result_init(&res);
  unsigned got = 0;
  while ((r = fp_collect(p, &res, 3000)) == 0) {
    got++;
    unsigned k = 0;
    while (k < n && ids[k] != res.id) k++;
    if (k == n) {
      t->dup++;
      continue;
    }
    ids[k] = 0;
    char want[32];
    int len = snprintf(want, sizeof(want), "r%dt%u", round, k);
    if (res.status == FP_OK && res.output_len == (size_t)len &&
        memcmp(res.output, want, (size_t)len) == 0)
      t->ok++;
    else if (res.status == FP_CANCELLED) t->cancelled++;
    else t->other++;
  }
  TT_CHECK(r == -ENOENT, "round %d: fp_collect ended with %s", round,
           fp_strerror(r));
  t->tasks += n;
  t->lost += n > got ? n - got : 0;

  int ws = tt_reap(server, 5000);
  uint64_t exit_ms = tt_ms_since(t_term);
  if (exit_ms > t->exit_ms) t->exit_ms = exit_ms;
  TT_CHECK(ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
           "round %d: server status %#x after SIGTERM", round, ws);
  TT_CHECK(exit_ms < GRACE_MS + 1000u,
           "round %d: server took %llu ms to "
           "stop (grace %d ms)",
           round, (unsigned long long)exit_ms, GRACE_MS);
  ws = tt_reap(sub, 3000);
  r = atomic_load(&sh->err);
  uint64_t te = atomic_load(&sh->t_err);
  uint64_t block_ms = te > t_term ? (te - t_term) / 1000000u : 0;
  if (block_ms > t->max_block_ms) t->max_block_ms = block_ms;
  TT_CHECK(ws >= 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && te != 0 &&
               r == -ESHUTDOWN && block_ms < GRACE_MS + 1000u,
           "round %d: the blocked submitter got %s after %llu ms (status "
           "%#x), expected ESHUTDOWN",
           round, fp_strerror(r), (unsigned long long)block_ms, ws);
  for (unsigned w = 0; w < WORKERS; w++) {
    TT_CHECK(tt_pidfd_wait_exit(wfd[w], 1000),
             "round %d: worker %d "
             "outlived its server",
             round, (int)wpid[w]);
    if (wfd[w] >= 0) close(wfd[w]);
  }
  fp_stats st;
  fp_pool_stats(p, &st); /* still mapped: the counters at the end */
  TT_CHECK(st.submitted == st.ok + st.cancelled &&
               st.submitted == n + atomic_load(&sh->sub_n) &&
               st.failed + st.crashed + st.timeout == 0,
           "round %d: stats submitted %llu ok %llu cancelled %llu failed "
           "%llu crashed %llu timeout %llu",
           round, (unsigned long long)st.submitted, (unsigned long long)st.ok,
           (unsigned long long)st.cancelled, (unsigned long long)st.failed,
           (unsigned long long)st.crashed, (unsigned long long)st.timeout);
  fp_result_release(&res);
  fp_pool_free(p);
  fp_pool *gone = NULL;
  r = fp_pool_open(&gone, name, FP_OPEN_MONITOR);
  TT_CHECK(r == -ENOENT, "round %d: after the stop, attaching gave %s", round,
           fp_strerror(r));
  if (r == 0) fp_pool_free(gone);
}

int tt_stop_under_load(void) {
  sh = tt_shared(sizeof(*sh));
  uint64_t rng = tt_seed ^ 0x7u;
  struct tally t;
  memset(&t, 0, sizeof(t));
  for (int r = 0; r < ROUNDS; r++) round_once(r, &rng, &t);
  TT_CHECK(t.other == 0, "%llu task(s) ended neither ok nor cancelled",
           (unsigned long long)t.other);
  TT_CHECK(t.lost == 0 && t.dup == 0,
           "%llu task(s) without a result, %llu "
           "unknown result(s)",
           (unsigned long long)t.lost, (unsigned long long)t.dup);
  TT_CHECK(t.ok > 0 && t.cancelled > 0,
           "ok %llu cancelled %llu: the drain "
           "should finish some and the grace cut the rest",
           (unsigned long long)t.ok, (unsigned long long)t.cancelled);
  return tt_summary("rounds=%d tasks=%llu ok=%llu cancelled=%llu lost=%llu "
                    "duplicated=%llu max_exit_ms=%llu max_shutdown_ms=%llu",
                    ROUNDS, (unsigned long long)t.tasks,
                    (unsigned long long)t.ok, (unsigned long long)t.cancelled,
                    (unsigned long long)t.lost, (unsigned long long)t.dup,
                    (unsigned long long)t.exit_ms,
                    (unsigned long long)t.max_block_ms);
}
