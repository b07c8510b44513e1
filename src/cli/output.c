/*
 * Buffered, error-latching writer. write(2) is used directly rather than
 * stdio so that every error (EPIPE above all) is seen where it happens and
 * nothing is written behind our back at exit.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output.h"

int cli_out_init(struct cli_out *o, int fd, size_t cap) {
  o->fd = fd;
  o->err = 0;
  o->len = 0;
  o->cap = cap ? cap : 1;
  o->before_write = NULL;
  o->before_ctx = NULL;
  o->buf = malloc(o->cap);
  return o->buf ? 0 : -ENOMEM;
}

void cli_out_free(struct cli_out *o) {
  free(o->buf);
  o->buf = NULL;
  o->len = o->cap = 0;
}

/* Write all n bytes, retrying after EINTR and short writes. Returns 0 or a
 * negative errno; on error some prefix of the bytes may have been written. */
static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);

    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (w == 0) return -EIO; /* cannot happen for n > 0; do not spin on it */
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int cli_out_flush(struct cli_out *o) {
  if (o->err) return o->err;
  if (o->len > 0) {
    if (o->before_write) o->before_write(o->before_ctx);
    o->err = write_all(o->fd, o->buf, o->len);
    o->len = 0;
  }
  return o->err;
}

void cli_out_write(struct cli_out *o, const void *p, size_t n) {
  if (o->err) return;
  if (n <= o->cap - o->len) {
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return;
  }
  if (cli_out_flush(o) < 0) return;
  if (n <= o->cap) {
    memcpy(o->buf, p, n);
    o->len = n;
    return;
  }
  if (o->before_write) o->before_write(o->before_ctx);
  o->err = write_all(o->fd, p, n);
}

void cli_out_puts(struct cli_out *o, const char *s) {
  cli_out_write(o, s, strlen(s));
}

void cli_out_printf(struct cli_out *o, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof tmp)
    n = (int)sizeof tmp - 1; /* callers format short fields only */
  cli_out_write(o, tmp, (size_t)n);
}

int cli_write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;

  while (n > 0) {
    ssize_t w = write(fd, p, n);

    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    if (w == 0) return -EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}
