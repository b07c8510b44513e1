/*
 * pipe_pingpong: baseline for `make bench`, the latency floor of one
 * cross-process wake-up and reply.
 *
 * What it measures: round trips per second and round-trip latency (p50,
 * p99, p99.9 in microseconds) of one byte bounced between two processes.
 * A pool task with one task in flight needs at least this: the producer
 * wakes a worker, the worker wakes the producer.
 *
 * How: two pipes; the child reads a byte from one and writes it back on the
 * other until EOF. The parent times each write+read pair with
 * clock_gettime(CLOCK_MONOTONIC), after a warm-up of min(1000, M/10) rounds
 * that are not counted. Rounds/s = M / wall time of the measured loop.
 *
 * --pin same puts both processes on one CPU (each wake-up is a context
 * switch: the floor); --pin split puts them on two different CPUs (each
 * wake-up crosses CPUs: on a VM with idle vCPUs this can cost tens of us).
 * Unpinned, the scheduler mixes the two, so the distribution is bimodal
 * and p50 can flip between runs; the pinned runs show the two modes.
 *
 * Usage: pipe_pingpong --rounds M [--pin same|split] [--json]
 */
#include <fcntl.h>
#include <sched.h>

#include "bench_util.h" /* libc headers, helpers */

/* One byte each way; a 1-byte pipe write or read is never partial. */
static int xfer(int fd, int writing, char *c) {
  for (;;) {
    ssize_t n = writing ? write(fd, c, 1) : read(fd, c, 1);
    if (n == 1) return 1;
    if (n == 0) return 0; /* EOF */
    if (errno != EINTR) return -1;
  }
}

/*
 * Pick the CPUs for --pin: the parent's current CPU for both ("same"), or
 * two allowed CPUs, the current one and the next ("split"). Returns 0, or
 * -1 when split needs two CPUs and fewer are allowed.
 */
static int pick_cpus(int split, int *pcpu, int *ccpu) {
  cpu_set_t set;
  int cur = sched_getcpu();
  if (sched_getaffinity(0, sizeof set, &set) != 0 || cur < 0) return -1;
  *pcpu = *ccpu = cur;
  if (!split) return 0;
  for (int k = 1; k < CPU_SETSIZE; k++) {
    int c = (cur + k) % CPU_SETSIZE;
    if (CPU_ISSET(c, &set)) {
      *ccpu = c;
      return 0;
    }
  }
  return -1;
}

static void pin_to(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  sched_setaffinity(0, sizeof one, &one); /* best effort */
}

int main(int argc, char **argv) {
  uint64_t rounds = 100000;
  int json = 0, pin = 0, pcpu = -1, ccpu = -1; /* pin: 1 same, 2 split */
  for (int i = 1; i < argc; i++) {
    if (bench_opt_u64(argc, argv, &i, "--rounds", 1, 100000000, &rounds))
      continue;
    const char *v = i + 1 < argc ? argv[i + 1] : "";
    if (strcmp(argv[i], "--pin") == 0 &&
        (strcmp(v, "same") == 0 || strcmp(v, "split") == 0)) {
      pin = strcmp(argv[++i], "same") == 0 ? 1 : 2;
      continue;
    }
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
      continue;
    }
    fprintf(stderr, "usage: %s --rounds M [--pin same|split] [--json]\n",
            argv[0]);
    return 2;
  }
  if (pin && pick_cpus(pin == 2, &pcpu, &ccpu) != 0) {
    fprintf(stderr, "pipe_pingpong: --pin split needs two allowed CPUs\n");
    return 2;
  }

  uint64_t *lat = malloc(rounds * sizeof *lat);
  int ping[2], pong[2];
  if (lat == NULL) {
    fprintf(stderr, "pipe_pingpong: out of memory\n");
    return 1;
  }
  if (pipe2(ping, O_CLOEXEC) != 0 || pipe2(pong, O_CLOEXEC) != 0) {
    perror("pipe_pingpong: pipe2");
    return 1;
  }
  static pid_t child;
  bench_reap_kids_on_term(&child, 1);
  child = bench_fork_child();
  if (child < 0) {
    perror("pipe_pingpong: fork");
    return 1;
  }
  if (child == 0) {
    if (pin) pin_to(ccpu);
    close(ping[1]);
    close(pong[0]);
    char c;
    int r;
    while ((r = xfer(ping[0], 0, &c)) == 1)
      if (xfer(pong[1], 1, &c) != 1) _exit(3);
    _exit(r == 0 ? 0 : 4);
  }
  close(ping[0]);
  close(pong[1]);
  if (pin) pin_to(pcpu);

  int rc = 1;
  uint64_t warm = rounds / 10 < 1000 ? rounds / 10 : 1000;
  uint64_t t0 = 0;
  for (uint64_t i = 0; i < warm + rounds; i++) {
    char out = (char)i, in = 0;
    if (i == warm) t0 = bench_now_ns();
    uint64_t a = bench_now_ns();
    if (xfer(ping[1], 1, &out) != 1 || xfer(pong[0], 0, &in) != 1) {
      perror("pipe_pingpong: round trip");
      goto reap;
    }
    uint64_t b = bench_now_ns();
    if (in != out) {
      fprintf(stderr, "pipe_pingpong: got byte %d, sent %d\n", in, out);
      goto reap;
    }
    if (i >= warm) lat[i - warm] = b - a;
  }
  double secs = (double)(bench_now_ns() - t0) / 1e9;
  rc = 0;

reap:
  close(ping[1]); /* EOF: the child exits */
  close(pong[0]);
  int st = -1;
  pid_t w;
  do w = waitpid(child, &st, 0);
  while (w < 0 && errno == EINTR);
  child = 0;
  if (w < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "pipe_pingpong: child ended with status 0x%x\n", st);
    rc = 1;
  }
  if (rc != 0) {
    free(lat);
    return rc;
  }

  bench_sort(lat, rounds);
  double rps = (double)rounds / secs;
  double p50 = bench_pct_us(lat, rounds, 50);
  double p99 = bench_pct_us(lat, rounds, 99);
  double p999 = bench_pct_us(lat, rounds, 99.9);
  static const char *const pins[] = {"none", "same", "split"};
  if (json)
    printf("{\"name\":\"pipe_pingpong\",\"pin\":\"%s\",\"rounds\":%llu,"
           "\"seconds\":%.6f,\"round_trips_per_sec\":%.1f,\"p50_us\":%.2f,"
           "\"p99_us\":%.2f,\"p999_us\":%.2f}\n",
           pins[pin], (unsigned long long)rounds, secs, rps, p50, p99, p999);
  else
    printf("pipe_pingpong: %llu round trips (pin: %s): %.3f s, %.0f round "
           "trips/s, p50 %.1f us, p99 %.1f us, p99.9 %.1f us\n",
           (unsigned long long)rounds, pins[pin], secs, rps, p50, p99, p999);
  free(lat);
  return 0;
}
