/*
 * forkpool run: feed stdin, one task per line, through a pool whose handler
 * comes from a plugin, and print one result per task in input order.
 *
 * The loop itself (submit, collect, print in order) is stream.c, shared
 * with `forkpool submit`. Its reorder window (4 x queue slots) bounds how
 * far results may run ahead of the oldest unprinted task, and so the
 * memory they hold. On a terminal, stderr shows a progress line
 * (progress.c); the supervisor's events go to stderr through log.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "input.h"
#include "tool/log.h"
#include "plugin.h"
#include "progress.h"
#include "run.h"
#include "stream.h"

#define CMD CLI_RUN_CMD
#define RUN_WINDOW_PER_SLOT 4
#define RUN_OUT_BUFFER (64u * 1024u)
#define RUN_DRAIN_GRACE_MS 5000

struct run_state {
  struct run_opts *opt;
  fp_pool *pool;
  struct cli_input in;
  struct cli_stream st;
  struct cli_progress prog;
};

static int start_pool(struct run_state *s, fp_config *cfg_in) {
  const struct run_opts *o = s->opt;
  fp_config cfg;
  int r;

  cfg = *cfg_in; /* the handler's fields (cli_handler_open) */
  cli_pool_config(&o->pool, &cfg);
  if (o->seal) cfg.flags |= FP_CONFIG_SEAL;
  /* Called in the supervisor, a fork of this process: tool_log() only
   * formats and writes to fd 2, with settings copied at the fork. */
  cfg.log = tool_log_fn;
  cfg.log_ctx = NULL;
  r = cli_pool_validate(CMD, &cfg);
  if (r < 0) return r;
  r = fp_pool_start(&s->pool, &cfg);
  if (r < 0) {
    /* fp_pool_start's -EAGAIN is a fork that failed, not a full queue. */
    if (r == -EAGAIN)
      fprintf(stderr,
              CMD ": cannot start the pool: fork failed: the "
                  "process limit of uid %ld is reached (ulimit -u) or the "
                  "system is out of processes\n",
              (long)getuid());
    else fprintf(stderr, CMD ": cannot start the pool: %s\n", fp_strerror(r));
    if (r == -ECHILD)
      fprintf(stderr, CMD ": (forkpool_init failed in every worker)\n");
    s->pool = NULL;
  }
  return r;
}

int cli_run_main(int argc, char **argv) {
  struct run_opts opt;
  struct run_state s;
  fp_config hcfg;
  char err[1024];
  int rc, r;

  rc = cli_run_parse(argc, argv, &opt);
  if (rc >= 0) return rc;
  memset(&s, 0, sizeof s);
  s.opt = &opt;
  fp_config_init(&hcfg);
  if (cli_handler_open(&opt.handler, &hcfg, err, sizeof err) < 0) {
    fprintf(stderr, CMD ": %s\n", err);
    return CLI_EXIT_USAGE;
  }
  rc = CLI_EXIT_USAGE;
  if (cli_stream_init(&s.st, &s.in,
                      (size_t)opt.pool.slots * RUN_WINDOW_PER_SLOT,
                      RUN_OUT_BUFFER) < 0 ||
      cli_input_init(&s.in, STDIN_FILENO, opt.delim, opt.pool.max_input) < 0) {
    fprintf(stderr, CMD ": out of memory\n");
    goto out;
  }
  s.st.fmt.json = opt.json;
  s.st.fmt.max_input = opt.pool.max_input;
  s.st.fmt.backtrace = opt.backtrace;
  tool_log_setup(&opt.log);
  /* Decided before the pool starts, so its supervisor knows to erase the
   * progress line before a log line. Not when the tasks are typed on the
   * terminal: redrawing would wipe the line being typed. */
  if (!opt.quiet && !isatty(STDIN_FILENO) &&
      cli_progress_start(&s.prog, STDERR_FILENO, CMD)) {
    s.st.progress = &s.prog;
    tool_log_set_erase(1);
    if (isatty(STDOUT_FILENO)) {
      s.st.out.before_write = cli_progress_clear_hook;
      s.st.out.before_ctx = &s.prog;
    }
  }
  if (start_pool(&s, &hcfg) < 0) goto out;
  s.st.pool = s.pool;
  /* After fp_pool_start(): its children keep default dispositions. */
  volatile sig_atomic_t *sig = cli_stream_signals();

  r = cli_stream_run(&s.st, CMD, sig);
  cli_progress_end(s.st.progress);
  (void)cli_out_flush(&s.st.out);
  if (s.st.err)
    fprintf(stderr, CMD ": %s: %s\n", s.st.err_what, fp_strerror(s.st.err));
  if (s.st.out.err && s.st.out.err != -EPIPE)
    fprintf(stderr, CMD ": writing results: %s\n", strerror(-s.st.out.err));
  if (r > 0) {
    fprintf(stderr, CMD ": interrupted by %s; stopping the pool\n",
            r == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 128 + r;
  } else if (r < 0 || s.st.out.err) {
    rc = CLI_EXIT_FAIL;
  } else {
    rc = s.st.all_ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
  }
  /* Everything was collected on success, so draining only lets idle
   * workers run forkpool_fini; after an error or a signal, stop now. */
  if (r == 0) fp_pool_stop(s.pool, FP_STOP_DRAIN, RUN_DRAIN_GRACE_MS);
  else fp_pool_stop(s.pool, FP_STOP_NOW, 0);

out:
  fp_pool_free(s.pool);
  cli_handler_close(&opt.handler);
  cli_stream_free(&s.st);
  cli_input_free(&s.in);
  return rc;
}
