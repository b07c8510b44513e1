/*
 * Wake-ups: who sleeps, on which futex word, and who wakes them.
 *
 * Sleepers (all timed, all rechecking what they wait for on return):
 *   workers waiting for a task      q.work_hint, registered in w_asleep
 *   producers waiting for a slot    q.space_hint, registered in p_asleep
 *   producers waiting for a result  their client row's done_seq
 *   anyone waiting for a pool state the header's state word
 *
 * No wake-up is lost, by the same argument everywhere (io_uring's
 * NEED_WAKEUP, Dekker's two flags): the sleeper registers (an atomic
 * read-modify-write: a full barrier), then rechecks the condition, then
 * sleeps; the waker makes the condition true, issues a full barrier, then
 * reads the registrations and posts only if someone is registered. Either
 * the sleeper's recheck sees the change, or the waker sees the sleeper. A
 * waker or sleeper killed between any two of those steps loses at most one
 * post: the sleep is timed (a second at most), and the supervisor clears
 * the registrations of processes it reaped or found gone, so a dead
 * sleeper leaves no phantom that would make a waker post in vain for ever.
 *
 * The words are hints, never state: a damaged count costs spurious
 * wake-ups (callers recheck) until the supervisor resets it (sup_verify.c).
 * Without sleepers no system call is made; spin.h says when a process
 * watches a word for a while instead of sleeping.
 */
#ifndef FP_WAKE_H
#define FP_WAKE_H

#include "segment.h"

/* Sleeper sets: one bit per worker row or client row, set by its owner. */
static inline void fp__pset(struct fp__presence *p, uint32_t i) {
  if (i < 64u * FP__SET_WORDS)
    atomic_fetch_or(&p->w[i / 64], (uint64_t)1 << (i % 64));
}

static inline void fp__pclr(struct fp__presence *p, uint32_t i) {
  if (i < 64u * FP__SET_WORDS)
    atomic_fetch_and(&p->w[i / 64], ~((uint64_t)1 << (i % 64)));
}

/* Members among the first n rows. */
static inline uint32_t fp__pcount(struct fp__presence *p, uint32_t n) {
  uint32_t words = (n + 63) / 64, c = 0;
  if (words > FP__SET_WORDS) words = FP__SET_WORDS;
  for (uint32_t k = 0; k < words; k++)
    c += (uint32_t)__builtin_popcountll(atomic_load(&p->w[k]));
  return c;
}

/* Post a token on hint h and wake one sleeper. */
static inline void fp__hint_post(struct fp__hint *h) {
  atomic_fetch_add(&h->v, 1);
  syscall(SYS_futex, (uint32_t *)&h->v, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static inline uint32_t fp__hint_value(struct fp__hint *h) {
  return atomic_load(&h->v);
}

/* Take a token, or sleep until posted or rel_ns passed. Errors and
 * interruptions just return: the caller rechecks what it waits for. */
static inline void fp__hint_wait(struct fp__hint *h, uint64_t rel_ns) {
  uint32_t x = atomic_load(&h->v);
  while (x > 0)
    if (atomic_compare_exchange_weak(&h->v, &x, x - 1)) return;
  fp__futex_wait(&h->v, 0, rel_ns);
  /*
   * Take the token that woke us. Left in place, it would tell wakers that a
   * wake-up is still on its way to the sleepers, and they would not post
   * for a sleeper that nothing will wake.
   */
  x = atomic_load(&h->v);
  while (x > 0)
    if (atomic_compare_exchange_weak(&h->v, &x, x - 1)) return;
}

/*
 * Sleep on hint h for at most rel_ns, registered as `me` in *sleepers,
 * unless recheck(arg) says the wait is over after registering. Returns
 * when woken, timed out, interrupted, or recheck was true; the caller
 * rechecks.
 */
FP__HIDDEN void fp__wake_sleep(struct fp__hint *h,
                               struct fp__presence *sleepers, uint32_t me,
                               uint64_t rel_ns, int (*recheck)(void *),
                               void *arg);

/*
 * After tasks became READY (the caller issued a full barrier after making
 * them visible): wake one sleeping worker if the queued tasks outnumber
 * the idle awake workers, unless a busy worker will take them sooner
 * (short tasks, no backlog). One load when nobody sleeps.
 */
#define FP__WAKE_WORTH_NS 20000u /* tasks shorter than this: let busy ones */
#define FP__WAKE_BACKLOG 64u     /* ...unless this many wait */
FP__HIDDEN void fp__wake_kick(struct fp__seg *s);

/* Wake sleeping workers (up to n) / producers, only if any sleep. */
FP__HIDDEN void fp__wake_workers(struct fp__seg *s, uint32_t n);
FP__HIDDEN void fp__wake_space(struct fp__seg *s);

/*
 * Wake the producer of client row `owner`: a task of it just became DONE.
 * Nobody watching (the producer found its results without waiting): two
 * loads of a line the producer seldom writes, no locked instruction on a
 * line every worker would write (measured: the bump was one of the lines
 * crossing cores per task). The fence orders the caller's DONE store
 * before those loads; the producer registers before it looks at its slots
 * (collect.c, wait_done): one of the two sees the other.
 */
static inline void fp__wake_owner(const struct fp__seg *s, uint32_t owner) {
  if (FP__NEVER(owner >= s->nclients)) return;
  struct fp__client *c = fp__client_at(s, owner);
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&c->waiters, memory_order_relaxed) == 0 &&
      atomic_load_explicit(&c->watchers, memory_order_relaxed) == 0)
    return;
  atomic_fetch_add(&c->done_seq, 1);
  /*
   * One wake per sleep: the first finisher wakes every waiter; later ones
   * see `woken` set until the waiters clear it (before they recheck).
   */
  if (atomic_load(&c->waiters) > 0 && atomic_exchange(&c->woken, 1) == 0)
    fp__futex_wake(&c->done_seq);
}

#endif /* FP_WAKE_H */
