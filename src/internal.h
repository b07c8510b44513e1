/*
 * Internals shared across forkpool's source files: fp__* names, never
 * exported. Small inline helpers for time, futexes and EINTR-safe calls.
 */
#ifndef FP_INTERNAL_H
#define FP_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "forkpool.h"

#define FP__HIDDEN __attribute__((visibility("hidden")))
#define FP__CACHELINE 64
#define FP__ALIGNED __attribute__((aligned(FP__CACHELINE)))
#define FP__NONE UINT32_MAX

/* Exit status a worker uses when its init hook failed. */
#define FP__EXIT_INIT 121

/*
 * Public structs that grow (forkpool.h, "ABI policy"). fp__sized_in reads
 * a caller's struct of `size` bytes into ours (`len` bytes, holding our
 * defaults): the caller's bytes up to the shorter of the two. Returns 0, or
 * -EINVAL when size is below `min` (the required fields) or the caller's
 * bytes past ours are not all zero (fields this library does not know,
 * set). fp__sized_out writes ours into the caller's `size` bytes, zeroing
 * any past ours. Both copy nothing on error.
 */
static inline int fp__sized_in(void *ours, size_t len, const void *theirs,
                               size_t size, size_t min) {
  if (size < min) return -EINVAL;
  const unsigned char *t = (const unsigned char *)theirs;
  for (size_t k = len; k < size; k++)
    if (t[k] != 0) return -EINVAL;
  __builtin_memcpy(ours, theirs, size < len ? size : len);
  return 0;
}

static inline void fp__sized_out(void *theirs, size_t size, const void *ours,
                                 size_t len) {
  __builtin_memcpy(theirs, ours, size < len ? size : len);
  if (size > len)
    __builtin_memset((unsigned char *)theirs + len, 0, size - len);
}

/*
 * An init function of a struct whose first field is its size_t size:
 * write our defaults `d` (len bytes) into the caller's `size` bytes and
 * record that size. A size too small to hold the size field itself
 * changes nothing.
 */
static inline void fp__sized_init(void *theirs, size_t size, const void *d,
                                  size_t len) {
  if (size < sizeof(size_t)) return;
  fp__sized_out(theirs, size, d, len);
  __builtin_memcpy(theirs, &size, sizeof(size));
}

/* The end of field f of struct type T: the smallest size holding it. */
#define FP__END_OF(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

/*
 * Read a caller's fp_config, of any layout the ABI policy accepts (its
 * size field), into a full one of ours: fields past the caller's layout
 * at their defaults. Returns 0, or -EINVAL (NULL, a size too small, or
 * fields unknown to us set); *out is then not to be used. config.c.
 */
FP__HIDDEN int fp__config_load(const fp_config *in, fp_config *out);

/* Defensive branches: conditions that only a corrupt segment can make. */
#define FP__NEVER(x) __builtin_expect(!!(x), 0)

static inline uint64_t fp__now_ns(void) {
  struct timespec ts;
  /* CLOCK_MONOTONIC cannot fail with a valid pointer; no error path. */
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Absolute CLOCK_MONOTONIC deadline for a relative timeout in ms. */
/*
 * The deadline timeout_ms after now (a CLOCK_MONOTONIC reading, never 0:
 * callers use 0 for "not set yet", so that a call that need not wait
 * reads no clock).
 */
static inline uint64_t fp__deadline_ns(uint64_t now, int timeout_ms) {
  if (timeout_ms < 0) return UINT64_MAX;
  return now + (uint64_t)timeout_ms * 1000000u;
}

static inline struct timespec fp__ts_from_ns(uint64_t ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  return ts;
}

/*
 * Sleep on a shared (not process-private) futex word while it holds
 * `expected`, for at most `rel_ns`. Returns 0 when woken or when the word
 * differed, -ETIMEDOUT, or -EINTR. Spurious wake-ups are allowed: callers
 * always recheck the state they wait for.
 */
static inline int fp__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                                 uint64_t rel_ns) {
  struct timespec ts = fp__ts_from_ns(rel_ns);
  long r =
      syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, &ts, NULL, 0);
  if (r == 0 || errno == EAGAIN) return 0;
  return -errno;
}

static inline void fp__futex_wake(_Atomic uint32_t *word) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Write all of buf, retrying on EINTR and short writes. 0 or -errno. */
static inline int fp__write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

#endif /* FP_INTERNAL_H */
