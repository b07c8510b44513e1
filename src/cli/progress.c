/*
 * The progress line: see progress.h. Everything goes out with one write(2)
 * per redraw, so the terminal never shows half a line, and nothing is
 * buffered behind stdio's back.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "progress.h"
#include "tool/clock.h"

int cli_progress_start(struct cli_progress *p, int fd, const char *label) {
  p->fd = fd >= 0 && isatty(fd) ? fd : -1;
  p->shown = 0;
  p->t0_ns = p->last_ns = tool_now_ns();
  p->label = label;
  return p->fd >= 0;
}

/* Columns of the terminal, or 80 when it does not say. */
static unsigned columns(int fd) {
  struct winsize ws;

  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/* "1:02:03" or "2:03" for s seconds. */
static void hms(char *buf, size_t len, uint64_t s) {
  if (s >= 3600)
    snprintf(buf, len, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
             (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
  else
    snprintf(buf, len, "%llu:%02llu", (unsigned long long)(s / 60),
             (unsigned long long)(s % 60));
}

void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t read,
                         int eof, uint64_t crashed, uint64_t timeout) {
  char line[320], eta[32];
  uint64_t now;
  double secs, rate;
  unsigned cols;
  int n;

  if (!p || p->fd < 0) return;
  now = tool_now_ns();
  if (now - p->last_ns < (uint64_t)CLI_PROGRESS_EVERY_MS * 1000000u) return;
  p->last_ns = now;
  secs = (double)(now - p->t0_ns) / 1e9;
  rate = secs > 0 ? (double)done / secs : 0;
  /* "\r" first: the text always starts in column 0. */
  if (eof) {
    n = snprintf(line, sizeof line,
                 "\r%s: %llu/%llu done (%llu%%), %.0f/s, "
                 "%llu crashed, %llu timeout",
                 p->label, (unsigned long long)done, (unsigned long long)read,
                 (unsigned long long)(read ? done * 100 / read : 100), rate,
                 (unsigned long long)crashed, (unsigned long long)timeout);
    if (rate > 0 && done < read && n > 0 && (size_t)n < sizeof line) {
      hms(eta, sizeof eta, (uint64_t)((double)(read - done) / rate + 0.5));
      n += snprintf(line + n, sizeof line - (size_t)n, ", ETA %s", eta);
    }
  } else {
    n = snprintf(line, sizeof line,
                 "\r%s: %llu/%llu+ done, %.0f/s, "
                 "%llu crashed, %llu timeout",
                 p->label, (unsigned long long)done, (unsigned long long)read,
                 rate, (unsigned long long)crashed,
                 (unsigned long long)timeout);
  }
  if (n < 0) return;
  if ((size_t)n > sizeof line - 4)
    n = (int)sizeof line - 4; /* room for "\033[K" */
  /* One column short of the width: writing the last column makes some
   * terminals wrap, and the next "\r" would then redraw one row down. */
  cols = columns(p->fd);
  if ((unsigned)n > cols) n = (int)cols; /* "\r" plus cols - 1 characters */
  memcpy(line + n, "\033[K", 3);
  /* Errors dropped: a terminal that went away must not end the run,
   * whose results go elsewhere. */
  (void)cli_write_all(p->fd, line, (size_t)n + 3);
  p->shown = 1;
}

void cli_progress_clear(struct cli_progress *p) {
  if (!p || p->fd < 0 || !p->shown) return;
  (void)cli_write_all(p->fd, "\r\033[K", 4);
  p->shown = 0;
}

void cli_progress_clear_hook(void *ctx) { cli_progress_clear(ctx); }

void cli_progress_end(struct cli_progress *p) {
  if (!p) return;
  cli_progress_clear(p);
  p->fd = -1;
}
