/*
 * Reclaiming what dead producers held, for named pools.
 *
 * A producer owns client row r while its open of the segment file holds the
 * OFD lock on byte FP__CLIENT_LOCK_BYTE(r). We read the row's gen first and
 * test the lock second: if the lock is free, every slot stamped (r, g') with
 * g' <= gen belongs to a producer that is gone (a new claimant locks first,
 * then bumps gen, so its slots carry a larger gen). Those slots are:
 *   FILLING  -> FREE (the producer died mid-submit; the task never existed).
 *            A FILLING slot is judged by its state word, which names the
 *            producer's row and gen (slot.h): the stamp may be stale
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
 * producers wait for space. None of it takes a lock: slot states decide,
 * each move a compare-and-swap or a store to a slot nobody else may move.
 */
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
    fp__slot_end_cancelled(s, sl);
    n++;
  }
  return n;
}

/*
 * fp__q_sweep's question for a named pool: is the producer that stamped a
 * slot (row, gen) gone? Its row has no holder, or a holder of a later gen
 * (a holder has the gen it bumped: `gen`, or gen + 1 while it bumps). A
 * row whose lock cannot be tested is not gone: never on suspicion.
 */
static int producer_gone(void *ctx, uint32_t row, uint32_t gen) {
  struct fp__sup *sp = ctx;
  struct fp__seg *s = sp->s;
  if (row >= s->nclients || s->fd < 0) return 0;
  uint32_t now = atomic_load(&fp__client_at(s, row)->gen);
  int held = fp__ofd_held(s->fd, FP__CLIENT_LOCK_BYTE(row));
  if (held < 0) return 0;
  return !held || (gen != now && gen != now + 1);
}

int fp__sup_sweep(struct fp__sup *sp, int tick) {
  uint32_t rescued = 0;
  int n = fp__q_sweep(sp->s, &sp->retry, producer_gone, sp,
                      tick ? sp->suspect : NULL, &rescued);
  if (rescued > 0) {
    atomic_fetch_add(&sp->s->hdr->q.rescued, rescued);
    fp__sup_log(sp, FP_LOG_INFO,
                "requeued %u task(s) that gone producers "
                "published halfway",
                rescued);
  }
  if (n > 0) fp__wake_workers(sp->s, (uint32_t)n);
  return n;
}

/* What one scan of the slots found of a gone producer's. */
struct reclaimed {
  uint64_t freed;     /* unfinished submissions and collected slots freed */
  uint64_t abandoned; /* uncollected results freed */
  int outstanding;    /* some of its tasks are still unfinished */
  int ready;          /* ...and some of those READY */
};

/*
 * Free the slots of row r's gone producers, those of gens up to limit
 * (gen: the row's gen; held: whether a live producer holds it now).
 */
static void scan_slots(struct fp__sup *sp, uint32_t r, uint32_t gen, int held,
                       uint32_t limit, struct reclaimed *got) {
  struct fp__seg *s = sp->s;
  for (uint32_t i = 0; i < s->nslots; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    uint32_t w = fp__slot_word(sl), st = w & FP__SLOT_STATE_MASK;
    if (st == FP__SLOT_FILLING) {
      /*
       * Ours if it names row r, and no live holder's gen: with the row
       * held, its holder has gen or (bumping it now) gen + 1.
       */
      if (fp__slot_filler(w) == r &&
          (!held ||
           (!fp__slot_filled_at(w, gen) && !fp__slot_filled_at(w, gen + 1))) &&
          fp__slot_cas(sl, w, FP__SLOT_FILLING)) {
        fp__q_put_free(s, i);
        got->freed++;
      }
      continue;
    }
    if (sl->owner != r || sl->owner_gen > limit) continue;
    if (st == FP__SLOT_COLLECTED) {
      fp__q_put_free(s, i);
      got->freed++;
    } else if (st == FP__SLOT_DONE ||
               w == fp__slot_make(FP__SLOT_ENDING, r + 1)) {
      /* (Its own cancel, ended or not: nobody will collect it.) */
      fp__q_put_free(s, i);
      got->abandoned++;
    } else if (fp__slot_unfinished(st)) {
      got->outstanding = 1;
      got->ready |= st == FP__SLOT_READY;
    }
  }
}

/*
 * Client row r: reclaim what its gone producers left, if anything is
 * outstanding. Returns 1 when READY tasks of theirs were seen.
 */
static int reclaim_row(struct fp__sup *sp, uint32_t r) {
  struct fp__seg *s = sp->s;
  struct fp__hdr *h = s->hdr;
  struct fp__client *c = fp__client_at(s, r);
  uint32_t gen = atomic_load(&c->gen);
  if (gen == sp->settled_gen[r]) return 0; /* nothing of it outstanding */
  int held = fp__ofd_held(s->fd, FP__CLIENT_LOCK_BYTE(r));
  if (held < 0) return 0; /* cannot tell: never on suspicion */
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
  if (limit == sp->settled_gen[r] || limit == UINT32_MAX) return 0;

  struct reclaimed got = {0};
  scan_slots(sp, r, gen, held, limit, &got);
  if (got.abandoned > 0) atomic_fetch_add(&h->c.abandoned, got.abandoned);
  if (got.freed + got.abandoned > 0) {
    fp__wake_space(s);
    fp__sup_log(sp, FP_LOG_INFO,
                "a producer of row %u is gone: reclaimed %llu unfinished "
                "submission(s), %llu uncollected result(s)",
                r, (unsigned long long)got.freed,
                (unsigned long long)got.abandoned);
  }
  if (!got.outstanding) sp->settled_gen[r] = limit;
  return got.ready;
}

void fp__sup_reclaim_clients(struct fp__sup *sp) {
  int orphans = 0; /* READY tasks of a gone producer seen */
  for (uint32_t r = 0; r < sp->s->nclients; r++) orphans |= reclaim_row(sp, r);
  /*
   * READY tasks of gone producers: queue those no ring holds (their
   * producer died between the slot's READY and its tail), counted
   * submitted here (fp__sup_sweep).
   */
  if (orphans) fp__sup_sweep(sp, 0);
}

void fp__sup_free_collected(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  /* A count a death left off is right again within a tick. */
  uint32_t nfree = fp__q_recount(s);
  if (fp__pcount(&s->hdr->p_asleep, s->nclients) == 0) return;
  if (nfree > 0) fp__wake_space(s);
  /*
   * Producers wait for a slot while others hold collected ones in their
   * free batches: return those now. The owners check the id before they
   * free or reuse one, and both moves out of COLLECTED are compare-and-swap,
   * so a slot freed here is never freed twice nor reused by its old owner.
   */
  int n = 0;
  for (uint32_t i = 0; i < s->nslots; i++)
    if (fp__slot_word(fp__slot_at(s, i)) == FP__SLOT_COLLECTED)
      n += fp__q_free_collected(s, i);
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
