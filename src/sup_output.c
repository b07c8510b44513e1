/*
 * Workers' standard streams, supervisor side. A worker shares neither stdin
 * nor stdout with the program that feeds the pool: its fd 0 is /dev/null,
 * and its fd 1 and fd 2 are pipes whose read ends the supervisor polls in
 * its loop. What comes out is logged per task, at most FP__OUT_TASK_CAP
 * bytes per task and stream (then one "... N bytes dropped" line), as
 *   task 7 (worker 1234) stdout: TEXT
 * Control bytes of TEXT are written \xNN. A pool without a log function
 * gets the same lines, prefixed "forkpool: ", on the supervisor's stderr
 * (a private pool's is the host's).
 *
 * Which task: a chunk belongs to the task the worker's row names just
 * before the read. The worker helps (worker.c): the kernel sends it SIGURG
 * when it writes to one of its pipes (F_SETOWN/F_SETSIG/O_ASYNC on the read
 * end, set by the worker itself before any user code runs),
 * and after such a task it waits, 200 ms at most, until the pipes are empty
 * before it publishes the result; so bytes of a task are read while its
 * row still names it. Bytes a task's leftover child writes later are
 * logged under whatever the row runs then.
 *
 * Nothing here blocks: the read ends are non-blocking, each turn reads a
 * bounded amount per pipe, and bytes past the cap are read and discarded,
 * so a worker flooding its pipe stalls only itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sup.h"

#define OUT_CHUNK 4096
#define OUT_READS_PER_TURN 16 /* 64 KiB, one pipe's default capacity */

static const char *const stream_name[2] = {"stdout", "stderr"};

/* Move fd above 2, so it can never be mistaken for a standard stream. */
static int high_fd(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int err = errno;
  close(fd);
  errno = err;
  return n;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/*
 * A pipe whose ends are both above fd 2 and close-on-exec, its read end
 * non-blocking. 0, or -errno with nothing left open.
 */
static int make_pipe(int p[2]) {
  if (pipe2(p, O_CLOEXEC) != 0) return -errno;
  p[0] = high_fd(p[0]);
  p[1] = high_fd(p[1]);
  if (p[0] < 0 || p[1] < 0 ||
      fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK) != 0) {
    int err = errno ? errno : EMFILE;
    close_fd(&p[0]);
    close_fd(&p[1]);
    return -err;
  }
  return 0;
}

int fp__out_init(struct fp__sup *sp) {
  for (uint32_t r = 0; r < sp->nrows; r++)
    sp->rc[r].out_fd[0] = sp->rc[r].out_fd[1] = -1;
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    /* No /dev/null (a bare chroot): an empty pipe reads EOF just as well. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -errno;
    close(p[1]);
    fd = p[0];
  }
  sp->devnull = high_fd(fd);
  return sp->devnull >= 0 ? 0 : -errno;
}

void fp__out_fini(struct fp__sup *sp) {
  close_fd(&sp->devnull);
  for (uint32_t r = 0; sp->rc != NULL && r < sp->nrows; r++) {
    close_fd(&sp->rc[r].out_fd[0]);
    close_fd(&sp->rc[r].out_fd[1]);
  }
}

void fp__out_prepare(struct fp__sup *sp, uint32_t r, int wfd[2]) {
  int err = 0;
  for (int k = 0; k < 2; k++) {
    int p[2];
    int e = make_pipe(p);
    if (e < 0) {
      err = e;
      p[0] = p[1] = -1;
    }
    sp->rc[r].out_fd[k] = p[0];
    wfd[k] = p[1];
  }
  if (err == 0) {
    sp->out_pipe_failed = 0; /* the burst is over */
  } else if (!sp->out_pipe_failed) {
    sp->out_pipe_failed = 1;
    fp__sup_log(sp, FP_LOG_WARN,
                "no pipe for the output of the worker in "
                "row %u (%s): what it writes to stdout or stderr goes to "
                "/dev/null",
                r, strerror(-err));
  }
}

/* dup2, retried on EINTR; a failure leaves `to` as it was (the worker then
 * keeps the supervisor's stream: nothing better can be done in a child). */
static void dup_to(int from, int to) {
  while (dup2(from, to) < 0 && errno == EINTR) {
  }
}

void fp__out_child(struct fp__sup *sp, uint32_t r, int wfd[2]) {
  /*
   * Owner, signal and O_ASYNC belong to the open file description, which
   * the supervisor's read end shares: set here, before any user code runs,
   * so that no write of this worker goes unsignalled. A failure only costs
   * precision: the worker then does not learn that it wrote, and a line
   * may be logged under the next task.
   */
  pid_t self = getpid();
  for (int k = 0; k < 2; k++) {
    int fd = sp->rc[r].out_fd[k];
    if (fd >= 0 && fcntl(fd, F_SETOWN, self) == 0 &&
        fcntl(fd, F_SETSIG, SIGURG) == 0)
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC);
  }
  dup_to(sp->devnull, 0);
  dup_to(wfd[0] >= 0 ? wfd[0] : sp->devnull, 1);
  dup_to(wfd[1] >= 0 ? wfd[1] : sp->devnull, 2);
  /*
   * All are above 2 (high_fd), so none of these closes a stream. Closed
   * without storing -1: a store would copy the supervisor's row table
   * into every worker (copy-on-write), about 40 KiB of RSS each.
   */
  if (wfd[0] >= 0) close(wfd[0]);
  if (wfd[1] >= 0) close(wfd[1]);
  close(sp->devnull);
  for (uint32_t q = 0; q < sp->nrows; q++)
    for (int k = 0; k < 2; k++)
      if (sp->rc[q].out_fd[k] >= 0) close(sp->rc[q].out_fd[k]);
}

void fp__out_forked(struct fp__sup *sp, uint32_t r, int wfd[2], pid_t pid) {
  close_fd(&wfd[0]);
  close_fd(&wfd[1]);
  if (pid < 0)
    for (int k = 0; k < 2; k++) close_fd(&sp->rc[r].out_fd[k]);
}

/* Log one message about handler output, wherever this pool logs. */
static void out_log(struct fp__sup *sp, const char *msg) {
  if (sp->o->log != NULL) {
    fp__sup_log(sp, FP_LOG_WARN, "%s", msg);
    return;
  }
  char line[1200];
  int n = snprintf(line, sizeof(line), "forkpool: %s\n", msg);
  if (n <= 0) return;
  if ((size_t)n >= sizeof(line)) {
    n = (int)sizeof(line) - 1;
    line[n - 1] = '\n';
  }
  /* One write (< PIPE_BUF): lines of several processes do not interleave.
   * Errors (a closed stderr) are ignored: there is nowhere else to go. */
  ssize_t w;
  do w = write(2, line, (size_t)n);
  while (w < 0 && errno == EINTR);
}

/* "task N (worker P) stdout: " or "worker P, between tasks, stdout: ". */
static int out_prefix(const struct fp__outbuf *ob, int k, char *buf,
                      size_t cap) {
  int n =
      ob->task != 0
          ? snprintf(buf, cap,
                     "task %llu (worker %d) %s: ", (unsigned long long)ob->task,
                     (int)ob->pid, stream_name[k])
          : snprintf(buf, cap, "worker %d, between tasks, %s: ", (int)ob->pid,
                     stream_name[k]);
  return n < 0 ? 0 : (size_t)n < cap ? n : (int)cap - 1;
}

/* Log the line being assembled (if any) and empty it. */
static void emit_line(struct fp__sup *sp, struct fp__outbuf *ob, int k) {
  if (ob->len == 0) return;
  char msg[96 + 4 * FP__OUT_LINE];
  size_t o = (size_t)out_prefix(ob, k, msg, sizeof(msg));
  uint32_t len = ob->len;
  if (len > 0 && ob->line[len - 1] == '\r') len--; /* CRLF line ends */
  for (uint32_t i = 0; i < len && o + 5 < sizeof(msg); i++) {
    unsigned char c = (unsigned char)ob->line[i];
    if (c >= 0x20 && c != 0x7f)
      msg[o++] = (char)c; /* UTF-8 stays; the log's writer checks it */
    else o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\\x%02x", c);
  }
  msg[o] = '\0';
  ob->len = 0;
  out_log(sp, msg);
}

/* The task's bytes are all in: log the partial line and what was dropped. */
static void out_flush(struct fp__sup *sp, struct fp__outbuf *ob, int k) {
  if (!ob->active) return;
  emit_line(sp, ob, k);
  if (ob->dropped > 0) {
    char msg[160];
    size_t o = (size_t)out_prefix(ob, k, msg, sizeof(msg));
    snprintf(msg + o, sizeof(msg) - o,
             "... %llu bytes dropped (%u logged "
             "per task)",
             (unsigned long long)ob->dropped, (unsigned)FP__OUT_TASK_CAP);
    out_log(sp, msg);
  }
  ob->active = 0;
  ob->len = ob->logged = 0;
  ob->dropped = 0;
}

/* Take n bytes read from stream k of a worker running `task`. */
static void out_feed(struct fp__sup *sp, struct fp__outbuf *ob, int k,
                     uint64_t task, pid_t pid, const char *b, size_t n) {
  if (ob->active && (ob->task != task || ob->pid != pid)) out_flush(sp, ob, k);
  if (!ob->active) {
    ob->active = 1;
    ob->task = task;
    ob->pid = pid;
  }
  for (size_t i = 0; i < n; i++) {
    if (ob->logged >= FP__OUT_TASK_CAP) {
      ob->dropped += n - i;
      return;
    }
    ob->logged++;
    if (b[i] == '\n') {
      emit_line(sp, ob, k); /* an empty line logs nothing */
      continue;
    }
    ob->line[ob->len++] = b[i];
    if (ob->len == FP__OUT_LINE) emit_line(sp, ob, k);
  }
}

/*
 * Read what stream k of row r holds, up to OUT_READS_PER_TURN chunks.
 * EOF (every writer gone) closes the read end.
 */
static void out_read(struct fp__sup *sp, uint32_t r, int k) {
  struct fp__rowctl *rc = &sp->rc[r];
  const struct fp__row *row = fp__row_at(sp->s, r);
  char buf[OUT_CHUNK];
  for (int reads = 0; reads < OUT_READS_PER_TURN && rc->out_fd[k] >= 0;) {
    /* The task before the read: see the top of this file for why. */
    uint64_t task = atomic_load(&row->task_id);
    ssize_t n = read(rc->out_fd[k], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return; /* EAGAIN: empty for now */
    if (n == 0) {
      close_fd(&rc->out_fd[k]);
      return;
    }
    out_feed(sp, &rc->out[k], k, task, rc->pid, buf, (size_t)n);
    reads++;
  }
}

nfds_t fp__out_pollset(struct fp__sup *sp, struct pollfd *pf, nfds_t n) {
  for (uint32_t r = 0; r < sp->nrows; r++)
    for (int k = 0; k < 2; k++)
      if (sp->rc[r].out_fd[k] >= 0)
        pf[n++] = (struct pollfd){.fd = sp->rc[r].out_fd[k], .events = POLLIN};
  return n;
}

void fp__out_drain(struct fp__sup *sp, const struct pollfd *pf, nfds_t from,
                   nfds_t n) {
  /* The same walk as fp__out_pollset: nothing closed a pipe in between. */
  nfds_t j = from;
  for (uint32_t r = 0; r < sp->nrows && j < n; r++)
    for (int k = 0; k < 2 && j < n; k++) {
      if (sp->rc[r].out_fd[k] < 0 || pf[j].fd != sp->rc[r].out_fd[k]) continue;
      if (pf[j].revents != 0) out_read(sp, r, k);
      j++;
    }
}

void fp__out_tick(struct fp__sup *sp) {
  for (uint32_t r = 0; r < sp->nrows; r++)
    for (int k = 0; k < 2; k++) {
      struct fp__outbuf *ob = &sp->rc[r].out[k];
      if (ob->active &&
          (ob->pid != sp->rc[r].pid ||
           atomic_load(&fp__row_at(sp->s, r)->task_id) != ob->task))
        out_flush(sp, ob, k);
    }
}

void fp__out_reap(struct fp__sup *sp, uint32_t r) {
  for (int k = 0; k < 2; k++) {
    out_read(sp, r, k);
    out_flush(sp, &sp->rc[r].out[k], k);
    /* A leftover child of the task that writes now gets EPIPE. */
    close_fd(&sp->rc[r].out_fd[k]);
  }
}
