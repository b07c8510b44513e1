/*
 * forkpool bench: entry points and the pool it measures (private for one
 * producer, a named pool served by a child process for several).
 */
#ifndef FORKPOOL_CLI_BENCH_H
#define FORKPOOL_CLI_BENCH_H

#include <sys/types.h>

#include "forkpool.h"

#define BENCH_MAX_PRODUCERS 64

int cli_bench_main(int argc, char **argv);
void cli_bench_usage(int to_stderr);

struct bench_run {
  fp_pool *pool; /* private pool, or a monitor view of the named one */
  pid_t server;  /* the serving child, for a named pool; else 0 */
  char name[32]; /* the named pool's name */
};

/*
 * Start the pool to measure: private (named == 0) or named, served by a
 * forked child. Returns 0 or a negative errno with nothing left behind.
 */
int bench_start(struct bench_run *run, const fp_config *cfg, int named);

/* Stop it (drain), reap everything. */
void bench_stop(struct bench_run *run);

#endif /* FORKPOOL_CLI_BENCH_H */
