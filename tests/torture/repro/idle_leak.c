/*
 * Minimal reproduction of the slow idle pool `torture worker-kill` finds
 * after its storm: a worker SIGKILLed while it is counted in a shared
 * gauge (hdr->idle_awake while it spins for a task, q.ready_sleepers while
 * it sleeps on work_hint, hdr->wspinners inside fp__spin) never takes its
 * count back. Nothing recomputes those gauges when the supervisor reaps
 * the worker, so they only grow. Once idle_awake >= 1 for good,
 * fp__wake_kick() sees "ready <= idle" and wakes nobody: a task submitted to
 * an idle pool waits for a sleeping worker's 1 s timeout (or the
 * supervisor's tick).
 *
 * Here: one worker, fed a task every 15 us so that it spends most of its
 * time spinning for the next one; SIGKILL it 300 times. Then let the pool
 * idle and time single tasks.
 *
 * Build: gcc -std=gnu11 -D_GNU_SOURCE -O2 -Iinclude -o idle_leak \
 *          tests/torture/repro/idle_leak.c build/libforkpool.a \
 *          -lpthread -lrt -ldl
 * Run:   ./idle_leak  -> "idle round trip after 300 kills: 970.0 ms",
 *        exit 1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "forkpool.h"

static int echo(void *arg, const void *in, size_t n, void *out, size_t cap,
                size_t *out_len) {
  (void)arg;
  (void)in;
  (void)out;
  (void)cap;
  (void)n;
  *out_len = 0;
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

/* Worst round trip of single tasks on an idle pool, in ms. */
static double idle_rtt(fp_pool *p) {
  fp_result res;
  fp_result_init(&res);
  double worst = 0;
  sleep_us(1200000); /* the worker sleeps */
  for (int k = 0; k < 5; k++) {
    sleep_us(30000);
    uint64_t id;
    double t0 = now_ms();
    fp_submit(p, "x", 1, FP_FOREVER, &id);
    fp_wait(p, id, &res, FP_FOREVER);
    if (now_ms() - t0 > worst) worst = now_ms() - t0;
  }
  fp_result_release(&res);
  return worst;
}

int main(void) {
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = 1;
  cfg.slots = 4;
  cfg.handler = echo;
  fp_pool *p;
  if (fp_pool_start(&p, &cfg) != 0) return 2;
  printf("idle round trip before: %.1f ms\n", idle_rtt(p));
  fp_result res;
  fp_result_init(&res);
  srand(1);
  for (int k = 0; k < 300; k++) {
    /* A task every 15 us for 0.3..1.3 ms: between tasks the worker spins
     * (counted in idle_awake and wspinners), most of its time. */
    double end = now_ms() + 0.3 + (rand() % 1000) / 1000.0;
    while (now_ms() < end) {
      uint64_t id;
      if (fp_submit(p, "x", 1, FP_NOWAIT, &id) == 0)
        while (fp_collect(p, &res, FP_NOWAIT) == 0) {
        }
      double until = now_ms() + 0.015;
      while (now_ms() < until) {
      }
    }
    fp_worker_info wi;
    if (fp_pool_worker(p, 0, &wi) == 0 && wi.pid > 0) kill(wi.pid, SIGKILL);
    /* Let it be reaped and replaced; collect what is left. */
    while (fp_collect(p, &res, 50) == 0) {
    }
  }
  fp_result_release(&res);
  double after = idle_rtt(p);
  printf("idle round trip after 300 kills: %.1f ms\n", after);
  fp_pool_free(p);
  return after > 100 ? 1 : 0;
}
