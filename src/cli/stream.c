/*
 * The submit-collect-print loop: see stream.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stream.h"
#include "tool/clock.h"
#include "tool/signame.h"

int cli_stream_init(struct cli_stream *s, struct cli_input *in, size_t window,
                    size_t out_cap) {
  memset(s, 0, sizeof *s);
  s->in = in;
  s->all_ok = 1;
  /* memset() already gave a zeroed scratch result, which fp_collect()
   * accepts. */
  if (cli_window_init(&s->win, window) < 0 ||
      cli_out_init(&s->out, STDOUT_FILENO, out_cap) < 0)
    return -ENOMEM;
  return 0;
}

void cli_stream_free(struct cli_stream *s) {
  fp_result_release(&s->scratch);
  cli_window_free(&s->win);
  cli_out_free(&s->out);
}

/* Print the finished head of the window. Returns 0 or the output error. */
static int print_ready(struct cli_stream *s) {
  struct cli_entry *e;

  while ((e = cli_window_ready_head(&s->win)) != NULL) {
    if (!cli_format_result(&s->out, &s->fmt, s->win.head, e)) s->all_ok = 0;
    if (e->state == CLI_ENTRY_DONE) {
      s->crashed += e->res.status == FP_CRASHED;
      s->timeouts += e->res.status == FP_TIMEOUT;
    }
    cli_window_pop(&s->win);
  }
  return s->out.err;
}

/*
 * With a wait limit, give up on head tasks whose result is overdue and
 * print them (and whatever finished behind them). Only the head needs a
 * look: tasks were pushed in order, so none behind it is more overdue.
 * Returns 0 or the output error.
 */
static int expire_overdue(struct cli_stream *s) {
  uint64_t limit = (uint64_t)s->fmt.wait_ms * 1000000u, now;
  struct cli_entry *e;

  if (limit == 0) return 0;
  now = tool_now_ns();
  while ((e = cli_window_head(&s->win)) != NULL &&
         e->state == CLI_ENTRY_RUNNING && now - e->t_ns >= limit) {
    cli_window_expire_head(&s->win);
    s->expired_pending++;
    if (print_ready(s) < 0) return s->out.err;
  }
  return 0;
}

/* Shorten a wait of ms so that it ends when the head task is overdue. */
static int until_head_due(struct cli_stream *s, int ms) {
  uint64_t limit = (uint64_t)s->fmt.wait_ms * 1000000u, now, left;
  struct cli_entry *e = cli_window_head(&s->win);

  if (limit == 0 || !e || e->state != CLI_ENTRY_RUNNING) return ms;
  now = tool_now_ns();
  if (now - e->t_ns >= limit) return 0;
  left = (e->t_ns + limit - now + 999999u) / 1000000u;
  return left < (uint64_t)ms ? (int)left : ms;
}

/*
 * Collect every finished result into the window, waiting up to timeout_ms
 * for the first one. Output is flushed before actually waiting, so printed
 * lines never sit in our buffer while we sleep. The results of expired
 * tasks are dropped. Returns 0 (also when nothing finished in time) or -1
 * (s->err set, or a message printed).
 */
static int collect_some(struct cli_stream *s, const char *cmd, int timeout_ms) {
  int r = fp_collect(s->pool, &s->scratch, FP_NOWAIT);

  if (r == -ETIMEDOUT && timeout_ms > 0) {
    if (cli_out_flush(&s->out) < 0) return -1;
    r = fp_collect(s->pool, &s->scratch, timeout_ms);
  }
  while (r == 0) {
    if (cli_window_complete(&s->win, &s->scratch) < 0) {
      if (s->expired_pending == 0) {
        cli_progress_clear(s->progress);
        fprintf(stderr, "%s: result for unknown task id %llu\n", cmd,
                (unsigned long long)s->scratch.id);
        return -1;
      }
      s->expired_pending--; /* a late result nobody waits for any more */
    }
    /* Asking with nothing pending would be -ENOENT, not -ETIMEDOUT. */
    if (s->win.running == 0 && s->expired_pending == 0) return 0;
    r = fp_collect(s->pool, &s->scratch, FP_NOWAIT);
  }
  /* -EINTR is not in the contract, but a signal is exactly what we want to
   * see early: the loop checks its flag next. */
  if (r == -ETIMEDOUT || r == -EINTR) return 0;
  s->err = r;
  s->err_what = "collecting results";
  return -1;
}

/*
 * Step 1: take and submit records while the window has room. Never waits,
 * except for a free slot when none of our tasks runs (the queue is then
 * full of other producers' tasks, and only waiting can help). Sets
 * *queue_full when the queue refused a task (the record stays in the
 * reader for next time) and *input_done at the end of the input, or when
 * the pool refused a task and s->drain_on_refusal is set. Returns 0 or -1
 * (s->err set, or a message printed).
 */
static int feed(struct cli_stream *s, const char *cmd, int *queue_full,
                int *input_done) {
  struct cli_record rec;
  uint64_t id, seq;
  int r;

  *queue_full = 0;
  while (!*input_done && !cli_window_full(&s->win)) {
    r = cli_input_next(s->in, &rec);
    if (r == CLI_INPUT_END) {
      *input_done = 1;
      break;
    }
    if (r == CLI_INPUT_MORE) {
      r = cli_input_fill(s->in, 0);
      if (r < 0) {
        cli_progress_clear(s->progress);
        fprintf(stderr, "%s: reading stdin: %s\n", cmd, strerror(-r));
        return -1;
      }
      if (r == 0) break; /* nothing there right now */
      continue;
    }
    if (rec.oversize) {
      cli_window_push_oversize(&s->win, rec.full_len);
      cli_input_consume(s->in);
      continue;
    }
    r = fp_submit_prio(
        s->pool, rec.data, rec.len,
        s->win.running == 0 ? CLI_STREAM_WAIT_SLICE_MS : FP_NOWAIT, s->priority,
        &id);
    /* -EDEADLK: our own results fill our share; the loop collects them. */
    if (r == -EAGAIN || r == -ETIMEDOUT || r == -EDEADLK) {
      *queue_full = 1;
      if (s->win.running > 0 || s->fmt.wait_ms == 0) {
        s->slot_wait_ns = 0;
        break;
      }
      /* --timeout bounds the wait for a slot too (other producers' tasks,
       * or a process that holds the queue lock, may keep it from us). */
      if (s->slot_wait_ns == 0) {
        s->slot_wait_ns = tool_now_ns();
      } else if (tool_now_ns() - s->slot_wait_ns >=
                 (uint64_t)s->fmt.wait_ms * 1000000u) {
        s->err = -ETIMEDOUT;
        s->err_what = "waiting for a free slot";
        return -1;
      }
      break;
    }
    s->slot_wait_ns = 0;
    if (r == -EMSGSIZE) {
      /* Over the pool's limit, which the reader did not know. */
      cli_window_push_oversize(&s->win, rec.len);
      cli_input_consume(s->in);
      continue;
    }
    if (r == -ESHUTDOWN && s->drain_on_refusal) {
      s->refused = 1;
      *input_done = 1;
      break;
    }
    if (r < 0) {
      s->err = r;
      s->err_what = "submitting a task";
      return -1;
    }
    seq = cli_window_push_task(&s->win, id);
    cli_window_at(&s->win, seq)->t_ns = tool_now_ns();
    cli_input_consume(s->in);
  }
  return 0;
}

int cli_stream_run(struct cli_stream *s, const char *cmd,
                   volatile sig_atomic_t *sig) {
  int queue_full, r;

  for (;;) {
    if (*sig) return *sig;
    if (feed(s, cmd, &queue_full, &s->input_done) < 0) return -1;
    if (print_ready(s) < 0 || expire_overdue(s) < 0) return -1;
    /* win.head is the count printed; head + count, the records taken. */
    cli_progress_update(s->progress, s->win.head, s->win.head + s->win.count,
                        s->input_done, s->crashed, s->timeouts);
    if (s->input_done && s->win.count == 0) return 0;
    if (s->win.running > 0) {
      /* Wait long only when the input cannot help: window or queue full,
       * or input finished. Otherwise keep coming back to look at it. */
      int full = cli_window_full(&s->win) || queue_full || s->input_done;

      r = collect_some(s, cmd,
                       until_head_due(s, full ? CLI_STREAM_WAIT_SLICE_MS
                                              : CLI_STREAM_IDLE_SLICE_MS));
      if (r < 0) return -1;
      continue;
    }
    /* Nothing of ours runs and everything is printed. Late results of
     * expired tasks hold slots: take them without waiting. */
    if (s->expired_pending > 0 && collect_some(s, cmd, FP_NOWAIT) < 0)
      return -1;
    if (queue_full) continue; /* feed() already waited for a slot */
    /* Only the input can bring work. */
    if (cli_out_flush(&s->out) < 0) return -1;
    r = cli_input_fill(s->in, CLI_STREAM_WAIT_SLICE_MS);
    if (r < 0) {
      cli_progress_clear(s->progress);
      fprintf(stderr, "%s: reading stdin: %s\n", cmd, strerror(-r));
      return -1;
    }
  }
}

/* Set by SIGINT/SIGTERM; the loop polls it at least every slice. */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig) { g_signal = sig; }

volatile sig_atomic_t *cli_stream_signals(void) {
  /* No SA_RESTART (tool_signal_set): let waits end early. Valid signal
   * numbers: these cannot fail. */
  (void)tool_signal_set(SIGINT, on_signal);
  (void)tool_signal_set(SIGTERM, on_signal);
  (void)tool_signal_set(SIGPIPE, SIG_IGN); /* a closed stdout: EPIPE */
  return &g_signal;
}
