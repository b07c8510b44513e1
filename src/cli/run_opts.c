/*
 * forkpool run: option parsing and usage text. Numbers go through the
 * strict parser of args.c; each numeric option is a row of one table, so
 * every flag gets the same "--flag VALUE" / "--flag=VALUE" handling and the
 * same messages.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "forkpool.h"
#include "run.h"

#define CMD CLI_RUN_CMD

void cli_run_usage(int to_stderr)
{
  fprintf(to_stderr ? stderr : stdout,
"Usage: forkpool run --handler LIB.so[:SYMBOL] [options] < tasks\n"
"\n"
"Run each line of stdin as one task through a crash-isolating worker pool\n"
"and print one result line per task, in input order.\n"
"\n"
"  --handler LIB.so[:SYMBOL]  plugin and handler symbol (default symbol\n"
"                             forkpool_handler; hooks forkpool_init and\n"
"                             forkpool_fini are used when present)\n"
"  --workers N        worker processes (default: online CPUs, max %u)\n"
"  --timeout MS       per-task time limit, 0 = none (default 0)\n"
"  --max-input BYTES  longest task input (default 65536)\n"
"  --max-output BYTES largest task output (default 65536)\n"
"  --queue SLOTS      task slots in the queue (default 256, max %u)\n"
"  --max-tasks N      recycle a worker after N tasks, 0 = never (default 0)\n"
"  --json             one JSON object per result line\n"
"  -0, --null         tasks are NUL-terminated instead of newline-terminated\n"
"  -h, --help         show this help\n"
"\n"
"Plain output: STATUS<TAB>DETAIL, where STATUS is ok, failed, crashed,\n"
"timeout or cancelled. Exit status: 0 all ok, 1 some task not ok,\n"
"2 usage, plugin or pool start error.\n",
          FP_MAX_WORKERS, FP_MAX_SLOTS);
}

/* A numeric option: its flag, its range, and its value. */
struct num_opt {
  const char *name;
  uint64_t min, max;
  uint64_t value; /* preset to the default */
};

enum { OPT_WORKERS, OPT_TIMEOUT, OPT_MAX_INPUT, OPT_MAX_OUTPUT, OPT_QUEUE,
       OPT_MAX_TASKS, OPT_COUNT };

/*
 * See run.h. Returns -1 to go on, or the exit status to end with
 * (0 after --help, 2 after a message on stderr).
 */
int cli_run_parse(int argc, char **argv, struct run_opts *o)
{
  struct num_opt num[OPT_COUNT] = {
    [OPT_WORKERS] = { "--workers", 1, FP_MAX_WORKERS, 0 },
    [OPT_TIMEOUT] = { "--timeout", 0, 2147483647u, 0 },
    [OPT_MAX_INPUT] = { "--max-input", 1, FP_MAX_IO_BYTES, 65536 },
    [OPT_MAX_OUTPUT] = { "--max-output", 1, FP_MAX_IO_BYTES, 65536 },
    [OPT_QUEUE] = { "--queue", 1, FP_MAX_SLOTS, 256 },
    [OPT_MAX_TASKS] = { "--max-tasks", 0, 4294967295u, 0 },
  };
  int i, k, r;

  memset(o, 0, sizeof *o);
  num[OPT_WORKERS].value = cli_online_cpus();
  o->delim = '\n';
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;

    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cli_run_usage(0);
      return CLI_EXIT_OK;
    }
    if (!strcmp(a, "-0")) {
      o->delim = '\0';
      continue;
    }
    if ((r = cli_arg_flag(CMD, argv, i, "--null")) != 0) {
      if (r < 0)
        goto usage;
      o->delim = '\0';
      continue;
    }
    if ((r = cli_arg_flag(CMD, argv, i, "--json")) != 0) {
      if (r < 0)
        goto usage;
      o->json = 1;
      continue;
    }
    if ((r = cli_arg_value(CMD, argc, argv, &i, "--handler", &v)) != 0) {
      if (r < 0)
        goto usage;
      if (*v == '\0') {
        fprintf(stderr, CMD ": --handler: empty value\n");
        goto usage;
      }
      o->handler = v;
      continue;
    }
    for (k = 0; k < OPT_COUNT; k++) {
      r = cli_arg_value(CMD, argc, argv, &i, num[k].name, &v);
      if (r != 0)
        break;
    }
    if (k < OPT_COUNT) {
      if (r < 0 || cli_parse_u64(CMD, num[k].name, v, num[k].min,
                                 num[k].max, &num[k].value) < 0)
        goto usage;
      continue;
    }
    if (a[0] == '-')
      fprintf(stderr, CMD ": unknown option '%s'\n", a);
    else
      fprintf(stderr, CMD ": unexpected argument '%s'\n", a);
    goto usage;
  }
  if (!o->handler) {
    fprintf(stderr, CMD ": --handler is required\n");
    goto usage;
  }
  /* Each range above fits the destination type. */
  o->workers = (unsigned)num[OPT_WORKERS].value;
  o->timeout_ms = (unsigned)num[OPT_TIMEOUT].value;
  o->max_input = (size_t)num[OPT_MAX_INPUT].value;
  o->max_output = (size_t)num[OPT_MAX_OUTPUT].value;
  o->slots = (unsigned)num[OPT_QUEUE].value;
  o->max_tasks = (unsigned)num[OPT_MAX_TASKS].value;
  return -1;

usage:
  fprintf(stderr, "Try 'forkpool run --help'.\n");
  return CLI_EXIT_USAGE;
}
