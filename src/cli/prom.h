/*
 * `forkpool stat --prometheus`: a pool's counters, gauges and task-duration
 * histogram in the Prometheus text exposition format (version 0.0.4):
 *
 *   # HELP forkpool_tasks_submitted_total Tasks submitted to the pool.
 *   # TYPE forkpool_tasks_submitted_total counter
 *   forkpool_tasks_submitted_total{pool="jobs"} 52
 *
 * Every metric is named forkpool_*, carries the label pool="NAME", and
 * counters end in _total. The formatter works from the struct below, which
 * stat.c fills from fp_stats and the scoreboard, so it can be tested and
 * reused without a pool.
 */
#ifndef FORKPOOL_CLI_PROM_H
#define FORKPOOL_CLI_PROM_H

#include <stdint.h>

#include "forkpool.h"
#include "output.h"

#define CLI_PROM_MAX_BUCKETS 16

/* A histogram with cumulative buckets, as Prometheus wants them. */
struct cli_prom_hist {
  /* clang-format off */
  unsigned n;                               /* buckets, 0..MAX */
  uint64_t le_us[CLI_PROM_MAX_BUCKETS];     /* upper bounds in microseconds;
                                               UINT64_MAX is +Inf */
  uint64_t count_le[CLI_PROM_MAX_BUCKETS];  /* observations <= le_us[k] */
  uint64_t count;                           /* all observations */
  uint64_t sum_us;                          /* their sum, microseconds */
  /* clang-format on */
};

/* Everything one exposition holds. */
struct cli_prom_pool {
  const char *name; /* the pool label's value */
  const fp_stats *st;
  unsigned busy, idle;      /* scoreboard rows in those states */
  struct cli_prom_hist dur; /* task run times; n = 0: not exposed */
};

/*
 * Fill h from the library's run-time histogram in st. A last bucket that is
 * not +Inf gets one added (holding every observation), as the format
 * requires.
 */
void cli_prom_hist_from_stats(struct cli_prom_hist *h, const fp_stats *st);

/* Append the whole exposition for p to o. */
void cli_prom_write(struct cli_out *o, const struct cli_prom_pool *p);

#endif /* FORKPOOL_CLI_PROM_H */
