/*
 * Listing, killing and reaping this process's children (see reap.h).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>

#include "reap.h"

static int open_retry(const char *path, int flags) {
  int fd;
  do fd = open(path, flags | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  return fd;
}

/*
 * Parse one children file (pids in decimal, separated by spaces) and call
 * fn on each, counting them in *n. Returns 1 when fn asked to stop, else 0
 * (a read error ends the file where it is: the caller's loop lists again).
 */
static int list_file(int fd, int (*fn)(void *, pid_t), void *ctx, int *n) {
  char buf[512];
  long cur = -1; /* the pid being parsed, -1 between numbers */
  for (;;) {
    ssize_t got = read(fd, buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    for (ssize_t k = 0; k < got; k++) {
      char c = buf[k];
      if (c >= '0' && c <= '9') {
        cur = (cur < 0 ? 0 : cur * 10) + (c - '0');
        if (cur > INT_MAX) cur = INT_MAX; /* cannot happen: pid_max */
      } else if (cur >= 0) {
        (*n)++;
        if (cur > 0 && fn(ctx, (pid_t)cur)) return 1;
        cur = -1;
      }
    }
  }
  if (cur >= 0) {
    (*n)++;
    if (cur > 0 && fn(ctx, (pid_t)cur)) return 1;
  }
  return 0;
}

int fp__list_children(int (*fn)(void *ctx, pid_t pid), void *ctx) {
  int dfd = open_retry("/proc/self/task", O_RDONLY | O_DIRECTORY);
  if (dfd < 0) return -errno;
  /* getdents64 rather than opendir: no malloc (see reap.h). */
  char ents[1024];
  int n = 0, stop = 0;
  for (;;) {
    ssize_t got = getdents64(dfd, ents, sizeof(ents));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int err = -errno;
      close(dfd);
      return err;
    }
    if (got == 0) break;
    for (ssize_t off = 0; off < got && !stop;) {
      struct dirent64 *d = (struct dirent64 *)(void *)(ents + off);
      off += d->d_reclen;
      if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
      char path[64];
      snprintf(path, sizeof(path), "%.20s/children", d->d_name);
      int fd;
      do fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
      while (fd < 0 && errno == EINTR);
      if (fd < 0) continue; /* that thread just ended */
      stop = list_file(fd, fn, ctx, &n);
      close(fd);
    }
    if (stop) break;
  }
  close(dfd);
  return n;
}

struct sweep {
  fp__keep_fn keep;
  void *ctx;
  unsigned left;   /* children listed this pass and not kept */
  unsigned reaped; /* reaped this pass */
};

/*
 * One listed child: reap it if it is dead already, else SIGKILL it (again,
 * maybe: harmless). Its pid is ours until we reap it, so neither call can
 * reach another process.
 */
static int sweep_one(void *arg, pid_t pid) {
  struct sweep *sw = arg;
  if (sw->keep != NULL && sw->keep(sw->ctx, pid)) return 0;
  sw->left++;
  int ws;
  pid_t r;
  do r = waitpid(pid, &ws, WNOHANG | __WALL);
  while (r < 0 && errno == EINTR);
  if (r == pid) {
    sw->reaped++;
    return 0;
  }
  /* ESRCH only if it was reaped behind our back: nothing to kill then. */
  kill(pid, SIGKILL);
  return 0;
}

int fp__reap_children(fp__keep_fn keep, void *ctx, uint64_t deadline_ns,
                      unsigned *killed) {
  struct sweep sw = {keep, ctx, 0, 0};
  unsigned total = 0;
  long pause_ns = 20000; /* 20 us, doubling to 2 ms while they die */
  int rc;
  for (;;) {
    sw.left = sw.reaped = 0;
    int n = fp__list_children(sweep_one, &sw);
    total += sw.reaped;
    if (n < 0) {
      rc = n;
      break;
    }
    /*
     * Done only after a pass that found nothing: a child reaped in this
     * pass may have left orphans that became ours after we listed.
     */
    if (sw.left == 0) {
      rc = 0;
      break;
    }
    if (fp__now_ns() >= deadline_ns) {
      rc = -ETIMEDOUT;
      break;
    }
    if (sw.reaped < sw.left) {
      /* Killed ones still dying (SIGKILL is not instant): let them. */
      struct timespec ts = {0, pause_ns};
      nanosleep(&ts, NULL); /* EINTR: just a shorter pause */
      if (pause_ns < 2000000) pause_ns *= 2;
    }
  }
  if (killed != NULL) *killed = total;
  return rc;
}
