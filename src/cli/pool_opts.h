/*
 * The options that shape a pool, the same for `forkpool run` and
 * `forkpool serve`: one table of names, ranges and defaults, so the two
 * subcommands cannot drift apart, and one copy into an fp_config.
 */
#ifndef FORKPOOL_CLI_POOL_OPTS_H
#define FORKPOOL_CLI_POOL_OPTS_H

#include <stddef.h>

#include "tool/args.h"
#include "forkpool.h"

struct cli_pool_opts {
  unsigned workers;       /* default: online CPUs */
  unsigned slots;         /* --queue, default 256 */
  unsigned timeout_ms;    /* 0 = none */
  unsigned max_tasks;     /* 0 = never recycle */
  size_t max_input;       /* default 65536 */
  size_t max_output;      /* default 65536 */
  unsigned max_attempts;  /* default 1: no retry */
  unsigned max_memory_mb; /* 0 = no limit */
  unsigned max_rss_mb;    /* --max-rss, 0 = no limit */
};

enum {
  CLI_POOL_WORKERS,
  CLI_POOL_QUEUE,
  CLI_POOL_MAX_INPUT,
  CLI_POOL_MAX_OUTPUT,
  CLI_POOL_TIMEOUT,
  CLI_POOL_MAX_TASKS,
  CLI_POOL_MAX_ATTEMPTS,
  CLI_POOL_MAX_MEMORY,
  CLI_POOL_MAX_RSS,
  CLI_POOL_NOPT
};

/*
 * Fill num[0..CLI_POOL_NOPT) with the pool options and their defaults
 * (--workers: the online CPUs), ready for tool_arg_num().
 */
void cli_pool_num_init(struct tool_num_opt *num);

/* The parsed values of num[0..CLI_POOL_NOPT) into *o. */
void cli_pool_num_get(const struct tool_num_opt *num, struct cli_pool_opts *o);

/* Set the fields of *cfg that *o holds; the rest stay as they were. */
void cli_pool_config(const struct cli_pool_opts *o, fp_config *cfg);

/* fp_config_validate(), with the likely reason said on stderr as "CMD:
 * invalid configuration ...". Returns its result. */
int cli_pool_validate(const char *cmd, const fp_config *cfg);

/* The --help lines of the pool options run and serve share, from
 * --max-tasks to --seal. */
/* clang-format off */
#define CLI_POOL_LIMITS_USAGE \
"  --max-tasks N      recycle a worker after N tasks, 0 = never (default 0)\n" \
"  --max-attempts N   run a task whose worker crashed or timed out up to N\n" \
"                     times in all (1-100, default 1: no retry)\n" \
"  --max-memory MB    address space each worker may add after it starts\n" \
"                     (RLIMIT_AS), 0 = no limit (default 0)\n" \
"  --max-rss MB       replace a worker whose resident set grew above MB\n" \
"                     after a task, 0 = never (default 0)\n" \
"  --seal             protect the shared segment from the handler's stray\n" \
"                     writes while it runs (two mprotect calls per task)\n"
/* clang-format on */

#endif /* FORKPOOL_CLI_POOL_OPTS_H */
