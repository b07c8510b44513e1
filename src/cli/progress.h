/*
 * The live progress line of `forkpool run` on a terminal (stderr):
 *
 *   forkpool run: 12345/20480+ done, 8123/s, 3 crashed, 1 timeout
 *   forkpool run: 12345/200000 done (6%), 8123/s, 3 crashed, 1 timeout, ETA 0:23
 *
 * done is the results printed so far; the number after the slash is the
 * records read so far, with a "+" while more input may come, and the total
 * once the input ended (then the percentage and the ETA, from the average
 * rate since the start, are shown). The line is redrawn in place ("\r",
 * the text, "\033[K" to clear what a longer line left) at most
 * CLI_PROGRESS_EVERY_MS apart, in one write(2), cut to the terminal's
 * width so it never wraps; it is erased ("\r\033[K") before anything else
 * is written to the terminal and at the end.
 */
#ifndef FORKPOOL_CLI_PROGRESS_H
#define FORKPOOL_CLI_PROGRESS_H

#include <stdint.h>

#define CLI_PROGRESS_EVERY_MS 100

struct cli_progress {
  int fd;            /* the terminal, or -1: off */
  int shown;         /* a line is on the screen now */
  uint64_t t0_ns;    /* start (CLOCK_MONOTONIC) */
  uint64_t last_ns;  /* last redraw (or the start) */
  const char *label; /* "forkpool run" */
};

/*
 * Set up the line on fd, or switched off (fd < 0, or fd not a terminal).
 * The first line is drawn CLI_PROGRESS_EVERY_MS after this call, so a
 * short run shows nothing. Returns 1 when on, 0 when off.
 */
int cli_progress_start(struct cli_progress *p, int fd, const char *label);

/*
 * Redraw with these numbers if CLI_PROGRESS_EVERY_MS passed since the last
 * redraw. eof: the input ended and `read` is the total. p may be NULL.
 */
void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t read,
                         int eof, uint64_t crashed, uint64_t timeout);

/* Erase the line if it is shown (it comes back at the next update).
 * p may be NULL. */
void cli_progress_clear(struct cli_progress *p);

/* The same, in the shape of a cli_out hook: ctx is the cli_progress. */
void cli_progress_clear_hook(void *ctx);

/* Erase the line and switch off for good. p may be NULL. */
void cli_progress_end(struct cli_progress *p);

#endif /* FORKPOOL_CLI_PROGRESS_H */
