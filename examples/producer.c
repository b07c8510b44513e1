/*
 * producer: a separate program that attaches to a named pool served by
 * `forkpool serve`, submits a batch of tasks and prints each result.
 *
 * Build: make build/examples/producer
 * Use:   forkpool serve --name jobs --handler build/examples/crashy.so &
 *        build/examples/producer jobs hello segv "sleep 100" world
 *
 * With no TASK arguments it sends a default batch. It prints one line per
 * task, in submission order:
 *   [0] hello -> ok: HELLO
 *   [1] segv -> crashed: SIGSEGV
 * and exits 0 when every task ended ok, 1 when some did not, 2 for usage,
 * 3 when it could not attach or the pool went away.
 *
 * The one rule a producer must keep: a task's slot is freed only when its
 * result is collected. So it never blocks in fp_submit() while all its
 * own results sit uncollected: when the queue is full it collects a result
 * first (fp_collect) and then submits again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sigabbrev_np */
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forkpool.h"

static const char *default_batch[] = {"hello", "segv", "sleep 100", "fail 7",
                                      "world"};

struct task {
  const char *input;
  uint64_t id;
  int done;
  fp_result res;
};

/* Print a result; returns 1 when it is ok. */
static int print_result(size_t i, const struct task *t) {
  const fp_result *r = &t->res;

  printf("[%zu] %s -> %s", i, t->input, fp_status_name(r->status));
  switch (r->status) {
  case FP_OK:
    /* Output is bytes, not text: print at most output_len of them. */
    printf(": %.*s", (int)r->output_len,
           r->output ? (const char *)r->output : "");
    break;
  case FP_FAILED: printf(": code %d", r->code); break;
  case FP_CRASHED:
  case FP_TIMEOUT:
    if (r->signal) /* sigabbrev_np: glibc 2.32 and later */
      printf(": SIG%s",
             sigabbrev_np(r->signal) ? sigabbrev_np(r->signal) : "?");
    else printf(": exit %d", r->exit_code);
    break;
  default: break;
  }
  printf(" (worker %ld, %.3f ms)\n", (long)r->worker, r->run_us / 1000.0);
  return r->status == FP_OK;
}

/* Collect one result (waiting as long as it takes) into its task.
 * Returns 0 or a negative errno. */
static int collect_one(fp_pool *pool, struct task *tasks, size_t n,
                       fp_result *scratch) {
  int err = fp_collect(pool, scratch, FP_FOREVER);
  size_t i;

  if (err < 0) return err;
  for (i = 0; i < n; i++) {
    if (!tasks[i].done && tasks[i].id == scratch->id) {
      fp_result spare = tasks[i].res;

      tasks[i].res = *scratch; /* keep it; reuse the task's old buffer */
      *scratch = spare;
      tasks[i].done = 1;
      return 0;
    }
  }
  return -EPROTO; /* not one of ours: cannot happen */
}

int main(int argc, char **argv) {
  const char **inputs = default_batch;
  size_t n = sizeof default_batch / sizeof default_batch[0];
  size_t i, submitted = 0, collected = 0;
  struct task *tasks;
  fp_result scratch;
  fp_pool *pool;
  int err, all_ok = 1;

  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: %s NAME [TASK ...]\n", argv[0]);
    return 2;
  }
  if (argc > 2) {
    inputs = (const char **)(argv + 2);
    n = (size_t)(argc - 2);
  }
  err = fp_pool_open(&pool, argv[1], 0);
  if (err < 0) {
    fprintf(stderr, "producer: cannot attach to pool '%s': %s\n", argv[1],
            fp_strerror(err));
    return 3;
  }
  tasks = calloc(n, sizeof *tasks);
  if (tasks == NULL) {
    fprintf(stderr, "producer: out of memory\n");
    fp_pool_free(pool);
    return 1;
  }
  fp_result_init(&scratch);
  for (i = 0; i < n; i++) {
    tasks[i].input = inputs[i];
    fp_result_init(&tasks[i].res);
  }

  /* Submit everything, collecting whenever the queue is full. */
  err = 0;
  while (submitted < n && err == 0) {
    const char *in = tasks[submitted].input;

    err = fp_submit(pool, in, strlen(in), FP_NOWAIT, &tasks[submitted].id);
    if (err == 0) {
      submitted++;
    } else if (err == -EAGAIN && collected < submitted) {
      err = collect_one(pool, tasks, n, &scratch);
      collected += err == 0;
    } else if (err == -EAGAIN) {
      /* Full of other producers' tasks: wait for a slot. */
      err = fp_submit(pool, in, strlen(in), FP_FOREVER, &tasks[submitted].id);
      submitted += err == 0;
    }
  }
  while (err == 0 && collected < submitted) {
    err = collect_one(pool, tasks, n, &scratch);
    collected += err == 0;
  }
  if (err < 0)
    fprintf(stderr, "producer: pool '%s': %s\n", argv[1], fp_strerror(err));

  /* Print what came back, in submission order. */
  for (i = 0; i < n; i++) {
    if (tasks[i].done) all_ok &= print_result(i, &tasks[i]);
    else all_ok = 0;
    fp_result_release(&tasks[i].res);
  }
  fp_result_release(&scratch);
  free(tasks);
  fp_pool_free(pool); /* detach; the pool runs on */
  if (err == -EPIPE || err == -ESHUTDOWN) return 3;
  return err < 0 || !all_ok ? 1 : 0;
}
