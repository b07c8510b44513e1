/*
 * Timestamped log lines on stderr. See log.h.
 *
 * No stdio: stderr is unbuffered there, and fprintf() may split one line
 * into several write(2) calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static fp_log_level g_min = FP_LOG_INFO;

void cli_log_set_level(fp_log_level min)
{
  g_min = min;
}

static const char *level_name(fp_log_level lvl)
{
  switch (lvl) {
  case FP_LOG_DEBUG: return "DEBUG";
  case FP_LOG_INFO: return "INFO";
  case FP_LOG_WARN: return "WARN";
  case FP_LOG_ERROR: return "ERROR";
  }
  return "?";
}

void cli_log(fp_log_level lvl, const char *msg)
{
  char line[CLI_LOG_LINE_MAX];
  struct timespec ts;
  struct tm tm;
  size_t n, i;
  ssize_t w;

  if (lvl < g_min)
    return;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s ",
                        ts.tv_nsec / 1000000L, level_name(lvl));
  /* Keep room for the newline; cut what does not fit. */
  for (i = 0; msg[i] != '\0' && n < sizeof line - 1; i++) {
    unsigned char c = (unsigned char)msg[i];

    line[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
  line[n++] = '\n';
  /* One write: a short write cannot happen on a pipe for n < PIPE_BUF, and
   * retrying one elsewhere would only split the line. */
  do
    w = write(STDERR_FILENO, line, n);
  while (w < 0 && errno == EINTR);
}

void cli_logf(fp_log_level lvl, const char *fmt, ...)
{
  char msg[CLI_LOG_LINE_MAX];
  va_list ap;

  if (lvl < g_min)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cli_log(lvl, msg);
}

void cli_log_fn(void *ctx, fp_log_level lvl, const char *msg)
{
  (void)ctx;
  cli_log(lvl, msg);
}
