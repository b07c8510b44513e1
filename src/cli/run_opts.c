/*
 * forkpool run: option parsing and usage text. Numbers go through the
 * strict parser of args.c; each numeric option is a row of one table, so
 * every flag gets the same "--flag VALUE" / "--flag=VALUE" handling and the
 * same messages.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tool/args.h"
#include "format.h"
#include "cli.h"
#include "forkpool.h"
#include "run.h"

#define CMD CLI_RUN_CMD

void cli_run_usage(int to_stderr) {
  /* clang-format off */
  fprintf(to_stderr ? stderr : stdout,
"Usage: forkpool run --handler LIB.so[:SYMBOL] [options] < tasks\n"
"       forkpool run [options] --exec CMD [ARG...] < tasks\n"
"       forkpool run [options] --coproc CMD [ARG...] < tasks\n"
"\n"
"Run each line of stdin as one task through a crash-isolating worker pool\n"
"and print one result line per task, in input order.\n"
"\n"
CLI_HANDLER_USAGE
"  --workers N        worker processes (default: online CPUs, max %u)\n"
"  --timeout MS       per-task time limit, 0 = none (default 0)\n"
"  --max-input BYTES  longest task input (default 65536)\n"
"  --max-output BYTES largest task output (default 65536)\n"
"  --queue SLOTS      task slots in the queue (default 256, max %u)\n"
CLI_POOL_LIMITS_USAGE
"  --json             one JSON object per result line\n"
CLI_BACKTRACE_USAGE
"  -0, --null         tasks are NUL-terminated instead of newline-terminated\n"
"  -q, --quiet        no progress line (it is shown on stderr only when\n"
"                     stderr is a terminal and stdin is not)\n"
TOOL_LOG_USAGE("error")
"  -h, --help         show this help\n"
"\n"
"Plain output: STATUS<TAB>DETAIL, where STATUS is ok, failed, crashed,\n"
"timeout, cancelled or corrupt. On a terminal, stderr shows a progress\n"
"line: tasks done of read so far (the total once the input ended), rate,\n"
"crashed, timeouts and ETA. The supervisor's events go to stderr too: a\n"
"worker's death, a crash loop and what handlers write to their stdout or\n"
"stderr (\"task N (worker PID) stdout: ...\", 4096 bytes per task) are\n"
"warn, so --log-level warn shows them. Handlers read /dev/null as stdin.\n"
"Exit status: 0 all ok, 1 some task not ok, 2 usage, plugin or pool start\n"
"error.\n",
FP_MAX_WORKERS,
FP_MAX_SLOTS);
  /* clang-format on */
}

/*
 * See run.h. Returns -1 to go on, or the exit status to end with
 * (0 after --help, 2 after a message on stderr).
 */
int cli_run_parse(int argc, char **argv, struct run_opts *o) {
  struct tool_num_opt num[CLI_POOL_NOPT];
  int i, r, help = 0;
  const struct tool_flag flags[] = {
      {"--null", "-0", &o->delim, '\0'},       {"--json", NULL, &o->json, 1},
      {"--backtrace", NULL, &o->backtrace, 1}, {"--seal", NULL, &o->seal, 1},
      {"--quiet", "-q", &o->quiet, 1},         {"--help", "-h", &help, 1},
  };
  const int nflags = (int)(sizeof flags / sizeof flags[0]);

  memset(o, 0, sizeof *o);
  cli_pool_num_init(num);
  o->delim = '\n';
  o->log.level = FP_LOG_ERROR;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];

    r = tool_arg_flags(CMD, argv, i, flags, nflags);
    if (r < 0) goto usage;
    if (help) break; /* the rest is not read */
    if (r > 0) continue;
    if ((r = cli_handler_arg(CMD, argc, argv, &i, &o->handler)) != 0) {
      if (r < 0) goto usage;
      continue;
    }
    if ((r = tool_arg_num(CMD, argc, argv, &i, num, CLI_POOL_NOPT)) != 0 ||
        (r = tool_log_arg(CMD, argc, argv, &i, &o->log)) != 0) {
      if (r < 0) goto usage;
      continue;
    }
    tool_arg_reject(CMD, a);
    goto usage;
  }
  if (help) {
    cli_run_usage(0);
    return CLI_EXIT_OK;
  }
  if (cli_handler_check(CMD, &o->handler) < 0) goto usage;
  cli_pool_num_get(num, &o->pool);
  return -1;

usage:
  fprintf(stderr, "Try 'forkpool run --help'.\n");
  return CLI_EXIT_USAGE;
}
