/*
 * Event log lines on stderr, for `forkpool serve`, `forkpool run` and
 * forkpool-bridge, in one of two formats (the CLI's --log-format; the
 * bridge writes text):
 *
 *   text: 2026-11-25T12:00:00.123Z INFO ready: pool 'jobs' ...
 *   json: {"ts":"2026-11-25T12:00:00.123Z","level":"info","msg":"ready: ..."}
 *
 * An ISO-8601 UTC timestamp with milliseconds, a level (DEBUG, INFO, WARN,
 * ERROR; lower-case in JSON), the message, a newline. Each line goes out in
 * one write(2) of at most TOOL_LOG_LINE_MAX bytes (< PIPE_BUF), so lines
 * written by different processes to one pipe never interleave: the
 * supervisor of `forkpool run`, a forked child, logs through the same
 * function, and the bridge's lines mix with those of a pool logging to the
 * same pipe. In text, control characters in the message become spaces; in
 * JSON the message is a valid JSON string (control characters and bytes of
 * invalid UTF-8 escaped as \u00XX). Either way one event is one line.
 */
#ifndef FORKPOOL_TOOL_LOG_H
#define FORKPOOL_TOOL_LOG_H

#include "forkpool.h"

#define TOOL_LOG_LINE_MAX 1024 /* longer messages are cut */

/* What --log-level and --log-format chose. */
struct tool_log_opts {
  fp_log_level level; /* least severe level written */
  int json;           /* --log-format json */
};

/*
 * Match argv[*i] against --log-level LEVEL and --log-format FORMAT.
 * Returns 1 when one matched (stored in *lo), 0 when neither did, -1 after
 * a message naming the flag and the accepted values.
 */
int tool_log_arg(const char *cmd, int argc, char **argv, int *i,
                 struct tool_log_opts *lo);

/* Usage lines for the two flags, with the default level named. */
#define TOOL_LOG_USAGE(deflt)                                                \
  "  --log-level LEVEL  least severe event logged on stderr: debug, info,\n" \
  "                     warn or error (default " deflt ")\n"                 \
  "  --log-format FMT   text (default) or json: one JSON object per line,\n" \
  "                     {\"ts\":...,\"level\":...,\"msg\":...}\n"

/* Use these options from now on (default: info, text). */
void tool_log_setup(const struct tool_log_opts *lo);

/* Only the least severe level written (the bridge's -v: debug). */
void tool_log_set_level(fp_log_level min);

/*
 * Start every line with "\r\033[K" (erase the terminal line), so that a
 * log line written while a progress line is shown replaces it instead of
 * running on after it. For a terminal only.
 */
void tool_log_set_erase(int on);

/* Write one line for msg at lvl. Errors (a closed stderr) are ignored. */
void tool_log(fp_log_level lvl, const char *msg);

/* The same with printf formatting. */
void tool_logf(fp_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An fp_log_fn that calls tool_log(); ctx is unused. */
void tool_log_fn(void *ctx, fp_log_level lvl, const char *msg);

#endif /* FORKPOOL_TOOL_LOG_H */
