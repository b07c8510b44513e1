/*
 * The sealed room, worker side (DESIGN.md, invariant 8): what a worker
 * sets up around user code before its first task, checks after each call
 * of it, and ends when a task is over (the processes it started), and the
 * limits on its memory. worker.c calls these; nothing here touches the
 * queue. The protocol of the room itself is stated below, where its state
 * is defined.
 */
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "reap.h"
#include "room.h"

void fp__reset_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &sa, NULL); /* EINVAL for glibc-reserved ones: fine */
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

void fp__purge_stdio(void) {
  __fpurge(stdin);
  __fpurge(stdout);
  __fpurge(stderr);
}

/*
 * The sealed room (DESIGN.md, invariant 8), worker side:
 *   - fd 0 is /dev/null and fd 1 and 2 are pipes to the supervisor
 *     (sup_output.c), set up before fp__worker_main;
 *   - the segment is mapped MADV_DONTFORK, so a process the handler forks
 *     has no mapping of it at all; and a fork() child that returns from the
 *     handler (a failed exec) ends at once (in_child, set by an atfork
 *     hook, costs no system call per task);
 *   - exit() in user code runs our on_exit hook first (handlers run LIFO,
 *     and ours is registered after everything the host registered), which
 *     _exits with the status: no atexit handler of the host runs, and no
 *     stdio buffer is flushed but the worker's own stdout and stderr, which
 *     hold only what user code printed (the host's bytes were purged).
 */
static volatile sig_atomic_t in_child;    /* a fork() child of the worker */
static volatile sig_atomic_t out_written; /* SIGURG: fd 1 or 2 written */

static void atfork_child(void) { in_child = 1; }

static void on_out_written(int sig) {
  (void)sig;
  out_written = 1;
}

static void exit_hook(int status, void *arg) {
  (void)arg;
  /* What the handler printed before exit() is logged, as exit() would. */
  fflush(stdout);
  fflush(stderr);
  _exit(status);
}

/*
 * After a task that wrote to fd 1 or 2: wait until the supervisor has read
 * the pipes empty, so that it logs those bytes under this task. 200 ms at
 * most: a leftover child that keeps writing must not hold every task that
 * long. FIONREAD fails (ENOTTY, EBADF) when user code redirected or closed
 * the descriptor: nothing to wait for then.
 */
static void settle_output(void) {
  out_written = 0;
  for (int k = 0; k < 400; k++) {
    int a = 0, b = 0;
    if ((ioctl(1, FIONREAD, &a) != 0 || a == 0) &&
        (ioctl(2, FIONREAD, &b) != 0 || b == 0))
      return;
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL);
  }
}

void fp__room_after_user_code(void) {
  if (in_child) _exit(127); /* a second worker must never exist */
  if (out_written) settle_output();
}

/*
 * Children this worker had when worker_init returned: they are the hook's,
 * not a task's, and are left alone (their pids stay ours until we reap
 * them, so the list cannot come to name another process).
 */
static struct {
  pid_t *pid;
  unsigned n, cap;
} init_kids;

static int note_init_kid(void *arg, pid_t pid) {
  (void)arg;
  if (init_kids.n == init_kids.cap) {
    unsigned cap = init_kids.cap ? init_kids.cap * 2 : 8;
    pid_t *p = realloc(init_kids.pid, cap * sizeof(*p));
    if (p == NULL) return 1; /* the rest are not kept: ended with task 1 */
    init_kids.pid = p;
    init_kids.cap = cap;
  }
  init_kids.pid[init_kids.n++] = pid;
  return 0;
}

static int is_init_kid(void *arg, pid_t pid) {
  (void)arg;
  for (unsigned k = 0; k < init_kids.n; k++)
    if (init_kids.pid[k] == pid) return 1;
  return 0;
}

/* An init child was reaped: its pid may be reused, drop it from the list. */
static void forget_init_kid(pid_t pid) {
  for (unsigned k = 0; k < init_kids.n; k++)
    if (init_kids.pid[k] == pid)
      init_kids.pid[k] = init_kids.pid[--init_kids.n];
}

/* How long a worker tries to end a task's descendants before it gives up
 * and exits, leaving them to the supervisor (a subreaper too). */
#define END_DESCENDANTS_NS 1000000000ull /* 1 s */

/*
 * After the handler returned, `ran_ns` after its task started: SIGKILL and
 * reap every process the task started, whatever group or session it moved
 * to (we are a subreaper, so the orphans of dead ones are our children),
 * children of worker_init excepted. Fast paths: none when the handler ran
 * under FP__MIN_SPAWN_NS (it cannot have forked, and the previous task left no
 * child); else one waitpid that says ECHILD when there is no child at all.
 * Returns 0 when none is left, or -ETIMEDOUT / -errno when some may be (the
 * caller then exits after publishing, see must_exit).
 *
 * Not covered: a thread or an asynchronous signal handler the handler left
 * running, which may fork at any instant, even after this check; what it
 * leaves is ended after a later task, or by the supervisor when this worker
 * exits.
 */
int fp__room_end_descendants(uint64_t ran_ns) {
  if (ran_ns < FP__MIN_SPAWN_NS && init_kids.n == 0) return 0;
  int ws;
  pid_t r;
  do r = waitpid(-1, &ws, WNOHANG | __WALL);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno != ECHILD) return -errno; /* cannot happen */
    init_kids.n = 0; /* no child at all: the hook's are gone too */
    return 0;
  }
  if (r > 0) forget_init_kid(r);
  /*
   * A handler may have set SIGCHLD to SIG_IGN or SA_NOCLDWAIT: the kernel
   * would then reap children itself, and a listed pid could be reused
   * before our kill. With SIG_DFL no child is reaped but by us (a SIGCHLD
   * handler it installed could reap one too: SIG_DFL replaces it while we
   * sweep, and it comes back after).
   */
  struct sigaction dfl, old;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  int restore = sigaction(SIGCHLD, &dfl, &old) == 0;
  int rc = fp__reap_children(is_init_kid, NULL,
                             fp__now_ns() + END_DESCENDANTS_NS, NULL);
  if (restore) sigaction(SIGCHLD, &old, NULL);
  return rc;
}

/*
 * No process grows its resident set faster than this: every new page is
 * zeroed or copied first, and a memory bus moves tens of GB/s (one thread
 * zeroes 10-30). 1 MiB per microsecond (about 1 TB/s) leaves a margin of
 * ten or more even for a handler's threads faulting together.
 */
#define RSS_GROWTH_KIB_PER_US 1024u

/* max_rss_mb: when we last measured, and how far below the limit we were. */
static uint64_t rss_checked_ns;
static uint64_t rss_headroom_kib;

/*
 * max_rss_mb: is this worker's resident set above mb MiB? Returns its size
 * in KiB when it is, else 0. Cheap: no system call while the time since
 * the last measurement is too short to have filled the headroom left then
 * (RSS_GROWTH_KIB_PER_US), so a run of short tasks measures once in many;
 * then getrusage's ru_maxrss (the peak, at least the current size) gates
 * the read of /proc/self/statm. A failed call answers 0: the worker lives
 * on, and measures again after the next task.
 */
uint32_t fp__room_rss_over(unsigned mb) {
  uint64_t lim_kib = (uint64_t)mb * 1024u;
  uint64_t now = fp__now_ns();
  uint64_t since_us = (now - rss_checked_ns) / 1000u;
  if (rss_checked_ns != 0 &&
      since_us < rss_headroom_kib / RSS_GROWTH_KIB_PER_US)
    return 0;
  rss_checked_ns = now;
  rss_headroom_kib = 0; /* until measured: look again next time */
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  if ((uint64_t)ru.ru_maxrss <= lim_kib) {
    rss_headroom_kib = lim_kib - (uint64_t)ru.ru_maxrss;
    return 0;
  }
  char buf[128];
  int fd;
  do fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return 0;
  ssize_t n;
  do n = read(fd, buf, sizeof(buf) - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long size, resident;
  if (sscanf(buf, "%lu %lu", &size, &resident) != 2) return 0;
  uint64_t kib = (uint64_t)resident * (uint64_t)(sysconf(_SC_PAGESIZE) / 1024);
  if (kib <= lim_kib) {
    rss_headroom_kib = lim_kib - kib;
    return 0;
  }
  return kib > UINT32_MAX ? UINT32_MAX : (uint32_t)kib;
}

/*
 * Bound what this worker may allocate: its address space now (the program
 * image, the shared segment) plus max_memory_mb. Returns 0 or -errno.
 */
int fp__room_limit_memory(unsigned mb) {
  if (mb == 0) return 0;
  unsigned long pages = 0;
  FILE *f = fopen("/proc/self/statm", "re");
  if (f == NULL) return -errno;
  int n = fscanf(f, "%lu", &pages);
  fclose(f);
  if (n != 1) return -EIO;
  rlim_t lim =
      (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (rlim_t)mb * 1024 * 1024;
  struct rlimit rl = {lim, lim};
  return setrlimit(RLIMIT_AS, &rl) == 0 ? 0 : -errno;
}

int fp__room_enter(const struct fp__seg *s) {
  /* The host's stdio bytes are not ours; a fork of the handler gets no
   * mapping of the segment. */
  fp__seg_dontfork(s);
  fp__purge_stdio();
  /* A pipe makes stdout fully buffered: lines go out as they are printed. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (on_exit(exit_hook, NULL) != 0 ||
      pthread_atfork(NULL, NULL, atfork_child) != 0)
    return -ENOMEM;
  fp__reset_signals();
  /* SA_RESTART: a write the signal follows is not cut short by it. */
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_out_written;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGURG, &sa, NULL); /* cannot fail for SIGURG */
  return 0;
}

int fp__room_in_child(void) { return in_child; }

int fp__room_has_init_kids(void) { return init_kids.n != 0; }

void fp__room_note_init_kids(void) {
  if (fp__list_children(note_init_kid, NULL) < 0) init_kids.n = 0;
}
