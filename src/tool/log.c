/*
 * Timestamped log lines on stderr, text or JSON. See log.h.
 *
 * No stdio: stderr is unbuffered there, and fprintf() may split one line
 * into several write(2) calls. The settings are plain globals, set once
 * before any pool starts: a private pool's supervisor is forked from us
 * and inherits them with the rest of our memory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "log.h"
#include "utf8.h"

static fp_log_level g_min = FP_LOG_INFO;
static int g_json;
static int g_erase;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const format_names[] = {"text", "json"};

int tool_log_arg(const char *cmd, int argc, char **argv, int *i,
                 struct tool_log_opts *lo) {
  int r, k = 0;

  r = tool_arg_choice(cmd, argc, argv, i, "--log-level", level_names, 4, &k);
  if (r > 0) lo->level = (fp_log_level)k;
  if (r != 0) return r;
  r = tool_arg_choice(cmd, argc, argv, i, "--log-format", format_names, 2, &k);
  if (r > 0) lo->json = k == 1;
  return r;
}

void tool_log_setup(const struct tool_log_opts *lo) {
  g_min = lo->level;
  g_json = lo->json;
}

void tool_log_set_level(fp_log_level min) { g_min = min; }

void tool_log_set_erase(int on) { g_erase = on; }

static const char *level_text(fp_log_level lvl) {
  switch (lvl) {
  case FP_LOG_DEBUG: return "DEBUG";
  case FP_LOG_INFO: return "INFO";
  case FP_LOG_WARN: return "WARN";
  case FP_LOG_ERROR: return "ERROR";
  }
  return "?";
}

/* Append msg as text (control characters become spaces) to line[*n..cap),
 * keeping `keep` bytes free at the end. */
static void put_text(char *line, size_t *n, size_t cap, size_t keep,
                     const char *msg) {
  size_t i;

  for (i = 0; msg[i] != '\0' && *n + keep < cap; i++) {
    unsigned char c = (unsigned char)msg[i];

    line[(*n)++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
}

/* Append msg as the body of a JSON string (control bytes as \u00XX),
 * keeping `keep` bytes free; cuts only between whole escapes or UTF-8
 * sequences, so what is written is always valid. Its own encoder, not
 * the CLI's cli_json_escape(): it must cut to a fixed-size line. */
static void put_json(char *line, size_t *n, size_t cap, size_t keep,
                     const char *msg) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)msg;
  size_t len = strlen(msg), i = 0;

  while (i < len) {
    unsigned char c = p[i];
    char e[6];
    size_t el = 0, sl = 1;

    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      e[el++] = (char)c;
    } else if (c == '"' || c == '\\') {
      e[el++] = '\\';
      e[el++] = (char)c;
    } else if (c >= 0x80 && (sl = tool_utf8_seq_len(p + i, len - i)) > 0) {
      if (*n + sl + keep > cap) return;
      memcpy(line + *n, p + i, sl);
      *n += sl;
      i += sl;
      continue;
    } else {
      sl = 1; /* control byte, DEL, or a byte of invalid UTF-8 */
      memcpy(e, "\\u00", 4);
      e[4] = hex[c >> 4];
      e[5] = hex[c & 15];
      el = 6;
    }
    if (*n + el + keep > cap) return;
    memcpy(line + *n, e, el);
    *n += el;
    i += sl;
  }
}

void tool_log(fp_log_level lvl, const char *msg) {
  char line[TOOL_LOG_LINE_MAX], ts[40];
  struct timespec now;
  struct tm tm;
  size_t n = 0, k;
  ssize_t w;

  if (lvl < g_min) return;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + k, sizeof ts - k, ".%03ldZ", now.tv_nsec / 1000000L);
  if (g_erase) {
    memcpy(line, "\r\033[K", 4);
    n = 4;
  }
  if (g_json) {
    n += (size_t)snprintf(line + n, sizeof line - n,
                          "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                          (unsigned)lvl < 4 ? level_names[lvl] : "?");
    put_json(line, &n, sizeof line, 3, msg); /* room for "}\n */
    memcpy(line + n, "\"}\n", 3);
    n += 3;
  } else {
    n += (size_t)snprintf(line + n, sizeof line - n, "%s %s ", ts,
                          level_text(lvl));
    put_text(line, &n, sizeof line, 1, msg); /* room for the newline */
    line[n++] = '\n';
  }
  /* One write: a short write cannot happen on a pipe for n < PIPE_BUF, and
   * retrying one elsewhere would only split the line. */
  do w = write(STDERR_FILENO, line, n);
  while (w < 0 && errno == EINTR);
}

void tool_logf(fp_log_level lvl, const char *fmt, ...) {
  char msg[TOOL_LOG_LINE_MAX];
  va_list ap;

  if (lvl < g_min) return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tool_log(lvl, msg);
}

void tool_log_fn(void *ctx, fp_log_level lvl, const char *msg) {
  (void)ctx;
  tool_log(lvl, msg);
}
