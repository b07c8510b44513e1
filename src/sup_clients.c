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
 *   ENDING   -> FREE, counted abandoned (it cancelled its own task)
 *   READY or RUNNING: left to finish; freed on a later tick once DONE. A
 *            READY one that no ring holds (the producer died between the
 *            slot's READY and its ring entry: queue.h) is queued on the
 *            retry ring and counted submitted.
 * A task of another producer that a gone one was cancelling (ENDING under
 * its row + 1, the row now without a holder) is ended FP_CANCELLED here:
 * it had been counted when claimed (client.c, fp_cancel).
 *
 * It also counts the producers attached, for their fair shares of the
 * slots (fp__sup_count_producers), and returns collected slots when
 * producers wait for space. Every queue-lock wait here is short
 * (fp__sup_lock): a lock held by a stopped or hostile process skips the
 * work for this tick, never stalls the supervisor.
 */
#include <stdlib.h>

#include "queue.h"
#include "shm.h"
#include "sup.h"

/*
 * End the tasks that the gone producer of row r was cancelling (ENDING
 * under r + 1): nobody else will. Only called while row r has no holder,
 * so no live canceller can be writing them. Returns how many.
 */
static uint64_t end_cancels_of(struct fp__sup *sp, uint32_t r) {
  struct fp__seg *s = sp->s;
  uint64_t n = 0;
  uint32_t mine = fp__slot_make(FP__SLOT_ENDING, r + 1);
  for (uint32_t i = 0; i < s->nslots; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    if (fp__slot_word(sl) != mine) continue;
    uint32_t owner = sl->owner;
    fp__slot_end(s, sl, FP_CANCELLED, 0, 0, -1, 0, 0);
    fp__wake_owner(s, owner);
    n++;
  }
  return n;
}

void fp__sup_reclaim_clients(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  struct fp__hdr *h = s->hdr;
  unsigned char *dead = NULL; /* rows with READY tasks of a gone producer */
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
      end_cancels_of(sp, r);
    }
    if (limit == sp->settled_gen[r] || limit == UINT32_MAX) continue;

    int outstanding = 0, ready = 0;
    uint64_t freed = 0, abandoned = 0;
    /* Busy (a stopped or hostile holder): next tick, never a long wait. */
    if (fp__sup_lock(sp) != 0) break;
    for (uint32_t i = 0; i < s->nslots; i++) {
      struct fp__slot *sl = fp__slot_at(s, i);
      if (sl->owner != r || sl->owner_gen > limit) continue;
      uint32_t w = fp__slot_word(sl), st = w & FP__SLOT_STATE_MASK;
      if (st == FP__SLOT_FILLING || st == FP__SLOT_COLLECTED) {
        fp__q_put_free(s, i);
        freed++;
      } else if (st == FP__SLOT_DONE ||
                 w == fp__slot_make(FP__SLOT_ENDING, r + 1)) {
        /* (Its own cancel, ended or not: nobody will collect it.) */
        fp__q_put_free(s, i);
        abandoned++;
      } else if (fp__slot_unfinished(st)) {
        outstanding = 1;
        ready |= st == FP__SLOT_READY;
      }
    }
    fp__q_unlock(s);
    if (ready && dead == NULL) dead = calloc(s->nclients, 1);
    if (ready && dead != NULL) dead[r] = 1;
    if (abandoned > 0) atomic_fetch_add(&h->c.abandoned, abandoned);
    if (freed + abandoned > 0) {
      fp__wake_space(s);
      fp__sup_log(sp, FP_LOG_INFO,
                  "a producer of row %u is gone: reclaimed %llu unfinished "
                  "submission(s), %llu uncollected result(s)",
                  r, (unsigned long long)freed,
                  (unsigned long long)abandoned);
    }
    if (!outstanding) sp->settled_gen[r] = limit;
  }
  if (dead == NULL) return;
  /*
   * READY tasks of gone producers: queue those no ring holds. Their ring
   * tails are frozen (nobody writes them until a new holder, which only
   * appends its own), so "no ring holds it" is exact here, and each is
   * counted submitted (wrongly only for a new holder's task caught
   * between its READY and its tail at this very instant).
   */
  int n = fp__q_sweep(s, &sp->retry, dead);
  free(dead);
  if (n > 0) {
    atomic_fetch_add(&h->q.rescued, (uint64_t)n);
    fp__wake_workers(s, (uint32_t)n);
    fp__sup_log(sp, FP_LOG_INFO, "requeued %d task(s) that gone producers "
                "published halfway", n);
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
    if (fp__slot_word(fp__slot_at(s, i)) == FP__SLOT_COLLECTED)
      n += fp__q_free_collected(s, i);
  fp__q_unlock(s);
  if (n > 0)
    for (uint32_t k = fp__pcount(&s->hdr->p_asleep, s->nclients); k > 0; k--)
      fp__hint_post(&s->hdr->q.space_hint);
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
    fp__wake_space(s);
  }
}
