/*
 * hostile: a handler plugin that misbehaves the way legacy or untrusted code
 * does in real programs, to test that forkpool keeps every task, the pool
 * and the host program isolated from it (tests/ drive every command).
 *
 * Build: make build/examples/hostile.so
 * Use:   forkpool run --handler build/examples/hostile.so ...
 *
 * The task input is a command (not NUL-terminated, at most 255 bytes):
 *   ok               output "ok"
 *   spin MS          busy-loop MS milliseconds, then output "spun MS"
 *   sleep MS         one usleep(MS * 1000), then output "slept MS"; a signal
 *                    that interrupts it makes it return early
 *   readstdin        read(0, buf, 65536) once; output how many bytes it got
 *   stdout TEXT      write(1, TEXT) unbuffered; output "wrote"
 *   stderr TEXT      write(2, TEXT) unbuffered; output "wrote"
 *   printf TEXT      printf TEXT then fflush(stdout): also flushes whatever
 *                    the stdio buffer inherited from the host held
 *   forkreturn       fork(); the child runs a failed exec and returns from
 *                    the handler as if it were the worker (output "child");
 *                    the parent outputs "parent"
 *   exit N           exit(N): runs atexit handlers, flushes stdio
 *   child SEC        fork a child that sleeps SEC seconds; output its pid
 *   setsid SEC       fork a child that calls setsid(), then sleeps SEC
 *   setpgid SEC      fork a child that calls setpgid(0, 0), then sleeps SEC
 *   setsidhang SEC   as setsid SEC, then the handler itself sleeps SEC (a
 *                    task to time out, cancel or stop with a child out of
 *                    its worker's process group)
 *   double SEC       fork a child that forks a grandchild (setsid, sleeps
 *                    SEC) and exits at once: the grandchild is an orphan
 *   zombie           fork a child that exits at once, never waited for
 *   grandzombie      fork a child that forks a grandchild and both exit;
 *                    the child is never waited for
 *   ignoreterm SEC   fork a child that ignores SIGTERM, SIGINT and SIGHUP
 *                    and sleeps SEC
 *   rss MB           allocate and touch MB MiB and keep it (a leak)
 *   fpe              raise(SIGFPE): a signal sent, not a fault
 *   segv             store through NULL
 * Anything else fails with EINVAL.
 *
 * Every process a command forks appends "PID\n" to the file named by
 * $HOSTILE_PIDS (when set), so a test can check that none of them lives on
 * after its task ended; the handler returns only once each of them did (or
 * after 5 s), so the list is complete when the task ends. Children sleep in
 * nanosleep loops, so a signal that interrupts them does not end them early.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "forkpool.h"

#define HOSTILE_CMD_MAX 256
#define HOSTILE_NOINLINE __attribute__((noinline, noclone))

static void *volatile hostile_sink;

/* Write end of the pipe each forked process reports "noted" on, or -1. */
static int ready_wfd = -1, ready_rfd = -1;

/* Before a command forks: the pipe note_pid() reports on. */
static void ready_begin(void) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return; /* no waiting, then */
  ready_rfd = fds[0];
  ready_wfd = fds[1];
}

/* In the handler: wait (5 s at most) until n processes noted their pid. */
static void ready_wait(int n) {
  if (ready_rfd < 0) return;
  char b[8];
  while (n > 0) {
    struct pollfd pf = {ready_rfd, POLLIN, 0};
    if (poll(&pf, 1, 5000) <= 0) break;
    ssize_t got =
        read(ready_rfd, b, (size_t)n < sizeof(b) ? (size_t)n : sizeof(b));
    if (got <= 0) break;
    n -= (int)got;
  }
  close(ready_rfd);
  close(ready_wfd);
  ready_rfd = ready_wfd = -1;
}

static void note_ready(void) {
  if (ready_wfd >= 0 && write(ready_wfd, "r", 1) < 0) {
    /* the handler then waits its 5 s */
  }
}

/* Append our pid to $HOSTILE_PIDS, one write so lines never interleave;
 * then tell the handler (ready_wait). */
static void note_pid_file(void);
static void note_pid(void) {
  note_pid_file();
  note_ready();
}

static void note_pid_file(void) {
  const char *path = getenv("HOSTILE_PIDS");
  if (path == NULL || *path == '\0') return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
  if (n > 0 && write(fd, buf, (size_t)n) < 0) {
    /* nothing to do: the test then misses one pid */
  }
  close(fd);
}

/* Sleep sec seconds in full, whatever signals interrupt us. */
static void sleep_full(long sec) {
  struct timespec ts = {sec, 0};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static long ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static HOSTILE_NOINLINE void hostile_spin(long ms) {
  long end = ms_now() + ms;
  volatile unsigned long spin = 0;
  while (ms_now() < end) spin++;
}

static HOSTILE_NOINLINE void hostile_segv(void) {
  volatile int *volatile p = NULL;
  *p = 42;
}

static HOSTILE_NOINLINE void hostile_fpe(void) { raise(SIGFPE); }

/* What a forked child of a command does before it ends. */
enum child_kind { PLAIN, SETSID, SETPGID, IGNORE_TERM };

static pid_t fork_child_nowait(enum child_kind kind, long sec);

/* Fork a child of that kind; return its pid once it noted it. */
static pid_t fork_child(enum child_kind kind, long sec) {
  ready_begin();
  pid_t pid = fork_child_nowait(kind, sec);
  if (pid > 0) ready_wait(1);
  else ready_wait(0);
  return pid;
}

static pid_t fork_child_nowait(enum child_kind kind, long sec) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (kind == SETSID) setsid();
  if (kind == SETPGID) setpgid(0, 0);
  if (kind == IGNORE_TERM) {
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
  }
  note_pid();
  sleep_full(sec);
  _exit(0);
}

static int put(void *out, size_t cap, size_t *len, const char *fmt, long v) {
  int n = snprintf(out, cap, fmt, v);
  *len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap;
  return 0;
}

/* "CMD N": the number after the command, or -1 when there is none. */
static long arg_num(const char *cmd, const char *name) {
  size_t n = strlen(name);
  if (strncmp(cmd, name, n) != 0 || cmd[n] != ' ') return -1;
  char *end;
  errno = 0;
  long v = strtol(cmd + n + 1, &end, 10);
  return errno != 0 || *end != '\0' || v < 0 ? -1 : v;
}

/* "CMD TEXT": the text, or NULL. */
static const char *arg_text(const char *cmd, const char *name) {
  size_t n = strlen(name);
  return strncmp(cmd, name, n) == 0 && cmd[n] == ' ' ? cmd + n + 1 : NULL;
}

__attribute__((visibility("default"))) int forkpool_handler(
    void *arg, const void *in, size_t in_len, void *out, size_t out_cap,
    size_t *out_len) {
  (void)arg;
  char cmd[HOSTILE_CMD_MAX];
  if (in_len >= sizeof(cmd)) return EINVAL;
  memcpy(cmd, in, in_len);
  cmd[in_len] = '\0';
  const char *text;
  long v;
  *out_len = 0;

  if (strcmp(cmd, "ok") == 0) return put(out, out_cap, out_len, "ok", 0);
  if ((v = arg_num(cmd, "spin")) >= 0) {
    hostile_spin(v);
    return put(out, out_cap, out_len, "spun %ld", v);
  }
  if ((v = arg_num(cmd, "sleep")) >= 0) {
    usleep((useconds_t)(v * 1000));
    return put(out, out_cap, out_len, "slept %ld", v);
  }
  if (strcmp(cmd, "readstdin") == 0) {
    static char buf[65536];
    ssize_t n = read(0, buf, sizeof(buf));
    return put(out, out_cap, out_len, "read %ld", (long)n);
  }
  if ((text = arg_text(cmd, "stdout")) != NULL ||
      (text = arg_text(cmd, "stderr")) != NULL) {
    ssize_t n = write(cmd[3] == 'o' ? 1 : 2, text, strlen(text));
    (void)n;
    return put(out, out_cap, out_len, "wrote", 0);
  }
  if ((text = arg_text(cmd, "printf")) != NULL) {
    printf("%s", text);
    fflush(stdout);
    return put(out, out_cap, out_len, "wrote", 0);
  }
  if (strcmp(cmd, "forkreturn") == 0) {
    pid_t pid = fork();
    if (pid == 0) {
      note_pid();
      execl("/nonexistent/forkpool-hostile", "x", (char *)NULL);
      /* The exec failed: return as the worker would, a second worker. */
      return put(out, out_cap, out_len, "child", 0);
    }
    return put(out, out_cap, out_len, "parent", 0);
  }
  if ((v = arg_num(cmd, "exit")) >= 0) exit((int)v);
  if ((v = arg_num(cmd, "child")) >= 0)
    return put(out, out_cap, out_len, "%ld", (long)fork_child(PLAIN, v));
  if ((v = arg_num(cmd, "setsid")) >= 0)
    return put(out, out_cap, out_len, "%ld", (long)fork_child(SETSID, v));
  if ((v = arg_num(cmd, "setsidhang")) >= 0) {
    pid_t pid = fork_child(SETSID, v);
    sleep_full(v);
    return put(out, out_cap, out_len, "%ld", (long)pid);
  }
  if ((v = arg_num(cmd, "setpgid")) >= 0)
    return put(out, out_cap, out_len, "%ld", (long)fork_child(SETPGID, v));
  if ((v = arg_num(cmd, "ignoreterm")) >= 0)
    return put(out, out_cap, out_len, "%ld", (long)fork_child(IGNORE_TERM, v));
  if ((v = arg_num(cmd, "double")) >= 0) {
    ready_begin();
    pid_t pid = fork();
    if (pid == 0) {
      note_pid();
      fork_child_nowait(SETSID, v);
      _exit(0);
    }
    ready_wait(pid > 0 ? 2 : 0);
    return put(out, out_cap, out_len, "%ld", (long)pid);
  }
  if (strcmp(cmd, "zombie") == 0) {
    ready_begin();
    pid_t pid = fork();
    if (pid == 0) {
      note_pid();
      _exit(0);
    }
    ready_wait(pid > 0 ? 1 : 0);
    return put(out, out_cap, out_len, "%ld", (long)pid);
  }
  if (strcmp(cmd, "grandzombie") == 0) {
    ready_begin();
    pid_t pid = fork();
    if (pid == 0) {
      note_pid();
      if (fork() == 0) {
        note_pid();
        _exit(0);
      }
      _exit(0);
    }
    ready_wait(pid > 0 ? 2 : 0);
    return put(out, out_cap, out_len, "%ld", (long)pid);
  }
  if ((v = arg_num(cmd, "rss")) >= 0) {
    size_t bytes = (size_t)v * 1024u * 1024u;
    char *p = malloc(bytes ? bytes : 1);
    if (p == NULL) return ENOMEM;
    memset(p, 1, bytes);
    hostile_sink = p; /* kept: a leak, on purpose */
    return put(out, out_cap, out_len, "rss %ld", v);
  }
  if (strcmp(cmd, "fpe") == 0) hostile_fpe();
  if (strcmp(cmd, "segv") == 0) hostile_segv();
  return EINVAL;
}
