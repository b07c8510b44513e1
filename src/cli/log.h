/*
 * Event log lines on stderr, for `forkpool serve`:
 *
 *   2026-11-25T12:00:00.123Z INFO ready: pool 'jobs' ...
 *
 * An ISO-8601 UTC timestamp with milliseconds, a level (DEBUG, INFO, WARN,
 * ERROR), the message, a newline. Each line goes out in one write(2) of at
 * most CLI_LOG_LINE_MAX bytes (< PIPE_BUF), so lines written by different
 * processes to one pipe never interleave. Control characters in the message
 * become spaces: one event is one line.
 */
#ifndef FORKPOOL_CLI_LOG_H
#define FORKPOOL_CLI_LOG_H

#include "forkpool.h"

#define CLI_LOG_LINE_MAX 1024 /* longer messages are cut */

/* Lines below this level are dropped (default FP_LOG_INFO). */
void cli_log_set_level(fp_log_level min);

/* Write one line for msg at lvl. Errors (a closed stderr) are ignored. */
void cli_log(fp_log_level lvl, const char *msg);

/* The same with printf formatting. */
void cli_logf(fp_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An fp_log_fn that calls cli_log(); ctx is unused. */
void cli_log_fn(void *ctx, fp_log_level lvl, const char *msg);

#endif /* FORKPOOL_CLI_LOG_H */
