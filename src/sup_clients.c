/*
 * Reclaiming what dead producers held, for named pools.
 *
 * A producer owns client row r while its open of the segment file holds the
 * OFD lock on byte FP__CLIENT_LOCK_BYTE(r). We read the row's gen first and
 * test the lock second: if the lock is free, every slot stamped (r, g') with
 * g' <= gen belongs to a producer that is gone (a new claimant locks first,
 * then bumps gen, so its slots carry a larger gen). Those slots are:
 *   FILLING  -> FREE (the producer died mid-submit; the task never existed)
 *   DONE     -> FREE, counted abandoned (nobody will collect the result)
 *   COLLECTED -> FREE (collected, not yet returned to the free stack)
 *   READY or RUNNING: left to finish; freed on a later tick once DONE.
 *
 * It also counts the producers attached, for their fair shares of the
 * slots (fp__sup_count_producers), and returns collected slots when
 * producers wait for space. Every queue-lock wait here is short
 * (fp__sup_lock): a lock held by a stopped or hostile process skips the
 * work for this tick, never stalls the supervisor.
 */
#include "queue.h"
#include "shm.h"
#include "sup.h"

void fp__sup_reclaim_clients(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  struct fp__hdr *h = s->hdr;
  for (uint32_t r = 0; r < s->nclients; r++) {
    struct fp__client *c = fp__client_at(s, r);
    uint32_t gen = atomic_load(&c->gen);
    if (gen == sp->settled_gen[r]) continue; /* nothing of it outstanding */
    int held = fp__ofd_held(s->fd, FP__CLIENT_LOCK_BYTE(r));
    if (held < 0) continue; /* cannot tell: never on suspicion */
    /*
     * Free row: every gen up to `gen` is gone. Held row: its holder has
     * `gen` (or is about to bump to gen + 1); every earlier gen is gone,
     * as the holder could lock only after the last one let go. A new
     * producer taking the row of a dead one must not shield its leftovers.
     */
    uint32_t limit = held ? gen - 1 : gen;
    if (!held) {
      /* Gone: it cannot clear its own presence bits any more. */
      fp__pclr(&h->p_asleep, r);
      fp__pclr(&h->p_spin, r);
    }
    if (limit == sp->settled_gen[r] || limit == UINT32_MAX) continue;

    int outstanding = 0;
    uint64_t freed = 0, abandoned = 0;
    /* Busy (a stopped or hostile holder): next tick, never a long wait. */
    if (fp__sup_lock(sp) != 0) return;
    for (uint32_t i = 0; i < s->nslots; i++) {
      struct fp__slot *sl = fp__slot_at(s, i);
      if (sl->owner != r || sl->owner_gen > limit) continue;
      uint32_t st = atomic_load(&sl->state);
      if (st == FP__SLOT_FILLING || st == FP__SLOT_COLLECTED) {
        fp__q_put_free(s, i);
        freed++;
      } else if (st == FP__SLOT_DONE) {
        fp__q_put_free(s, i);
        abandoned++;
      } else if (st == FP__SLOT_READY || st == FP__SLOT_RUNNING) {
        outstanding = 1;
      }
    }
    fp__q_unlock(s);
    if (abandoned > 0) atomic_fetch_add(&h->c.abandoned, abandoned);
    if (freed + abandoned > 0) {
      fp__q_wake_space(s);
      fp__sup_log(sp, FP_LOG_INFO,
                  "a producer of row %u is gone: reclaimed %llu unfinished "
                  "submission(s), %llu uncollected result(s)",
                  r, (unsigned long long)freed,
                  (unsigned long long)abandoned);
    }
    if (!outstanding) sp->settled_gen[r] = limit;
  }
}

void fp__sup_free_collected(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  if (fp__pcount(&s->hdr->p_asleep, s->nclients) == 0) return;
  /*
   * Producers wait for a slot while others hold collected ones in their
   * free batches: return those now. The owners check the id before they
   * free or reuse one, and both moves out of COLLECTED are compare-and-swap,
   * so a slot freed here is never freed twice nor reused by its old owner.
   */
  int n = 0;
  if (fp__sup_lock(sp) != 0) return; /* busy: next tick */
  for (uint32_t i = 0; i < s->nslots; i++)
    if (atomic_load(&fp__slot_at(s, i)->state) == FP__SLOT_COLLECTED)
      n += fp__q_free_collected(s, i);
  fp__q_unlock(s);
  if (n > 0)
    for (uint32_t k = fp__pcount(&s->hdr->p_asleep, s->nclients); k > 0; k--)
      fp__hint_post(&s->hdr->q.space_sem);
}

void fp__sup_count_producers(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  struct fp__hdr *h = s->hdr;
  uint32_t n = 0;
  for (uint32_t r = 0; r < s->nclients; r++) {
    /* A row never claimed has gen 0: nobody there, no system call. */
    if (atomic_load(&fp__client_at(s, r)->gen) == 0) continue;
    n += fp__ofd_held(s->fd, FP__CLIENT_LOCK_BYTE(r)) != 0;
  }
  /* Stores only when something changed: the line is read by every submit. */
  uint32_t share = fp__share_of(s->nslots, n);
  if (atomic_load(&h->producers) != n) atomic_store(&h->producers, n);
  if (atomic_load(&h->producer_share) != share) {
    atomic_store(&h->producer_share, share);
    /* A larger share lets a capped producer go on: wake the sleepers. */
    fp__q_wake_space(s);
  }
}
