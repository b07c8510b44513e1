/*
 * Event log lines on stderr, for `forkpool serve` and `forkpool run`, in
 * one of two formats (--log-format):
 *
 *   text: 2026-11-25T12:00:00.123Z INFO ready: pool 'jobs' ...
 *   json: {"ts":"2026-11-25T12:00:00.123Z","level":"info","msg":"ready: ..."}
 *
 * An ISO-8601 UTC timestamp with milliseconds, a level (DEBUG, INFO, WARN,
 * ERROR; lower-case in JSON), the message, a newline. Each line goes out in
 * one write(2) of at most CLI_LOG_LINE_MAX bytes (< PIPE_BUF), so lines
 * written by different processes to one pipe never interleave: the
 * supervisor of `forkpool run`, a forked child, logs through the same
 * function. In text, control characters in the message become spaces; in
 * JSON the message is a valid JSON string (control characters and bytes of
 * invalid UTF-8 escaped as \u00XX). Either way one event is one line.
 */
#ifndef FORKPOOL_CLI_LOG_H
#define FORKPOOL_CLI_LOG_H

#include "forkpool.h"

#define CLI_LOG_LINE_MAX 1024 /* longer messages are cut */

/* What --log-level and --log-format chose. */
struct cli_log_opts {
  fp_log_level level; /* least severe level written */
  int json;           /* --log-format json */
};

/*
 * Match argv[*i] against --log-level LEVEL and --log-format FORMAT.
 * Returns 1 when one matched (stored in *lo), 0 when neither did, -1 after
 * a message naming the flag and the accepted values.
 */
int cli_log_arg(const char *cmd, int argc, char **argv, int *i,
                struct cli_log_opts *lo);

/* Usage lines for the two flags, with the default level named. */
#define CLI_LOG_USAGE(deflt) \
"  --log-level LEVEL  least severe event logged on stderr: debug, info,\n" \
"                     warn or error (default " deflt ")\n" \
"  --log-format FMT   text (default) or json: one JSON object per line,\n" \
"                     {\"ts\":...,\"level\":...,\"msg\":...}\n"

/* Use these options from now on (default: info, text). */
void cli_log_setup(const struct cli_log_opts *lo);

/*
 * Start every line with "\r\033[K" (erase the terminal line), so that a
 * log line written while a progress line is shown replaces it instead of
 * running on after it. For a terminal only.
 */
void cli_log_set_erase(int on);

/* Write one line for msg at lvl. Errors (a closed stderr) are ignored. */
void cli_log(fp_log_level lvl, const char *msg);

/* The same with printf formatting. */
void cli_logf(fp_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An fp_log_fn that calls cli_log(); ctx is unused. */
void cli_log_fn(void *ctx, fp_log_level lvl, const char *msg);

#endif /* FORKPOOL_CLI_LOG_H */
