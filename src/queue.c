/*
 * The ready rings and the free slots, without a lock. The protocols, and
 * what a death between any two stores leaves: queue.h.
 */
#include "queue.h"

#include <stdlib.h>
#include <string.h>

#include "spin.h"

/* q.nfree - 1, never below 0 (it is a hint that deaths may leave low). */
static void count_taken(struct fp__queue *q) {
  uint32_t n = atomic_load_explicit(&q->nfree, memory_order_relaxed);
  while (n > 0 && !atomic_compare_exchange_weak(&q->nfree, &n, n - 1)) {
  }
}

uint32_t fp__q_take_free(struct fp__seg *s, uint32_t owner, uint32_t owner_gen,
                         uint32_t *cursor) {
  struct fp__queue *q = &s->hdr->q;
  uint32_t n = s->nslots, c = *cursor < n ? *cursor : 0;
  if (atomic_load_explicit(&q->nfree, memory_order_relaxed) == 0)
    return FP__NONE;
  uint32_t mine = fp__slot_filling_word(owner, owner_gen);
  for (uint32_t k = 0; k < n; k++, c = c + 1 < n ? c + 1 : 0) {
    struct fp__slot *sl = fp__slot_at(s, c);
    /* A plain load first: a taken slot costs no locked instruction. */
    if (fp__slot_word(sl) != FP__SLOT_FREE ||
        !fp__slot_cas(sl, FP__SLOT_FREE, mine))
      continue;
    fp__slot_stamp(sl, c, owner, owner_gen);
    count_taken(q);
    *cursor = c + 1 < n ? c + 1 : 0;
    return c;
  }
  return FP__NONE;
}

void fp__q_put_free(struct fp__seg *s, uint32_t i) {
  fp__slot_set(fp__slot_at(s, i), FP__SLOT_FREE);
  atomic_fetch_add(&s->hdr->q.nfree, 1);
}

int fp__q_free_collected(struct fp__seg *s, uint32_t i) {
  if (!fp__slot_cas(fp__slot_at(s, i), FP__SLOT_COLLECTED, FP__SLOT_FREE))
    return 0;
  atomic_fetch_add(&s->hdr->q.nfree, 1);
  return 1;
}

uint32_t fp__q_recount(struct fp__seg *s) {
  uint32_t nfree = 0;
  for (uint32_t i = 0; i < s->nslots; i++)
    nfree += fp__slot_word(fp__slot_at(s, i)) == FP__SLOT_FREE;
  if (atomic_load(&s->hdr->q.nfree) != nfree)
    atomic_store(&s->hdr->q.nfree, nfree);
  return nfree;
}

/*
 * A ring entry: the slot index (FP_MAX_SLOTS fits in 16 bits) and the low
 * 16 bits of the generation of the task it was queued for. An entry claims
 * only that task: a stale entry (its task ended, the slot reused) can never
 * claim a later task of the slot, not even one READY but not yet queued
 * (its producer between the READY store and its tail: queue.h), so every
 * task claimed was counted by some ring's tail, or by a rescue.
 */
static inline uint32_t ent_of(uint32_t i, uint32_t ready_word) {
  return (i & 0xffffu) | (fp__slot_holder(ready_word) & 0xffffu) << 16;
}

static inline uint32_t ent_slot(uint32_t e) { return e & 0xffffu; }

/* Is w the READY word of the task entry e was queued for? */
static inline int ent_ready(uint32_t e, uint32_t w) {
  return (w & FP__SLOT_STATE_MASK) == FP__SLOT_READY &&
         (fp__slot_holder(w) & 0xffffu) == e >> 16;
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
  if (FP__NEVER(t >= FP__RING_SANE)) {
    /* Our own copy damaged (only a stray write gets it there): start the
     * ring over at 0 before a push wraps it; the sweep requeues. */
    atomic_store(&rg->tail, 0);
    atomic_store(&rg->head, 0);
    w->tail = w->head_seen = 0;
    damaged(s);
    return 0;
  }
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
    uint32_t x = atomic_load_explicit(&e[h & (cap - 1)], memory_order_acquire);
    uint32_t j = ent_slot(x);
    if (j < s->nslots && ent_ready(x, fp__slot_word(fp__slot_at(s, j))))
      return -ENOSPC;
    /* Stale: move head on (or someone else did: reread). */
    if (!atomic_compare_exchange_strong(&rg->head, &h, h + 1)) continue;
    h++;
  }
  w->head_seen = h;
  return 0;
}

/* Store entry x at *tail of ring k and commit it (a full barrier). */
static void append(struct fp__seg *s, uint32_t k, struct fp__ring_writer *w,
                   uint32_t x) {
  uint64_t t = w->tail;
  atomic_store_explicit(&fp__q_ents(s, k)[t & (s->ring_cap - 1)], x,
                        memory_order_release);
  /* seq_cst: ordered before the waker's look at the sleepers (wake.h). */
  atomic_store(&fp__q_ring(s, k)->tail, t + 1);
  w->tail = t + 1;
}

int fp__q_push(struct fp__seg *s, uint32_t k, struct fp__ring_writer *w,
               uint32_t i) {
  if (room(s, k, w) < 0) return -ENOSPC;
  struct fp__slot *sl = fp__slot_at(s, i);
  uint32_t ready = fp__slot_ready_word(atomic_load(&sl->id));
  fp__slot_set(sl, ready);
  append(s, k, w, ent_of(i, ready));
  return 0;
}

int fp__q_push_ready(struct fp__seg *s, uint32_t k, struct fp__ring_writer *w,
                     uint32_t i) {
  if (room(s, k, w) < 0) return -ENOSPC;
  /* The task READY now: a later one of the slot is not ours to queue. */
  append(s, k, w, ent_of(i, fp__slot_word(fp__slot_at(s, i))));
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
    uint32_t x = atomic_load_explicit(&e[h & (cap - 1)], memory_order_acquire);
    uint32_t i = ent_slot(x);
    if (FP__NEVER(i >= s->nslots)) {
      damaged(s); /* a stray write: skip it, the sweep requeues its task */
    } else {
      struct fp__slot *sl = fp__slot_at(s, i);
      /* A plain load first: a stale entry costs no locked instruction. */
      uint32_t w = fp__slot_word(sl);
      if (ent_ready(x, w)) {
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
  uint32_t n =
      atomic_load_explicit(&s->hdr->q.clients_hwm, memory_order_acquire);
  return n < s->nclients ? n : s->nclients;
}

uint32_t fp__q_take(struct fp__seg *s, struct fp__taker *tk, uint32_t row,
                    _Atomic uint32_t *row_slot) {
  uint64_t scratch = 0;
#define TAIL_SEEN(k) \
  (tk->tails != NULL ? &tk->tails[k] : (scratch = 0, &scratch))
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
static int mark_held(struct fp__seg *s, uint32_t k,
                     struct fp__ring_writer *retry, uint32_t *want) {
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
    return 1;
  }
  for (uint64_t pos = h; pos < t; pos++) {
    uint32_t x =
        atomic_load_explicit(&e[pos & (cap - 1)], memory_order_acquire);
    uint32_t j = ent_slot(x);
    if (j < s->nslots && want[j] != 0 && ent_ready(x, want[j])) want[j] = 0;
  }
  return 0;
}

int fp__q_sweep(struct fp__seg *s, struct fp__ring_writer *retry,
                fp__gone_fn gone, void *ctx, uint32_t *suspect,
                uint32_t *rescued) {
  uint32_t n = s->nslots;
  uint32_t *want = malloc(sizeof(uint32_t) * (n ? n : 1));
  if (want == NULL) return -ENOMEM;
  int damage = atomic_exchange(&s->hdr->q.sweep, 0) != 0;
  /*
   * States first, then each ring from the head read after them: a READY
   * slot with an entry of its task at or past that head is reached by
   * whoever passes the entry (it claims the task if still READY then).
   * want[i]: the READY word seen, or 0.
   */
  for (uint32_t i = 0; i < n; i++) {
    uint32_t w = fp__slot_word(fp__slot_at(s, i));
    want[i] = (w & FP__SLOT_STATE_MASK) == FP__SLOT_READY ? w : 0;
  }
  /*
   * Only the rings takers look at hold anything: a ring of a row at or
   * above clients_hwm (lowered by a stray write) is passed by nobody, so
   * its tasks are queued again here.
   */
  for (uint32_t k = 0, nr = 2 * rows_in_use(s); k < nr; k++)
    damage |= mark_held(s, k, retry, want);
  damage |= mark_held(s, FP__RING_RETRY(s), retry, want);
  int queued = 0;
  uint32_t theirs = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t seen = suspect != NULL ? suspect[i] : 0;
    if (suspect != NULL) suspect[i] = 0;
    if (!want[i]) continue;
    struct fp__slot *sl = fp__slot_at(s, i);
    if (fp__slot_word(sl) != want[i]) continue; /* moved on meanwhile */
    /*
     * A live producer's task no ring holds is being published right now
     * (its tail comes next), unless a ring was damaged. A gone producer's
     * never will be: queue it, and count it, as its tail never did. (A
     * producer dying right now may still look alive: its task is queued
     * by the sweep that finds it gone, and counted then, once.)
     */
    int theirs_now = gone != NULL && gone(ctx, sl->owner, sl->owner_gen);
    if (!theirs_now && !damage && seen != want[i]) {
      if (suspect != NULL) suspect[i] = want[i]; /* look again next time */
      continue;
    }
    if (fp__q_push_ready(s, FP__RING_RETRY(s), retry, i) < 0) {
      damaged(s); /* full of READY tasks: the next tick tries again */
      break;
    }
    queued++;
    theirs += (uint32_t)theirs_now;
  }
  free(want);
  if (rescued != NULL) *rescued = theirs;
  return queued;
}
