/*
 * Producer side: is the supervisor still there (alive.c)? Invariant 4: a
 * producer blocked in submit or wait learns within a second that the
 * supervisor is gone, and gets -EPIPE. Every producer wait sleeps at most
 * FP__RECHECK_NS at a time, then asks again.
 */
#ifndef FP_ALIVE_H
#define FP_ALIVE_H

#include "pool.h"

/* How long one sleep lasts at most before rechecking the supervisor. */
#define FP__RECHECK_NS 100000000ull

/*
 * 1 while the supervisor process lives; reaps it when it is gone (a private
 * pool's child) and then sets p->sup_gone, for good. Never fails: a check
 * that cannot tell (EINTR) says alive, to be asked again.
 */
FP__HIDDEN int fp__sup_alive(struct fp_pool *p);

/*
 * fp__sup_alive() for the submit path's fast loop: a system call at most
 * every 64 calls (counted in p->alive_tick); 0 at once once it was seen
 * gone.
 */
static inline int fp__check_alive(struct fp_pool *p) {
  if (atomic_load(&p->sup_gone)) return 0;
  if ((atomic_fetch_add(&p->alive_tick, 1) & 63) != 0) return 1;
  return fp__sup_alive(p);
}

#endif /* FP_ALIVE_H */
