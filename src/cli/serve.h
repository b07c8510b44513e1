/*
 * forkpool serve: its options, shared by the option parser (serve_opts.c)
 * and the command (serve.c).
 */
#ifndef FORKPOOL_CLI_SERVE_H
#define FORKPOOL_CLI_SERVE_H

#include <stddef.h>

#include "handler.h"
#include "tool/log.h"
#include "pool_opts.h"

#define CLI_SERVE_CMD "forkpool serve"

struct serve_opts {
  const char *name;           /* valid pool name, points into argv */
  struct cli_handler handler; /* --handler, --exec or --coproc */
  const char *pidfile;        /* NULL: none */
  struct cli_pool_opts pool;  /* --workers, --queue, --timeout, ... */
  int grace_ms;               /* default 10000 */
  unsigned mode;              /* default 0600 */
  unsigned max_workers;       /* 0: the library's default */
  unsigned min_workers;       /* non-zero: resize between it and max_workers */
  unsigned idle_ms;
  unsigned max_clients;     /* default 64 */
  int seal;                 /* --seal */
  struct tool_log_opts log; /* --log-level (-v: debug), --log-format */
};

/*
 * Parse the serve subcommand's argv (argv[0] is "serve") into *o, with
 * every default filled in and the name checked. Returns -1 to go on, or
 * the exit status to end with: 0 after --help (printed on stdout), 2 after
 * a message on stderr.
 */
int cli_serve_parse(int argc, char **argv, struct serve_opts *o);

#endif /* FORKPOOL_CLI_SERVE_H */
