/*
 * forkpool run: its options, shared by the option parser (run_opts.c) and
 * the run loop (run.c).
 */
#ifndef FORKPOOL_CLI_RUN_H
#define FORKPOOL_CLI_RUN_H

#include <stddef.h>

#include "handler.h"
#include "tool/log.h"
#include "pool_opts.h"

#define CLI_RUN_CMD "forkpool run"

struct run_opts {
  struct cli_handler handler; /* --handler, --exec or --coproc */
  struct cli_pool_opts pool;  /* --workers, --queue, --timeout, ... */
  int seal;                   /* --seal */
  int json;                   /* --json */
  int backtrace;              /* --backtrace */
  int quiet;                  /* --quiet: no progress line */
  int delim;                  /* '\n', or '\0' with -0 */
  struct tool_log_opts log;   /* default: error, text */
};

/*
 * Parse the run subcommand's argv (argv[0] is "run") into *o, with every
 * default filled in. Returns -1 to go on, or the exit status to end with:
 * 0 after --help (printed on stdout), 2 after a message on stderr.
 */
int cli_run_parse(int argc, char **argv, struct run_opts *o);

#endif /* FORKPOOL_CLI_RUN_H */
