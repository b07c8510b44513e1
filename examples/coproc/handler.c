/*
 * coproc-handler: a forkpool coprocess handler in C, libc only (it does
 * not use forkpool.h or link libforkpool).
 *
 * Build: make build/examples/coproc-handler
 * Use:   forkpool run --coproc build/examples/coproc-handler ...
 *
 * Each forkpool worker starts the program once and sends it tasks one at
 * a time (forkpool coproc protocol, version 1; examples/coproc/handler.py
 * explains it at length):
 *   request on stdin:  N "\n" then exactly N bytes (the task, any bytes)
 *   reply on stdout:   S " " M "\n" then exactly M bytes (the output),
 *                      S = 0 ok, S in 1..255 failed with code S
 *   EOF on stdin between requests: exit 0.
 * stdout carries replies and nothing else, so main() moves the real stdout
 * to a private descriptor and points fd 1 at stderr: a printf in task code
 * lands in the log instead of corrupting the stream. A malformed request
 * (forkpool never sends one), or a task over 1 GiB, makes the program exit
 * 2 without a reply.
 *
 * The task is a command (the same in handler.py and handler.sh, checked by
 * tests/coproc_proto.sh):
 *   abort        abort(): the process dies of SIGABRT
 *   exit N       exit(N), N in 0..255, without replying
 *   fail N       reply status N (1..255), output "failed N"
 *   sleep S      sleep S seconds (e.g. 2 or 0.2), reply ok "slept S"
 *   garbage      write the malformed reply "hello world\n" and carry on
 *   big N        reply ok with N bytes of 'x'
 *   stderr TEXT  write TEXT and a newline to stderr, reply ok "logged"
 *   pid          reply ok with the pid in decimal
 *   anything else, empty and binary input too: reply ok with the input,
 *                bytes a-z made A-Z and every other byte unchanged
 * A number is ASCII decimal without sign or leading zeros ("0" is fine),
 * 9 digits at most; S may add "." and 1 to 9 digits. A command with any
 * other argument counts as "anything else" ("fail 0" replies "FAIL 0").
 *
 * Replace handle() with your own code; the rest is the protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A header line is at most this many bytes, not counting its "\n". */
#define MAX_HEADER 32
/* Exit status for a request that breaks the protocol. */
#define EXIT_BAD_REQUEST 2
/* Largest task we accept; a bigger one is refused as a bad request. */
#define MAX_TASK ((size_t)1 << 30)

/* --- the protocol ------------------------------------------------------ */

/*
 * A buffered reader over fd 0. The header is read through the buffer, so
 * read() may fetch bytes of the task with it; read_exact() takes those
 * from the buffer first. Every byte of stdin goes through this one buffer,
 * so none is lost or read twice.
 */
static struct {
  char buf[4096];
  size_t pos, len;
} in;

/* Refill the buffer. Returns the number of bytes read, 0 at EOF, -1 on
 * error (errno set). Retries EINTR. */
static ssize_t fill(void) {
  ssize_t n;
  do {
    n = read(0, in.buf, sizeof in.buf);
  } while (n < 0 && errno == EINTR);
  in.pos = 0;
  in.len = n > 0 ? (size_t)n : 0;
  return n;
}

/* Read exactly len bytes into dst. Returns the number of bytes read: len,
 * or less at EOF or on a read error. */
static size_t read_exact(char *dst, size_t len) {
  size_t got = 0;
  while (got < len) {
    if (in.pos == in.len && fill() <= 0) break;
    size_t k = in.len - in.pos;
    if (k > len - got) k = len - got;
    memcpy(dst + got, in.buf + in.pos, k);
    in.pos += k;
    got += k;
  }
  return got;
}

/* Write all len bytes of src to fd, looping over short writes and EINTR.
 * Returns 0, or -1 on error (errno set; the stream is then unusable). */
static int write_all(int fd, const char *src, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, src, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    src += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Parse s[0..len) as a protocol number: "0" or digits without a leading
 * zero, at most max_digits of them. Returns 0 and sets *out, or -1. */
static int parse_number(const char *s, size_t len, size_t max_digits,
                        uint64_t *out) {
  if (len == 0 || len > max_digits || (s[0] == '0' && len > 1)) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

static void bad_request(const char *why) {
  fprintf(stderr, "coproc-handler: bad request: %s\n", why);
  exit(EXIT_BAD_REQUEST);
}

/*
 * Read one request. Returns a malloc'd buffer holding the task and sets
 * *len, or returns NULL at EOF before a request (forkpool's way to say
 * stop). A malformed or cut-short request ends the process (exit 2). The
 * buffer has one spare byte so that an empty task is not a NULL pointer.
 */
static char *read_request(size_t *len) {
  char line[MAX_HEADER + 1];
  size_t n = 0;
  for (;;) {
    if (in.pos == in.len) {
      ssize_t r = fill();
      if (r < 0) bad_request(strerror(errno));
      if (r == 0) {
        if (n == 0) return NULL;
        bad_request("stream ended inside the header");
      }
    }
    char c = in.buf[in.pos++];
    if (c == '\n') break;
    if (n == MAX_HEADER) bad_request("header line longer than 32 bytes");
    line[n++] = c;
  }
  uint64_t v;
  /* 18 digits: any value fits in 64 bits before the MAX_TASK test. */
  if (parse_number(line, n, 18, &v) < 0)
    bad_request("task length is not a decimal number");
  if (v > MAX_TASK) bad_request("task too large");
  char *data = malloc((size_t)v + 1);
  if (!data) bad_request("out of memory");
  if (read_exact(data, (size_t)v) != (size_t)v)
    bad_request("stream ended inside the task");
  *len = (size_t)v;
  return data;
}

/* The real stdout, kept for replies (see main). */
static int reply_fd = -1;

/* Send one reply: status 0..255 and len bytes of output. A failed write
 * (forkpool went away) ends the process: there is no one left to answer. */
static void write_reply(int status, const char *out, size_t len) {
  char head[MAX_HEADER + 1];
  int h = snprintf(head, sizeof head, "%d %zu\n", status, len);
  if (write_all(reply_fd, head, (size_t)h) < 0 ||
      write_all(reply_fd, out, len) < 0) {
    perror("coproc-handler: write reply");
    exit(1);
  }
}

/* --- the task: replace this with your own code ------------------------- */

/* Sleep for the seconds in s[0..len): a number, optionally "." and 1 to 9
 * digits. Returns 0, or -1 when s is not such a number. */
static int sleep_seconds(const char *s, size_t len) {
  const char *dot = memchr(s, '.', len);
  size_t ilen = dot ? (size_t)(dot - s) : len;
  uint64_t sec, frac = 0;
  if (parse_number(s, ilen, 9, &sec) < 0) return -1;
  if (dot) {
    size_t flen = len - ilen - 1;
    if (flen == 0 || flen > 9) return -1;
    for (size_t i = 0; i < flen; i++) {
      char c = dot[1 + i];
      if (c < '0' || c > '9') return -1;
      frac = frac * 10 + (uint64_t)(c - '0');
    }
    for (size_t i = flen; i < 9; i++) frac *= 10; /* to nanoseconds */
  }
  struct timespec ts = {.tv_sec = (time_t)sec, .tv_nsec = (long)frac};
  /* nanosleep leaves the time still to sleep in ts when a signal
   * interrupts it, so the loop sleeps the full time. */
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
  return 0;
}

/* Does data[0..len) start with the string prefix? */
static int starts(const char *data, size_t len, const char *prefix) {
  size_t p = strlen(prefix);
  return len >= p && memcmp(data, prefix, p) == 0;
}

/* Run one task: send exactly one reply (or, for the demo commands abort,
 * exit and garbage, misbehave on purpose). */
static void handle(char *data, size_t len) {
  uint64_t v;
  char text[64];

  if (len == 5 && memcmp(data, "abort", 5) == 0) abort();
  if (starts(data, len, "exit ") &&
      parse_number(data + 5, len - 5, 9, &v) == 0 && v <= 255)
    exit((int)v);
  if (starts(data, len, "fail ") &&
      parse_number(data + 5, len - 5, 9, &v) == 0 && v >= 1 && v <= 255) {
    int n = snprintf(text, sizeof text, "failed %d", (int)v);
    write_reply((int)v, text, (size_t)n);
    return;
  }
  if (starts(data, len, "sleep ") && sleep_seconds(data + 6, len - 6) == 0) {
    int n = snprintf(text, sizeof text, "slept %.*s", (int)(len - 6), data + 6);
    write_reply(0, text, (size_t)n);
    return;
  }
  if (starts(data, len, "big ") &&
      parse_number(data + 4, len - 4, 9, &v) == 0) {
    char *out = malloc((size_t)v + 1);
    if (!out) {
      const char *msg = "out of memory";
      write_reply(1, msg, strlen(msg));
      return;
    }
    memset(out, 'x', (size_t)v);
    write_reply(0, out, (size_t)v);
    free(out);
    return;
  }
  if (len == 7 && memcmp(data, "garbage", 7) == 0) {
    /* Not a reply: forkpool must see it as malformed. */
    if (write_all(reply_fd, "hello world\n", 12) < 0) exit(1);
    return;
  }
  if (starts(data, len, "stderr ")) {
    /* Unbuffered write(): the text is in the log before the reply. */
    if (write_all(2, data + 7, len - 7) < 0 || write_all(2, "\n", 1) < 0)
      perror("coproc-handler: write stderr");
    write_reply(0, "logged", 6);
    return;
  }
  if (len == 3 && memcmp(data, "pid", 3) == 0) {
    int n = snprintf(text, sizeof text, "%ld", (long)getpid());
    write_reply(0, text, (size_t)n);
    return;
  }
  /* Upper-case in place, ASCII only (toupper() would follow the locale). */
  for (size_t i = 0; i < len; i++)
    if (data[i] >= 'a' && data[i] <= 'z') data[i] = (char)(data[i] - 'a' + 'A');
  write_reply(0, data, len);
}

/* --- the loop ---------------------------------------------------------- */

int main(void) {
  /* Keep the real stdout on a private close-on-exec descriptor for the
   * replies, then make fd 1 a copy of stderr: printf and programs the task
   * runs write to the log, never into the reply stream. */
  reply_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
  if (reply_fd < 0 || dup2(2, 1) < 0) {
    perror("coproc-handler: set up stdout");
    return 1;
  }
  /* stdout is now the log; unbuffered so lines keep their order. */
  setvbuf(stdout, NULL, _IONBF, 0);

  for (;;) {
    size_t len;
    char *data = read_request(&len);
    if (!data) return 0;
    handle(data, len);
    free(data);
  }
}
