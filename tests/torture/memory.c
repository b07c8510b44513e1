/*
 * memory: a private pool with max_memory_mb = 64 and timeout_ms = 300.
 * Tasks that allocate until malloc fails end crashed (abort) or failed
 * (ENOMEM) while normal tasks around them stay ok and the supervisor stays
 * the same process; a task that forks 3 children (one busy, two asleep)
 * and hangs ends FP_TIMEOUT, and its children are gone within 1 s.
 * Every allocation is bounded: a task that reaches 512 MiB without a
 * failure stops and reports that the limit was not enforced.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "torture.h"

#define LIMIT_MB 64u
#define CHUNK (1u << 20)
#define MAX_CHUNKS 512u  /* 512 MiB: the limit was not enforced */
#define NOT_ENFORCED 201 /* failed code for that case */
#define KIDS 3
#define GONE_MS 1000u

/* Where the forkhang task leaves its children's pids (mapped before the
 * pool starts, so every worker shares it). */
struct mem_shared {
  _Atomic int nkids;
  pid_t kids[KIDS];
};
static struct mem_shared *sh;

/* Allocate and touch 1 MiB chunks until malloc fails; free them. Returns
 * 1 when it failed (the limit works), 0 when MAX_CHUNKS were reached. */
static int eat_memory(void) {
  static void *chunks[MAX_CHUNKS];
  unsigned n = 0;
  int hit = 0;
  while (n < MAX_CHUNKS) {
    void *c = malloc(CHUNK);
    if (c == NULL) {
      hit = 1;
      break;
    }
    memset(c, 0xa5, CHUNK);
    chunks[n++] = c;
  }
  while (n > 0) free(chunks[--n]);
  return hit;
}

static void fork_and_hang(void) {
  for (int k = 0; k < KIDS; k++) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(20); /* bounds a leak if the timeout kill missed us */
      if (k == 0)
        for (volatile unsigned long x = 0;; x++) {
        } /* busy */
      for (;;) pause();
    }
    sh->kids[k] = pid;
  }
  atomic_store(&sh->nkids, KIDS);
  for (;;) pause(); /* until the timeout kills the process group */
}

static int mem_handler(void *arg, const void *in, size_t n, void *out,
                       size_t cap, size_t *out_len) {
  (void)arg;
  char cmd[32];
  if (n >= sizeof(cmd) || n > cap) return EINVAL;
  memcpy(cmd, in, n);
  cmd[n] = '\0';
  if (strcmp(cmd, "oom-abort") == 0) {
    if (!eat_memory()) return NOT_ENFORCED;
    abort();
  }
  if (strcmp(cmd, "oom-fail") == 0) return eat_memory() ? ENOMEM : NOT_ENFORCED;
  if (strcmp(cmd, "oom-big") == 0) { /* one allocation past the limit */
    void *big = malloc((size_t)LIMIT_MB * 4 * CHUNK);
    free(big);
    return big == NULL ? ENOMEM : NOT_ENFORCED;
  }
  if (strcmp(cmd, "forkhang") == 0) fork_and_hang();
  memcpy(out, in, n);
  *out_len = n;
  return 0;
}

/* Run one command and wait for it; FP_OK with an echo is checked here. */
static fp_status run1(fp_pool *p, const char *cmd, fp_result *res) {
  uint64_t id;
  int r = fp_submit(p, cmd, strlen(cmd), 3000, &id);
  if (r == 0) r = fp_wait(p, id, res, 5000);
  if (r != 0) {
    tt_fail("%s: %s", cmd, fp_strerror(r));
    return (fp_status)-1;
  }
  if (res->status == FP_OK && (res->output_len != strlen(cmd) ||
                               memcmp(res->output, cmd, strlen(cmd)) != 0))
    tt_fail("%s: wrong output", cmd);
  return res->status;
}

int tt_memory(void) {
  sh = tt_shared(sizeof(*sh)); /* before the pool: workers inherit it */
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = 2;
  cfg.slots = 8;
  cfg.max_input = 32;
  cfg.max_output = 4096;
  cfg.timeout_ms = 300;
  cfg.max_memory_mb = LIMIT_MB;
  cfg.handler = mem_handler;
  fp_pool *p;
  int r = fp_pool_start(&p, &cfg);
  if (r != 0) {
    tt_fail("fp_pool_start: %s", fp_strerror(r));
    return tt_summary("tasks=0");
  }
  fp_stats st;
  fp_pool_stats(p, &st);
  pid_t sup = st.supervisor;
  fp_result res;
  fp_result_init(&res);
  unsigned ok = 0, oom = 0, oom_crashed = 0, oom_failed = 0, tasks = 0;
  static const char *plan[] = {"ok-a", "oom-abort", "ok-b", "oom-fail",
                               "ok-c", "oom-big",   "ok-d"};
  for (int round = 0; round < 4; round++)
    for (size_t k = 0; k < sizeof(plan) / sizeof(plan[0]); k++) {
      fp_status s = run1(p, plan[k], &res);
      tasks++;
      if (strncmp(plan[k], "ok", 2) == 0) {
        ok += s == FP_OK;
        TT_CHECK(s == FP_OK, "%s next to oom tasks ended %s", plan[k],
                 fp_status_name(s));
        continue;
      }
      oom++;
      if (s == FP_CRASHED) oom_crashed++;
      else if (s == FP_FAILED && res.code == ENOMEM) oom_failed++;
      else
        tt_fail("%s ended %s (code %d, signal %d)%s", plan[k],
                fp_status_name(s), res.code, res.signal,
                res.code == NOT_ENFORCED ? ": max_memory_mb not enforced" : "");
    }
  fp_pool_stats(p, &st);
  TT_CHECK(st.supervisor == sup, "the supervisor changed (%d -> %d)", (int)sup,
           (int)st.supervisor);

  /* forkhang: killed at 300 ms with its whole process group. */
  uint64_t id;
  int kfd[KIDS] = {-1, -1, -1};
  uint64_t gone_ms = 0;
  r = fp_submit(p, "forkhang", 8, 3000, &id);
  if (r == 0) {
    tasks++;
    uint64_t t0 = tt_now_ns();
    while (atomic_load(&sh->nkids) < KIDS && tt_ms_since(t0) < 2000)
      tt_sleep_us(1000);
    for (int k = 0; k < KIDS && atomic_load(&sh->nkids) == KIDS; k++)
      kfd[k] = tt_pidfd(sh->kids[k]);
    TT_CHECK(atomic_load(&sh->nkids) == KIDS && kfd[0] >= 0 && kfd[1] >= 0 &&
                 kfd[2] >= 0,
             "the forkhang task's children did not start");
    r = fp_wait(p, id, &res, 5000);
    uint64_t t_end = tt_now_ns();
    TT_CHECK(r == 0 && res.status == FP_TIMEOUT && res.signal == SIGKILL,
             "forkhang ended %s (signal %d), expected timeout by SIGKILL",
             r == 0 ? fp_status_name(res.status) : fp_strerror(r), res.signal);
    for (int k = 0; k < KIDS; k++) {
      if (kfd[k] < 0) continue;
      int gone = tt_pidfd_wait_exit(kfd[k], GONE_MS);
      if (tt_ms_since(t_end) > gone_ms) gone_ms = tt_ms_since(t_end);
      TT_CHECK(gone,
               "child %d of the timed-out task alive %u ms after its "
               "result",
               (int)sh->kids[k], GONE_MS);
      if (!gone) tt_pidfd_kill(kfd[k]); /* exactly that process */
      close(kfd[k]);
    }
  } else {
    tt_fail("submit forkhang: %s", fp_strerror(r));
  }

  for (int k = 0; k < 10; k++) {
    tasks++;
    ok += run1(p, "ok-after", &res) == FP_OK;
  }
  fp_pool_stats(p, &st);
  TT_CHECK(st.supervisor == sup, "the supervisor changed (%d -> %d)", (int)sup,
           (int)st.supervisor);
  fp_pool_stop(p, FP_STOP_DRAIN, 5000);
  fp_pool_stats(p, &st);
  TT_CHECK(ok == 4 * 4 + 10, "%u of %u normal tasks ended ok", ok, 26u);
  TT_CHECK(st.submitted == tasks && st.ok == ok && st.timeout == 1 &&
               st.crashed == oom_crashed && st.failed == oom_failed,
           "stats: submitted %llu ok %llu crashed %llu failed %llu timeout "
           "%llu; we saw %u, %u, %u, %u, 1",
           (unsigned long long)st.submitted, (unsigned long long)st.ok,
           (unsigned long long)st.crashed, (unsigned long long)st.failed,
           (unsigned long long)st.timeout, tasks, ok, oom_crashed, oom_failed);
  fp_result_release(&res);
  fp_pool_free(p);
  return tt_summary(
      "tasks=%u ok=%u oom=%u (crashed=%u failed=%u) "
      "timeout=%llu kids_gone_ms=%llu supervisor=%s",
      tasks, ok, oom, oom_crashed, oom_failed, (unsigned long long)st.timeout,
      (unsigned long long)gone_ms,
      st.supervisor == sup || st.supervisor == 0 ? "same" : "changed");
}
