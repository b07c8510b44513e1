/*
 * Brief adaptive spinning before sleeping.
 *
 * A wake-up through the kernel (sem_post, futex wake) costs a system call on
 * one side and a context switch on the other: tens of microseconds on a
 * loaded machine. When the event we wait for is a few microseconds away
 * (a worker finishing a short task, a producer submitting the next one),
 * watching the shared word for a while is far cheaper. But spinning only
 * helps while another core makes progress: at most `spin_max` workers and
 * `spin_max` producers of a pool spin at once (the online CPU count less
 * one, at least one, each), and each
 * process adapts its budget: doubled after a spin that saw the event, halved
 * after one that did not, between FP__SPIN_MIN_NS and FP__SPIN_MAX_NS. An
 * idle pool therefore sleeps: nothing spins without a recent event.
 */
#ifndef FP_SPIN_H
#define FP_SPIN_H

#include "wake.h"

/*
 * The least budget must exceed a wake-up through the kernel, or two sides
 * that both missed once keep sleeping on each other: each spins less than
 * the other takes to wake. A cross-CPU wake-up costs up to ~60 us on this
 * VM (bench/pipe_pingpong --pin split); with a 10 us floor, one
 * `forkpool bench --inflight 1` run in three fell into that mode (p99 17 us
 * instead of 1.6 us, thousands of futex calls).
 */
#define FP__SPIN_MIN_NS 50000u  /* 50 us */
#define FP__SPIN_MAX_NS 200000u /* 200 us */

static inline void fp__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Per-thread spin budget, in ns; adapts as described above. */
extern __thread uint32_t fp__spin_budget;

/*
 * Spin until cond(arg) is true or the budget runs out. Returns 1 when cond
 * became true. Does nothing (returns 0) when spin_max processes spin already.
 */
static inline int fp__spin(struct fp__hdr *h, struct fp__presence *spinners,
                           uint32_t me, uint32_t n, int (*cond)(void *),
                           void *arg) {
  if (fp__spin_budget == 0) fp__spin_budget = FP__SPIN_MAX_NS / 4;
  if (fp__pcount(spinners, n) >= h->spin_max) return 0;
  fp__pset(spinners, me);
  uint64_t end = fp__now_ns() + fp__spin_budget;
  int hit = 0;
  for (unsigned k = 1;; k++) {
    if (cond(arg)) {
      hit = 1;
      break;
    }
    for (int j = 0; j < 16; j++) fp__cpu_relax();
    if ((k & 7) == 0 && fp__now_ns() >= end) break;
  }
  fp__pclr(spinners, me);
  if (hit && fp__spin_budget < FP__SPIN_MAX_NS) fp__spin_budget *= 2;
  if (!hit && fp__spin_budget > FP__SPIN_MIN_NS) fp__spin_budget /= 2;
  return hit;
}

#endif /* FP_SPIN_H */
