/*
 * --exec CMD [ARG...]: each task runs the command once, in the worker.
 *
 *   task     replaces every "{}" in the ARGs when one holds it (no NUL
 *            byte may be in it then), else is the command's whole stdin;
 *            with {} its stdin is the worker's (/dev/null);
 *   stdout   is the output, up to max_output bytes: more fails the task
 *            with FP_CODE_OUTPUT;
 *   stderr   goes to the log line by line, marked with the task id (the
 *            worker's own stderr is the pipe the supervisor logs), and
 *            its first ERR_HEAD bytes become the output of a failed or
 *            crashed task, whose stdout goes to the log instead;
 *   status   exit 0 is ok, exit N failed with code N, death by a signal
 *            crashed with that signal (fp_task_crashed()).
 *
 * The task ends when the command exits (seen on a pidfd): output written
 * until then counts, and processes it left behind, which may hold its
 * pipes open, are killed by the worker after the handler returns. Without
 * pidfd_open (Linux < 5.3) it ends when both pipes reach end of file.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"
#include "output.h"

/* Bytes of stderr a failed or crashed task's output keeps. */
#define ERR_HEAD 1024

struct exec_io {
  unsigned char *out; /* the task's output buffer */
  size_t cap, len;
  unsigned long long over; /* stdout bytes past cap, discarded */
  char head[ERR_HEAD];     /* the start of stderr */
  size_t head_len;
};

/* Read what *fd has. Returns 1 when it may have more, 0 at end of file
 * (then *fd is closed), -1 when nothing is there now. */
static int read_out(int *fd, struct exec_io *io) {
  unsigned char scratch[4096];
  ssize_t n;

  if (io->len < io->cap) n = read(*fd, io->out + io->len, io->cap - io->len);
  else n = read(*fd, scratch, sizeof scratch);
  if (n > 0) {
    if (io->len < io->cap) io->len += (size_t)n;
    else io->over += (unsigned long long)n;
    return 1;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -1;
  cli_fd_close(fd); /* EOF, or an error no retry mends */
  return 0;
}

static int read_err(int *fd, struct exec_io *io) {
  char buf[4096];
  ssize_t n = read(*fd, buf, sizeof buf);

  if (n > 0) {
    size_t keep = sizeof io->head - io->head_len;

    if (keep > (size_t)n) keep = (size_t)n;
    memcpy(io->head + io->head_len, buf, keep);
    io->head_len += keep;
    (void)cli_write_all(2, buf, (size_t)n); /* the log */
    return 1;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -1;
  cli_fd_close(fd);
  return 0;
}

/* After the command exited: take what its pipes hold now, no more (a
 * process it left may keep writing). */
static void drain(struct cli_child *ch, struct exec_io *io) {
  while (ch->out >= 0 && read_out(&ch->out, io) > 0) {
  }
  while (ch->err >= 0 && read_err(&ch->err, io) > 0) {
  }
}

/*
 * Feed in[0..len) to the command's stdin (when piped) and collect its
 * stdout and stderr until it exits. Returns 0, or -errno from poll.
 */
static int pump(struct cli_child *ch, const unsigned char *in, size_t len,
                struct exec_io *io) {
  size_t sent = 0;

  if (ch->in >= 0 && len == 0) cli_fd_close(&ch->in);
  while (ch->out >= 0 || ch->err >= 0) {
    struct pollfd pf[4];
    int n = 0, k;

    if (ch->in >= 0) pf[n++] = (struct pollfd){.fd = ch->in, .events = POLLOUT};
    if (ch->out >= 0)
      pf[n++] = (struct pollfd){.fd = ch->out, .events = POLLIN};
    if (ch->err >= 0)
      pf[n++] = (struct pollfd){.fd = ch->err, .events = POLLIN};
    if (ch->pidfd >= 0)
      pf[n++] = (struct pollfd){.fd = ch->pidfd, .events = POLLIN};
    if (poll(pf, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    for (k = 0; k < n; k++) {
      if (!pf[k].revents) continue;
      if (pf[k].fd == ch->in) {
        ssize_t w = write(ch->in, in + sent, len - sent);

        if (w > 0) sent += (size_t)w;
        /* EPIPE: it does not read its stdin (all of it): fine. */
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == len)
          cli_fd_close(&ch->in);
      } else if (pf[k].fd == ch->out) {
        (void)read_out(&ch->out, io);
      } else if (pf[k].fd == ch->err) {
        (void)read_err(&ch->err, io);
      } else if (pf[k].fd == ch->pidfd) {
        drain(ch, io);
        return 0;
      }
    }
  }
  return 0;
}

/*
 * The command line of one task: c->argv with every "{}" replaced by the
 * task. Returns a malloc'ed argv (its strings after its pointers, one
 * block), or NULL with the reason in why.
 */
static char **task_argv(const struct cli_command *c, const char *in, size_t len,
                        char *why, size_t whylen) {
  size_t bytes = (size_t)(c->argc + 1) * sizeof(char *), off;
  const char *nul = memchr(in, '\0', len);
  char **av, *p;
  int k;

  if (nul) {
    snprintf(why, whylen,
             "the task has a NUL byte at offset %zu, so it "
             "cannot go into an argument ({}); leave {} out to get it on "
             "stdin",
             (size_t)(nul - in));
    return NULL;
  }
  for (k = 0; k < c->argc; k++) {
    size_t n = 0;
    const char *a = c->argv[k];

    for (const char *s = strstr(a, "{}"); s; s = strstr(s + 2, "{}")) n++;
    bytes += strlen(a) + 1 + n * len;
  }
  av = malloc(bytes);
  if (!av) {
    snprintf(why, whylen, "out of memory for the command line (%zu bytes)",
             bytes);
    return NULL;
  }
  p = (char *)(av + c->argc + 1);
  off = 0;
  for (k = 0; k < c->argc; k++) {
    const char *a = c->argv[k], *s;

    av[k] = p + off;
    while ((s = strstr(a, "{}")) != NULL) {
      memcpy(p + off, a, (size_t)(s - a));
      off += (size_t)(s - a);
      memcpy(p + off, in, len);
      off += len;
      a = s + 2;
    }
    strcpy(p + off, a);
    off += strlen(a) + 1;
  }
  av[c->argc] = NULL;
  return av;
}

static int exec_handler(void *arg, const void *in, size_t in_len, void *out,
                        size_t out_cap, size_t *out_len) {
  const struct cli_command *c = arg;
  struct exec_io io = {.out = out, .cap = out_cap};
  struct cli_child ch;
  char why[512], st[64];
  char **av = c->argv;
  int r, ws;

  *out_len = 0;
  if (c->brace && !(av = task_argv(c, in, in_len, why, sizeof why)))
    return cli_fail_text(FP_CODE_EXEC, why, strlen(why), out, out_cap, out_len);
  r = cli_child_start(&ch, av, !c->brace, 1);
  if (av != c->argv) free(av);
  if (r < 0) {
    snprintf(why, sizeof why, "cannot run '%s': %s", c->argv[0], strerror(-r));
    return cli_fail_text(FP_CODE_EXEC, why, strlen(why), out, out_cap, out_len);
  }
  r = pump(&ch, in, in_len, &io);
  if (r < 0) {
    cli_child_kill(&ch);
    snprintf(why, sizeof why, "'%s': poll failed: %s", c->argv[0],
             strerror(-r));
    return cli_fail_text(FP_CODE_EXEC, why, strlen(why), out, out_cap, out_len);
  }
  if (cli_child_reap(&ch, &ws) < 0) {
    snprintf(why, sizeof why,
             "'%s': its exit status was lost (reaped "
             "elsewhere)",
             c->argv[0]);
    return cli_fail_text(FP_CODE_EXEC, why, strlen(why), out, out_cap, out_len);
  }
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
    if (io.over == 0) {
      *out_len = io.len;
      return 0;
    }
    r = snprintf(why, sizeof why,
                 "'%s' wrote %llu bytes to stdout, over "
                 "the limit of %zu (--max-output)",
                 c->argv[0], (unsigned long long)io.len + io.over, out_cap);
    return cli_fail_text(FP_CODE_OUTPUT, why, (size_t)r, out, out_cap, out_len);
  }
  /* Not ok: stdout goes to the log, the start of stderr into the result. */
  (void)cli_write_all(1, io.out, io.len);
  if (WIFEXITED(ws))
    return cli_fail_text(WEXITSTATUS(ws), io.head, io.head_len, out, out_cap,
                         out_len);
  if (WIFSIGNALED(ws)) {
    char rep[ERR_HEAD + 256];
    int n = snprintf(rep, sizeof rep, "'%s' %s%s", c->argv[0],
                     cli_wait_text(ws, st, sizeof st),
                     io.head_len ? "; stderr:\n" : "");

    if (n < 0) n = 0;
    if ((size_t)n + io.head_len < sizeof rep) {
      memcpy(rep + n, io.head, io.head_len);
      n += (int)io.head_len;
    }
    fp_task_crashed(WTERMSIG(ws), 0, rep, (size_t)n); /* no return */
  }
  snprintf(why, sizeof why, "'%s' %s", c->argv[0],
           cli_wait_text(ws, st, sizeof st));
  return cli_fail_text(FP_CODE_EXEC, why, strlen(why), out, out_cap, out_len);
}

/* A write to a pipe whose reader left must be EPIPE, not our death. */
static int exec_init(void *arg) {
  (void)arg;
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

void cli_exec_config(const struct cli_command *c, fp_config *cfg) {
  cfg->handler = exec_handler;
  cfg->arg = (void *)c;
  cfg->worker_init = exec_init;
  cfg->worker_fini = NULL;
}
