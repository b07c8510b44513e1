/*
 * Event lines on stderr, in the format of `forkpool serve`:
 *
 *   2026-01-31T12:00:00.123Z INFO bridge host-a: claimed 12 entries ...
 *
 * Each line goes out in one write(2) below PIPE_BUF, so lines of the bridge
 * and of a pool logging to the same pipe never interleave. Control
 * characters become spaces: one event is one line.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"

#define LOG_LINE_MAX 1024

static fp_log_level min_level = FP_LOG_INFO;

void bridge_log_set_level(fp_log_level min)
{
  min_level = min;
}

static const char *level_name(fp_log_level lvl)
{
  switch (lvl) {
  case FP_LOG_DEBUG: return "DEBUG";
  case FP_LOG_INFO: return "INFO";
  case FP_LOG_WARN: return "WARN";
  default: return "ERROR";
  }
}

void bridge_log(fp_log_level lvl, const char *fmt, ...)
{
  char line[LOG_LINE_MAX];
  struct timespec ts;
  struct tm tm;
  va_list ap;
  size_t n, i, head;
  int r;

  if (lvl < min_level)
    return;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  r = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, level_name(lvl));
  if (r < 0)
    return;
  head = (size_t)r;
  va_start(ap, fmt);
  r = vsnprintf(line + head, sizeof line - head - 1, fmt, ap);
  va_end(ap);
  if (r < 0)
    return;
  n = head + (size_t)r;
  if (n > sizeof line - 2)
    n = sizeof line - 2; /* cut: keep room for the newline */
  for (i = head; i < n; i++)
    if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
      line[i] = ' ';
  line[n++] = '\n';
  /* One write: a short write of a line this small to a pipe or a tty does
   * not happen; EINTR is retried, anything else is ignored (no stderr). */
  while (write(2, line, n) < 0 && errno == EINTR)
    ;
}

uint64_t bridge_now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sleeps up to ms; a signal ends it early, which is what the main loop
 * wants (it rechecks its stop flag). */
void bridge_sleep_ms(unsigned ms)
{
  struct timespec ts = { .tv_sec = ms / 1000,
                         .tv_nsec = (long)(ms % 1000) * 1000000L };

  nanosleep(&ts, NULL);
}
