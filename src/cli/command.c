/*
 * Starting and ending the processes of --exec and --coproc (command.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"

extern char **environ;

int cli_fail_text(int code, const void *text, size_t len, void *out, size_t cap,
                  size_t *out_len) {
  *out_len = len < cap ? len : cap;
  memcpy(out, text, *out_len);
  return code;
}

void cli_fd_close(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Is `path` a regular file we may execute? 0 or -errno. */
static int executable(const char *path) {
  struct stat st;

  if (stat(path, &st) != 0) return -errno;
  if (S_ISDIR(st.st_mode)) return -EISDIR;
  if (access(path, X_OK) != 0) return -errno;
  return 0;
}

int cli_command_check(const struct cli_command *c, char *err, size_t errlen) {
  const char *name = c->argv[0];
  const char *path = getenv("PATH");
  int r = -ENOENT;

  if (name[0] == '\0') {
    snprintf(err, errlen, "the command is empty");
    return -1;
  }
  if (strchr(name, '/')) {
    r = executable(name);
    if (r < 0) {
      snprintf(err, errlen, "'%s': %s", name, strerror(-r));
      return -1;
    }
    return 0;
  }
  /* posix_spawnp's search: PATH, or the default when it is unset. */
  if (!path) path = "/bin:/usr/bin";
  while (*path) {
    const char *colon = strchr(path, ':');
    size_t dlen = colon ? (size_t)(colon - path) : strlen(path);
    char buf[4096];

    /* An empty entry is the current directory. */
    if (snprintf(buf, sizeof buf, "%.*s%s%s", (int)dlen, dlen ? path : ".", "/",
                 name) < (int)sizeof buf) {
      int e = executable(buf);

      if (e == 0) return 0;
      if (e == -EACCES) r = e;
    }
    path += dlen;
    if (*path == ':') path++;
  }
  snprintf(err, errlen,
           r == -EACCES ? "'%s': permission denied (on PATH)"
                        : "'%s' not found on PATH",
           name);
  return -1;
}

static int nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);

  return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* A pipe whose both ends close on exec. */
static int make_pipe(int p[2]) { return pipe2(p, O_CLOEXEC) == 0 ? 0 : -errno; }

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  /* A pidfd is close-on-exec from the start (pidfd_open(2)). */
  long fd = syscall(SYS_pidfd_open, pid, 0);

  if (fd >= 0) return (int)fd;
#else
  (void)pid;
#endif
  return -1;
}

int cli_child_start(struct cli_child *c, char *const argv[], int pipe_in,
                    int pipe_err) {
  int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, all;
  pid_t pid;
  int r, have_fa = 0, have_at = 0;

  memset(c, 0, sizeof *c);
  c->pidfd = c->in = c->out = c->err = -1;
  if ((pipe_in && (r = make_pipe(pin)) < 0) || (r = make_pipe(pout)) < 0 ||
      (pipe_err && (r = make_pipe(perr)) < 0))
    goto fail;
  if ((r = -posix_spawn_file_actions_init(&fa)) < 0) goto fail;
  have_fa = 1;
  if ((r = -posix_spawnattr_init(&at)) < 0) goto fail;
  have_at = 1;
  /* dup2 clears close-on-exec on the target: only 0, 1, 2 survive. */
  if ((pipe_in &&
       (r = -posix_spawn_file_actions_adddup2(&fa, pin[0], 0)) < 0) ||
      (r = -posix_spawn_file_actions_adddup2(&fa, pout[1], 1)) < 0 ||
      (pipe_err &&
       (r = -posix_spawn_file_actions_adddup2(&fa, perr[1], 2)) < 0))
    goto fail;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  if ((r = -posix_spawnattr_setsigmask(&at, &none)) < 0 ||
      (r = -posix_spawnattr_setsigdefault(&at, &all)) < 0 ||
      (r = -posix_spawnattr_setflags(
           &at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) < 0)
    goto fail;
  /* The error of the exec itself comes back here (glibc >= 2.24). */
  r = -posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
  if (r < 0) goto fail;
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  cli_fd_close(&pin[0]);
  cli_fd_close(&pout[1]);
  cli_fd_close(&perr[1]);
  c->pid = pid;
  c->in = pin[1];
  c->out = pout[0];
  c->err = perr[0];
  c->pidfd = open_pidfd(pid);
  /* Cannot fail on a pipe we own; were it to, a read would block at
   * worst, and the timeout still ends the task. */
  if (c->in >= 0) (void)nonblock(c->in);
  (void)nonblock(c->out);
  if (c->err >= 0) (void)nonblock(c->err);
  return 0;

fail:
  if (have_fa) posix_spawn_file_actions_destroy(&fa);
  if (have_at) posix_spawnattr_destroy(&at);
  for (int k = 0; k < 2; k++) {
    cli_fd_close(&pin[k]);
    cli_fd_close(&pout[k]);
    cli_fd_close(&perr[k]);
  }
  return r;
}

static void close_all(struct cli_child *c) {
  cli_fd_close(&c->in);
  cli_fd_close(&c->out);
  cli_fd_close(&c->err);
  cli_fd_close(&c->pidfd);
}

int cli_child_reap(struct cli_child *c, int *status) {
  pid_t r;
  int ws = 0;

  close_all(c);
  if (c->pid <= 0) {
    *status = 0;
    return -ECHILD;
  }
  do r = waitpid(c->pid, &ws, __WALL);
  while (r < 0 && errno == EINTR);
  c->pid = 0;
  *status = r < 0 ? 0 : ws;
  return r < 0 ? -errno : 0;
}

void cli_child_kill(struct cli_child *c) {
  int ws;

  if (c->pid > 0)
    kill(c->pid, SIGKILL); /* ours and not reaped: cannot be reused */
  (void)cli_child_reap(c, &ws);
}

const char *cli_wait_text(int status, char *buf, size_t len) {
  if (WIFEXITED(status)) {
    snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    const char *n = sigabbrev_np(WTERMSIG(status));

    snprintf(buf, len, "killed by SIG%s%s", n ? n : "?",
             WCOREDUMP(status) ? " (core dumped)" : "");
  } else {
    snprintf(buf, len, "ended (wait status 0x%x)", (unsigned)status);
  }
  return buf;
}
