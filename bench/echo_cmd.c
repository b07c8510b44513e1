/*
 * echo_cmd: the bench handler as a program, for `forkpool bench --exec`
 * and `--coproc` (compare.sh's handler rows).
 *
 *   echo_cmd            read the whole of stdin, write it back to stdout;
 *   echo_cmd --coproc   the same per record, in the coproc framing
 *                       ("N\n" + N bytes in, "0 N\n" + the bytes out).
 *
 * A task whose byte 8 is 'S' (forkpool bench --crash-every) dies of
 * SIGSEGV instead, as the built-in handler does.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int full_read(int fd, char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);

    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int full_write(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);

    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void maybe_crash(const char *p, size_t n) {
  if (n > 8 && p[8] == 'S') raise(SIGSEGV);
}

/* One request's header, "N\n", a byte at a time (a few bytes a task). */
static int read_len(size_t *n) {
  char c;
  size_t v = 0;
  int digits = 0;

  for (;;) {
    ssize_t r = read(0, &c, 1);

    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    if (c == '\n') break;
    if (c < '0' || c > '9' || ++digits > 19) return -2;
    v = v * 10 + (size_t)(c - '0');
  }
  *n = v;
  return digits ? 0 : -2;
}

static int coproc(void) {
  char *buf = NULL, *reply = NULL;
  size_t cap = 0;

  for (;;) {
    size_t n;
    int r = read_len(&n);

    if (r == -1) return 0; /* end of file: done */
    if (r < 0) return 2;
    if (n + 32 > cap) {
      cap = n + 32;
      free(buf);
      free(reply);
      buf = malloc(cap);
      reply = malloc(cap);
      if (!buf || !reply) return 3;
    }
    if (full_read(0, buf, n) < 0) return 2;
    maybe_crash(buf, n);
    int h = snprintf(reply, 32, "0 %zu\n", n);

    memcpy(reply + h, buf, n);
    if (full_write(1, reply, (size_t)h + n) < 0) return 1;
  }
}

static int once(void) {
  char buf[65536];
  char *all = NULL;
  size_t len = 0;

  for (;;) {
    ssize_t r = read(0, buf, sizeof buf);

    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return 2;
    if (r == 0) break;
    char *p = realloc(all, len + (size_t)r);

    if (!p) return 3;
    all = p;
    memcpy(all + len, buf, (size_t)r);
    len += (size_t)r;
  }
  maybe_crash(all, len);
  return len && full_write(1, all, len) < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--coproc")) return coproc();
  return once();
}
