/*
 * The monotonic clock and a short sleep, for the forkpool CLI and
 * forkpool-bridge. Inline: tool_now_ns() is on forkpool bench's per-task
 * path.
 */
#ifndef FORKPOOL_TOOL_CLOCK_H
#define FORKPOOL_TOOL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t tool_now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t tool_now_ms(void) { return tool_now_ns() / 1000000u; }

/* Sleep up to ms; a signal ends it early, which is what the callers want
 * (they recheck their stop flag or their deadline). */
static inline void tool_sleep_ms(unsigned long ms) {
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                        .tv_nsec = (long)(ms % 1000) * 1000000L};

  nanosleep(&ts, NULL);
}

#endif /* FORKPOOL_TOOL_CLOCK_H */
