/*
 * Minimal reproduction of the stall `torture crash-loop` finds once tasks
 * stop crashing: while one row of the pool waits out its crash-loop backoff
 * (no process), fp__wake_kick() still counts that row as an awake worker
 * (awake = workers_target - ready_sleepers), decides that "a busy worker
 * will take the task sooner than a sleeper wakes", and wakes nobody. The
 * one live worker sleeps on work_hint, so queued tasks wait for its 1 s
 * timed sleep (or the supervisor's tick) although it is idle.
 *
 * Here: 2 workers; 12 crashing tasks put both rows into backoff; then
 * batches of 8 trivial tasks, one batch at a time. A batch takes
 * microseconds on a live worker; one that starts while a worker is alive
 * and idle and the other row waits out its backoff takes until that row
 * is respawned or the live worker's 1 s sleep slice ends.
 *
 * Build: gcc -std=gnu11 -D_GNU_SOURCE -O2 -Iinclude -o backoff_stall \
 *          tests/torture/repro/backoff_stall.c build/libforkpool.a \
 *          -lpthread -lrt -ldl
 * Run:   ./backoff_stall  -> e.g. "batch 1: 427.6 ms (workers alive: 1 at
 *        its start, 2 at its end)", exit 1.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "forkpool.h"

static int handler(void *arg, const void *in, size_t n, void *out, size_t cap,
                   size_t *out_len) {
  (void)arg;
  (void)out;
  (void)cap;
  if (n == 4 && memcmp(in, "segv", 4) == 0) {
    volatile int *volatile nowhere = NULL;
    *nowhere = 1;
  }
  *out_len = 0;
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(void) {
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = 2;
  cfg.slots = 8;
  cfg.handler = handler;
  fp_pool *p;
  if (fp_pool_start(&p, &cfg) != 0) return 2;
  fp_result res;
  fp_result_init(&res);
  uint64_t id;
  for (int k = 0; k < 12; k++) { /* streak >= 2: restarts back off */
    fp_submit(p, "segv", 4, FP_FOREVER, &id);
    fp_wait(p, id, &res, FP_FOREVER);
  }
  double worst = 0;
  for (int b = 0; b < 6; b++) {
    fp_stats st;
    fp_pool_stats(p, &st);
    unsigned alive0 = st.alive;
    double t0 = now_ms();
    for (int k = 0; k < 8; k++) fp_submit(p, "ok", 2, FP_FOREVER, &id);
    while (fp_collect(p, &res, FP_FOREVER) == 0 && fp_pending(p) > 0) {
    }
    double ms = now_ms() - t0;
    fp_pool_stats(p, &st);
    printf("batch %d: %.1f ms (workers alive: %u at its start, %u at its "
           "end)\n",
           b, ms, alive0, st.alive);
    if (alive0 >= 1 && ms > worst) worst = ms;
  }
  fp_result_release(&res);
  fp_pool_free(p);
  return worst > 100 ? 1 : 0;
}
