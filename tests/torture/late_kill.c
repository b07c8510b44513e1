/*
 * late-kill: timeout kills aimed at tasks that finish right at their limit
 * (issue 13.1). A private pool of 2 workers with a 20 ms limit runs, for
 * 4 s, tasks of which half spin 0-2 ms, a third 17-23 ms (around the
 * limit) and a sixth 18.5-19.8 ms then return 2 MiB of output (whose check
 * value the worker computes after its clock read: the supervisor's timeout
 * check then often comes while the worker publishes a result it finished
 * in time), 4 in flight. The supervisor's decision to kill and a task's end
 * race on every near-limit task. Every task must end ok or timeout, never crashed
 * (a kill that landed on the next task); a task whose handler measured
 * itself past the limit must not end ok; none lost or duplicated. The
 * summary counts the kills that found the worker idle because its task had
 * just finished in time (the supervisor logs them).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "torture.h"

#define WORKERS 2u
#define SLOTS 16u
#define WINDOW 4u
#define LIMIT_MS 20u
#define LOOP_MS 4000u
#define BIG_OUT (2u << 20)

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Input: a uint32_t of microseconds to spin, plus a byte: big output. Output:
 * the ns it spun, then (big) whatever fills BIG_OUT bytes.
 */
static int lk_handler(void *arg, const void *in, size_t n, void *out,
                      size_t cap, size_t *out_len) {
  (void)arg;
  uint32_t us;
  if ((n != sizeof(us) && n != sizeof(us) + 1) || cap < BIG_OUT) return EINVAL;
  memcpy(&us, in, sizeof(us));
  uint64_t t0 = mono_ns(), spun;
  while ((spun = mono_ns() - t0) < (uint64_t)us * 1000u) {
  }
  memcpy(out, &spun, sizeof(spun));
  *out_len = n > sizeof(us) ? BIG_OUT : sizeof(spun);
  return 0;
}

/* Supervisor events, counted in memory shared with the supervisor. */
struct lk_counts {
  atomic_uint idle_kills, crash_loops;
};
static struct lk_counts *counts;

static void lk_log(void *ctx, fp_log_level level, const char *msg) {
  (void)ctx;
  (void)level;
  if (strstr(msg, "killed idle") != NULL)
    atomic_fetch_add(&counts->idle_kills, 1);
  if (strstr(msg, "crash loop") != NULL)
    atomic_fetch_add(&counts->crash_loops, 1);
}

static struct tt_flight fl;
static uint64_t dups;

int tt_late_kill(void) {
  counts = tt_shared(sizeof(*counts));
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = WORKERS;
  cfg.slots = SLOTS;
  cfg.max_input = 16;
  cfg.max_output = BIG_OUT; /* room for a hang report too */
  cfg.timeout_ms = LIMIT_MS;
  cfg.handler = lk_handler;
  cfg.log = lk_log;
  fp_pool *p;
  int r = fp_pool_start(&p, &cfg);
  if (r != 0) {
    tt_fail("fp_pool_start: %s", fp_strerror(r));
    return tt_summary("tasks=0");
  }
  fp_result res;
  fp_result_init(&res);
  uint64_t rnd = tt_seed | 1;
  uint64_t t0 = tt_now_ns(), last = t0;
  uint64_t sent = 0, ok = 0, near_ok = 0, timeout = 0, other = 0;
  uint64_t overran_ok = 0, big_ok = 0; /* of ok */
  while (fl.n > 0 || tt_ms_since(t0) < LOOP_MS) {
    while (fl.n < WINDOW && tt_ms_since(t0) < LOOP_MS) {
      unsigned char in[5];
      uint64_t kind = tt_rand_below(&rnd, 6);
      uint32_t us =
          kind < 3 ? (uint32_t)tt_rand_below(&rnd, 2001)
          : kind < 5
              ? (LIMIT_MS - 3) * 1000u + (uint32_t)tt_rand_below(&rnd, 6001)
              : LIMIT_MS * 1000u - 1500u + (uint32_t)tt_rand_below(&rnd, 1301);
      memcpy(in, &us, sizeof(us));
      in[4] = 1;
      uint64_t id;
      r = fp_submit(p, in, kind == 5 ? 5 : 4, FP_NOWAIT, &id);
      if (r != 0) {
        TT_CHECK(r == -EAGAIN, "fp_submit: %s", fp_strerror(r));
        break;
      }
      sent++;
      tt_flight_put(&fl, id, us);
    }
    r = fp_collect(p, &res, 500);
    if (r == -ETIMEDOUT && tt_ms_since(last) < 5000) continue;
    if (r != 0) {
      tt_fail("fp_collect: %s after %llu ms without a result", fp_strerror(r),
              (unsigned long long)tt_ms_since(last));
      break;
    }
    last = tt_now_ns();
    uint64_t us;
    if (!tt_flight_take(&fl, res.id, &us)) {
      dups++;
      continue;
    }
    uint64_t spun = 0;
    if (res.status == FP_OK && res.output_len >= sizeof(spun))
      memcpy(&spun, res.output, sizeof(spun));
    if (res.status == FP_OK) {
      ok++;
      near_ok += us >= (LIMIT_MS - 3) * 1000u;
      big_ok += res.output_len == BIG_OUT;
      if (!TT_CHECK(spun < (uint64_t)LIMIT_MS * 1000000u,
                    "task %llu spun %llu us (asked %llu), past its %u ms "
                    "limit, and ended ok",
                    (unsigned long long)res.id,
                    (unsigned long long)(spun / 1000), (unsigned long long)us,
                    LIMIT_MS))
        overran_ok++;
    } else if (res.status == FP_TIMEOUT) {
      timeout++;
    } else {
      other++;
      tt_fail("task %llu (spin %llu us) ended %s (signal %d, exit %d): "
              "killed for another task's timeout?",
              (unsigned long long)res.id, (unsigned long long)us,
              fp_status_name(res.status), res.signal, res.exit_code);
    }
  }
  fp_pool_stop(p, FP_STOP_DRAIN, 5000);
  fp_stats st;
  fp_pool_stats(p, &st);
  TT_CHECK(st.crashed == 0, "stats: %llu crashed",
           (unsigned long long)st.crashed);
  TT_CHECK(st.submitted == sent, "stats.submitted %llu, sent %llu",
           (unsigned long long)st.submitted, (unsigned long long)sent);
  TT_CHECK(ok + timeout + other == sent, "%llu of %llu results collected",
           (unsigned long long)(ok + timeout + other),
           (unsigned long long)sent);
  TT_CHECK(st.ok == ok && st.timeout == timeout,
           "stats: ok %llu timeout %llu, we saw %llu and %llu",
           (unsigned long long)st.ok, (unsigned long long)st.timeout,
           (unsigned long long)ok, (unsigned long long)timeout);
  TT_CHECK(dups == 0, "%llu duplicate or unknown result(s)",
           (unsigned long long)dups);
  fp_result_release(&res);
  fp_pool_free(p);
  return tt_summary("tasks=%llu ok=%llu (near the limit %llu, big %llu, "
                    "overran %llu) timeout=%llu other=%llu idle_kills=%u "
                    "crash_loop_logs=%u lost=%llu duplicated=%llu",
                    (unsigned long long)sent, (unsigned long long)ok,
                    (unsigned long long)near_ok, (unsigned long long)big_ok,
                    (unsigned long long)overran_ok, (unsigned long long)timeout,
                    (unsigned long long)other, atomic_load(&counts->idle_kills),
                    atomic_load(&counts->crash_loops),
                    (unsigned long long)(sent - ok - timeout - other),
                    (unsigned long long)dups);
}
