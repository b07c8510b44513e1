/*
 * forkpool submit: send tasks to a named pool that `forkpool serve` runs,
 * and print one result per task in input order, in the formats of
 * `forkpool run` (format.c), through the same loop (stream.c).
 *
 * The tasks are the DATA arguments, or else the records of stdin. A pool
 * that is not there, or goes away, is exit status 3, at once: fp_submit,
 * fp_collect and fp_wait recheck the supervisor at least every 100 ms and
 * say -EPIPE when it died.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool/args.h"
#include "format.h"
#include "attach.h"
#include "cli.h"
#include "input.h"
#include "stream.h"

#define CMD "forkpool submit"
#define SUBMIT_WINDOW_PER_SLOT 4
#define SUBMIT_OUT_BUFFER (64u * 1024u)

struct submit_opts {
  const char *name;
  unsigned wait_ms; /* --timeout: per-result wait limit, 0 = forever */
  int json;
  int backtrace;
  int priority;
  int delim;
  char **data; /* the DATA arguments (NULL: read stdin) */
  size_t ndata;
};

void cli_submit_usage(int to_stderr) {
  fprintf(
      to_stderr ? stderr : stdout,
      "Usage: forkpool submit --name NAME [options] [--] [DATA ...]\n"
      "\n"
      "Send each DATA argument, or else each line of stdin, as one task to "
      "the\n"
      "pool NAME that 'forkpool serve' runs, and print one result line per "
      "task,\n"
      "in input order, as 'forkpool run' does.\n"
      "\n"
      "  --name NAME        the pool\n"
      "  --timeout MS       give up on a task whose result has not come MS ms\n"
      "                     after it was submitted: print 'error<TAB>no "
      "result\n"
      "                     within MS ms' in its place (the task itself runs "
      "on)\n"
      "                     and exit 1; and stop (exit 1) when no slot of the\n"
      "                     pool could be had for MS ms. 0 = wait forever "
      "(default)\n"
      "  --json             one JSON object per result line, with the task's "
      "id\n"
      "                     (\"id\") after \"seq\"\n" CLI_BACKTRACE_USAGE
      "  --priority high|normal  high-priority tasks start before normal ones\n"
      "                     (a normal one still goes after every 4 high "
      "ones);\n"
      "                     default normal\n"
      "  -0, --null         stdin tasks are NUL-terminated, not "
      "newline-terminated\n"
      "  -h, --help         show this help\n"
      "\n"
      "Exit status: 0 all ok, 1 some task not ok (or a result not waited "
      "for),\n"
      "2 usage error, 3 no pool NAME runs, it cannot be attached to, it is\n"
      "shutting down, or its supervisor died.\n");
}

/* Returns -1 to go on, or the exit status to end with. */
static int parse(int argc, char **argv, struct submit_opts *o) {
  struct tool_num_opt num[1] = {{"--timeout", 0, 2147483647u, 0, 0}};
  int help = 0;
  const struct tool_flag flags[] = {
      {"--help", "-h", &help, 1},
      {"--null", "-0", &o->delim, '\0'},
      {"--json", NULL, &o->json, 1},
      {"--backtrace", NULL, &o->backtrace, 1},
  };
  const int nflags = (int)(sizeof flags / sizeof flags[0]);
  const char *v = NULL;
  int i, r, only_data = 0;

  memset(o, 0, sizeof *o);
  o->delim = '\n';
  o->data = calloc((size_t)argc, sizeof *o->data);
  if (!o->data) {
    fprintf(stderr, CMD ": out of memory\n");
    return CLI_EXIT_USAGE;
  }
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];

    if (only_data || a[0] != '-' || a[1] == '\0') {
      o->data[o->ndata++] = argv[i];
      continue;
    }
    if (!strcmp(a, "--")) {
      only_data = 1;
      continue;
    }
    r = tool_arg_flags(CMD, argv, i, flags, nflags);
    if (r < 0) goto usage;
    if (help) break; /* the rest is not read */
    if (r > 0) continue;
    if ((r = tool_arg_value(CMD, argc, argv, &i, "--priority", &v)) != 0) {
      if (r < 0) goto usage;
      if (!strcmp(v, "high")) {
        o->priority = FP_PRIO_HIGH;
      } else if (!strcmp(v, "normal")) {
        o->priority = FP_PRIO_NORMAL;
      } else {
        fprintf(stderr, CMD ": --priority: '%s' is not high or normal\n", v);
        goto usage;
      }
      continue;
    }
    if ((r = tool_arg_value(CMD, argc, argv, &i, "--name", &v)) != 0) {
      if (r < 0) goto usage;
      o->name = v;
      continue;
    }
    if ((r = tool_arg_num(CMD, argc, argv, &i, num, 1)) != 0) {
      if (r < 0) goto usage;
      continue;
    }
    fprintf(stderr,
            CMD ": unknown option '%s' (put DATA that starts with "
                "'-' after --)\n",
            a);
    goto usage;
  }
  if (help) {
    cli_submit_usage(0);
    return CLI_EXIT_OK;
  }
  if (!o->name) {
    fprintf(stderr, CMD ": --name is required\n");
    goto usage;
  }
  if (cli_name_check(CMD, o->name) < 0) goto usage;
  o->wait_ms = (unsigned)num[0].value;
  return -1;

usage:
  fprintf(stderr, "Try 'forkpool submit --help'.\n");
  return CLI_EXIT_USAGE;
}

/* The exit status after the loop returned r. */
static int finish(const struct submit_opts *o, struct cli_stream *st, int r) {
  (void)cli_out_flush(&st->out);
  if (st->out.err && st->out.err != -EPIPE)
    fprintf(stderr, CMD ": writing results: %s\n", strerror(-st->out.err));
  if (r > 0) {
    fprintf(stderr, CMD ": interrupted by %s\n",
            r == SIGINT ? "SIGINT" : "SIGTERM");
    return 128 + r;
  }
  if (st->err == -EPIPE || st->err == -ESHUTDOWN) {
    cli_pool_error(CMD, o->name, st->err);
    return CLI_EXIT_NOPOOL;
  }
  if (st->err == -ETIMEDOUT) {
    /* Only the wait for a slot ends the loop with -ETIMEDOUT (stream.c). */
    fprintf(stderr,
            CMD ": no free slot in pool %s within %u ms (other "
                "producers' tasks fill it, or a process holds its queue lock); "
                "the remaining tasks were not submitted\n",
            o->name, o->wait_ms);
    return CLI_EXIT_FAIL;
  }
  if (st->err == -EDEADLK) {
    fprintf(stderr,
            CMD ": %s: every slot this producer may use holds its "
                "own uncollected results (collect before submitting more)\n",
            st->err_what);
    return CLI_EXIT_FAIL;
  }
  if (st->err) {
    fprintf(stderr, CMD ": %s: %s\n", st->err_what, fp_strerror(st->err));
    return CLI_EXIT_FAIL;
  }
  if (r < 0 || st->out.err) return CLI_EXIT_FAIL;
  if (st->refused) {
    fprintf(stderr,
            CMD ": pool %s is shutting down; the remaining tasks "
                "were not submitted\n",
            o->name);
    return CLI_EXIT_NOPOOL;
  }
  if (st->expired_pending > 0 || !st->all_ok) return CLI_EXIT_FAIL;
  return CLI_EXIT_OK;
}

int cli_submit_main(int argc, char **argv) {
  struct submit_opts opt;
  struct cli_input in;
  struct cli_stream st;
  fp_pool *pool = NULL;
  fp_stats stats;
  int rc, r;

  memset(&in, 0, sizeof in);
  memset(&st, 0, sizeof st);
  rc = parse(argc, argv, &opt);
  if (rc >= 0) goto out;
  rc = cli_attach(CMD, opt.name, 0, &pool);
  if (rc != 0) goto out;
  rc = CLI_EXIT_FAIL;
  if (fp_pool_stats(pool, &stats) < 0)
    stats.slots = 256; /* cannot happen for a valid handle */
  /* The reader keeps a record of up to the largest input any pool can
   * take; the pool's own limit shows as -EMSGSIZE from fp_submit(). */
  if (opt.ndata > 0)
    cli_input_init_args(&in, opt.data, opt.ndata, FP_MAX_IO_BYTES);
  else if (cli_input_init(&in, STDIN_FILENO, opt.delim, FP_MAX_IO_BYTES) < 0)
    goto nomem;
  if (cli_stream_init(&st, &in, (size_t)stats.slots * SUBMIT_WINDOW_PER_SLOT,
                      SUBMIT_OUT_BUFFER) < 0)
    goto nomem;
  st.pool = pool;
  st.fmt.json = opt.json;
  st.fmt.show_id = 1; /* ids are the pool's, worth correlating */
  st.fmt.backtrace = opt.backtrace;
  st.priority = opt.priority;
  st.fmt.max_input = 0; /* not known: "over the pool's max input" */
  st.fmt.wait_ms = opt.wait_ms;
  st.drain_on_refusal = 1;
  /* After fp_pool_start(): its children keep default dispositions. */
  volatile sig_atomic_t *sig = cli_stream_signals();

  r = cli_stream_run(&st, CMD, sig);
  rc = finish(&opt, &st, r);
  goto out;

nomem:
  fprintf(stderr, CMD ": out of memory\n");
out:
  /* Detaching frees whatever we did not collect (counted abandoned). */
  fp_pool_free(pool);
  cli_stream_free(&st);
  cli_input_free(&in);
  free(opt.data);
  return rc;
}
