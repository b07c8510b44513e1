/*
 * Producers: submit, wait, collect.
 *
 * If a producer is SIGKILLed between any two instructions:
 *   - inside the queue lock: the next locker rebuilds the rings;
 *   - holding a FILLING slot, or a DONE one not yet collected: the slot
 *     stays ours until the pool is stopped (a private pool's owner dying
 *     stops the pool; named pools reclaim per client row).
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "proc.h"
#include "queue.h"
#include "spin.h"
#include "sum.h"

/* How long one sleep lasts at most before rechecking the supervisor. */
#define RECHECK_NS 100000000ull
/* Sleep while our share of the slots is used up (another thread may
 * collect), and the pause before the -EDEADLK verdict is rechecked. */
#define SHARE_NAP_NS 10000000ull
/* fp_cancel's limit on the queue lock. */
#define CANCEL_LOCK_NS 1000000000ull

void fp__pend_add(struct fp_pool *p, uint32_t i, uint64_t id, uint64_t root,
                  uint64_t parent) {
  p->pend_id[i] = id;
  p->pend_root[i] = root ? root : id;
  p->pend_parent[i] = parent;
  p->next[i] = FP__NONE;
  p->prev[i] = p->tail;
  if (p->tail != FP__NONE) p->next[p->tail] = i;
  else p->head = i;
  p->tail = i;
  p->npending++;
}

void fp__pend_del(struct fp_pool *p, uint32_t i) {
  if (p->prev[i] != FP__NONE) p->next[p->prev[i]] = p->next[i];
  else p->head = p->next[i];
  if (p->next[i] != FP__NONE) p->prev[p->next[i]] = p->prev[i];
  else p->tail = p->prev[i];
  p->pend_id[i] = 0;
  p->npending--;
}

struct space_ctx {
  struct fp__seg *s;
};

static int space_or_stopped(void *arg) {
  struct fp__hdr *h = ((struct space_ctx *)arg)->s->hdr;
  return h->q.free_top > 0 || atomic_load(&h->state) > FP__POOL_RUNNING;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/*
 * Free our COLLECTED slots that no batch lists (p->unlisted of them; mu and
 * the queue lock held): a scan for slots stamped with our row and gen.
 * Returns how many were freed.
 */
static int free_unlisted(struct fp_pool *p) {
  struct fp__seg *s = &p->seg;
  int n = 0;
  for (uint32_t i = 0; i < s->nslots && p->unlisted > 0; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    if (atomic_load(&sl->state) == FP__SLOT_COLLECTED &&
        sl->owner == p->client && sl->owner_gen == p->client_gen)
      n += fp__q_free_collected(s, i);
  }
  p->unlisted = 0;
  return n;
}

/*
 * Return our collected slots to the free stack (mu and the queue lock held).
 * Each entry is a task id: a slot the supervisor freed meanwhile (and maybe
 * reused) no longer carries it, and is left alone.
 */
static int flush_frees(struct fp_pool *p) {
  struct fp__seg *s = &p->seg;
  int n = 0;
  for (unsigned k = 0; k < p->nfb; k++) {
    uint32_t i = (uint32_t)(p->fb[k] & FP__ID_INDEX_MASK);
    struct fp__slot *sl = fp__slot_at(s, i);
    if (atomic_load(&sl->id) == p->fb[k]) n += fp__q_free_collected(s, i);
  }
  p->nfb = 0;
  if (p->unlisted > 0) n += free_unlisted(p);
  return n;
}

/*
 * Take back the newest of our collected slots for a new task (mu held),
 * without the queue lock: COLLECTED -> FILLING by compare-and-swap, which
 * fails if the supervisor freed it meanwhile (fp__q_free_collected). Then
 * stamped as fp__q_take_free does (fp__slot_stamp). Dying after
 * the swap leaves a FILLING slot of ours: reclaimed with us. NONE when we
 * hold none.
 */
static uint32_t reuse_slot(struct fp_pool *p) {
  struct fp__seg *s = &p->seg;
  while (p->nfb > 0) {
    uint64_t id = p->fb[--p->nfb];
    uint32_t i = (uint32_t)(id & FP__ID_INDEX_MASK);
    struct fp__slot *sl = fp__slot_at(s, i);
    uint32_t want = FP__SLOT_COLLECTED;
    if (atomic_load(&sl->id) != id ||
        !atomic_compare_exchange_strong(&sl->state, &want,
                                        FP__SLOT_FILLING))
      continue;
    fp__slot_stamp(sl, i, p->client, p->client_gen);
    return i;
  }
  return FP__NONE;
}

/*
 * Take the queue lock by CLOCK_MONOTONIC `deadline` (UINT64_MAX: no limit),
 * rechecking at least every RECHECK_NS that the pool still runs and its
 * supervisor lives: a stopped or hostile process holding the lock delays us
 * until our deadline, never longer. Returns 0 (locked), -ETIMEDOUT,
 * -ESHUTDOWN, -EPIPE or -ENOTRECOVERABLE; nothing is held on error.
 */
static int lock_by(struct fp_pool *p, uint64_t deadline) {
  struct fp__seg *s = &p->seg;
  for (;;) {
    uint64_t now = fp__now_ns();
    uint64_t until = deadline - now > RECHECK_NS ? now + RECHECK_NS : deadline;
    if (now >= deadline) until = 0; /* one last try */
    int r = fp__q_lock_until(s, until);
    if (r != -ETIMEDOUT) return r;
    if (fp__now_ns() >= deadline) return -ETIMEDOUT;
    if (atomic_load(&s->hdr->state) > FP__POOL_RUNNING) return -ESHUTDOWN;
    if (!fp__sup_alive(p)) return -EPIPE;
  }
}

/*
 * The queue lock for a submit with timeout_ms: a try first (no clock read
 * when the lock is free), then a wait by *deadline, which is set here when
 * it is still 0. FP_NOWAIT only tries: -EAGAIN when the lock is busy.
 * Otherwise returns as lock_by().
 */
/*
 * FP_NOWAIT never sleeps on the queue lock, but a holder that was only
 * preempted inside its critical section (a microsecond of work) must not
 * turn a free slot into -EAGAIN: yield the CPU between rounds of tries, for
 * NOWAIT_LOCK_NS at most. A stopped or hostile holder costs that, no more.
 * Measured need: under valgrind on 2 cores, 7 us of tries alone gave
 * -EAGAIN for a submit to an idle pool (make memcheck, check_pool).
 */
#define NOWAIT_LOCK_NS 1000000u /* 1 ms */

static int lock_now(struct fp_pool *p) {
  uint64_t end = 0;
  for (;;) {
    int r = fp__q_lock_until(&p->seg, 0);
    if (r != -ETIMEDOUT) return r;
    uint64_t now = fp__now_ns();
    if (end == 0) end = now + NOWAIT_LOCK_NS;
    else if (now >= end) return -EAGAIN;
    sched_yield();
  }
}

static int lock_for(struct fp_pool *p, int timeout_ms, uint64_t *deadline) {
  int r = timeout_ms == FP_NOWAIT ? lock_now(p) : fp__q_lock_until(&p->seg, 0);
  if (r != -ETIMEDOUT) return r;
  if (*deadline == 0) *deadline = fp__deadline_ns(fp__now_ns(), timeout_ms);
  return lock_by(p, *deadline);
}

/*
 * Give back our FILLING slot i, never published (mu held), when the lock to
 * publish it could not be had: COLLECTED, on our batch of frees, so our next
 * submit reuses it (no lock needed: a FILLING slot is ours alone). With the
 * batch full it stays COLLECTED unlisted, counted in p->unlisted: the next
 * flush or take under the lock finds it (the supervisor also frees
 * COLLECTED slots while producers wait for space, and reclaims ours when we
 * go).
 */
static void give_back(struct fp_pool *p, uint32_t i) {
  struct fp__slot *sl = fp__slot_at(&p->seg, i);
  uint64_t id = atomic_load(&sl->id);
  atomic_store(&sl->state, FP__SLOT_COLLECTED);
  if (p->nfb < FP__FREE_BATCH) p->fb[p->nfb++] = id;
  else p->unlisted++;
}

/*
 * Would waiting for a slot deadlock (mu held)? 1 when we hold `limit` or
 * more pending tasks (our share, or every slot) and every one of them is
 * finished: only our own collecting can free a slot for us.
 */
static int only_ours_left(struct fp_pool *p, uint32_t limit) {
  /* Slots held by begun submissions and views are ours alone too. */
  if (p->npending + p->nheld < limit) return 0;
  for (uint32_t i = p->head; i != FP__NONE; i = p->next[i]) {
    uint32_t st = atomic_load(&fp__slot_at(&p->seg, i)->state);
    if (st == FP__SLOT_READY || st == FP__SLOT_RUNNING) return 0;
  }
  return 1;
}

/* Sleep rel_ns (an interruption just ends it early: callers recheck). */
static void nap(uint64_t rel_ns) {
  struct timespec ts = fp__ts_from_ns(rel_ns);
  nanosleep(&ts, NULL);
}

void fp__share_join(struct fp_pool *p) {
  struct fp__hdr *h = p->seg.hdr;
  uint32_t n = atomic_fetch_add(&h->producers, 1) + 1;
  uint32_t want = fp__share_of(p->seg.nslots, n);
  uint32_t cur = atomic_load(&h->producer_share);
  /* Only lower it (0: no share published yet, the supervisor sets it). */
  while (cur != 0 && cur > want &&
         !atomic_compare_exchange_weak(&h->producer_share, &cur, want)) {
  }
}

/* Is the supervisor still there? A system call at most every 64 calls. */
static int check_alive(struct fp_pool *p) {
  if (atomic_load(&p->sup_gone)) return 0;
  if ((atomic_fetch_add(&p->alive_tick, 1) & 63) != 0) return 1;
  return fp__sup_alive(p);
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
  sl->in_sum = fp__in_sum(sl, atomic_load(&sl->id), (uint32_t)len);
}

/*
 * Publish our FILLING slot i (mu and the queue lock held), or give it back
 * when a stop began. 0 or -ESHUTDOWN; the queue lock is released.
 */
static int publish(struct fp_pool *p, uint32_t i, uint64_t root,
                   uint64_t parent, uint64_t *id) {
  struct fp__seg *s = &p->seg;
  struct fp__slot *sl = fp__slot_at(s, i);
  if (atomic_load(&s->hdr->state) > FP__POOL_RUNNING) {
    fp__q_put_free(s, i);
    fp__q_unlock(s);
    fp__q_wake_space(s);
    return -ESHUTDOWN;
  }
  uint64_t tid = atomic_load(&sl->id);
  fp__q_put_ready(s, i);
  fp__q_unlock(s);
  fp__pend_add(p, i, tid, root, parent);
  *id = tid;
  return 0;
}

/*
 * Our filled FILLING slot i (mu held): take the queue lock within the
 * caller's deadline and publish it (publish() releases the lock). Returns
 * publish()'s result; on a lock error (-EAGAIN, -ETIMEDOUT, -errno) the
 * slot goes back to our own batch (give_back), nothing is queued.
 */
static int lock_and_publish(struct fp_pool *p, uint32_t i, int timeout_ms,
                            uint64_t *deadline, uint64_t root,
                            uint64_t parent, uint64_t *id) {
  int err = lock_for(p, timeout_ms, deadline);
  if (err == 0) return publish(p, i, root, parent, id);
  give_back(p, i);
  return err;
}

FP_EXTERN int fp_submit(fp_pool *p, const void *in, size_t len,
                        int timeout_ms, uint64_t *id) {
  return fp_submit_prio(p, in, len, timeout_ms, FP_PRIO_NORMAL, id);
}

FP_EXTERN int fp_submit_prio(fp_pool *p, const void *in, size_t len,
                             int timeout_ms, int prio, uint64_t *id) {
  if (p != NULL) fp__tree_pump(p); /* spawned tasks first: they are older */
  return fp__submit_in(p, in, len, timeout_ms, prio, 0, 0, id);
}

/*
 * Get a FILLING slot for a new task of this producer (split out of
 * fp__submit_in so that fp__slot_begin takes slots the same way): waits
 * for a free slot within timeout_ms (*deadline as lock_for()), honouring
 * the pool state, the supervisor's liveness, our fair share and the
 * reserve (slots held by begun submissions and views, p->nheld, count
 * as pending ones). Returns 0 with *slot set, p->mu held, and the queue
 * lock held too when *locked is 1 (a slot off the free stack) or not when
 * 0 (one of our collected slots, taken back without the lock). Errors as
 * fp_submit() (-ESHUTDOWN, -EPIPE, -EAGAIN, -ETIMEDOUT, -EDEADLK, lock
 * errors); nothing is held then.
 */
static int get_slot(struct fp_pool *p, int timeout_ms, uint64_t *deadline,
                    uint32_t *slot, int *locked) {
  struct fp__seg *s = &p->seg;
  struct fp__hdr *h = s->hdr;
  struct space_ctx ctx = {s};
  uint32_t i;
  int err, deadlocked = 0;
  for (;;) {
    /* Tasks may queue while the workers start: they run once ready. */
    if (atomic_load(&h->state) > FP__POOL_RUNNING) return -ESHUTDOWN;
    /* The state word cannot say that the supervisor died: ask now and then. */
    if (!check_alive(p)) return -EPIPE;
    pthread_mutex_lock(&p->mu);
    /*
     * Our share of a named pool's slots (0: no share): a producer that stops
     * collecting cannot take the slots other producers need.
     */
    uint32_t share =
        atomic_load_explicit(&h->producer_share, memory_order_relaxed);
    unsigned held = p->npending + p->nheld;
    int capped = share != 0 && held >= share, reserved = 0;
    if (!capped) {
      i = reuse_slot(p);
      if (i != FP__NONE) {
        /*
         * One of our collected slots: filled before we take the lock,
         * which is then held only to publish.
         */
        *slot = i;
        *locked = 0;
        return 0; /* mu held */
      }
      if ((err = lock_for(p, timeout_ms, deadline)) < 0) {
        pthread_mutex_unlock(&p->mu);
        return err;
      }
      /*
       * The last quarter of the free slots is for producers that hold
       * little (newcomers): producers that stopped collecting, each within
       * its share, cannot fill the queue between them.
       */
      /* Ours, collected, left out of a full batch: back on the stack. */
      if (p->unlisted > 0) free_unlisted(p);
      uint32_t top = h->q.free_top;
      if (share != 0 && top > 0 && top <= s->nslots / 4 &&
          held >= fp__reserve_of(s->nslots, atomic_load(&h->producers))) {
        reserved = 1;
      } else {
        i = fp__q_take_free(s, p->client, p->client_gen);
        if (i != FP__NONE) {
          *slot = i;
          *locked = 1;
          return 0; /* mu and the queue lock still held */
        }
      }
      fp__q_unlock(s);
    }
    /* No slot for us now. Only our own results may stand in the way. */
    int stuck = !reserved && only_ours_left(p, capped ? share : s->nslots);
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
                  capped ? RECHECK_NS + SHARE_NAP_NS : SHARE_NAP_NS));
      continue;
    }
    deadlocked = 0;
    if (capped || reserved) {
      /* Until another thread collects, or the share grows (or, reserved,
       * until others free slots: the free stack is not empty). */
      nap(min_u64(*deadline - now, SHARE_NAP_NS));
      continue;
    }
    fp__q_sleep(&h->q.space_sem, &h->p_asleep, p->client,
                min_u64(*deadline - now, RECHECK_NS), space_or_stopped, &ctx);
  }
}

int fp__submit_in(struct fp_pool *p, const void *in, size_t len,
                  int timeout_ms, int prio, uint64_t root, uint64_t parent,
                  uint64_t *id) {
  if (p == NULL || id == NULL || (in == NULL && len > 0)) return -EINVAL;
  if (prio != FP_PRIO_NORMAL && prio != FP_PRIO_HIGH) return -EINVAL;
  if (p->monitor) return -EPERM;
  struct fp__seg *s = &p->seg;
  if (len > s->max_input) return -EMSGSIZE;
  uint64_t deadline = 0; /* set when we first have to wait */
  uint32_t i;
  int err, locked;
  if ((err = get_slot(p, timeout_ms, &deadline, &i, &locked)) < 0) return err;

  struct fp__slot *sl = fp__slot_at(s, i);
  if (!locked) {
    /* One of our collected slots: fill it, then lock only to publish. */
    fill(sl, in, len, prio);
    err = lock_and_publish(p, i, timeout_ms, &deadline, root, parent, id);
    pthread_mutex_unlock(&p->mu);
  } else if (len <= FP__INLINE_COPY) {
    /*
     * Small input: take, fill and publish in one critical section. Dying
     * in it leaves a FILLING slot stamped with our row: reclaimed with us.
     */
    fill(sl, in, len, prio);
    err = publish(p, i, root, parent, id);
    pthread_mutex_unlock(&p->mu);
  } else {
    /* Large input: copy without holding the lock others need. */
    fp__q_unlock(s);
    pthread_mutex_unlock(&p->mu);
    fill(sl, in, len, prio);
    pthread_mutex_lock(&p->mu);
    err = lock_and_publish(p, i, timeout_ms, &deadline, root, parent, id);
    pthread_mutex_unlock(&p->mu);
  }
  if (err == 0) fp__q_kick(s);
  return err;
}

FP_EXTERN void fp_result_init(fp_result *res) {
  memset(res, 0, sizeof(*res));
  res->exit_code = -1;
}

FP_EXTERN void fp_result_release(fp_result *res) {
  /* A view (view.c) points into a slot: give that back, free nothing. */
  if (res->output != NULL && res->output_cap == 0) fp__view_forget(res);
  else free(res->output);
  fp_result_init(res);
}

/*
 * Our result in slot i (task `id`, DONE, off our pending list: delivered,
 * or a view released) is done with (mu held): split out of deliver() for
 * fp_view_release. Never fails; the slot is COLLECTED after it, maybe
 * freed already.
 */
void fp__slot_retire(struct fp_pool *p, uint32_t i, uint64_t id) {
  struct fp__seg *s = &p->seg;
  struct fp__slot *sl = fp__slot_at(s, i);
  /*
   * DONE -> COLLECTED, and the slot goes on our batch of frees, which our
   * next submits reuse (reuse_slot). Returned to the shared free stack when
   * the batch is full, when a producer waits for space (the supervisor
   * also frees COLLECTED slots for those), and, in a named pool, when
   * nothing of ours is pending: an idle producer holds no capacity other
   * producers could use. (A private pool has one producer: its batch is
   * capacity only it can use, kept for its next submit.)
   */
  atomic_store(&sl->state, FP__SLOT_COLLECTED);
  /*
   * A batch still full means the lock was busy at the last flushes: this
   * slot then stays COLLECTED unlisted, counted in p->unlisted, and the
   * next flush or take under the lock finds it by a scan.
   */
  if (p->nfb < FP__FREE_BATCH) p->fb[p->nfb++] = id;
  else p->unlisted++;
  if (p->nfb == FP__FREE_BATCH || (p->npending == 0 && p->attached) ||
      fp__pcount(&s->hdr->p_asleep, s->nclients) > 0) {
    /*
     * Only a try: a result in hand is never held back by a process that
     * holds the lock. On failure the batch stays for the next flush.
     */
    if (fp__q_lock_until(s, 0) == 0) {
      flush_frees(p);
      fp__q_unlock(s);
    }
    fp__q_wake_space(s);
  }
}


/*
 * Move the DONE result of our slot i into *res and free the slot (mu held).
 * Returns 0 or -ENOMEM (the result then stays pending).
 */
static int deliver(struct fp_pool *p, uint32_t i, fp_result *res) {
  struct fp__seg *s = &p->seg;
  struct fp__slot *sl = fp__slot_at(s, i);
  /* A view in *res (fp_collect_view): give its slot back first. */
  if (fp__view_drop(p, res) == -EINVAL) return -EINVAL;
  uint64_t id = p->pend_id[i];
  uint64_t root = p->pend_root[i];
  /* Read every field once: the slot is shared, its bytes may change. */
  int ours = atomic_load(&sl->id) == id &&
             atomic_load(&sl->state) == FP__SLOT_DONE;
  uint32_t out_len = sl->out_len, spawn_len = sl->spawn_len;
  int32_t status = sl->status, code = sl->code, sig = sl->sig,
          exit_code = sl->exit_code;
  uint64_t sum = sl->res_sum;
  if ((uint64_t)out_len + spawn_len > s->max_output) {
    out_len = spawn_len = 0;
    ours = 0;
  }
  size_t total = (size_t)out_len + spawn_len;
  if (total + 1 > res->output_cap) {
    /* One spare byte, so callers may NUL-terminate text output. */
    unsigned char *o = realloc(res->output, total + 1);
    if (o == NULL) return -ENOMEM;
    res->output = o;
    res->output_cap = total + 1;
  }
  memcpy(res->output, fp__slot_out(s, sl), total);
  res->output_len = out_len;
  res->id = id;
  res->root = root;
  res->parent = p->pend_parent[i];
  res->status = (fp_status)status;
  res->code = code;
  res->signal = sig;
  res->exit_code = exit_code;
  res->attempts = sl->attempts;
  res->worker = atomic_load(&sl->worker);
  res->run_us = sl->run_us;
  /*
   * The check value is computed over our copy: what we hand out is what
   * was checked. A mismatch, or a slot whose id or state was overwritten,
   * is reported as FP_CORRUPT, never as the (wrong) result.
   */
  int good = ours && status >= FP_OK && status <= FP_CORRUPT &&
             fp__res_sum_of(id ^ ((uint64_t)spawn_len << 40), status, code,
                            sig, exit_code, res->output,
                            (uint32_t)total) == sum;
  /* Its spawned tasks join its tree; it leaves it (unless it is the root). */
  if (good && spawn_len > 0 &&
      fp__tree_take(p, root, id, res->output + out_len, spawn_len) < 0)
    good = 0;
  if (root != id) fp__tree_add(p, root, -1);
  res->output[out_len] = 0;
  if (!good) {
    res->status = FP_CORRUPT;
    res->code = EBADMSG;
    res->signal = 0;
    res->exit_code = -1;
    res->output_len = 0;
    res->output[0] = 0;
    atomic_fetch_add(&s->hdr->c.corrupt, 1);
    uint32_t st = atomic_load(&sl->state);
    if (st == FP__SLOT_FREE || st == FP__SLOT_FILLING) {
      /*
       * Its state says free (or another producer's): a rebuild may have
       * handed it out again. Touch nothing; a slot really lost to damage
       * is the price, never someone else's task.
       */
      fp__pend_del(p, i);
      return 0;
    }
    /* Still ours (pending): give it back our id, so we free it below. */
    atomic_store(&sl->id, id);
  }
  fp__pend_del(p, i);
  fp__slot_retire(p, i, id);
  return 0;
}

/*
 * Our pending task in slot i has a result to deliver: it is DONE, or its
 * state word was damaged (a pending task is only ever READY, RUNNING or
 * DONE): deliver() then reports it FP_CORRUPT rather than wait for ever on
 * a state nobody will change. A damaged id alone is not a reason: the slot
 * is still ours (nobody reuses a pending slot), and its worker will end it.
 */
static int is_done(struct fp_pool *p, uint64_t i) {
  uint32_t st = atomic_load(&fp__slot_at(&p->seg, i)->state);
  return st != FP__SLOT_READY && st != FP__SLOT_RUNNING;
}

/*
 * Sleep until one of our tasks may have finished, for at most rel_ns, unless
 * `ready(p, arg)` holds once we are registered as a waiter.
 */
struct seq_ctx {
  _Atomic uint32_t *word;
  uint32_t seen;
};

static int seq_moved(void *arg) {
  struct seq_ctx *c = arg;
  return atomic_load(c->word) != c->seen;
}

static void wait_done(struct fp_pool *p, uint64_t rel_ns,
                      int (*ready)(struct fp_pool *, uint64_t), uint64_t arg) {
  struct fp__client *c = fp__client_at(&p->seg, p->client);
  uint32_t seq = atomic_load(&c->done_seq);
  /* A task of ours finishing bumps done_seq: watch it a moment first. */
  struct seq_ctx sc = {&c->done_seq, seq};
  if (!ready(p, arg) && fp__spin(p->seg.hdr, &p->seg.hdr->p_spin, p->client,
                                   p->seg.nclients, seq_moved, &sc)) return;
  atomic_fetch_add(&c->waiters, 1);
  /* Clear before the recheck: a finisher after it will wake us again. */
  atomic_store(&c->woken, 0);
  if (!ready(p, arg) &&
      atomic_load(&p->seg.hdr->state) != FP__POOL_STOPPED)
    fp__futex_wait(&c->done_seq, seq, rel_ns);
  atomic_fetch_sub(&c->waiters, 1);
}

FP_EXTERN int fp_wait(fp_pool *p, uint64_t id, fp_result *res,
                      int timeout_ms) {
  return fp__wait_with(p, id, res, timeout_ms, deliver);
}

/* fp_wait(), handing the result over with take() (deliver, or a view). */
int fp__wait_with(struct fp_pool *p, uint64_t id, fp_result *res,
                  int timeout_ms, fp__take_fn take) {
  if (p == NULL || res == NULL) return -EINVAL;
  if (p->monitor) return -EPERM;
  uint32_t i = (uint32_t)(id & FP__ID_INDEX_MASK);
  if (id == 0 || i >= p->seg.nslots) return -ENOENT;
  uint64_t deadline = 0; /* set when we first have to wait */
  for (;;) {
    fp__tree_pump(p);
    pthread_mutex_lock(&p->mu);
    if (p->pend_id[i] != id) {
      pthread_mutex_unlock(&p->mu);
      return -ENOENT;
    }
    if (is_done(p, i)) {
      int err = take(p, i, res);
      pthread_mutex_unlock(&p->mu);
      return err;
    }
    pthread_mutex_unlock(&p->mu);
    uint64_t now = fp__now_ns();
    if (deadline == 0) deadline = fp__deadline_ns(now, timeout_ms);
    if (now >= deadline) return -ETIMEDOUT;
    if (!fp__sup_alive(p) && !is_done(p, i)) return -EPIPE;
    wait_done(p, min_u64(deadline - now, RECHECK_NS), is_done, i);
  }
}

/*
 * Oldest finished pending task (mu held), of tree `root` or, for root 0,
 * of any tree (roots are task ids, never 0); NONE if none.
 */
static uint32_t find_done(struct fp_pool *p, uint64_t root) {
  for (uint32_t i = p->head; i != FP__NONE; i = p->next[i])
    if ((root == 0 || p->pend_root[i] == root) && is_done(p, i)) return i;
  return FP__NONE;
}

/* Such a task finished (wait_done's recheck). */
static int any_done(struct fp_pool *p, uint64_t root) {
  pthread_mutex_lock(&p->mu);
  uint32_t i = find_done(p, root);
  pthread_mutex_unlock(&p->mu);
  return i != FP__NONE;
}

FP_EXTERN int fp_collect(fp_pool *p, fp_result *res, int timeout_ms) {
  return fp__collect_with(p, res, timeout_ms, deliver);
}

/* fp_collect(), handing the result over with take() (deliver, or a view). */
int fp__collect_with(struct fp_pool *p, fp_result *res, int timeout_ms,
                     fp__take_fn take) {
  if (p == NULL || res == NULL) return -EINVAL;
  if (p->monitor) return -EPERM;
  uint64_t deadline = 0; /* set when we first have to wait */
  for (;;) {
    fp__tree_pump(p);
    pthread_mutex_lock(&p->mu);
    if (p->npending == 0 && p->sq_head == NULL) {
      pthread_mutex_unlock(&p->mu);
      return -ENOENT;
    }
    uint32_t i = find_done(p, 0);
    if (i != FP__NONE) {
      int err = take(p, i, res);
      pthread_mutex_unlock(&p->mu);
      return err;
    }
    pthread_mutex_unlock(&p->mu);
    uint64_t now = fp__now_ns();
    if (deadline == 0) deadline = fp__deadline_ns(now, timeout_ms);
    if (now >= deadline) return -ETIMEDOUT;
    if (!fp__sup_alive(p) && !any_done(p, 0)) return -EPIPE;
    wait_done(p, min_u64(deadline - now, RECHECK_NS), any_done, 0);
  }
}

FP_EXTERN unsigned fp_pending(const fp_pool *p) {
  if (p == NULL) return 0;
  pthread_mutex_lock((pthread_mutex_t *)&p->mu);
  unsigned n = p->npending;
  pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
  return n;
}

FP_EXTERN int fp_cancel(fp_pool *p, uint64_t id) {
  if (p == NULL) return -EINVAL;
  if (p->monitor) return -EPERM;
  struct fp__seg *s = &p->seg;
  uint32_t i = (uint32_t)(id & FP__ID_INDEX_MASK);
  if (id == 0 || i >= s->nslots) return -ENOENT;
  struct fp__slot *sl = fp__slot_at(s, i);
  /* Bounded: a stopped or hostile lock holder costs 1 s, -ETIMEDOUT. */
  int err = fp__q_lock_until(s, fp__now_ns() + CANCEL_LOCK_NS);
  if (err < 0) return err;
  uint32_t st = atomic_load(&sl->state);
  if (atomic_load(&sl->id) != id || st == FP__SLOT_FREE ||
      st == FP__SLOT_FILLING) {
    err = -ENOENT;
  } else if (st == FP__SLOT_READY) {
    /*
     * Queued: out of its list, ended here; it never runs. A stop that
     * could not get the lock may end READY tasks without it: whoever
     * claims the slot first ends it, once (0 either way: it is cancelled).
     */
    fp__q_unlink_ready(s, i);
    if (fp__slot_claim_cancel(sl, FP__CANCEL_QUEUED)) {
      fp__slot_end(s, sl, FP_CANCELLED, 0, 0, -1, 0, 0);
      atomic_fetch_add(&s->hdr->c.cancelled, 1);
    }
    err = 0;
  } else if (st == FP__SLOT_RUNNING) {
    /* Running: the supervisor kills its worker (sup: check_cancels). */
    atomic_store(&sl->cancel, 1);
    err = -EINPROGRESS;
  } else {
    err = -EALREADY;
  }
  uint32_t owner = sl->owner;
  fp__q_unlock(s);
  if (err == 0) fp__notify_owner(s, owner);
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

FP_EXTERN int fp_collect_tree(fp_pool *p, uint64_t root, fp_result *res,
                              int timeout_ms) {
  if (p == NULL || res == NULL) return -EINVAL;
  if (p->monitor) return -EPERM;
  uint64_t deadline = 0; /* set when we first have to wait */
  uint32_t ri = (uint32_t)(root & FP__ID_INDEX_MASK);
  for (;;) {
    fp__tree_pump(p);
    pthread_mutex_lock(&p->mu);
    uint32_t i = find_done(p, root);
    if (i != FP__NONE) {
      int err = deliver(p, i, res);
      pthread_mutex_unlock(&p->mu);
      return err;
    }
    /* Done when the root was collected and nothing it spawned is left. */
    int root_pending = root != 0 && ri < p->seg.nslots &&
                       p->pend_id[ri] == root;
    int64_t left = fp__tree_get(p, root);
    pthread_mutex_unlock(&p->mu);
    if (!root_pending && left <= 0) return -ENOENT;
    uint64_t now = fp__now_ns();
    if (deadline == 0) deadline = fp__deadline_ns(now, timeout_ms);
    if (now >= deadline) return -ETIMEDOUT;
    if (!fp__sup_alive(p)) return -EPIPE;
    /* With spawns queued here, look again soon: a slot may free up. */
    wait_done(p, min_u64(deadline - now, p->sq_head ? 1000000u : RECHECK_NS),
              any_done, root);
  }
}

/* ---- Zero-copy submissions (view.c): the slot's part ---------------- */

int fp__slot_begin(struct fp_pool *p, int timeout_ms, uint32_t *slot) {
  uint64_t deadline = 0;
  int locked;
  int err = get_slot(p, timeout_ms, &deadline, slot, &locked);
  if (err < 0) return err;
  /* Filled by the caller, at its pace: never inside the queue lock. */
  if (locked) fp__q_unlock(&p->seg);
  return 0;
}

int fp__slot_commit(struct fp_pool *p, uint32_t i, size_t len, int prio,
                    int timeout_ms, uint64_t *id) {
  struct fp__slot *sl = fp__slot_at(&p->seg, i);
  uint64_t deadline = 0;
  fill(sl, fp__slot_in(sl), len, prio); /* in place: seals, copies nothing */
  int err = lock_for(p, timeout_ms, &deadline);
  if (err == -EAGAIN || err == -ETIMEDOUT) return err; /* still ours */
  if (err < 0) {
    give_back(p, i);
    return err;
  }
  err = publish(p, i, 0, 0, id);
  if (err == 0) fp__q_kick(&p->seg);
  return err;
}

void fp__slot_give_back(struct fp_pool *p, uint32_t i) { give_back(p, i); }
