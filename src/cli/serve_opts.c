/*
 * forkpool serve: option parsing and usage text.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tool/args.h"
#include "attach.h"
#include "cli.h"
#include "serve.h"

#define CMD CLI_SERVE_CMD

void cli_serve_usage(int to_stderr) {
  fprintf(
      to_stderr ? stderr : stdout,
      "Usage: forkpool serve --name NAME --handler LIB.so[:SYMBOL] [options]\n"
      "       forkpool serve --name NAME [options] --exec CMD [ARG...]\n"
      "       forkpool serve --name NAME [options] --coproc CMD [ARG...]\n"
      "\n"
      "Run the named pool NAME in the foreground: this process becomes its\n"
      "supervisor; other processes send it tasks with 'forkpool submit' or "
      "the\n"
      "library's fp_pool_open(). The pool lives in /dev/shm/forkpool.NAME.\n"
      "Events are logged on stderr, one line each.\n"
      "\n"
      "  --name NAME        pool name: " CLI_NAME_RULES "\n" CLI_HANDLER_USAGE
      "  --workers N        worker processes (default: online CPUs, max %u)\n"
      "  --queue SLOTS      task slots in the queue (default 256, max %u)\n"
      "  --max-input BYTES  longest task input (default 65536)\n"
      "  --max-output BYTES largest task output (default 65536)\n"
      "  --timeout MS       per-task time limit, 0 = none (default "
      "0)\n" CLI_POOL_LIMITS_USAGE
      "  --grace MS         on SIGTERM/SIGINT, time to finish queued and "
      "running\n"
      "                     tasks before the rest is cancelled (default "
      "10000)\n"
      "  --pidfile PATH     write the supervisor's pid here once ready; "
      "removed\n"
      "                     at exit\n"
      "  --mode OCTAL       permissions of the segment (default 0600)\n"
      "  --max-workers N    most workers SIGTTIN (or resizing) may grow to\n"
      "                     (default: the larger of 64 and --workers)\n"
      "  --min-workers N    resize on load between N and --max-workers: grow\n"
      "                     while tasks wait and every worker is busy, shrink\n"
      "                     after --idle-ms idle (default: a fixed size)\n"
      "  --idle-ms MS       idle time before shrinking by one (default 5000)\n"
      "  --max-clients N    producer processes attached at once (default "
      "64)\n" TOOL_LOG_USAGE(
          "info") "  -v, --verbose      the same as --log-level debug (every "
                  "worker start)\n"
                  "  -h, --help         show this help\n"
                  "\n"
                  "Signals: SIGTERM or SIGINT drains (no new tasks; queued and "
                  "running ones\n"
                  "finish within --grace), a second one stops at once. SIGHUP "
                  "replaces every\n"
                  "worker, one at a time, between tasks, with the plugin "
                  "loaded again from\n"
                  "its file (a plugin that fails to load keeps the old code "
                  "running) or the\n"
                  "command checked again and restarted. SIGTTIN / SIGTTOU add "
                  "/ remove one\n"
                  "worker (never below one).\n"
                  "\n"
                  "Exit status: 0 after a clean stop, 1 when the pool could "
                  "not be served\n"
                  "(the name is in use, the workers could not start, the "
                  "pidfile could not\n"
                  "be written), 2 usage, plugin or configuration error.\n",
      FP_MAX_WORKERS, FP_MAX_SLOTS);
}

/* serve's own numeric options; the pool's are in pool_opts.h. */
enum {
  OPT_GRACE,
  OPT_MAX_WORKERS,
  OPT_MAX_CLIENTS,
  OPT_MIN_WORKERS,
  OPT_IDLE,
  OPT_COUNT
};

/* See serve.h. */
int cli_serve_parse(int argc, char **argv, struct serve_opts *o) {
  struct tool_num_opt pool[CLI_POOL_NOPT];
  struct tool_num_opt num[OPT_COUNT] = {
      [OPT_GRACE] = {"--grace", 0, 2147483647u, 10000, 0},
      [OPT_MAX_WORKERS] = {"--max-workers", 1, FP_MAX_WORKERS, 0, 0},
      [OPT_MAX_CLIENTS] = {"--max-clients", 1, 4096, 64, 0},
      [OPT_MIN_WORKERS] = {"--min-workers", 1, FP_MAX_WORKERS, 0, 0},
      [OPT_IDLE] = {"--idle-ms", 1, 86400000u, 5000, 0},
  };
  const struct tool_num_opt *workers = &pool[CLI_POOL_WORKERS];
  const char *mode = NULL, *v = NULL;
  int i, r;

  memset(o, 0, sizeof *o);
  o->log.level = FP_LOG_INFO;
  cli_pool_num_init(pool);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];

    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cli_serve_usage(0);
      return CLI_EXIT_OK;
    }
    if (!strcmp(a, "-v")) {
      o->log.level = FP_LOG_DEBUG;
      continue;
    }
    if ((r = tool_arg_flag(CMD, argv, i, "--verbose")) != 0) {
      if (r < 0) goto usage;
      o->log.level = FP_LOG_DEBUG;
      continue;
    }
    if ((r = tool_arg_flag(CMD, argv, i, "--seal")) != 0) {
      if (r < 0) goto usage;
      o->seal = 1;
      continue;
    }
    if ((r = tool_log_arg(CMD, argc, argv, &i, &o->log)) != 0) {
      if (r < 0) goto usage;
      continue;
    }
    /* An empty name gets the naming rules from cli_name_check() below. */
    if ((r = tool_arg_value(CMD, argc, argv, &i, "--name", &o->name)) != 0 ||
        (r = cli_handler_arg(CMD, argc, argv, &i, &o->handler)) != 0 ||
        (r = tool_arg_string(CMD, argc, argv, &i, "--pidfile", &o->pidfile)) !=
            0) {
      if (r < 0) goto usage;
      continue;
    }
    if ((r = tool_arg_value(CMD, argc, argv, &i, "--mode", &v)) != 0) {
      if (r < 0) goto usage;
      mode = v;
      continue;
    }
    if ((r = tool_arg_num(CMD, argc, argv, &i, pool, CLI_POOL_NOPT)) != 0 ||
        (r = tool_arg_num(CMD, argc, argv, &i, num, OPT_COUNT)) != 0) {
      if (r < 0) goto usage;
      continue;
    }
    tool_arg_reject(CMD, a);
    goto usage;
  }
  if (!o->name) {
    fprintf(stderr, CMD ": --name is required\n");
    goto usage;
  }
  if (cli_name_check(CMD, o->name) < 0) goto usage;
  if (cli_handler_check(CMD, &o->handler) < 0) goto usage;
  o->mode = 0600;
  if (mode && tool_parse_octal(CMD, "--mode", mode, 0777, &o->mode) < 0)
    goto usage;
  /* fp_serve()'s rule, said here with the reason. */
  if ((o->mode & 0600) != 0600) {
    fprintf(stderr,
            CMD ": --mode %04o: the owner needs read and write "
                "(0600, 0640 or 0660)\n",
            o->mode);
    goto usage;
  }
  if (o->mode & 0007) {
    fprintf(stderr,
            CMD ": --mode %04o: other users may not have access; "
                "share a pool through its group (0640: the group may watch, "
                "0660: the group may submit)\n",
            o->mode);
    goto usage;
  }
  if (num[OPT_MAX_WORKERS].set && num[OPT_MAX_WORKERS].value < workers->value) {
    fprintf(stderr, CMD ": --max-workers %llu is below --workers %llu\n",
            (unsigned long long)num[OPT_MAX_WORKERS].value,
            (unsigned long long)workers->value);
    goto usage;
  }
  if (num[OPT_MIN_WORKERS].set && num[OPT_MIN_WORKERS].value > workers->value) {
    fprintf(stderr, CMD ": --min-workers %llu is above --workers %llu\n",
            (unsigned long long)num[OPT_MIN_WORKERS].value,
            (unsigned long long)workers->value);
    goto usage;
  }
  cli_pool_num_get(pool, &o->pool);
  /* Each range above fits the destination type. */
  o->grace_ms = (int)num[OPT_GRACE].value;
  o->max_workers = (unsigned)num[OPT_MAX_WORKERS].value; /* 0: default */
  o->max_clients = (unsigned)num[OPT_MAX_CLIENTS].value;
  o->min_workers =
      num[OPT_MIN_WORKERS].set ? (unsigned)num[OPT_MIN_WORKERS].value : 0;
  o->idle_ms = (unsigned)num[OPT_IDLE].value;
  return -1;

usage:
  fprintf(stderr, "Try 'forkpool serve --help'.\n");
  return CLI_EXIT_USAGE;
}
