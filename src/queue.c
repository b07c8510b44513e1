/*
 * The ready rings (no lock) and the free stack (under a robust mutex). The
 * protocols, and what a death between any two stores leaves: queue.h.
 */
#include "queue.h"

#include <stdlib.h>
#include <string.h>

#include "spin.h"

/* Lock attempts in user space before a sleeping wait (7 us at most). */
#define FP__LOCK_TRIES 64
/* One sleeping wait on the lock lasts at most this long (see below). */
#define LOCK_SLICE_NS 50000000ull /* 50 ms */

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
   * The lock is held for a few stores: try for a moment in user space
   * before sleeping in the kernel.
   */
  for (int k = 0; k < FP__LOCK_TRIES; k++) {
    r = pthread_mutex_trylock(&q->lock);
    if (r != EBUSY) goto locked;
    for (int j = 0; j < 8; j++) fp__cpu_relax();
  }
  for (;;) {
    uint64_t now = fp__now_ns();
    uint64_t until = now + LOCK_SLICE_NS < deadline_ns ? now + LOCK_SLICE_NS
                                                       : deadline_ns;
    struct timespec ts = fp__ts_from_ns(until);
    r = pthread_mutex_clocklock(&q->lock, CLOCK_MONOTONIC, &ts);
    if (r != ETIMEDOUT || until >= deadline_ns) break;
  }
locked:
  if (r == EOWNERDEAD) {
    /*
     * The previous holder died inside a critical section. Every stack
     * change happens with the matching state change under this lock, so
     * the slot states say exactly what the stack must hold.
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
    if (FP__NEVER(fp__slot_word(sl) != FP__SLOT_FREE)) continue;
    fp__slot_stamp(sl, i, owner, owner_gen);
    fp__slot_set(sl, FP__SLOT_FILLING);
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
  fp__slot_set(fp__slot_at(s, i), FP__SLOT_FREE);
  push_free(s, i);
}

int fp__q_free_collected(struct fp__seg *s, uint32_t i) {
  if (!fp__slot_cas(fp__slot_at(s, i), FP__SLOT_COLLECTED, FP__SLOT_FREE))
    return 0;
  push_free(s, i);
  return 1;
}

void fp__q_rebuild(struct fp__seg *s) {
  uint32_t nfree = 0;
  /* Low slots on top: they are popped first and stay cache-warm. */
  for (uint32_t i = s->nslots; i-- > 0;)
    if (fp__slot_word(fp__slot_at(s, i)) == FP__SLOT_FREE)
      s->freestk[nfree++] = i;
  s->hdr->q.free_top = nfree;
}

/* A ring is damaged: have the supervisor sweep. */
static void damaged(struct fp__seg *s) {
  if (atomic_load_explicit(&s->hdr->q.sweep, memory_order_relaxed) == 0)
    atomic_store(&s->hdr->q.sweep, 1);
}

/*
 * Make room on ring k for one entry, the caller being its writer at tail
 * t: skip the stale entries at its head. 0, or -ENOSPC when cap entries
 * are there and the oldest is a READY task.
 */
static int room(struct fp__seg *s, uint32_t k, struct fp__ring_writer *w) {
  struct fp__ring *rg = fp__q_ring(s, k);
  _Atomic uint32_t *e = fp__q_ents(s, k);
  uint64_t cap = s->ring_cap, t = w->tail;
  /* Room by the head we saw last (head only grows): no shared read. */
  if (w->head_seen <= t && t - w->head_seen < cap) return 0;
  uint64_t h = atomic_load_explicit(&rg->head, memory_order_acquire);
  w->head_seen = h;
  if (FP__NEVER(h > t || t - h > cap)) {
    /* Damage: start afresh at our tail; the sweep requeues what it held. */
    atomic_compare_exchange_strong(&rg->head, &h, t);
    w->head_seen = t;
    damaged(s);
    return 0;
  }
  while (t - h >= cap) {
    uint32_t j = atomic_load_explicit(&e[h & (cap - 1)], memory_order_acquire);
    if (j < s->nslots && fp__slot_state(fp__slot_at(s, j)) == FP__SLOT_READY)
      return -ENOSPC;
    /* Stale: move head on (or someone else did: reread). */
    if (!atomic_compare_exchange_strong(&rg->head, &h, h + 1)) continue;
    h++;
  }
  w->head_seen = h;
  return 0;
}

/* Store entry i at *tail of ring k and commit it (a full barrier). */
static void append(struct fp__seg *s, uint32_t k, struct fp__ring_writer *w,
                   uint32_t i) {
  uint64_t t = w->tail;
  atomic_store_explicit(&fp__q_ents(s, k)[t & (s->ring_cap - 1)], i,
                        memory_order_release);
  /* seq_cst: ordered before the waker's look at the sleepers (wake.h). */
  atomic_store(&fp__q_ring(s, k)->tail, t + 1);
  w->tail = t + 1;
}

int fp__q_push(struct fp__seg *s, uint32_t k, struct fp__ring_writer *w,
               uint32_t i) {
  if (room(s, k, w) < 0) return -ENOSPC;
  struct fp__slot *sl = fp__slot_at(s, i);
  fp__slot_set(sl, fp__slot_ready_word(atomic_load(&sl->id)));
  append(s, k, w, i);
  return 0;
}

int fp__q_push_ready(struct fp__seg *s, uint32_t k, struct fp__ring_writer *w,
                     uint32_t i) {
  if (room(s, k, w) < 0) return -ENOSPC;
  append(s, k, w, i);
  return 0;
}

/*
 * Claim the oldest READY task of ring k for worker row `row`; NONE when
 * the ring holds none. Bounded: each turn passes one entry or returns.
 */
static uint32_t take_ring(struct fp__seg *s, uint32_t k, uint32_t row,
                          _Atomic uint32_t *row_slot, uint64_t *tail_seen) {
  struct fp__ring *rg = fp__q_ring(s, k);
  _Atomic uint32_t *e = fp__q_ents(s, k);
  uint64_t cap = s->ring_cap;
  for (uint64_t turn = 0; turn <= cap; turn++) {
    uint64_t h = atomic_load_explicit(&rg->head, memory_order_acquire);
    /*
     * The tail seen before still ahead of head (tails only grow): the
     * entry at h is published, and read without the producer's line.
     * A damaged tail was checked when it was read; a tail moved back by
     * a stray write since is caught by the claim (the slot is not READY).
     */
    uint64_t t = *tail_seen;
    if (h >= t || t - h > cap) {
      t = atomic_load_explicit(&rg->tail, memory_order_acquire);
      *tail_seen = t;
      if (h >= t) {
        if (FP__NEVER(h > t)) damaged(s);
        return FP__NONE;
      }
      if (FP__NEVER(t - h > cap)) {
        damaged(s);
        return FP__NONE;
      }
    }
    uint32_t i = atomic_load_explicit(&e[h & (cap - 1)], memory_order_acquire);
    if (FP__NEVER(i >= s->nslots)) {
      damaged(s); /* a stray write: skip it, the sweep requeues its task */
    } else {
      struct fp__slot *sl = fp__slot_at(s, i);
      /* A plain load first: a stale entry costs no locked instruction. */
      uint32_t w = fp__slot_word(sl);
      if ((w & FP__SLOT_STATE_MASK) == FP__SLOT_READY) {
        atomic_store_explicit(row_slot, i, memory_order_relaxed);
        /* The claim (seq_cst) orders the row's store before it. */
        if (fp__slot_claim(sl, w, row)) {
          atomic_compare_exchange_strong(&rg->head, &h, h + 1);
          return i;
        }
      }
    }
    /* Taken by another, or stale: help head on and look again. */
    atomic_compare_exchange_strong(&rg->head, &h, h + 1);
  }
  return FP__NONE;
}

/* Client rows whose rings are in use (bounded by nclients). */
static uint32_t rows_in_use(const struct fp__seg *s) {
  uint32_t n = atomic_load_explicit(&s->hdr->q.clients_hwm,
                                    memory_order_acquire);
  return n < s->nclients ? n : s->nclients;
}

uint32_t fp__q_take(struct fp__seg *s, struct fp__taker *tk, uint32_t row,
                    _Atomic uint32_t *row_slot) {
  uint64_t scratch = 0;
#define TAIL_SEEN(k) (tk->tails != NULL ? &tk->tails[k] : (scratch = 0, &scratch))
  uint32_t i = take_ring(s, FP__RING_RETRY(s), row, row_slot,
                         TAIL_SEEN(FP__RING_RETRY(s)));
  if (i != FP__NONE) return i;
  uint32_t nc = rows_in_use(s);
  if (tk->cursor >= nc) tk->cursor = 0;
  uint32_t first = tk->hi_streak < FP__HI_BURST ? 1 : 0;
  for (uint32_t pass = 0; pass < 2; pass++) {
    uint32_t p = pass == 0 ? first : 1 - first;
    for (uint32_t n = 0, c = tk->cursor; n < nc; n++) {
      i = take_ring(s, 2 * c + p, row, row_slot, TAIL_SEEN(2 * c + p));
      if (i != FP__NONE) {
        tk->cursor = c + 1 < nc ? c + 1 : 0;
        tk->hi_streak = p ? tk->hi_streak + 1 : 0;
        return i;
      }
      c = c + 1 < nc ? c + 1 : 0;
    }
  }
#undef TAIL_SEEN
  return FP__NONE;
}

/* Entries between head and tail of ring k, 0 when damaged. */
static uint64_t ring_len(const struct fp__seg *s, uint32_t k) {
  const struct fp__ring *rg = fp__q_ring(s, k);
  uint64_t h = atomic_load_explicit(&rg->head, memory_order_acquire);
  uint64_t t = atomic_load_explicit(&rg->tail, memory_order_acquire);
  return h < t && t - h <= s->ring_cap ? t - h : 0;
}

uint32_t fp__q_queued(const struct fp__seg *s) {
  uint64_t n = ring_len(s, FP__RING_RETRY(s));
  for (uint32_t k = 0, nr = 2 * rows_in_use(s); k < nr; k++)
    n += ring_len(s, k);
  return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int fp__q_any(const struct fp__seg *s) {
  if (ring_len(s, FP__RING_RETRY(s)) > 0) return 1;
  for (uint32_t k = 0, nr = 2 * rows_in_use(s); k < nr; k++)
    if (ring_len(s, k) > 0) return 1;
  return 0;
}

uint64_t fp__q_submitted(const struct fp__seg *s) {
  uint64_t n = atomic_load(&s->hdr->q.rescued), out = 0;
  for (uint32_t k = 0, nr = 2 * s->nclients; k < nr; k++)
    n += atomic_load_explicit(&fp__q_ring(s, k)->tail, memory_order_relaxed);
  for (uint32_t c = 0; c < s->nclients; c++)
    out += atomic_load_explicit(&fp__client_at(s, c)->withdrawn,
                                memory_order_relaxed);
  return n >= out ? n - out : 0;
}

/*
 * A sweep's look at ring k: clear in `want` each slot an entry not yet
 * passed holds. A damaged ring is emptied instead (its head set to its
 * tail; the retry ring's tail first restored from the supervisor's copy),
 * so that its slots are requeued.
 */
static void mark_held(struct fp__seg *s, uint32_t k,
                      struct fp__ring_writer *retry, unsigned char *want) {
  struct fp__ring *rg = fp__q_ring(s, k);
  _Atomic uint32_t *e = fp__q_ents(s, k);
  uint64_t cap = s->ring_cap;
  if (k == FP__RING_RETRY(s) && atomic_load(&rg->tail) != retry->tail)
    atomic_store(&rg->tail, retry->tail);
  uint64_t h = atomic_load_explicit(&rg->head, memory_order_acquire);
  uint64_t t = atomic_load_explicit(&rg->tail, memory_order_acquire);
  if (h > t || t - h > cap) {
    atomic_compare_exchange_strong(&rg->head, &h, t);
    damaged(s); /* reported by the caller (sup_verify.c) */
    return;
  }
  for (uint64_t pos = h; pos < t; pos++) {
    uint32_t j = atomic_load_explicit(&e[pos & (cap - 1)],
                                      memory_order_acquire);
    if (j < s->nslots) want[j] = 0;
  }
}

int fp__q_sweep(struct fp__seg *s, struct fp__ring_writer *retry,
                const unsigned char *dead) {
  uint32_t n = s->nslots;
  unsigned char *want = malloc(n ? n : 1);
  if (want == NULL) return -ENOMEM;
  atomic_store(&s->hdr->q.sweep, 0);
  /*
   * States first, then each ring from the head read after them: a READY
   * slot with an entry at or past that head is reached by whoever passes
   * the entry (it claims the slot if the slot is still READY then).
   */
  for (uint32_t i = 0; i < n; i++)
    want[i] = fp__slot_state(fp__slot_at(s, i)) == FP__SLOT_READY;
  for (uint32_t k = 0, nr = fp__nrings(s->nclients); k < nr; k++)
    mark_held(s, k, retry, want);
  int counted = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (!want[i]) continue;
    struct fp__slot *sl = fp__slot_at(s, i);
    if (fp__slot_state(sl) != FP__SLOT_READY) continue;
    if (fp__q_push_ready(s, FP__RING_RETRY(s), retry, i) < 0) {
      damaged(s); /* full of READY tasks: the next tick tries again */
      break;
    }
    uint32_t o = sl->owner;
    counted += dead == NULL || (o < s->nclients && dead[o]);
  }
  free(want);
  return counted;
}
