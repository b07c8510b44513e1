/*
 * --coproc CMD [ARG...]: each worker starts the command once (its init
 * hook) and sends it tasks one at a time in the coproc framing, version 1
 * (README "Handlers in any language", forkpool(1) COPROC PROTOCOL):
 *
 *   request  "N\n" then the N bytes of the task       (to its stdin)
 *   reply    "S M\n" then M bytes of output           (from its stdout)
 *            S = 0: ok; S = 1..255: failed with code S. The header is at
 *            most 32 bytes, decimal digits, one space.
 *
 * Its stderr is the worker's: the log, marked with the task id.
 *
 * What each misstep of the coprocess costs, and nothing more:
 *   - dies during a task (a signal, an exit): the task ends FP_CRASHED
 *     with that signal or exit status (fp_task_crashed), the worker dies
 *     with it, and the supervisor starts a new one, with its crash-loop
 *     backoff; unless it had replied before and died before it read a
 *     byte of this request (the pipe still holds all of it): the task
 *     never reached it, and is declined (fp_task_decline), queued again
 *     for another worker;
 *   - died between tasks after a reply: the next task is declined the
 *     same way, and the worker replaced. One that dies before its first
 *     reply cannot start (a script with an error): declining would pass
 *     the task from new worker to new worker for ever, so the task ends
 *     crashed as it died, and the backoff slows the restarts;
 *   - a malformed reply (not "S M\n", S over 255, a second record, a reply
 *     while bytes of the request are still unread in the pipe, its stdout
 *     closed, bytes on its stdout before the request was sent): the task
 *     fails with FP_CODE_BAD_REPLY, and the coprocess is killed, so the
 *     next task goes to a new worker (declined as above);
 *   - a reply over max_output bytes: read and dropped (the stream stays
 *     in step), the task fails with FP_CODE_OUTPUT;
 *   - hangs: the pool's timeout kills the worker and its process group,
 *     the coprocess with it (or, if it left the group, the supervisor,
 *     whose orphan it becomes).
 * A new coprocess's start-up time counts in its first task's time (and
 * against --timeout): the protocol has no "ready" message.
 * When the worker exits cleanly (--max-tasks, a reload, a stop) its
 * coprocess gets end of file on stdin and EXIT_GRACE_MS to exit, then
 * SIGKILL.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"

#define HEADER_MAX 32      /* bytes of a reply header, its "\n" included */
#define EXIT_GRACE_MS 1000 /* after end of file, before SIGKILL */
#define EOF_EXIT_MS 100    /* its stdout closed: time to see it exit */

/* This worker's coprocess (one per worker process). */
static struct cli_child cp;
static pid_t cp_pid; /* its pid, kept for messages after it is reaped */
static unsigned long cp_done; /* replies it gave: 0 until its first one */
static const struct cli_command *cp_cmd;

/* Without a pidfd: the status waitpid took when gone() reaped it. */
static int cp_reaped, cp_status;

/* Has the coprocess exited (within wait_ms)? Without a pidfd, waitpid
 * tells, and reaps it (reap_status() then returns that status). */
static int gone(int wait_ms) {
  struct pollfd pf = {.fd = cp.pidfd, .events = POLLIN};
  int r;

  if (cp.pid <= 0 || cp_reaped) return 1;
  if (cp.pidfd >= 0) {
    do r = poll(&pf, 1, wait_ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
  }
  for (int k = 0;; k++) {
    int ws = 0;
    pid_t p = waitpid(cp.pid, &ws, WNOHANG);

    if (p == cp.pid || (p < 0 && errno == ECHILD)) {
      cp_reaped = 1;
      cp_status = p == cp.pid ? ws : 0;
      return 1;
    }
    if (k * 10 >= wait_ms) return 0;
    usleep(10000);
  }
}

enum { IDLE_OK, IDLE_GONE, IDLE_WROTE };

/*
 * Before a task: has the coprocess exited (IDLE_GONE), or written to its
 * stdout, or closed it, since its last reply (IDLE_WROTE)? One poll of
 * both, the task's only system call before its request.
 */
static int idle_state(void) {
  struct pollfd pf[2] = {{.fd = cp.pidfd, .events = POLLIN},
                         {.fd = cp.out, .events = POLLIN}};
  int r;

  if (cp.pidfd < 0) { /* no pidfd: waitpid first, then the pipe */
    if (gone(0)) return IDLE_GONE;
    pf[0] = pf[1];
    do r = poll(pf, 1, 0);
    while (r < 0 && errno == EINTR);
    return r > 0 ? IDLE_WROTE : IDLE_OK;
  }
  do r = poll(pf, 2, 0);
  while (r < 0 && errno == EINTR);
  if (r <= 0) return IDLE_OK;
  return pf[0].revents ? IDLE_GONE : IDLE_WROTE;
}

/* Reap the exited coprocess (closing our ends) and say how it ended. */
static int reap_status(void) {
  int ws = 0;

  if (cp_reaped) {
    cp.pid = 0; /* reaped by gone(): only the pipes are left */
    cli_child_reap(&cp, &ws);
    cp_reaped = 0;
    return cp_status;
  }
  cli_child_reap(&cp, &ws);
  return ws;
}

/* Give the task back (fp_task_decline never returns in a worker). */
static int decline(const char *fmt, const char *what) {
  fprintf(stderr, fmt, (long)cp_pid, cp_cmd->argv[0], what);
  fflush(stderr);
  cli_child_kill(&cp);
  fp_task_decline();
  return FP_CODE_BAD_REPLY; /* not reached */
}

struct reply {
  char hdr[HEADER_MAX];
  size_t hlen; /* header bytes so far */
  int have_hdr;
  unsigned status;
  unsigned long long want, got; /* payload length, bytes read */
  unsigned char *out;
  size_t cap;
  int extra; /* bytes after the record */
};

/*
 * Parse "S M\n" in r->hdr[0..len). Returns 0, or -1 when malformed.
 */
static int parse_header(struct reply *r, size_t len) {
  unsigned long long v[2] = {0, 0};
  size_t k = 0;

  for (int f = 0; f < 2; f++) {
    size_t start = k;

    while (k < len && r->hdr[k] >= '0' && r->hdr[k] <= '9') {
      if (v[f] > (~0ull - 9) / 10) return -1;
      v[f] = v[f] * 10 + (unsigned)(r->hdr[k++] - '0');
    }
    if (k == start || k >= len || r->hdr[k] != (f == 0 ? ' ' : '\n')) return -1;
    k++;
  }
  if (k != len || v[0] > 255) return -1;
  r->status = (unsigned)v[0];
  r->want = v[1];
  r->have_hdr = 1;
  return 0;
}

/* Take n bytes of reply at p. Returns 0, or -1 for a malformed header. */
static int take(struct reply *r, const char *p, size_t n) {
  while (n > 0) {
    if (!r->have_hdr) {
      const char *nl = memchr(p, '\n', n);
      size_t part = nl ? (size_t)(nl - p) + 1 : n;

      if (r->hlen + part > sizeof r->hdr) return -1;
      memcpy(r->hdr + r->hlen, p, part);
      r->hlen += part;
      p += part;
      n -= part;
      if (nl && parse_header(r, r->hlen) < 0) return -1;
      continue;
    }
    if (r->got == r->want) {
      r->extra = 1;
      return 0;
    }
    size_t part = r->want - r->got < n ? (size_t)(r->want - r->got) : n;

    if (r->want <= r->cap) memcpy(r->out + r->got, p, part);
    r->got += part;
    p += part;
    n -= part;
  }
  return 0;
}

/* bytes as text, control bytes and non-ASCII as \xNN; out has room for
 * 4 * len + 1. */
static const char *printable(const char *p, size_t len, char *out) {
  size_t o = 0;

  for (size_t k = 0; k < len; k++) {
    unsigned char c = (unsigned char)p[k];

    if (c >= 0x20 && c < 0x7f && c != '\\') out[o++] = (char)c;
    else o += (size_t)sprintf(out + o, "\\x%02x", c);
  }
  out[o] = '\0';
  return out;
}

static int done(const struct reply *r) {
  return r->have_hdr && r->got == r->want;
}

/* Read what the coprocess's stdout holds. 1: read some; 0: end of file;
 * -1: nothing now; -2: malformed. */
static int read_reply(struct reply *r) {
  char buf[65536];
  ssize_t n = read(cp.out, buf, sizeof buf);

  if (n > 0) return take(r, buf, (size_t)n) < 0 ? -2 : 1;
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -1;
  return 0;
}

/* End the task failed with code, its output the text; kill the coprocess
 * when it is out of step. */
static int fail(int code, int kill_it, void *out, size_t cap, size_t *out_len,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fail(int code, int kill_it, void *out, size_t cap, size_t *out_len,
                const char *fmt, ...) {
  char msg[512];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof msg) n = (int)sizeof msg - 1;
  (void)cli_fail_text(code, msg, (size_t)n, out, cap, out_len);
  if (kill_it) {
    fprintf(stderr,
            "coprocess %ld (%s): %s; killed, a new one will "
            "start\n",
            (long)cp_pid, cp_cmd->argv[0], msg);
    fflush(stderr);
    cli_child_kill(&cp);
  }
  return code;
}

/*
 * The coprocess died during the task, after we wrote `written` bytes of
 * the request: crashed, or declined when every one of them is still in
 * the pipe and no reply byte came (it never read the task).
 */
static int died(size_t written, const struct reply *r) {
  char rep[256], st[64];
  int unread = -1, ws, n;
  pid_t pid = cp_pid;

  if (cp.in >= 0 && ioctl(cp.in, FIONREAD, &unread) != 0) unread = -1;
  ws = reap_status();
  /* A new one that dies unread never served a task: it cannot start (a
   * script with an error), and declining would hand the task from one
   * new worker to the next for ever. Its task ends as it did. */
  if (cp_done > 0 && r->hlen == 0 && written > 0 && unread >= 0 &&
      (size_t)unread == written) {
    fprintf(stderr,
            "coprocess %ld (%s) %s before it read the task; the "
            "task goes to another worker\n",
            (long)pid, cp_cmd->argv[0], cli_wait_text(ws, st, sizeof st));
    fflush(stderr);
    fp_task_decline();
  }
  n = snprintf(
      rep, sizeof rep, "coprocess %ld (%s) %s %s", (long)pid, cp_cmd->argv[0],
      cli_wait_text(ws, st, sizeof st),
      cp_done ? "during the task" : "before its first reply (can it start?)");
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof rep) n = (int)sizeof rep - 1;
  if (WIFSIGNALED(ws)) fp_task_crashed(WTERMSIG(ws), 0, rep, (size_t)n);
  fp_task_crashed(0, WIFEXITED(ws) ? WEXITSTATUS(ws) : 255, rep, (size_t)n);
  return FP_CODE_BAD_REPLY; /* not reached in a worker */
}

static int coproc_handler(void *arg, const void *in, size_t in_len, void *out,
                          size_t out_cap, size_t *out_len) {
  struct reply r = {.out = out, .cap = out_cap};
  char head[24];
  size_t hl, sent = 0, total;
  int ws, closed = 0;

  (void)arg;
  *out_len = 0;
  if (cp.pid <= 0)
    return decline("coprocess %ld (%s) %s; a new one will start\n",
                   "was killed after a bad reply");
  int idle = idle_state();

  if (idle == IDLE_GONE) {
    char st[64];

    if (cp_done == 0)
      return died(0, &r); /* before its first task: it cannot start */
    ws = reap_status();
    return decline("coprocess %ld (%s) %s between tasks; a new one will "
                   "start\n",
                   cli_wait_text(ws, st, sizeof st));
  }
  /* Not a reply to anything: the stream is out of step. */
  if (idle == IDLE_WROTE)
    return fail(FP_CODE_BAD_REPLY, 1, out, out_cap, out_len,
                "wrote to its stdout outside a reply (before the task "
                "was sent)");
  hl = (size_t)snprintf(head, sizeof head, "%zu\n", in_len);
  total = hl + in_len;
  for (;;) {
    struct pollfd pf[3];
    int n = 0;

    if (sent < total && !closed)
      pf[n++] = (struct pollfd){.fd = cp.in, .events = POLLOUT};
    pf[n++] = (struct pollfd){.fd = cp.out, .events = POLLIN};
    if (cp.pidfd >= 0)
      pf[n++] = (struct pollfd){.fd = cp.pidfd, .events = POLLIN};
    if (poll(pf, (nfds_t)n, cp.pidfd >= 0 ? -1 : 100) < 0) {
      if (errno == EINTR) continue;
      return fail(FP_CODE_BAD_REPLY, 1, out, out_cap, out_len,
                  "poll failed: %s", strerror(errno));
    }
    for (int k = 0; k < n; k++) {
      if (!pf[k].revents) continue;
      if (pf[k].fd == cp.in) {
        ssize_t w = sent < hl ? write(cp.in, head + sent, hl - sent)
                              : write(cp.in, (const char *)in + (sent - hl),
                                      total - sent);

        if (w > 0) sent += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
          closed = 1; /* EPIPE: it closed stdin; its end tells */
      } else if (pf[k].fd == cp.out) {
        int rr = read_reply(&r);

        if (rr == -2) {
          char shown[4 * HEADER_MAX + 1];

          return fail(FP_CODE_BAD_REPLY, 1, out, out_cap, out_len,
                      "malformed reply header '%s' (want 'STATUS "
                      "LENGTH\\n', status 0-255)",
                      printable(r.hdr, r.hlen, shown));
        }
        if (rr == 0) {
          if (!gone(EOF_EXIT_MS))
            return fail(FP_CODE_BAD_REPLY, 1, out, out_cap, out_len,
                        "closed its stdout");
          return died(sent, &r);
        }
      } else if (gone(0)) {
        /* What it wrote before it died may be a whole reply. */
        while (!done(&r) && read_reply(&r) > 0) {
        }
        if (!done(&r)) return died(sent, &r);
      }
    }
    if (cp.pidfd < 0 && !done(&r) && gone(0)) return died(sent, &r);
    if (r.extra)
      return fail(FP_CODE_BAD_REPLY, 1, out, out_cap, out_len,
                  "wrote more than one reply record");
    if (done(&r)) {
      int unread = 0;

      /* A reply to this task comes after it read all of it: bytes still
       * in the pipe mean the reply was to something else. */
      if (sent < total || (ioctl(cp.in, FIONREAD, &unread) == 0 && unread > 0))
        return fail(FP_CODE_BAD_REPLY, 1, out, out_cap, out_len,
                    "replied before it read the whole task");
      cp_done++;
      break;
    }
  }
  if (r.want > out_cap)
    return fail(FP_CODE_OUTPUT, 0, out, out_cap, out_len,
                "reply of %llu bytes, over the limit of %zu (--max-output)",
                r.want, out_cap);
  *out_len = (size_t)r.want;
  return (int)r.status;
}

static int coproc_init(void *arg) {
  int r;

  cp_cmd = arg;
  signal(SIGPIPE, SIG_IGN); /* a dead coprocess's stdin: EPIPE */
  r = cli_child_start(&cp, cp_cmd->argv, 1, 0);
  cp_pid = cp.pid;
  cp_done = 0;
  if (r < 0) {
    fprintf(stderr, "coprocess %s: cannot start: %s\n", cp_cmd->argv[0],
            strerror(-r));
    return -r;
  }
  return 0;
}

/* Clean exit: end of file first, then EXIT_GRACE_MS, then SIGKILL. */
static void coproc_fini(void *arg) {
  (void)arg;
  if (cp.pid <= 0) return;
  cli_fd_close(&cp.in);
  if (gone(EXIT_GRACE_MS)) (void)reap_status();
  else cli_child_kill(&cp);
}

void cli_coproc_config(const struct cli_command *c, fp_config *cfg) {
  cfg->handler = coproc_handler;
  cfg->arg = (void *)c;
  cfg->worker_init = coproc_init;
  cfg->worker_fini = coproc_fini;
}
