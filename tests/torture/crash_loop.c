/*
 * crash-loop: for 10 s every task segfaults its worker (a private pool of
 * 2 workers, 2 tasks kept in flight). Every task must end crashed by
 * SIGSEGV; the supervisor must stay cheap (backoff: its CPU time, from
 * /proc/PID/stat, under 10% of a core) with restarts capped at 1 s apart;
 * and once tasks stop crashing, 1000 normal tasks must all end ok, soon.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "torture.h"

#define WORKERS 2u
#define SLOTS 8u
#define WINDOW 2u
#define LOOP_MS 10000u
#define CPU_LIMIT_PCT 10.0
#define GAP_LIMIT_MS 2000u /* restarts back off to 1 s at most */
#define NORMAL 1000u
#define NORMAL_LIMIT_MS 5000u
#define NORMAL_GAP_MS 200u /* once one worker runs them, tasks flow */

/* "segv" writes through a null pointer; anything else is echoed. */
static int cl_handler(void *arg, const void *in, size_t n, void *out,
                      size_t cap, size_t *out_len) {
  (void)arg;
  if (n == 4 && memcmp(in, "segv", 4) == 0) {
    volatile int *volatile nowhere = NULL;
    *nowhere = 1;
  }
  if (n > cap) return EINVAL;
  memcpy(out, in, n);
  *out_len = n;
  return 0;
}

/* Ids in flight: a result must be one of them, once. */
static struct tt_flight fl;
static uint64_t dups;

static void fl_take(uint64_t id) {
  uint64_t v;
  if (!tt_flight_take(&fl, id, &v)) dups++;
}

int tt_crash_loop(void) {
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = WORKERS;
  cfg.slots = SLOTS;
  cfg.max_input = 32;
  cfg.max_output = 4096; /* room for a crash report */
  cfg.handler = cl_handler;
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

  /* Phase 1: nothing but crashes, for LOOP_MS. */
  long cpu0 = tt_cpu_ms(sup);
  uint64_t t0 = tt_now_ns(), last = t0;
  uint64_t sent = 0, crashed = 0, other = 0, max_gap = 0;
  while (fl.n > 0 || tt_ms_since(t0) < LOOP_MS) {
    while (fl.n < WINDOW && tt_ms_since(t0) < LOOP_MS) {
      uint64_t id;
      r = fp_submit(p, "segv", 4, FP_NOWAIT, &id);
      if (r != 0) {
        TT_CHECK(r == -EAGAIN, "fp_submit: %s", fp_strerror(r));
        break;
      }
      sent++;
      tt_flight_put(&fl, id, 0);
    }
    r = fp_collect(p, &res, 500);
    if (r == -ETIMEDOUT && tt_ms_since(last) < 5000) continue;
    if (r != 0) {
      tt_fail("fp_collect: %s after %llu ms without a result", fp_strerror(r),
              (unsigned long long)tt_ms_since(last));
      break;
    }
    uint64_t gap = tt_ms_since(last);
    if (gap > max_gap) max_gap = gap;
    last = tt_now_ns();
    fl_take(res.id);
    if (res.status == FP_CRASHED && res.signal == SIGSEGV) {
      crashed++;
    } else {
      other++;
      tt_fail("a segv task ended %s (signal %d, exit %d, code %d)",
              fp_status_name(res.status), res.signal, res.exit_code, res.code);
    }
  }
  uint64_t loop_ms = tt_ms_since(t0);
  long cpu1 = tt_cpu_ms(sup);
  double cpu_pct = cpu0 >= 0 && cpu1 >= 0 && loop_ms > 0
                       ? 100.0 * (double)(cpu1 - cpu0) / (double)loop_ms
                       : -1;
  TT_CHECK(cpu_pct >= 0 && cpu_pct < CPU_LIMIT_PCT,
           "supervisor CPU %.1f%% "
           "of a core during the crash loop (limit %.0f%%)",
           cpu_pct, CPU_LIMIT_PCT);
  TT_CHECK(crashed == sent && other == 0,
           "%llu of %llu crash tasks ended "
           "crashed",
           (unsigned long long)crashed, (unsigned long long)sent);
  TT_CHECK(max_gap < GAP_LIMIT_MS,
           "%llu ms without a result during the "
           "crash loop",
           (unsigned long long)max_gap);

  /* Phase 2: normal tasks; the pool must get back to work. */
  uint64_t t1 = tt_now_ns(), first_ok_ms = 0, ok = 0, bad = 0, nsent = 0;
  uint64_t normal_gap = 0;
  while ((nsent < NORMAL || fl.n > 0) && tt_ms_since(t1) < NORMAL_LIMIT_MS) {
    while (nsent < NORMAL && fl.n < SLOTS) {
      char in[32];
      int n = snprintf(in, sizeof(in), "n%llu", (unsigned long long)nsent);
      uint64_t id;
      if (fp_submit(p, in, (size_t)n, FP_NOWAIT, &id) != 0) break;
      nsent++;
      tt_flight_put(&fl, id, 0);
    }
    if (fp_collect(p, &res, 250) != 0) continue;
    fl_take(res.id);
    if (res.status == FP_OK && res.output_len > 1 && res.output[0] == 'n') {
      if (ok > 0 && tt_ms_since(last) > normal_gap)
        normal_gap = tt_ms_since(last);
      last = tt_now_ns();
      if (ok++ == 0) first_ok_ms = tt_ms_since(t1);
    } else {
      bad++;
    }
  }
  uint64_t normal_ms = tt_ms_since(t1);
  TT_CHECK(ok == NORMAL && bad == 0,
           "after the crash loop %llu of %u "
           "normal tasks ended ok (%llu did not) within %u ms",
           (unsigned long long)ok, NORMAL, (unsigned long long)bad,
           NORMAL_LIMIT_MS);
  TT_CHECK(normal_gap < NORMAL_GAP_MS,
           "after the first normal result, "
           "%llu ms without one (a live worker slept while tasks waited)",
           (unsigned long long)normal_gap);
  TT_CHECK(st.supervisor == sup, "the supervisor changed");
  TT_CHECK(dups == 0, "%llu duplicate or unknown result(s)",
           (unsigned long long)dups);
  fp_pool_stop(p, FP_STOP_DRAIN, 5000);
  fp_pool_stats(p, &st);
  TT_CHECK(st.crashed == crashed && st.ok == ok,
           "stats: crashed %llu ok %llu, we saw %llu and %llu",
           (unsigned long long)st.crashed, (unsigned long long)st.ok,
           (unsigned long long)crashed, (unsigned long long)ok);
  TT_CHECK(st.submitted == sent + nsent, "stats.submitted %llu, sent %llu",
           (unsigned long long)st.submitted,
           (unsigned long long)(sent + nsent));
  TT_CHECK(st.failed + st.timeout + st.cancelled + st.corrupt == 0,
           "stats: failed %llu timeout %llu cancelled %llu corrupt %llu",
           (unsigned long long)st.failed, (unsigned long long)st.timeout,
           (unsigned long long)st.cancelled, (unsigned long long)st.corrupt);
  fp_result_release(&res);
  fp_pool_free(p);
  return tt_summary(
      "tasks=%llu crashed=%llu (%.1f/s) sup_cpu=%.2f%% "
      "max_gap_ms=%llu normal_ok=%llu first_ok_ms=%llu "
      "normal_gap_ms=%llu normal_ms=%llu lost=%llu "
      "duplicated=%llu",
      (unsigned long long)(sent + nsent), (unsigned long long)crashed,
      (double)crashed * 1000.0 / (double)(loop_ms ? loop_ms : 1), cpu_pct,
      (unsigned long long)max_gap, (unsigned long long)ok,
      (unsigned long long)first_ok_ms, (unsigned long long)normal_gap,
      (unsigned long long)normal_ms,
      (unsigned long long)(sent + nsent - crashed - ok - bad - other),
      (unsigned long long)dups);
}
