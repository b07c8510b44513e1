/*
 * forkpool run: feed stdin, one task per line, through a pool whose handler
 * comes from a plugin, and print one result per task in input order.
 *
 * The loop alternates three steps, none of which blocks while another could
 * make progress:
 *   1. take records from stdin (without waiting) and submit them with
 *      FP_NOWAIT while the reorder window has room and the queue takes them;
 *   2. print the head of the window while it is finished;
 *   3. wait a little: for results (fp_collect) when tasks run, else for
 *      stdin. While tasks run and stdin is merely idle, the wait is a short
 *      slice, so a slowly fed pipe is still read within RUN_IDLE_SLICE_MS.
 * The window (4 x queue slots) bounds how far results may run ahead of the
 * oldest unprinted task, and so the memory they hold.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "input.h"
#include "output.h"
#include "plugin.h"
#include "reorder.h"
#include "run.h"

#define CMD CLI_RUN_CMD
#define RUN_WINDOW_PER_SLOT 4
#define RUN_WAIT_SLICE_MS 100  /* longest wait: bounds signal latency */
#define RUN_IDLE_SLICE_MS 10   /* result wait while stdin might get data */
#define RUN_OUT_BUFFER (64u * 1024u)
#define RUN_DRAIN_GRACE_MS 5000

struct run_state {
  struct run_opts *opt;
  fp_pool *pool;
  struct cli_window win;
  struct cli_input in;
  struct cli_out out;
  fp_result scratch;   /* fp_collect() target; swapped into the window */
  int all_ok;
};

/* Set by SIGINT/SIGTERM; the loop polls it at least every slice. */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
  g_signal = sig;
}

/* Print the finished head of the window. Returns 0 or the output error. */
static int print_ready(struct run_state *s)
{
  struct cli_entry *e;

  while ((e = cli_window_ready_head(&s->win)) != NULL) {
    if (!cli_format_result(&s->out, s->opt->json, s->win.head, e,
                           s->opt->max_input))
      s->all_ok = 0;
    cli_window_pop(&s->win);
  }
  return s->out.err;
}

/*
 * Collect every finished result into the window, waiting up to timeout_ms
 * for the first one. Output is flushed before actually waiting, so printed
 * lines never sit in our buffer while we sleep. Returns 0 (also when nothing
 * finished in time) or a negative errno.
 */
static int collect_some(struct run_state *s, int timeout_ms)
{
  int r = fp_collect(s->pool, &s->scratch, FP_NOWAIT);

  if (r == -ETIMEDOUT) {
    if (cli_out_flush(&s->out) < 0)
      return s->out.err;
    r = fp_collect(s->pool, &s->scratch, timeout_ms);
  }
  while (r == 0) {
    if (cli_window_complete(&s->win, &s->scratch) < 0) {
      fprintf(stderr, CMD ": result for unknown task id %llu\n",
              (unsigned long long)s->scratch.id);
      return -EPROTO;
    }
    /* Asking with nothing pending would be -ENOENT, not -ETIMEDOUT. */
    if (s->win.running == 0)
      return 0;
    r = fp_collect(s->pool, &s->scratch, FP_NOWAIT);
  }
  /* -EINTR is not in the contract, but a signal is exactly what we want to
   * see early: the loop checks its flag next. */
  if (r == -ETIMEDOUT || r == -EINTR)
    return 0;
  fprintf(stderr, CMD ": collecting results: %s\n", fp_strerror(r));
  return r;
}

/*
 * Step 1: take and submit records while the window has room, without
 * waiting. Sets *queue_full when the queue refused a task (the record stays
 * in the reader for next time) and *input_done at the end of stdin.
 * Returns 0 or a negative errno (message printed).
 */
static int feed(struct run_state *s, int *queue_full, int *input_done)
{
  struct cli_record rec;
  uint64_t id;
  int r;

  *queue_full = 0;
  while (!*input_done && !cli_window_full(&s->win)) {
    r = cli_input_next(&s->in, &rec);
    if (r == CLI_INPUT_END) {
      *input_done = 1;
      break;
    }
    if (r == CLI_INPUT_MORE) {
      r = cli_input_fill(&s->in, 0);
      if (r < 0) {
        fprintf(stderr, CMD ": reading stdin: %s\n", strerror(-r));
        return r;
      }
      if (r == 0)
        break; /* nothing there right now */
      continue;
    }
    if (rec.oversize) {
      cli_window_push_oversize(&s->win, rec.full_len);
      cli_input_consume(&s->in);
      continue;
    }
    r = fp_submit(s->pool, rec.data, rec.len, FP_NOWAIT, &id);
    if (r == -EAGAIN) {
      *queue_full = 1;
      break;
    }
    if (r < 0) {
      fprintf(stderr, CMD ": submitting a task: %s\n", fp_strerror(r));
      return r;
    }
    cli_window_push_task(&s->win, id);
    cli_input_consume(&s->in);
  }
  return 0;
}

/* The main loop. Returns 0 when every task was printed, -1 after an error
 * (message printed, or quiet for a closed stdout), or the number of the
 * signal that interrupted it. */
static int run_loop(struct run_state *s)
{
  int input_done = 0, queue_full, r;

  for (;;) {
    if (g_signal)
      return g_signal;
    if (feed(s, &queue_full, &input_done) < 0)
      return -1;
    if (print_ready(s) < 0)
      return -1;
    if (input_done && s->win.count == 0)
      return 0;
    if (s->win.running > 0) {
      /* Wait long only when stdin cannot help: window or queue full, or
       * stdin finished. Otherwise keep coming back to look at stdin. */
      int full = cli_window_full(&s->win) || queue_full || input_done;

      r = collect_some(s, full ? RUN_WAIT_SLICE_MS : RUN_IDLE_SLICE_MS);
      if (r < 0)
        return -1;
    } else {
      /* Nothing runs and everything is printed: only stdin can bring
       * work. */
      if (cli_out_flush(&s->out) < 0)
        return -1;
      r = cli_input_fill(&s->in, RUN_WAIT_SLICE_MS);
      if (r < 0) {
        fprintf(stderr, CMD ": reading stdin: %s\n", strerror(-r));
        return -1;
      }
    }
  }
}

static int start_pool(struct run_state *s, const struct cli_plugin *pl)
{
  const struct run_opts *o = s->opt;
  fp_config cfg;
  int r;

  fp_config_init(&cfg);
  cfg.workers = o->workers;
  cfg.slots = o->slots;
  cfg.max_input = o->max_input;
  cfg.max_output = o->max_output;
  cfg.timeout_ms = o->timeout_ms;
  cfg.max_tasks = o->max_tasks;
  cfg.handler = pl->handler;
  cfg.arg = NULL;
  cfg.worker_init = pl->init;
  cfg.worker_fini = pl->fini;
  r = fp_config_validate(&cfg);
  if (r < 0) {
    fprintf(stderr, CMD ": invalid configuration (is --queue x "
            "(--max-input + --max-output) too large?): %s\n", fp_strerror(r));
    return r;
  }
  r = fp_pool_start(&s->pool, &cfg);
  if (r < 0) {
    fprintf(stderr, CMD ": cannot start the pool: %s\n", fp_strerror(r));
    if (r == -ECHILD)
      fprintf(stderr, CMD ": (forkpool_init failed in every worker)\n");
    s->pool = NULL;
  }
  return r;
}

/* Installed after fp_pool_start(), so the supervisor and workers, which
 * are forked during it, inherit default dispositions rather than our
 * handler and an ignored SIGPIPE. */
static void install_signals(void)
{
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_signal; /* no SA_RESTART: let waits end early */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL); /* a closed stdout becomes EPIPE */
}

int cli_run_main(int argc, char **argv)
{
  struct run_opts opt;
  struct run_state s;
  struct cli_plugin pl;
  char err[1024];
  int rc, r;

  rc = cli_run_parse(argc, argv, &opt);
  if (rc >= 0)
    return rc;
  memset(&s, 0, sizeof s);
  memset(&pl, 0, sizeof pl);
  s.opt = &opt;
  s.all_ok = 1;
  if (cli_plugin_load(&pl, opt.handler, err, sizeof err) < 0) {
    fprintf(stderr, CMD ": --handler: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  rc = CLI_EXIT_USAGE;
  if (cli_window_init(&s.win, (size_t)opt.slots * RUN_WINDOW_PER_SLOT) < 0 ||
      cli_input_init(&s.in, STDIN_FILENO, opt.delim, opt.max_input) < 0 ||
      cli_out_init(&s.out, STDOUT_FILENO, RUN_OUT_BUFFER) < 0) {
    fprintf(stderr, CMD ": out of memory\n");
    goto out;
  }
  if (start_pool(&s, &pl) < 0)
    goto out;
  install_signals();

  r = run_loop(&s);
  (void)cli_out_flush(&s.out);
  if (s.out.err && s.out.err != -EPIPE)
    fprintf(stderr, CMD ": writing results: %s\n", strerror(-s.out.err));
  if (r > 0) {
    fprintf(stderr, CMD ": interrupted by %s; stopping the pool\n",
            r == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 128 + r;
  } else if (r < 0 || s.out.err) {
    rc = CLI_EXIT_FAIL;
  } else {
    rc = s.all_ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
  }
  /* Everything was collected on success, so draining only lets idle
   * workers run forkpool_fini; after an error or a signal, stop now. */
  if (r == 0)
    fp_pool_stop(s.pool, FP_STOP_DRAIN, RUN_DRAIN_GRACE_MS);
  else
    fp_pool_stop(s.pool, FP_STOP_NOW, 0);

out:
  fp_pool_free(s.pool);
  cli_plugin_unload(&pl);
  fp_result_release(&s.scratch);
  cli_window_free(&s.win);
  cli_input_free(&s.in);
  cli_out_free(&s.out);
  return rc;
}
