/*
 * scribble (issue #8): 100000 tasks, 1% of which write random bytes over
 * the shared segment and then segfault (crashy's "scribble"), through a
 * private pool of 2 workers. Every other task must end ok with the right
 * output or corrupt (the documented status for a damaged slot): never a
 * wrong output delivered as ok, never a lost task, never a hang; and the
 * pool keeps serving afterwards.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torture.h"

#define TASKS 100000
#define WINDOW 128

int tt_scribble(void) {
  const char *lib = getenv("TORTURE_CRASHY");
  void *h = dlopen(lib ? lib : "build/examples/crashy.so", RTLD_NOW);
  if (!TT_CHECK(h != NULL, "dlopen crashy.so: %s", dlerror()))
    return tt_summary("not run");
  fp_config cfg;
  fp_config_init(&cfg);
  *(void **)&cfg.handler = dlsym(h, "forkpool_handler");
  cfg.workers = 2;
  cfg.slots = 256;
  cfg.timeout_ms = 5000;
  fp_pool *pool;
  int err = fp_pool_start(&pool, &cfg);
  if (!TT_CHECK(err == 0, "fp_pool_start: %s", fp_strerror(err)))
    return tt_summary("not run");

  struct tt_flight fl = {0};
  fp_result res;
  fp_result_init(&res);
  uint64_t rng = tt_seed | 1;
  unsigned long sent = 0, got = 0, ok = 0, corrupt = 0, wrong = 0, lost = 0,
                scribbles = 0, scribble_crashed = 0, other = 0;
  uint64_t last = tt_now_ns(), max_stall = 0;
  char in[32], want[32];
  while (got < TASKS) {
    while (sent < TASKS && fl.n < WINDOW) {
      int scribble = tt_rand_below(&rng, 100) == 0;
      int n = scribble ? snprintf(in, sizeof(in), "scribble")
                       : snprintf(in, sizeof(in), "t%lu", sent);
      uint64_t id;
      err = fp_submit(pool, in, (size_t)n, FP_NOWAIT, &id);
      if (err == -EAGAIN) break;
      if (!TT_CHECK(err == 0, "fp_submit: %s", fp_strerror(err))) goto out;
      tt_flight_put(&fl, id, scribble ? ~0ull : sent);
      scribbles += scribble;
      sent++;
    }
    err = fp_collect(pool, &res, 5000);
    if (!TT_CHECK(err == 0, "fp_collect after %lu results: %s (hang?)", got,
                  fp_strerror(err)))
      goto out;
    uint64_t now = tt_now_ns();
    if (now - last > max_stall) max_stall = now - last;
    last = now;
    uint64_t seq;
    if (!tt_flight_take(&fl, res.id, &seq)) {
      lost++; /* a result for a task we do not know: duplicate */
      continue;
    }
    got++;
    if (seq == ~0ull) {
      scribble_crashed += res.status == FP_CRASHED;
      continue;
    }
    if (res.status == FP_OK) {
      int n = snprintf(want, sizeof(want), "T%llu", (unsigned long long)seq);
      if (res.output_len == (size_t)n && memcmp(res.output, want, n) == 0) ok++;
      else wrong++;
    } else if (res.status == FP_CORRUPT) {
      corrupt++;
    } else {
      other++;
    }
  }
  (void)TT_CHECK(wrong == 0, "%lu wrong outputs delivered as ok", wrong);
  (void)TT_CHECK(lost == 0, "%lu results for unknown tasks", lost);
  (void)TT_CHECK(other == 0,
                 "%lu non-scribble tasks ended neither ok nor corrupt", other);
  (void)TT_CHECK(max_stall < 1000000000ull, "stalled %llu ms",
                 (unsigned long long)(max_stall / 1000000));
  /* Still serving. */
  for (int k = 0; k < 100; k++) {
    uint64_t id;
    if (fp_submit(pool, "after", 5, 5000, &id) != 0 ||
        fp_wait(pool, id, &res, 5000) != 0 || res.status != FP_OK) {
      tt_fail("the pool does not serve after the run");
      break;
    }
  }
  fp_stats st;
out:
  memset(&st, 0, sizeof(st));
  fp_pool_stats(pool, &st);
  fp_pool_stop(pool, FP_STOP_NOW, 0);
  fp_pool_free(pool);
  fp_result_release(&res);
  return tt_summary("tasks=%d scribbles=%lu (crashed %lu) ok=%lu "
                    "corrupt=%lu wrong_ok=%lu other=%lu detected=%llu "
                    "repairs=%llu max_stall_ms=%llu",
                    TASKS, scribbles, scribble_crashed, ok, corrupt, wrong,
                    other, (unsigned long long)st.corrupt,
                    (unsigned long long)st.repairs,
                    (unsigned long long)(max_stall / 1000000));
}
