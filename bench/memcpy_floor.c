/*
 * memcpy_floor: baseline for `make bench`, one core's memcpy of a warm
 * buffer (issue 14's bound for large tasks: forkpool moving --payload bytes
 * each way per task is compared with what one memcpy of them costs).
 *
 * What it measures: bytes per second of memcpy(dst, src, --size) repeated
 * until --bytes have been copied, in one thread, after a warm-up of a tenth
 * (every buffer faulted in, and in cache as far as it fits). By default the
 * same two buffers are copied again and again (warm: at 1 MiB both stay in
 * L2/L3); --span S instead walks pairs of buffers round robin over S bytes
 * on each side, so a span above the last-level cache measures copies from
 * and to memory, as a pool whose slots outgrow the cache sees them. The
 * buffers are page-aligned and distinct; a compiler barrier after each copy
 * keeps the copies from being merged or dropped. Not pinned: the scheduler keeps
 * a busy thread where it runs, and pinning to a CPU that another process
 * holds would measure that process instead.
 *
 * Usage: memcpy_floor --size BYTES [--bytes TOTAL] [--span BYTES] [--json]
 *   defaults: --size 1048576, --bytes 4294967296 (~0.1-0.3 s at 15-40
 *   GB/s), --span = --size
 * Exit status: 0, 1 when out of memory, 2 on a usage error.
 */
#include "bench_util.h" /* libc headers, helpers */

int main(int argc, char **argv) {
  uint64_t size = 1 << 20, total = 4ull << 30, span = 0;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (bench_opt_u64(argc, argv, &i, "--size", 1, 1ull << 30, &size) ||
        bench_opt_u64(argc, argv, &i, "--bytes", 1, 1ull << 50, &total) ||
        bench_opt_u64(argc, argv, &i, "--span", 1, 1ull << 32, &span))
      continue;
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
      continue;
    }
    fprintf(stderr,
            "usage: %s --size BYTES [--bytes TOTAL] [--span BYTES] "
            "[--json]\n",
            argv[0]);
    return 2;
  }
  uint64_t nbuf = span > size ? span / size : 1; /* pairs of buffers */
  size_t len = (size_t)(nbuf * size);
  void *src = NULL, *dst = NULL;
  if (posix_memalign(&src, 4096, len) != 0 ||
      posix_memalign(&dst, 4096, len) != 0) {
    fprintf(stderr, "memcpy_floor: out of memory (2 x %zu bytes)\n", len);
    free(src);
    return 1;
  }
  memset(src, 0x5a, len); /* fault all in: no page fault is measured */
  memset(dst, 0, len);
  uint64_t copies = total / size;
  if (copies == 0) copies = 1;
  uint64_t warm = copies / 10 + 1;
  unsigned char *s = src, *d = dst;
  for (uint64_t k = 0, b = 0; k < warm; k++, b = b + 1 == nbuf ? 0 : b + 1) {
    memcpy(d + b * size, s + b * size, size);
    __asm__ __volatile__("" : : "r"(d) : "memory");
  }
  uint64_t t0 = bench_now_ns();
  for (uint64_t k = 0, b = 0; k < copies; k++, b = b + 1 == nbuf ? 0 : b + 1) {
    memcpy(d + b * size, s + b * size, size);
    /* d escapes and memory is clobbered: each copy must really happen. */
    __asm__ __volatile__("" : : "r"(d) : "memory");
  }
  double secs = (double)(bench_now_ns() - t0) / 1e9;
  int ok = d[size - 1] == 0x5a;
  free(src);
  free(dst);
  if (!ok) {
    fprintf(stderr, "memcpy_floor: the copy did not arrive\n");
    return 1;
  }
  if (secs <= 0) secs = 1e-9;
  double bps = (double)copies * (double)size / secs;
  if (json)
    printf("{\"name\":\"memcpy_floor\",\"size\":%llu,\"span\":%zu,"
           "\"copies\":%llu,\"seconds\":%.6f,\"bytes_per_sec\":%.0f}\n",
           (unsigned long long)size, len, (unsigned long long)copies, secs,
           bps);
  else
    printf("memcpy_floor: %llu copies of %llu bytes over %zu in %.3f s: "
           "%.2f GB/s\n",
           (unsigned long long)copies, (unsigned long long)size, len, secs,
           bps / 1e9);
  return 0;
}
