/*
 * Ring and stack of slot indices under a robust mutex. See queue.h.
 */
#include "queue.h"

#include <stdlib.h>

#include "spin.h"

__thread uint32_t fp__spin_budget;

/*
 * The READY counts change only under the lock, so a plain load and store
 * will do (others read them racily, as hints): a locked read-modify-write
 * would also wait for every store before it to reach the cache.
 */
static inline void count_add(_Atomic uint32_t *c, int32_t d) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint32_t)d,
                        memory_order_relaxed);
}

/* Lock attempts in user space before a sleeping wait (7 us at most). */
#define FP__LOCK_TRIES 64

int fp__q_lock_until(struct fp__seg *s, uint64_t deadline_ns) {
  struct fp__queue *q = &s->hdr->q;
  int r;
  /*
   * Timed, in 50 ms slices, for two reasons:
   *  - robust futexes lose a wake-up when a waiter that was just woken is
   *    SIGKILLed before it takes the lock while a third process takes the
   *    free lock by the fast path: the other waiters then sleep on a free
   *    lock (tests/torture/repro/robust_wakeup.c shows it without us);
   *  - a lock word a stray write turned to garbage names no live owner, so
   *    nobody would ever wake us; the supervisor re-creates such a lock
   *    (sup_verify.c) and the next slice takes the new one.
   * A slice that times out just tries again: a stall costs 50 ms at most.
   */
  /*
   * The lock is held for well under a microsecond: try for a moment in user
   * space before sleeping in the kernel. A contended robust mutex costs a
   * futex wait here and a futex wake at the holder's unlock. Measured with
   * `forkpool bench --workers N --inflight 256 --payload 64` (medians of
   * three runs, 2 vCPUs), trying first took 2 workers from 0.86M to 0.99M
   * tasks/s and 64 workers from 0.60M to 0.97M.
   */
  for (int k = 0; k < FP__LOCK_TRIES; k++) {
    r = pthread_mutex_trylock(&q->lock);
    if (r != EBUSY) goto locked;
    for (int j = 0; j < 8; j++) fp__cpu_relax();
  }
  for (;;) {
    uint64_t now = fp__now_ns();
    uint64_t until = now + 50000000u < deadline_ns ? now + 50000000u
                                                   : deadline_ns;
    struct timespec ts = fp__ts_from_ns(until);
    r = pthread_mutex_clocklock(&q->lock, CLOCK_MONOTONIC, &ts);
    if (r != ETIMEDOUT || until >= deadline_ns) break;
  }
locked:
  if (r == EOWNERDEAD) {
    /*
     * The previous holder died inside a critical section. Every ring or stack
     * change happens with the matching state change under this lock, so the
     * slot states say exactly what the rings must hold.
     */
    fp__q_rebuild(s);
    atomic_fetch_add(&s->hdr->c.repairs, 1);
    r = pthread_mutex_consistent(&q->lock);
  }
  return -r;
}

int fp__q_lock(struct fp__seg *s) { return fp__q_lock_until(s, UINT64_MAX); }

void fp__q_unlock(struct fp__seg *s) { pthread_mutex_unlock(&s->hdr->q.lock); }

uint32_t fp__q_take_free(struct fp__seg *s, uint32_t owner,
                         uint32_t owner_gen) {
  struct fp__queue *q = &s->hdr->q;
  uint32_t n = s->nslots;
  while (q->free_top > 0) {
    if (FP__NEVER(q->free_top > n)) {
      fp__q_rebuild(s);
      continue;
    }
    uint32_t i = s->freestk[--q->free_top];
    if (FP__NEVER(i >= n)) continue;
    struct fp__slot *sl = fp__slot_at(s, i);
    if (FP__NEVER(atomic_load(&sl->state) != FP__SLOT_FREE)) continue;
    fp__slot_stamp(sl, i, owner, owner_gen);
    atomic_store(&sl->state, FP__SLOT_FILLING);
    return i;
  }
  return FP__NONE;
}

/* Push slot i, FREE already, on the free stack. */
static void push_free(struct fp__seg *s, uint32_t i) {
  struct fp__queue *q = &s->hdr->q;
  if (FP__NEVER(q->free_top >= s->nslots)) {
    fp__q_rebuild(s); /* it finds the slot FREE and stacks it */
    return;
  }
  s->freestk[q->free_top++] = i;
}

void fp__q_put_free(struct fp__seg *s, uint32_t i) {
  /* State first: if we die before the push, a rebuild re-adds it. */
  atomic_store(&fp__slot_at(s, i)->state, FP__SLOT_FREE);
  push_free(s, i);
}

int fp__q_free_collected(struct fp__seg *s, uint32_t i) {
  uint32_t want = FP__SLOT_COLLECTED;
  if (!atomic_compare_exchange_strong(&fp__slot_at(s, i)->state, &want,
                                      FP__SLOT_FREE))
    return 0;
  push_free(s, i);
  return 1;
}

/* Append slot i (READY) to its producer's list for its priority. */
static void list_push(struct fp__seg *s, uint32_t i) {
  struct fp__queue *q = &s->hdr->q;
  struct fp__slot *sl = fp__slot_at(s, i);
  uint32_t p = sl->prio ? 1 : 0;
  struct fp__client *c = fp__client_at(s, sl->owner < s->nclients ? sl->owner
                                                                   : 0);
  s->ready[i] = FP__NONE;
  if (c->qhead[p] >= s->nslots || c->qtail[p] >= s->nslots)
    c->qhead[p] = i; /* empty (or a damaged end: the rebuild mends it) */
  else
    s->ready[c->qtail[p]] = i;
  c->qtail[p] = i;
  count_add(&q->ready_len, 1);
  if (p) count_add(&q->ready_hi, 1);
}

void fp__q_put_ready(struct fp__seg *s, uint32_t i) {
  struct fp__queue *q = &s->hdr->q;
  struct fp__slot *sl = fp__slot_at(s, i);
  /*
   * seq, then READY, then next_seq: a holder dying in between leaves a READY
   * slot whose seq the rebuild folds back into next_seq, so `submitted`
   * (= next_seq) counts exactly the published tasks.
   */
  sl->seq = q->next_seq;
  /* Release, not a full barrier: lock holders order themselves by the lock. */
  atomic_store_explicit(&sl->state, FP__SLOT_READY, memory_order_release);
  q->next_seq++;
  list_push(s, i);
}

/*
 * Which list to serve: high priority first, but after FP__HI_BURST high
 * tasks in a row a waiting normal one goes, so normal tasks never starve.
 */
#define FP__HI_BURST 4u

/*
 * The READY bookkeeping is damaged: rebuild it from the slot states, once
 * per take. Returns 1 to try again, 0 (with the queue emptied) when a
 * rebuild did not help.
 */
static int repair_once(struct fp__seg *s, int *repaired) {
  if ((*repaired)++) {
    atomic_store(&s->hdr->q.ready_len, 0);
    atomic_store(&s->hdr->q.ready_hi, 0);
    return 0;
  }
  fp__q_rebuild(s);
  return 1;
}

uint32_t fp__q_take_ready(struct fp__seg *s) {
  struct fp__queue *q = &s->hdr->q;
  uint32_t n = s->nslots, nc = s->nclients;
  int repaired = 0;
  uint32_t popped = 0; /* more than n pops in one call: a list loops */
  while (atomic_load(&q->ready_len) > 0) {
    uint32_t len = atomic_load(&q->ready_len), hi = atomic_load(&q->ready_hi);
    if (FP__NEVER(len > n || hi > len || popped > n)) {
      if (!repair_once(s, &repaired)) return FP__NONE;
      popped = 0;
      continue;
    }
    uint32_t p = hi > 0 && (hi >= len || q->hi_streak < FP__HI_BURST) ? 1 : 0;
    /* Producers in turn, from the cursor: fairness between them. */
    uint32_t start = q->rr[p] < nc ? q->rr[p] : 0, r = start, found = 0;
    struct fp__client *c = NULL;
    do {
      c = fp__client_at(s, r);
      if (c->qhead[p] < n) {
        found = 1;
        break;
      }
      r = r + 1 < nc ? r + 1 : 0;
    } while (r != start);
    if (FP__NEVER(!found)) {
      /* Counts and lists disagree: only damage does that. */
      if (!repair_once(s, &repaired)) return FP__NONE;
      continue;
    }
    uint32_t i = c->qhead[p];
    uint32_t next = s->ready[i];
    popped++;
    c->qhead[p] = next < n ? next : FP__NONE;
    if (c->qhead[p] == FP__NONE) c->qtail[p] = FP__NONE;
    count_add(&q->ready_len, -1);
    if (p) count_add(&q->ready_hi, -1);
    q->rr[p] = r + 1 < nc ? r + 1 : 0;
    q->hi_streak = p ? q->hi_streak + 1 : 0;
    if (FP__NEVER(atomic_load(&fp__slot_at(s, i)->state) != FP__SLOT_READY))
      continue;
    return i;
  }
  return FP__NONE;
}

int fp__q_unlink_ready(struct fp__seg *s, uint32_t i) {
  struct fp__queue *q = &s->hdr->q;
  struct fp__slot *sl = fp__slot_at(s, i);
  uint32_t p = sl->prio ? 1 : 0, n = s->nslots;
  struct fp__client *c = fp__client_at(s, sl->owner < s->nclients ? sl->owner
                                                                   : 0);
  uint32_t prev = FP__NONE, cur = c->qhead[p];
  for (uint32_t steps = 0; cur < n && steps <= n; steps++) {
    if (cur == i) {
      uint32_t next = s->ready[i] < n ? s->ready[i] : FP__NONE;
      if (prev == FP__NONE) c->qhead[p] = next;
      else s->ready[prev] = next;
      if (c->qtail[p] == i) c->qtail[p] = prev;
      count_add(&q->ready_len, -1);
      if (p) count_add(&q->ready_hi, -1);
      return 0;
    }
    prev = cur;
    cur = s->ready[cur];
  }
  return -ENOENT;
}

static const struct fp__seg *sort_seg; /* qsort has no context argument */

static int by_seq(const void *a, const void *b) {
  uint64_t x = fp__slot_at(sort_seg, *(const uint32_t *)a)->seq;
  uint64_t y = fp__slot_at(sort_seg, *(const uint32_t *)b)->seq;
  return x < y ? -1 : x > y;
}

void fp__q_rebuild(struct fp__seg *s) {
  struct fp__queue *q = &s->hdr->q;
  uint32_t n = s->nslots, nready = 0, nfree = 0;
  /* The READY slots, gathered in the free stack's tail for sorting. */
  uint32_t *tmp = malloc(sizeof(uint32_t) * (n ? n : 1));
  for (uint32_t i = 0; i < n; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    uint32_t st = atomic_load(&sl->state);
    if (st == FP__SLOT_READY) {
      if (tmp != NULL) tmp[nready++] = i;
      if (sl->seq >= q->next_seq) q->next_seq = sl->seq + 1;
    } else if (st == FP__SLOT_FREE) {
      s->freestk[nfree++] = i;
    }
  }
  q->free_top = nfree;
  for (uint32_t c = 0; c < s->nclients; c++) {
    struct fp__client *cl = fp__client_at(s, c);
    cl->qhead[0] = cl->qhead[1] = cl->qtail[0] = cl->qtail[1] = FP__NONE;
  }
  q->rr[0] = q->rr[1] = 0;
  q->hi_streak = 0;
  atomic_store(&q->ready_len, 0);
  atomic_store(&q->ready_hi, 0);
  /*
   * FIFO order survives: sequence numbers are assigned under the lock. The
   * lock serialises rebuilds, so the static context is safe within one
   * process; another thread of this process cannot be inside qsort here.
   * (Without memory for the sort, the READY tasks are lost to the queue:
   * their producers see them stuck; that needs malloc to fail in a rebuild.)
   */
  if (tmp == NULL) return;
  sort_seg = s;
  qsort(tmp, nready, sizeof(uint32_t), by_seq);
  for (uint32_t k = 0; k < nready; k++) list_push(s, tmp[k]);
  free(tmp);
}

void fp__q_wake_workers(struct fp__seg *s, uint32_t n) {
  struct fp__queue *q = &s->hdr->q;
  uint32_t sl = fp__pcount(&s->hdr->w_asleep, s->nrows);
  if (sl == 0) return;
  /*
   * Tokens already posted will wake that many sleepers: post only for the
   * rest, so a burst of submits makes one system call per sleeper, not one
   * per task.
   */
  uint32_t v = fp__hint_value(&q->ready_sem);
  if (v >= sl) return;
  if (n > sl - v) n = sl - v;
  while (n-- > 0) fp__hint_post(&q->ready_sem);
}

void fp__q_wake_space(struct fp__seg *s) {
  struct fp__queue *q = &s->hdr->q;
  if (fp__pcount(&s->hdr->p_asleep, s->nclients) > 0)
    fp__hint_post(&q->space_sem);
}

void fp__q_sleep(struct fp__hint *sem, struct fp__presence *sleepers,
                 uint32_t me, uint64_t rel_ns, int (*recheck)(void *),
                 void *arg) {
  fp__pset(sleepers, me);
  /*
   * Registered first, then recheck: a waker that changed the state before
   * our registration is seen by the recheck; one after it sees a sleeper
   * and posts.
   */
  /* A timeout, an interruption or a post end the sleep: callers recheck. */
  if (!recheck(arg)) fp__hint_wait(sem, rel_ns);
  fp__pclr(sleepers, me);
}

void fp__q_kick(struct fp__seg *s) {
  struct fp__hdr *h = s->hdr;
  struct fp__queue *q = &h->q;
  uint32_t sleepers = fp__pcount(&h->w_asleep, s->nrows);
  if (sleepers == 0) return;
  uint32_t ready = atomic_load(&q->ready_len);
  uint32_t idle = fp__pcount(&h->w_idle, s->nrows);
  if (ready <= idle) return; /* awake idle workers will take them */
  /* Live workers: a row waiting out a backoff is nobody. */
  uint32_t alive = atomic_load(&h->workers_alive);
  uint32_t awake = alive > sleepers ? alive - sleepers : 0;
  /*
   * A worker is busy and tasks are short: it frees up sooner than a
   * sleeper wakes (a wake-up costs a system call here and a context switch
   * there), and waking every sleeper for short tasks is how 64 workers on
   * 2 cores collapse. Wake one anyway once a backlog builds.
   */
  if (awake > idle && atomic_load(&h->avg_task_ns) < FP__WAKE_WORTH_NS &&
      ready < FP__WAKE_BACKLOG)
    return;
  fp__q_wake_workers(s, 1);
}

void fp__q_requeue(struct fp__seg *s, uint32_t i) {
  struct fp__slot *sl = fp__slot_at(s, i);
  /* Its seq stays: a rebuild puts it back at its original place. */
  atomic_store(&sl->worker, 0);
  atomic_store(&sl->state, FP__SLOT_READY);
  list_push(s, i);
}
