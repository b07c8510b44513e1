/*
 * bench_util.h: small helpers shared by the baseline benchmarks in bench/
 * (clock, percentiles, option parsing, child process hygiene). Header-only
 * so that each benchmark stays one translation unit; all static inline.
 */
#ifndef FP_BENCH_UTIL_H
#define FP_BENCH_UTIL_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Monotonic time in nanoseconds; vDSO, so cheap enough to call per task. */
static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * CPU time, user + system, of this process and its reaped children, in
 * microseconds: the same sum `forkpool bench` reports as cpu_us_per_task.
 */
static inline double bench_cpu_us(void) {
  struct rusage s, c;
  getrusage(RUSAGE_SELF, &s);
  getrusage(RUSAGE_CHILDREN, &c);
  return (double)(s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec +
                  c.ru_stime.tv_sec) *
             1e6 +
         (double)(s.ru_utime.tv_usec + s.ru_stime.tv_usec + c.ru_utime.tv_usec +
                  c.ru_stime.tv_usec);
}

static inline int bench_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/*
 * Nearest-rank percentile `p` (0..100) of n sorted nanosecond samples, in
 * microseconds. Returns 0 when n is 0.
 */
static inline double bench_pct_us(const uint64_t *sorted, size_t n, double p) {
  if (n == 0) return 0.0;
  size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return (double)sorted[rank - 1] / 1000.0;
}

static inline void bench_sort(uint64_t *v, size_t n) {
  qsort(v, n, sizeof *v, bench_cmp_u64);
}

/*
 * If argv[*i] is `name`, parse the next argument as an unsigned number in
 * [min, max] into *out, advance *i and return 1. Returns 0 when argv[*i] is
 * another option. Exits with status 2 (usage) on a missing or bad value.
 */
static inline int bench_opt_u64(int argc, char **argv, int *i, const char *name,
                                uint64_t min, uint64_t max, uint64_t *out) {
  if (strcmp(argv[*i], name) != 0) return 0;
  if (*i + 1 >= argc) {
    fprintf(stderr, "%s: %s needs a value\n", argv[0], name);
    exit(2);
  }
  const char *s = argv[++*i];
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min ||
      v > max) {
    fprintf(stderr, "%s: %s wants a number in [%llu, %llu], got '%s'\n",
            argv[0], name, (unsigned long long)min, (unsigned long long)max, s);
    exit(2);
  }
  *out = v;
  return 1;
}

/*
 * Children to kill and reap when SIGTERM, SIGINT or SIGHUP ends the run (say
 * `timeout` in compare.sh): without this they would outlive us, or linger as
 * zombies under an init that reaps lazily. kill(), waitpid(), signal() and
 * raise() are async-signal-safe. Entries <= 0 are skipped.
 */
static pid_t *bench_kids;
static unsigned bench_nkids;

/* SIGKILL then reap each child pid in kids[0..n) that is > 0. */
static inline void bench_kill_reap(const pid_t *kids, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    if (kids[i] > 0) kill(kids[i], SIGKILL);
  for (unsigned i = 0; i < n; i++)
    if (kids[i] > 0)
      while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
        ;
}

static inline void bench_on_term(int sig) {
  bench_kill_reap(bench_kids, bench_nkids);
  signal(sig, SIG_DFL);
  raise(sig); /* die of the signal, as the caller expects */
}

static inline void bench_reap_kids_on_term(pid_t *kids, unsigned n) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = bench_on_term;
  sigfillset(&sa.sa_mask);
  bench_kids = kids;
  bench_nkids = n;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

/*
 * fork() for a child that runs a loop: signals are blocked across fork so
 * that the child resets the parent's handlers (which would kill its
 * siblings) before any can run, then it restores the mask. The child also
 * dies with the parent: PR_SET_PDEATHSIG, and the getppid() check closes the
 * race where the parent died before prctl() ran. Returns fork()'s value.
 */
static inline pid_t bench_fork_child(void) {
  sigset_t all, old;
  pid_t parent = getpid();
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
      _exit(111);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  return pid;
}

#endif
