/*
 * Producers: submit (fp_submit, fp_submit_prio, spawned tasks, and the
 * slot half of fp_submit_begin/commit) and cancel (fp_cancel). Waiting
 * for and collecting results is collect.c's; what a handle holds (its
 * pending list, its batch of collected slots), held.c's.
 *
 * A submit takes a slot (one of our collected ones, or a FREE one), within
 * our share of a named pool's slots and the reserve kept for newcomers,
 * fills it while it is FILLING and ours alone, and publishes it on our
 * ring. If a producer is SIGKILLed between any two instructions:
 *   - taking or returning free slots: each move is a compare-and-swap of
 *     the slot's state word, which names us once taken (queue.h, slot.h);
 *   - publishing (no lock: queue.h says what each of its stores leaves);
 *   - holding a FILLING slot, or a DONE one not yet collected: the slot
 *     stays ours until the pool is stopped (a private pool's owner dying
 *     stops the pool; named pools reclaim per client row).
 * Submitting a task, publishing it, waiting for and collecting its result
 * take no lock shared with another process: a producer stopped anywhere
 * keeps only its own slots, within its share, and delays nobody.
 */
#include <stdlib.h>
#include <string.h>

#include "alive.h"
#include "client.h"
#include "held.h"
#include "pool.h"
#include "proc.h"
#include "queue.h"
#include "sum.h"
#include "tree.h"

/* Sleep while our share of the slots is used up (another thread may
 * collect), and the pause before the -EDEADLK verdict is rechecked. */
#define SHARE_NAP_NS 10000000ull
/* A full ring: how long one wait for the workers to pass entries lasts. */
#define RING_NAP_NS 50000ull

struct space_ctx {
  struct fp__seg *s;
};

static int space_or_stopped(void *arg) {
  struct fp__hdr *h = ((struct space_ctx *)arg)->s->hdr;
  return atomic_load(&h->q.nfree) > 0 ||
         atomic_load(&h->state) > FP__POOL_RUNNING;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/*
 * FP_NOWAIT: how long a submit waits for room on its full ring, yielding
 * the CPU meanwhile (ring_wait): workers that were only preempted get to
 * take. A ring is full only when cap entries wait (stale ones included).
 */
#define NOWAIT_ROOM_NS 1000000u /* 1 ms */

/*
 * Would waiting for a slot deadlock (mu held)? 1 when we hold `limit` or
 * more pending tasks (our share, or every slot) and every one of them is
 * finished: only our own collecting can free a slot for us.
 */
static int only_ours_left(struct fp_pool *p, uint32_t limit) {
  /* Slots held by begun submissions and views are ours alone too. */
  if (p->npending + p->nheld < limit) return 0;
  for (uint32_t i = p->head; i != FP__NONE; i = p->next[i]) {
    if (fp__slot_unfinished(fp__slot_state(fp__slot_at(&p->seg, i)))) return 0;
  }
  return 1;
}

/* Sleep rel_ns (an interruption just ends it early: callers recheck). */
static void nap(uint64_t rel_ns) {
  struct timespec ts = fp__ts_from_ns(rel_ns);
  nanosleep(&ts, NULL);
}

/*
 * The input's check value, kept out of line. Inlined into fill() (as GCC
 * does once fill is the only caller of fp__sum here), the hash with its
 * 64-byte lanes made the whole submit path slower: forkpool bench, 16-byte
 * tasks on the 2-core test machine, 2.4 M/s against 3.0 M/s out of line.
 */
static __attribute__((noinline)) uint64_t in_sum(const struct fp__slot *sl,
                                                 uint64_t id, uint32_t len) {
  return fp__in_sum(sl, id, len);
}

/*
 * Fill slot i (ours, FILLING) with the task. `in` may be the slot's own
 * input buffer (fp_submit_commit: written there already), then not copied.
 */
static void fill(struct fp__slot *sl, const void *in, size_t len, int prio) {
  sl->prio = (uint32_t)prio;
  atomic_store(&sl->cancel, 0);
  sl->in_len = (uint32_t)len;
  sl->attempts = 0;
  sl->started_ns = 0;
  atomic_store(&sl->worker, 0);
  if (len > 0 && in != fp__slot_in(sl)) memcpy(fp__slot_in(sl), in, len);
  sl->in_sum = in_sum(sl, atomic_load(&sl->id), (uint32_t)len);
}

void fp__rings_join(struct fp_pool *p) {
  struct fp__seg *s = &p->seg;
  for (uint32_t pr = 0; pr < 2; pr++) {
    struct fp__ring *rg = fp__q_ring(s, 2 * p->client + pr);
    uint64_t t = atomic_load(&rg->tail), h = atomic_load(&rg->head);
    if (FP__NEVER(t >= FP__RING_SANE)) {
      /* Scribbled near 2^64 (counts this ring can never reach): start over
       * at 0, or the next push would wrap; the sweep requeues its tasks. */
      atomic_store(&rg->tail, 0);
      atomic_store(&rg->head, 0);
      t = h = 0;
      atomic_store(&s->hdr->q.sweep, 1);
    }
    if (FP__NEVER(h > t || t - h > s->ring_cap)) {
      /*
       * Damaged (a stray write): restart it empty at its tail (moving head
       * back, never tail forward: a head near 2^64 would wrap it); the
       * sweep requeues what it held.
       */
      atomic_compare_exchange_strong(&rg->head, &h, t);
      h = t;
      atomic_store(&s->hdr->q.sweep, 1);
    }
    p->ring_w[pr].tail = t;
    p->ring_w[pr].head_seen = h;
  }
  /* A holder killed while watching left its counts: nobody watches now. */
  struct fp__client *c = fp__client_at(s, p->client);
  atomic_store(&c->watchers, 0);
  atomic_store(&c->waiters, 0);
  /* Workers look at rows below clients_hwm: raise it to include ours. */
  uint32_t want = p->client + 1, cur = atomic_load(&s->hdr->q.clients_hwm);
  while (cur < want &&
         !atomic_compare_exchange_weak(&s->hdr->q.clients_hwm, &cur, want)) {
  }
}

/*
 * Our ring k is full of tasks not yet taken (mu held): wait for the
 * workers to pass some, within the caller's deadline (set here when 0;
 * FP_NOWAIT: 1 ms at most, as for the lock). 0 to try again, or
 * -EAGAIN, -ETIMEDOUT, -ESHUTDOWN, -EPIPE.
 */
static int ring_wait(struct fp_pool *p, int timeout_ms, uint64_t *deadline) {
  uint64_t now = fp__now_ns();
  if (*deadline == 0)
    *deadline = timeout_ms == FP_NOWAIT ? now + NOWAIT_ROOM_NS
                                        : fp__deadline_ns(now, timeout_ms);
  if (now >= *deadline) return timeout_ms == FP_NOWAIT ? -EAGAIN : -ETIMEDOUT;
  if (atomic_load(&p->seg.hdr->state) > FP__POOL_RUNNING) return -ESHUTDOWN;
  if (!fp__check_alive(p)) return -EPIPE;
  fp__wake_workers(&p->seg, 1);
  nap(RING_NAP_NS);
  return 0;
}

/*
 * Publish our filled FILLING slot i on our ring for `prio` (mu held; no
 * lock: queue.h). Returns 0 with the task pending, or -ESHUTDOWN (a stop
 * began), or ring_wait()'s error; on error the slot goes back to our own
 * batch (fp__slot_give_back) and nothing is queued, except that with
 * `keep`, on -EAGAIN and -ETIMEDOUT (our ring stayed full), it stays ours,
 * FILLING (a begun submission: fp_submit_commit may be called again).
 */
static int publish_keep(struct fp_pool *p, uint32_t i, int prio, int timeout_ms,
                        uint64_t *deadline, uint64_t root, uint64_t parent,
                        uint64_t *id, int keep) {
  struct fp__seg *s = &p->seg;
  struct fp__slot *sl = fp__slot_at(s, i);
  uint32_t pr = prio ? 1 : 0, k = 2 * p->client + pr;
  uint64_t tid = atomic_load(&sl->id);
  int err = 0;
  for (;;) {
    if (atomic_load(&s->hdr->state) > FP__POOL_RUNNING) {
      err = -ESHUTDOWN;
      break;
    }
    if (fp__q_push(s, k, &p->ring_w[pr], i) == 0) break;
    if ((err = ring_wait(p, timeout_ms, deadline)) < 0) break;
  }
  if (keep && (err == -EAGAIN || err == -ETIMEDOUT)) return err;
  if (err < 0) {
    fp__slot_give_back(p, i);
    return err;
  }
  /*
   * A stop that began meanwhile may have ended the READY tasks before ours
   * was one: ours would wait for ever. The tail's store was seq_cst, and
   * so is the stop's store of the state: one of us sees the other. Take
   * the task back if it is still READY (nobody claimed it), and refuse it.
   */
  if (FP__NEVER(atomic_load(&s->hdr->state) > FP__POOL_RUNNING) &&
      fp__slot_cas(sl, fp__slot_ready_word(tid),
                   fp__slot_filling_word(p->client, p->client_gen))) {
    atomic_fetch_add(&fp__client_at(s, p->client)->withdrawn, 1);
    fp__slot_give_back(p, i);
    return -ESHUTDOWN;
  }
  fp__pend_add(p, i, tid, root, parent);
  *id = tid;
  return 0;
}

static int publish(struct fp_pool *p, uint32_t i, int prio, int timeout_ms,
                   uint64_t *deadline, uint64_t root, uint64_t parent,
                   uint64_t *id) {
  return publish_keep(p, i, prio, timeout_ms, deadline, root, parent, id, 0);
}

FP_EXTERN int fp_submit(fp_pool *p, const void *in, size_t len, int timeout_ms,
                        uint64_t *id) {
  return fp_submit_prio(p, in, len, timeout_ms, FP_PRIO_NORMAL, id);
}

static int submit_in(struct fp_pool *p, const void *in, size_t len,
                     int timeout_ms, int prio, uint64_t root, uint64_t parent,
                     uint64_t *id);

FP_EXTERN int fp_submit_prio(fp_pool *p, const void *in, size_t len,
                             int timeout_ms, int prio, uint64_t *id) {
  if (p != NULL) fp__submit_spawned(p); /* spawned tasks first: older */
  return submit_in(p, in, len, timeout_ms, prio, 0, 0, id);
}

/* Why try_take() found no slot for us. */
struct no_slot {
  uint32_t share; /* our share of a named pool's slots (0: no share) */
  int capped;     /* we hold our share already */
  int reserved;   /* only the reserve is left, and we hold too much for it */
};

/*
 * One try at a slot for a new task (mu held): one of our collected slots,
 * or a FREE one, within our share and the reserve. Returns the slot,
 * FILLING and ours, or NONE with *why saying what stood in the way (or,
 * neither capped nor reserved, that no slot was free).
 */
static uint32_t try_take(struct fp_pool *p, struct no_slot *why) {
  struct fp__seg *s = &p->seg;
  struct fp__hdr *h = s->hdr;
  /*
   * Our share of a named pool's slots (0: no share): a producer that stops
   * collecting cannot take the slots other producers need.
   */
  uint32_t share =
      atomic_load_explicit(&h->producer_share, memory_order_relaxed);
  unsigned held = p->npending + p->nheld;
  why->share = share;
  why->capped = share != 0 && held >= share;
  why->reserved = 0;
  if (why->capped) return FP__NONE;
  uint32_t i = fp__slot_reuse(p);
  if (i != FP__NONE) return i; /* one of our collected slots */
  /*
   * The last quarter of the free slots is for producers that hold
   * little (newcomers): producers that stopped collecting, each within
   * its share, cannot fill the queue between them.
   */
  uint32_t nfree = atomic_load(&h->q.nfree);
  if (share != 0 && nfree > 0 && nfree <= s->nslots / 4 &&
      held >= fp__reserve_of(s->nslots, atomic_load(&h->producers))) {
    why->reserved = 1;
    return FP__NONE;
  }
  return fp__q_take_free(s, p->client, p->client_gen, &p->free_cursor);
}

/*
 * Get a FILLING slot for a new task of this producer (split out of
 * submit_in so that fp__slot_begin takes slots the same way), without
 * any lock: one of our collected slots, or a FREE one claimed by
 * compare-and-swap (queue.c). Waits for a free slot within timeout_ms
 * (*deadline set when first needed), honouring the pool state, the
 * supervisor's liveness, our fair share and the reserve (slots held by
 * begun submissions and views, p->nheld, count as pending ones). Returns
 * 0 with *slot set and p->mu held; errors as fp_submit() (-ESHUTDOWN,
 * -EPIPE, -EAGAIN, -ETIMEDOUT, -EDEADLK), nothing held then.
 */
static int get_slot(struct fp_pool *p, int timeout_ms, uint64_t *deadline,
                    uint32_t *slot) {
  struct fp__seg *s = &p->seg;
  struct fp__hdr *h = s->hdr;
  struct space_ctx ctx = {s};
  int deadlocked = 0;
  for (;;) {
    /* Tasks may queue while the workers start: they run once ready. */
    if (atomic_load(&h->state) > FP__POOL_RUNNING) return -ESHUTDOWN;
    /* The state word cannot say that the supervisor died: ask now and then. */
    if (!fp__check_alive(p)) return -EPIPE;
    pthread_mutex_lock(&p->mu);
    struct no_slot why;
    uint32_t i = try_take(p, &why);
    if (i != FP__NONE) {
      *slot = i;
      return 0; /* mu held */
    }
    /* No slot for us now. Only our own results may stand in the way. */
    int stuck =
        !why.reserved && only_ours_left(p, why.capped ? why.share : s->nslots);
    pthread_mutex_unlock(&p->mu);
    if (timeout_ms == FP_NOWAIT) return -EAGAIN;
    uint64_t now = fp__now_ns();
    if (*deadline == 0) *deadline = fp__deadline_ns(now, timeout_ms);
    if (now >= *deadline) return -ETIMEDOUT;
    if (!fp__sup_alive(p)) return -EPIPE;
    if (stuck) {
      /*
       * Once more after a pause: another thread of ours may collect. Capped
       * by our share, the pause spans a supervisor tick: the share grows
       * when producers left (only the supervisor's count sees that).
       */
      if (deadlocked) return -EDEADLK;
      deadlocked = 1;
      nap(min_u64(*deadline - now,
                  why.capped ? FP__RECHECK_NS + SHARE_NAP_NS : SHARE_NAP_NS));
      continue;
    }
    deadlocked = 0;
    if (why.capped || why.reserved) {
      /* Until another thread collects, or the share grows (or, reserved,
       * until others free slots). */
      nap(min_u64(*deadline - now, SHARE_NAP_NS));
      continue;
    }
    fp__wake_sleep(&h->q.space_hint, &h->p_asleep, p->client,
                   min_u64(*deadline - now, FP__RECHECK_NS), space_or_stopped,
                   &ctx);
  }
}

/* Submit with tree links (root 0: the task is its own root); as fp_submit. */
static int submit_in(struct fp_pool *p, const void *in, size_t len,
                     int timeout_ms, int prio, uint64_t root, uint64_t parent,
                     uint64_t *id) {
  if (p == NULL || id == NULL || (in == NULL && len > 0)) return -EINVAL;
  if (prio != FP_PRIO_NORMAL && prio != FP_PRIO_HIGH) return -EINVAL;
  if (p->monitor) return -EPERM;
  struct fp__seg *s = &p->seg;
  if (len > s->max_input) return -EMSGSIZE;
  uint64_t deadline = 0; /* set when we first have to wait */
  uint32_t i;
  int err;
  if ((err = get_slot(p, timeout_ms, &deadline, &i)) < 0) return err;
  /* A FILLING slot is ours alone: filled without any lock. */
  fill(fp__slot_at(s, i), in, len, prio);
  err = publish(p, i, prio, timeout_ms, &deadline, root, parent, id);
  pthread_mutex_unlock(&p->mu);
  if (err == 0) fp__wake_kick(s);
  return err;
}

void fp__submit_spawned(struct fp_pool *p) {
  if (p->monitor || !fp__tree_queued(p)) return; /* a hint, rechecked below */
  for (;;) {
    pthread_mutex_lock(&p->mu);
    struct fp__spawn *n = fp__tree_pop(p);
    pthread_mutex_unlock(&p->mu);
    if (n == NULL) return;
    uint64_t id;
    int r = submit_in(p, n->data, n->len, FP_NOWAIT, FP_PRIO_NORMAL, n->root,
                      n->parent, &id);
    pthread_mutex_lock(&p->mu);
    if (r == -EAGAIN) {
      /* No free slot: back at the head, to go first next time. */
      fp__tree_unpop(p, n);
      pthread_mutex_unlock(&p->mu);
      return;
    }
    /* Submitted (it counts as pending now), or refused for good: the pool
     * stops, or the task is too big for it. Either way it leaves the
     * queue; a refused one also leaves its tree. */
    if (r < 0) fp__tree_add(p, n->root, -1);
    pthread_mutex_unlock(&p->mu);
    free(n);
    if (r < 0) return;
  }
}

FP_EXTERN int fp_cancel(fp_pool *p, uint64_t id) {
  if (p == NULL) return -EINVAL;
  if (p->monitor) return -EPERM;
  struct fp__seg *s = &p->seg;
  uint32_t i = (uint32_t)(id & FP__ID_INDEX_MASK);
  if (id == 0 || i >= s->nslots) return -ENOENT;
  struct fp__slot *sl = fp__slot_at(s, i);
  /*
   * No lock: the slot's state word decides (slot.h). A queued task is
   * claimed READY -> ENDING by compare-and-swap against workers and a stop
   * (one wins), from the READY word of this very task: a later task in
   * the same slot carries another generation and is left alone.
   */
  int err;
  uint32_t w = fp__slot_word(sl), st = w & FP__SLOT_STATE_MASK;
  if (atomic_load(&sl->id) != id || st == FP__SLOT_FREE ||
      st == FP__SLOT_FILLING) {
    err = -ENOENT;
  } else if (st == FP__SLOT_READY) {
    if (fp__slot_claim_end(sl, fp__slot_ready_word(id), p->client + 1)) {
      /* Counted first: killed before the end, the supervisor ends it. */
      atomic_fetch_add(&s->hdr->c.cancelled, 1);
      fp__slot_end_cancelled(s, sl);
      err = 0;
    } else {
      /* Taken meanwhile: look again (it is RUNNING, or it ended). */
      return fp_cancel(p, id);
    }
  } else if (st == FP__SLOT_RUNNING) {
    /* Running: the supervisor kills its worker (sup: check_cancels). */
    atomic_store(&sl->cancel, 1);
    err = -EINPROGRESS;
  } else if (st == FP__SLOT_ENDING) {
    err = 0; /* being cancelled by another call: it never runs */
  } else {
    err = -EALREADY;
  }
  if (err == -EINPROGRESS && p->cmd_fd >= 0) {
    /*
     * Private pool: wake the supervisor now rather than at its next tick.
     * A dead supervisor will kill nothing: say so.
     */
    struct fp__cmd cmd = {.op = 'C'};
    if (fp__cmd_send(p->cmd_fd, &cmd) == -EPIPE || !fp__sup_alive(p))
      err = -EPIPE;
  } else if (err == -EINPROGRESS && !fp__sup_alive(p)) {
    err = -EPIPE;
  }
  return err;
}

/* ---- Zero-copy submissions (view.c): the slot's part ---------------- */

int fp__slot_begin(struct fp_pool *p, int timeout_ms, uint32_t *slot) {
  uint64_t deadline = 0;
  /* Filled by the caller, at its pace: no lock is held anywhere. */
  return get_slot(p, timeout_ms, &deadline, slot);
}

int fp__slot_commit(struct fp_pool *p, uint32_t i, size_t len, int prio,
                    int timeout_ms, uint64_t *id) {
  struct fp__slot *sl = fp__slot_at(&p->seg, i);
  uint64_t deadline = 0;
  fill(sl, fp__slot_in(sl), len, prio); /* in place: seals, copies nothing */
  int err = publish_keep(p, i, prio, timeout_ms, &deadline, 0, 0, id, 1);
  if (err == 0) fp__wake_kick(&p->seg);
  return err;
}
