/*
 * fork_reap: baseline for `make bench`, the floor for replacing a dead
 * worker.
 *
 * What it measures: forks per second, and the latency (p50, p99 in
 * microseconds) of one fork() + child _exit(0) + waitpid() cycle. A pool
 * that replaces a crashed worker pays at least this. With --rss MB the
 * parent first maps and touches MB MiB of private anonymous memory, so each
 * fork copies that many more page-table entries (and the child's exit tears
 * them down): the cost of forking from a big process.
 *
 * How: warm-up of min(100, M/10) cycles not counted, then M cycles, each
 * timed with clock_gettime(CLOCK_MONOTONIC). Forks/s = M / wall time of the
 * measured loop. Every child must exit with status 0.
 *
 * Usage: fork_reap --count M [--rss MB] [--json]
 */
#include <sys/mman.h>

#include "bench_util.h" /* libc headers, helpers */

int main(int argc, char **argv) {
  uint64_t count = 2000, rss_mb = 0;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (bench_opt_u64(argc, argv, &i, "--count", 1, 10000000, &count) ||
        bench_opt_u64(argc, argv, &i, "--rss", 0, 65536, &rss_mb))
      continue;
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
      continue;
    }
    fprintf(stderr, "usage: %s --count M [--rss MB] [--json]\n", argv[0]);
    return 2;
  }

  uint64_t *lat = malloc(count * sizeof *lat);
  if (lat == NULL) {
    fprintf(stderr, "fork_reap: out of memory\n");
    return 1;
  }
  size_t rss = (size_t)rss_mb << 20;
  if (rss > 0) {
    /* Private and written, so every page is really present in the parent. */
    void *m = mmap(NULL, rss, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      perror("fork_reap: mmap");
      return 1;
    }
    memset(m, 0x5a, rss);
  }

  /* The current child, killed and reaped if we are told to stop. */
  static pid_t child;
  bench_reap_kids_on_term(&child, 1);
  uint64_t warm = count / 10 < 100 ? count / 10 : 100, t0 = 0;
  for (uint64_t i = 0; i < warm + count; i++) {
    if (i == warm) t0 = bench_now_ns();
    uint64_t a = bench_now_ns();
    /*
     * Plain fork(), no signal blocking: the child's only act is _exit(0),
     * and should a signal reach it first, the inherited handler finds
     * `child` == 0 in the child's copy and just dies.
     */
    child = fork();
    if (child == 0) _exit(0);
    if (child < 0) {
      perror("fork_reap: fork");
      return 1;
    }
    int st = -1;
    pid_t w;
    do w = waitpid(child, &st, 0);
    while (w < 0 && errno == EINTR);
    uint64_t b = bench_now_ns();
    child = 0;
    if (w < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "fork_reap: child ended with status 0x%x\n", st);
      return 1;
    }
    if (i >= warm) lat[i - warm] = b - a;
  }
  double secs = (double)(bench_now_ns() - t0) / 1e9;

  bench_sort(lat, count);
  double fps = (double)count / secs;
  double p50 = bench_pct_us(lat, count, 50), p99 = bench_pct_us(lat, count, 99);
  if (json)
    printf("{\"name\":\"fork_reap\",\"count\":%llu,\"rss_mb\":%llu,"
           "\"seconds\":%.6f,\"forks_per_sec\":%.1f,\"p50_us\":%.2f,"
           "\"p99_us\":%.2f}\n",
           (unsigned long long)count, (unsigned long long)rss_mb, secs, fps,
           p50, p99);
  else
    printf("fork_reap: %llu fork+exit+waitpid cycles, parent RSS +%llu MiB: "
           "%.3f s, %.0f forks/s, p50 %.1f us, p99 %.1f us\n",
           (unsigned long long)count, (unsigned long long)rss_mb, secs, fps,
           p50, p99);
  free(lat);
  return 0;
}
