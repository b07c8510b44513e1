/*
 * A buffered writer for result lines on a file descriptor (stdout).
 *
 * Bytes are appended to a memory buffer and written with write(2) when it
 * fills or on cli_out_flush(). Short writes and EINTR are handled. The first
 * write error is latched (like ferror()): later appends are dropped and
 * cli_out_error()/cli_out_flush() report it, so a caller may append a whole
 * line and check once. SIGPIPE must be ignored by the caller for a closed
 * pipe to show up as -EPIPE rather than kill the process.
 */
#ifndef FORKPOOL_CLI_OUTPUT_H
#define FORKPOOL_CLI_OUTPUT_H

#include <stddef.h>

struct cli_out {
  int fd;
  int err; /* 0, or the first negative errno of a failed write */
  char *buf;
  size_t len; /* bytes waiting in buf */
  size_t cap;
  /* Called before each write(2) to fd, if set: `forkpool run` erases its
   * progress line there when stdout is the same terminal. */
  void (*before_write)(void *ctx);
  void *before_ctx;
};

/* Set up a writer on `fd` with a `cap`-byte buffer. Returns 0 or -ENOMEM. */
int cli_out_init(struct cli_out *o, int fd, size_t cap);

/* Release the buffer without writing it. */
void cli_out_free(struct cli_out *o);

/* Append n bytes (written through when they do not fit the buffer). */
void cli_out_write(struct cli_out *o, const void *p, size_t n);

/* Append a NUL-terminated string. */
void cli_out_puts(struct cli_out *o, const char *s);

/* Append printf-formatted text (at most 255 bytes: for numbers and names). */
void cli_out_printf(struct cli_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write everything buffered. Returns 0 or the latched negative errno. */
int cli_out_flush(struct cli_out *o);

/*
 * Write all n bytes of buf to fd, retrying after EINTR and short writes.
 * Returns 0, or -errno of the write that failed (what was written before
 * stays written). For a terminal or a log, where callers drop the error.
 */
int cli_write_all(int fd, const void *buf, size_t n);

/* Bytes waiting in the buffer. */
static inline size_t cli_out_pending(const struct cli_out *o) { return o->len; }

/* Append one byte: the fast path of the escapers, hence inline. */
static inline void cli_out_putc(struct cli_out *o, char c) {
  if (o->len < o->cap) o->buf[o->len++] = c;
  else cli_out_write(o, &c, 1);
}

#endif /* FORKPOOL_CLI_OUTPUT_H */
