/*
 * zerocopy: large tasks through the copying API and the zero-copy one,
 * and how many bytes per second each moves.
 *
 * A private pool with an echo handler (output = input, one memcpy in the
 * worker) runs TASKS tasks of SIZE bytes, WINDOW in flight, first with
 * fp_submit + fp_collect (one copy in, one copy out, in the producer),
 * then with fp_submit_begin / fp_submit_commit + fp_collect_view /
 * fp_view_release (the producer writes and reads the slot in place). In
 * both modes the producer writes a stamp into each page of the input and
 * checks it in each page of the output, so both touch every page, and
 * the library checks every input and result against its check value.
 * Prints one line per mode: tasks/s, MB/s each way (1 MB = 1e6 bytes),
 * the producer's CPU time and minor page faults per task.
 *
 * Usage: zerocopy [copy|view|both] [TASKS] [SIZE] [WORKERS] [WINDOW]
 *   defaults: both 2000 1048576 2 4
 * Build: make build/examples/zerocopy
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "forkpool.h"

#define PAGE 4096u

static int echo(void *arg, const void *in, size_t in_len, void *out,
                size_t out_cap, size_t *out_len) {
  (void)arg;
  if (in_len > out_cap) return ENOBUFS;
  memcpy(out, in, in_len);
  *out_len = in_len;
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* CPU time of this process (the producer), user + system, in seconds. */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* One stamp per page: the task number. */
static void stamp(unsigned char *b, size_t n, uint64_t k) {
  for (size_t off = 0; off + sizeof(k) <= n; off += PAGE)
    memcpy(b + off, &k, sizeof(k));
}

static int stamped(const unsigned char *b, size_t n, uint64_t k) {
  for (size_t off = 0; off + sizeof(k) <= n; off += PAGE) {
    uint64_t v;
    memcpy(&v, b + off, sizeof(v));
    if (v != k) return 0;
  }
  return 1;
}

/* The task number a result carries (its first stamp). */
static uint64_t task_of(const fp_result *res) {
  uint64_t v = 0;
  if (res->output_len >= sizeof(v)) memcpy(&v, res->output, sizeof(v));
  return v;
}

static int check(const fp_result *res, size_t size) {
  if (res->status != FP_OK || res->output_len != size ||
      !stamped(res->output, size, task_of(res))) {
    fprintf(stderr, "zerocopy: bad result: %s, %zu bytes\n",
            fp_status_name(res->status), res->output_len);
    return -EBADMSG;
  }
  return 0;
}

/* Copying API: the input is prepared in a buffer of ours, then copied. */
static int run_copy(fp_pool *pool, unsigned tasks, size_t size,
                    unsigned window) {
  unsigned char *src = malloc(size);
  if (src == NULL) return -ENOMEM;
  memset(src, 0x5a, size);
  fp_result res;
  fp_result_init(&res);
  unsigned sent = 0, got = 0;
  int err = 0;
  while (got < tasks && err == 0) {
    while (sent < tasks && sent - got < window && err == 0) {
      uint64_t id;
      stamp(src, size, sent);
      err = fp_submit(pool, src, size, FP_FOREVER, &id);
      sent++;
    }
    if (err == 0) err = fp_collect(pool, &res, FP_FOREVER);
    if (err == 0) err = check(&res, size);
    got++;
  }
  fp_result_release(&res);
  free(src);
  return err;
}

/* Zero copy: the input is written into the slot, the output read there. */
static int run_view(fp_pool *pool, unsigned tasks, size_t size,
                    unsigned window) {
  fp_result res;
  fp_result_init(&res);
  unsigned sent = 0, got = 0;
  int err = 0;
  while (got < tasks && err == 0) {
    while (sent < tasks && sent - got < window && err == 0) {
      void *buf;
      uint64_t id;
      err = fp_submit_begin(pool, size, FP_FOREVER, FP_PRIO_NORMAL, &buf);
      if (err < 0) break;
      stamp(buf, size, sent);
      err = fp_submit_commit(pool, buf, size, FP_FOREVER, &id);
      if (err < 0) fp_submit_abort(pool, buf);
      sent++;
    }
    if (err == 0) err = fp_collect_view(pool, &res, FP_FOREVER);
    if (err == 0) err = check(&res, size);
    got++;
    fp_view_release(pool, &res);
  }
  return err;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "both";
  unsigned tasks = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 2000;
  size_t size = argc > 3 ? (size_t)strtoul(argv[3], NULL, 0) : 1u << 20;
  unsigned workers = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 0) : 2;
  unsigned window = argc > 5 ? (unsigned)strtoul(argv[5], NULL, 0) : 4;
  if (tasks == 0 || size < 8 || workers == 0 || window == 0) {
    fprintf(stderr, "usage: zerocopy [copy|view|both] [TASKS] [SIZE] "
                    "[WORKERS] [WINDOW]\n");
    return 2;
  }
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.workers = workers;
  cfg.slots = window * 2;
  cfg.max_input = size;
  cfg.max_output = size;
  cfg.handler = echo;
  fp_pool *pool;
  int err = fp_pool_start(&pool, &cfg);
  if (err < 0) {
    fprintf(stderr, "zerocopy: fp_pool_start: %s\n", fp_strerror(err));
    return 1;
  }
  static const char *const modes[] = {"copy", "view"};
  for (int m = 0; m < 2 && err == 0; m++) {
    if (strcmp(mode, "both") != 0 && strcmp(mode, modes[m]) != 0) continue;
    /* A warm-up round: every slot's pages touched once. */
    err = m == 0 ? run_copy(pool, cfg.slots, size, window)
                 : run_view(pool, cfg.slots, size, window);
    long f0 = minflt();
    double c0 = cpu_s();
    double t0 = now_s();
    if (err == 0)
      err = m == 0 ? run_copy(pool, tasks, size, window)
                   : run_view(pool, tasks, size, window);
    double dt = now_s() - t0;
    long faults = minflt() - f0;
    double cpu = cpu_s() - c0;
    if (err < 0) {
      fprintf(stderr, "zerocopy: %s: %s\n", modes[m], fp_strerror(err));
      break;
    }
    printf("%s size=%zu workers=%u window=%u tasks=%u: %.0f tasks/s, "
           "%.0f MB/s each way, producer %.0f us CPU/task, "
           "%.2f minor faults/task\n",
           modes[m], size, workers, window, tasks, tasks / dt,
           (double)tasks * (double)size / dt / 1e6, cpu * 1e6 / tasks,
           (double)faults / tasks);
  }
  fp_pool_free(pool);
  return err == 0 ? 0 : 1;
}
