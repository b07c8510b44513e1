/*
 * After a worker crash: check what that worker could have written to.
 *
 * A buggy task may scribble over the shared segment before it dies. Slots
 * carry check values (sum.h) and are judged when used; here the supervisor
 * checks the shared bookkeeping:
 *   - the header's fixed fields, against its own copy: restored if damaged;
 *   - the free-slot count: recounted from the slot states;
 *   - the ready rings: a sweep (queue.c) empties damaged ones and queues
 *     every READY slot no ring holds on the retry ring;
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
}

static int check_header(struct fp__sup *sp) {
  size_t n = offsetof(struct fp__hdr, state);
  if (memcmp(&sp->hdr_copy, sp->s->hdr, n) == 0) return 0;
  memcpy(sp->s->hdr, &sp->hdr_copy, n);
  return 1;
}

/* Is state word w one that some move of slot.h makes? */
static int valid_word(const struct fp__sup *sp, uint32_t w) {
  uint32_t st = w & FP__SLOT_STATE_MASK, holder = fp__slot_holder(w);
  switch (st) {
  case FP__SLOT_READY: return 1;
  case FP__SLOT_RUNNING: return holder < sp->nrows;
  case FP__SLOT_ENDING: return holder <= sp->s->nclients;
  case FP__SLOT_FILLING: return fp__slot_filler(w) < sp->s->nclients;
  default: return st <= FP__SLOT_COLLECTED && holder == 0;
  }
}

/*
 * Wake-up hints: a count no sleeper set could reach is damage, reset.
 * Returns 1 when one was.
 */
static int check_hints(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  struct fp__queue *q = &s->hdr->q;
  int hints = 0;
  if (fp__hint_value(&q->work_hint) > 4096 + s->nrows) {
    atomic_store(&q->work_hint.v, 0);
    hints = 1;
  }
  if (fp__hint_value(&q->space_hint) > 4096 + s->nclients) {
    atomic_store(&q->space_hint.v, 0);
    hints = 1;
  }
  return hints;
}

/* End as FP_CORRUPT every slot whose state is no state; returns how many. */
static int end_invalid_slots(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  int ended = 0;
  for (uint32_t i = 0; i < s->nslots; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    uint32_t w = fp__slot_word(sl);
    /*
     * RUNNING is valid only under a live worker's row whose slot field
     * names this slot (the worker stores it before its claim and clears
     * it after DONE): a word flipped to RUNNING by damage would
     * otherwise wait for ever. Workers finish without any lock, so the
     * task may end while we look: only a slot still RUNNING after we
     * checked its row is orphaned.
     */
    if (valid_word(sp, w) && (w & FP__SLOT_STATE_MASK) == FP__SLOT_RUNNING) {
      uint32_t r = fp__slot_holder(w);
      int owned =
          sp->rc[r].pid > 0 && atomic_load(&fp__row_at(s, r)->slot) == i;
      if (owned || fp__slot_word(sl) != w) continue;
    } else if (valid_word(sp, w)) {
      continue;
    }
    /* No valid state: whatever it held cannot be trusted. */
    fp__slot_end(s, sl, FP_CORRUPT, EBADMSG, 0, -1, 0, 0);
    fp__wake_owner(s, sl->owner);
    atomic_fetch_add(&s->hdr->c.corrupt, 1);
    ended++;
  }
  return ended;
}

void fp__sup_verify(struct fp__sup *sp) {
  struct fp__seg *s = sp->s;
  int hdr = check_header(sp);
  int hints = check_hints(sp);
  struct fp__queue *q = &s->hdr->q;
  int ended = end_invalid_slots(sp);
  fp__q_recount(s);
  /*
   * The rings: every READY slot reachable again. A producer publishing
   * right now may get its task queued twice (harmless), so only damage
   * found (q.sweep, raised by whoever met a damaged ring, and by the sweep
   * when it emptied one) is reported.
   */
  int rings = atomic_load(&q->sweep) != 0;
  (void)fp__sup_sweep(sp, 0);
  rings |= atomic_exchange(&q->sweep, 0) != 0;
  if (hdr || hints || ended || rings) {
    atomic_fetch_add(&s->hdr->c.repairs, 1);
    fp__sup_log(
        sp, FP_LOG_ERROR,
        "shared segment damaged after a worker crash:%s%s%s%s",
        hdr ? " header restored;" : "", hints ? " wake-up counts reset;" : "",
        rings ? " damaged ready rings emptied, their tasks requeued;" : "",
        ended ? " slots with no valid state ended corrupt;" : "");
  }
}
