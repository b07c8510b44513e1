/*
 * The submit-collect-print loop shared by `forkpool run` (a pool of its
 * own) and `forkpool submit` (a named pool another process serves).
 *
 * Records from a cli_input become tasks; results are printed one line per
 * record, in input order, as soon as the head of the order is finished.
 * The loop alternates three steps, none of which blocks while another
 * could make progress:
 *   1. take records (without waiting) and submit them while the reorder
 *      window has room and the queue takes them;
 *   2. print the head of the window while it is finished;
 *   3. wait a little: for results (fp_collect) when tasks run, else for
 *      input. While tasks run and the input is merely idle, the wait is a
 *      short slice, so a slowly fed pipe is still read within
 *      CLI_STREAM_IDLE_SLICE_MS.
 * The window bounds how far results may run ahead of the oldest unprinted
 * task, and so the memory they hold.
 */
#ifndef FORKPOOL_CLI_STREAM_H
#define FORKPOOL_CLI_STREAM_H

#include <signal.h>
#include <stddef.h>

#include "format.h"
#include "input.h"
#include "output.h"
#include "progress.h"
#include "reorder.h"

#define CLI_STREAM_WAIT_SLICE_MS 100 /* longest wait: bounds signal latency */
#define CLI_STREAM_IDLE_SLICE_MS 10  /* result wait while input might come */

struct cli_stream {
  fp_pool *pool;        /* set by the caller before cli_stream_run() */
  struct cli_input *in; /* the records; owned by the caller */
  struct cli_window win;
  /* clang-format off */
  struct cli_out out;     /* stdout */
  struct cli_format fmt;  /* set by the caller; fmt.wait_ms also arms the
                           * per-result wait limit (0: wait forever) */
  fp_result scratch;      /* fp_collect() target; swapped into the window */
  int drain_on_refusal;   /* set by the caller: see `refused` */
  struct cli_progress *progress; /* set by the caller, or NULL: updated
                           * every turn of the loop, erased before the
                           * loop prints a message */
  /* clang-format on */
  /* Outcome, read by the caller after cli_stream_run(): */
  /* clang-format off */
  int all_ok;             /* every printed line was an ok result */
  int err;                /* the pool error that ended the loop, or 0 */
  const char *err_what;   /* "submitting a task", "collecting results" */
  int priority;           /* FP_PRIO_NORMAL or FP_PRIO_HIGH */
  int refused;            /* fp_submit() said -ESHUTDOWN and
                           * drain_on_refusal was set: the rest of the
                           * input was not submitted, what was is printed */
  size_t expired_pending; /* expired tasks whose result may still come */
  uint64_t slot_wait_ns;  /* since when no slot could be had, nothing of
                           * ours running (0: not waiting); bounded by
                           * fmt.wait_ms: s->err -ETIMEDOUT, "waiting for a
                           * free slot" */
  /* clang-format on */
  /* Progress, read by the caller at any time: */
  int input_done;    /* the input ended (or was refused) */
  uint64_t crashed;  /* printed results that were crashed */
  uint64_t timeouts; /* printed results that were timeout */
};

/*
 * Set up a stream over `in` with a window of `window` entries and an
 * output buffer of `out_cap` bytes on stdout. Returns 0 or -ENOMEM (then
 * cli_stream_free() is still safe).
 */
int cli_stream_init(struct cli_stream *s, struct cli_input *in, size_t window,
                    size_t out_cap);

/* Release what cli_stream_init() allocated (without writing output). */
void cli_stream_free(struct cli_stream *s);

/*
 * Run the loop until every record was printed. `cmd` prefixes the
 * messages it prints itself (input errors, a result for an unknown id);
 * pool errors are left to the caller in s->err and s->err_what. Polls
 * *sig at least every CLI_STREAM_WAIT_SLICE_MS.
 *
 * Returns 0 when every record was printed (into s->out: the caller
 * flushes it), the signal number found in *sig, or -1 after
 * an error: a pool error (s->err set, nothing printed), an input error or
 * a protocol error (message printed), or an output error (s->out.err set,
 * nothing printed).
 */
int cli_stream_run(struct cli_stream *s, const char *cmd,
                   volatile sig_atomic_t *sig);

/*
 * Catch SIGINT and SIGTERM into a flag for cli_stream_run() (returned), and
 * ignore SIGPIPE so a closed stdout is an EPIPE. Install it after
 * fp_pool_start(): the supervisor and workers forked during it must keep
 * default dispositions.
 */
volatile sig_atomic_t *cli_stream_signals(void);

#endif /* FORKPOOL_CLI_STREAM_H */
