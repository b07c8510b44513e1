/*
 * After a worker crash: check what that worker could have written to.
 *
 * A buggy task may scribble over the shared segment before it dies. Slots
 * carry check values (sum.h) and are judged when used; here the supervisor
 * checks the shared bookkeeping:
 *   - the header's fixed fields, against its own copy: restored if damaged;
 *   - the queue lock: a lock word naming no live owner is re-created;
 *   - the ready ring and the free stack, against the slot states: rebuilt
 *     from the states when they disagree (the states are the truth);
 *   - slot states that are no state at all: the slot's task is ended
 *     FP_CORRUPT (its producer, if any, is told; never a wrong result).
 */
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "sum.h"
#include "sup.h"

/* The header's fixed part, as laid out; restored from our copy. */
void fp__sup_save_header(struct fp__sup *sp) {
  memcpy(&sp->hdr_copy, sp->s->hdr, offsetof(struct fp__hdr, state));
  sp->lock_kind = sp->s->hdr->q.lock.__data.__kind;
}

static int check_header(struct fp__sup *sp) {
  size_t n = offsetof(struct fp__hdr, state);
  if (memcmp(&sp->hdr_copy, sp->s->hdr, n) == 0) return 0;
  memcpy(sp->s->hdr, &sp->hdr_copy, n);
  return 1;
}

/* Re-create a queue lock whose word names no live thread. 1 if done. */
static int check_lock(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  /*
   * The mutex's type word (glibc's __kind) never changes after init: a
   * different one is damage, and glibc would take the wrong paths on it.
   */
  int kind_ok = s->hdr->q.lock.__data.__kind == sp->lock_kind;
  /* Short, and only a try while a holder is known (check_lock_holder). */
  int r = kind_ok ? fp__q_lock_until(s, sp->lock_busy ? 0
                                        : fp__now_ns() + 200000000u)
                  : -EINVAL;
  if (r == 0) {
    fp__q_unlock(s);
    return 0;
  }
  /* glibc keeps the owner's thread id in the low bits of the lock word. */
  unsigned *word = (unsigned *)&s->hdr->q.lock;
  pid_t tid = (pid_t)(*word & FUTEX_TID_MASK);
  if (r == -ETIMEDOUT && tid != 0 && kill(tid, 0) == 0) return 0; /* held */
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&s->hdr->q.lock, &ma);
  pthread_mutexattr_destroy(&ma);
  /* Anyone asleep on the garbage word retries within its 1 s slice. */
  fp__futex_wake((_Atomic uint32_t *)word);
  return 1;
}

/* Do the READY lists and the free stack agree with the slot states? */
static int bookkeeping_ok(struct fp__seg *s, unsigned char *seen) {
  struct fp__queue *q = &s->hdr->q;
  uint32_t n = s->nslots, len = atomic_load(&q->ready_len);
  uint32_t nready = 0, nfree = 0, listed = 0, listed_hi = 0;
  if (len > n || q->free_top > n) return 0;
  memset(seen, 0, n);
  for (uint32_t c = 0; c < s->nclients; c++) {
    struct fp__client *cl = fp__client_at(s, c);
    for (uint32_t p = 0; p < 2; p++) {
      uint32_t last = FP__NONE;
      for (uint32_t i = cl->qhead[p]; i != FP__NONE; i = s->ready[i]) {
        if (i >= n || seen[i]++) return 0;
        struct fp__slot *sl = fp__slot_at(s, i);
        if (atomic_load(&sl->state) != FP__SLOT_READY || sl->owner != c ||
            (sl->prio ? 1u : 0u) != p)
          return 0;
        listed++;
        listed_hi += p;
        last = i;
      }
      if (cl->qtail[p] != last) return 0;
    }
  }
  for (uint32_t k = 0; k < q->free_top; k++) {
    uint32_t i = s->freestk[k];
    if (i >= n || seen[i]++) return 0;
    if (atomic_load(&fp__slot_at(s, i)->state) != FP__SLOT_FREE) return 0;
  }
  for (uint32_t i = 0; i < n; i++) {
    uint32_t st = atomic_load(&fp__slot_at(s, i)->state);
    nready += st == FP__SLOT_READY;
    nfree += st == FP__SLOT_FREE;
  }
  return nready == len && listed == len &&
         listed_hi == atomic_load(&q->ready_hi) && nfree == q->free_top;
}

void fp__sup_verify(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  int hdr = check_header(sp);
  int lock = check_lock(sp);
  /* Wake-up hints: a count no sleeper set could reach is damage. */
  int hints = 0;
  struct fp__queue *q = &s->hdr->q;
  if (fp__hint_value(&q->ready_sem) > 4096 + s->nrows) {
    atomic_store(&q->ready_sem.v, 0);
    hints = 1;
  }
  if (fp__hint_value(&q->space_sem) > 4096 + s->nclients) {
    atomic_store(&q->space_sem.v, 0);
    hints = 1;
  }
  int rebuilt = 0, ended = 0;
  /* Held by another (a stopped or hostile process): next death checks. */
  if (fp__sup_lock(sp) == 0) {
    for (uint32_t i = 0; i < s->nslots; i++) {
      struct fp__slot *sl = fp__slot_at(s, i);
      uint32_t st = atomic_load(&sl->state);
      /*
       * RUNNING is valid only with a live worker whose row points at it
       * (set under this lock when it took the task): a state flipped to
       * RUNNING by damage would otherwise wait for ever.
       */
      if (st == FP__SLOT_RUNNING) {
        int owned = 0;
        for (uint32_t r = 0; r < sp->nrows && !owned; r++)
          owned = sp->rc[r].pid > 0 && sp->rc[r].pid == atomic_load(&sl->worker) &&
                  atomic_load(&fp__row_at(s, r)->slot) == i;
        /*
         * Workers finish without this lock: the task may have ended while
         * we looked (DONE, then its row cleared). Only a slot still
         * RUNNING after its would-be worker's row moved on is orphaned:
         * a worker keeps row->slot from before RUNNING until after DONE.
         */
        if (owned || atomic_load(&sl->state) != FP__SLOT_RUNNING) continue;
      } else if (st <= FP__SLOT_COLLECTED) {
        continue;
      }
      /* No valid state: whatever it held cannot be trusted. */
      fp__slot_end(s, sl, FP_CORRUPT, EBADMSG, 0, -1, 0, 0);
      fp__notify_owner(s, sl->owner);
      atomic_fetch_add(&s->hdr->c.corrupt, 1);
      ended++;
    }
    unsigned char *seen = malloc(s->nslots);
    if (seen == NULL || !bookkeeping_ok(s, seen)) {
      fp__q_rebuild(s);
      rebuilt = 1;
    }
    free(seen);
    fp__q_unlock(s);
  }
  if (hdr || lock || hints || rebuilt || ended) {
    atomic_fetch_add(&s->hdr->c.repairs, 1);
    fp__sup_log(sp, FP_LOG_ERROR,
                "shared segment damaged after a worker crash:%s%s%s%s%s",
                hdr ? " header restored;" : "",
                lock ? " queue lock re-created;" : "",
                hints ? " wake-up counts reset;" : "",
                rebuilt ? " ring and free stack rebuilt from slot states;" : "",
                ended ? " slots with no valid state ended corrupt;" : "");
  }
}
