/*
 * Zero-copy producers: write a task's input straight into its slot
 * (fp_submit_begin / fp_submit_commit / fp_submit_abort) and read its
 * result where the worker wrote it (fp_collect_view / fp_wait_view until
 * fp_view_release). No per-task allocation and no copy of the payload on
 * the producer's side: a slot's pages are touched in place, so once each
 * slot was used they fault no more.
 *
 * What this handle holds outside its pending list is in p->hold[slot]
 * (under p->mu): BEGUN, a FILLING slot taken for a begun submission, or
 * VIEW, a DONE slot whose result a view shows. Both count against the
 * producer's share (p->nheld, read by get_slot in client.c). The hold
 * array, its registry of handles and dropping a view are held.c's; a
 * view's result is checked and settled as a copy's is (result.c), and
 * waited for by the same loop (collect.c).
 *
 * Shared memory: nothing new. A begun slot is FILLING and a viewed one
 * DONE, stamped with our client row and gen as every slot we take, so if
 * this producer is SIGKILLed at any instant (between begin and commit,
 * while it holds views, or inside either call) the supervisor finds, after
 * its row's lock went free: FILLING -> FREE (the task never existed), DONE
 * -> FREE counted abandoned, as for fp_submit and fp_collect
 * (sup_clients.c). A private pool stops when its owner dies. SIGSTOPped
 * between begin and commit, a producer keeps its slots, within its share,
 * and stalls nobody: no lock is held anywhere (queue.h).
 * Nobody else stores to a held slot: the supervisor frees only FILLING and
 * DONE slots of a dead producer and COLLECTED ones (a view is not
 * COLLECTED until released), and a rebuild of the queue leaves FILLING
 * and DONE slots where they are.
 */
#include <stdlib.h>

#include "client.h"
#include "collect.h"
#include "held.h"
#include "pool.h"
#include "result.h"
#include "slot.h"

/*
 * The slot whose input buffer is buf, begun by this handle (mu held), or
 * NONE: buf is not where a slot's input starts, or this handle holds no
 * begun submission there.
 */
static uint32_t begun_slot(const struct fp_pool *p, const void *buf) {
  if (buf == NULL || p->hold == NULL || !fp__in_slots(p, buf)) return FP__NONE;
  uint64_t off =
      (uint64_t)((const unsigned char *)buf - (p->seg.base + p->seg.slots_off));
  uint32_t i = (uint32_t)(off / p->seg.slot_stride);
  if (off % p->seg.slot_stride != FP__SLOT_HDR_BYTES) return FP__NONE;
  return p->hold[i].kind == FP__HOLD_BEGUN ? i : FP__NONE;
}

FP_EXTERN int fp_submit_begin(fp_pool *p, size_t len, int timeout_ms, int prio,
                              void **buf) {
  if (p == NULL || buf == NULL) return -EINVAL;
  if (prio != FP_PRIO_NORMAL && prio != FP_PRIO_HIGH) return -EINVAL;
  if (p->monitor) return -EPERM;
  if (len > p->seg.max_input) return -EMSGSIZE;
  fp__submit_spawned(p); /* spawned tasks first, as fp_submit: older */
  pthread_mutex_lock(&p->mu);
  int err = fp__hold_ready(p);
  pthread_mutex_unlock(&p->mu);
  if (err < 0) return err;
  uint32_t i;
  if ((err = fp__slot_begin(p, timeout_ms, &i)) < 0) return err;
  /* mu held: the slot is FILLING, stamped with our row, unqueued. */
  struct fp__slot *sl = fp__slot_at(&p->seg, i);
  p->hold[i].id = atomic_load(&sl->id);
  p->hold[i].kind = FP__HOLD_BEGUN;
  p->hold[i].prio = (uint32_t)prio;
  p->nheld++;
  pthread_mutex_unlock(&p->mu);
  *buf = fp__slot_in(sl);
  return 0;
}

/*
 * Our begun slot i as we left it (mu held)? A stray write into the shared
 * slot header (its state, owner or id) would make publishing it hand a
 * task to the wrong producer, or publish a slot someone else took.
 */
static int still_ours(struct fp_pool *p, uint32_t i) {
  struct fp__slot *sl = fp__slot_at(&p->seg, i);
  return fp__slot_word(sl) == fp__slot_filling_word(p->client, p->client_gen) &&
         sl->owner == p->client && sl->owner_gen == p->client_gen &&
         atomic_load(&sl->id) == p->hold[i].id;
}

FP_EXTERN int fp_submit_commit(fp_pool *p, void *buf, size_t len,
                               int timeout_ms, uint64_t *id) {
  if (p == NULL || id == NULL) return -EINVAL;
  if (p->monitor) return -EPERM;
  pthread_mutex_lock(&p->mu);
  uint32_t i = begun_slot(p, buf);
  int err;
  if (i == FP__NONE) {
    err = -ENOENT;
  } else if (len > p->seg.max_input) {
    err = -EMSGSIZE; /* still begun: commit with a right length, or abort */
  } else if (!still_ours(p, i)) {
    /* Damaged: touch nothing; the slot is lost to the damage (sup_verify
     * ends a state no one can own). */
    fp__unhold(p, i);
    atomic_fetch_add(&p->seg.hdr->c.corrupt, 1);
    err = -EBADMSG;
  } else {
    err = fp__slot_commit(p, i, len, (int)p->hold[i].prio, timeout_ms, id);
    if (err != -EAGAIN && err != -ETIMEDOUT) fp__unhold(p, i);
  }
  pthread_mutex_unlock(&p->mu);
  return err;
}

FP_EXTERN int fp_submit_abort(fp_pool *p, void *buf) {
  if (p == NULL) return -EINVAL;
  if (p->monitor) return -EPERM;
  pthread_mutex_lock(&p->mu);
  uint32_t i = begun_slot(p, buf);
  int err = 0;
  if (i == FP__NONE) {
    err = -ENOENT;
  } else {
    if (still_ours(p, i)) fp__slot_give_back(p, i);
    fp__unhold(p, i);
  }
  pthread_mutex_unlock(&p->mu);
  return err;
}

/*
 * Read slot sl's result fields once into *f and check them, over the
 * bytes in the slot (what a view shows), against the check value for task
 * id. 1 when they match and the status and lengths are valid.
 */
static int check_in_place(struct fp_pool *p, struct fp__slot *sl, uint64_t id,
                          struct fp__res_fields *f) {
  return fp__res_read(&p->seg, sl, f) &&
         fp__res_good(id, f, fp__slot_out(&p->seg, sl));
}

/*
 * The take function of the views (mu held): as fp__deliver(), but *res
 * points into slot i, which stays DONE and ours (a hold) until released.
 * The check value is computed over the slot's bytes: what the view shows
 * is what was checked, at this moment (fp_view_check checks again).
 * Returns 0, or -EINVAL when *res holds another pool's view (nothing
 * changed).
 */
static int view_take(struct fp_pool *p, uint32_t i, fp_result *res) {
  if (fp__view_drop(p, res) == -EINVAL) return -EINVAL;
  fp__outbuf_free(res->output); /* a copy: ours to free (a view: no-op) */
  fp_result_init(res);
  struct fp__seg *s = &p->seg;
  struct fp__slot *sl = fp__slot_at(s, i);
  uint64_t id = p->pend_id[i];
  struct fp__res_fields f;
  int ours = atomic_load(&sl->id) == id && fp__slot_word(sl) == FP__SLOT_DONE;
  int good = check_in_place(p, sl, id, &f) && ours;
  unsigned char *out = fp__slot_out(s, sl);
  fp__res_fill(p, i, &f, res);
  /* As fp__deliver(): a bad one is FP_CORRUPT, with no view to release. */
  if (!fp__settle(p, i, good, out + f.out_len, f.spawn_len, 1, res)) return 0;
  res->output = out;
  res->output_len = f.out_len;
  p->hold[i].id = id;
  p->hold[i].kind = FP__HOLD_VIEW;
  p->nheld++;
  return 0;
}

/* Views need the hold array: allocate it before waiting. */
static int view_ready(struct fp_pool *p) {
  if (p == NULL) return -EINVAL;
  pthread_mutex_lock(&p->mu);
  int err = fp__hold_ready(p);
  pthread_mutex_unlock(&p->mu);
  return err;
}

FP_EXTERN int fp_wait_view(fp_pool *p, uint64_t id, fp_result *res,
                           int timeout_ms) {
  int err = view_ready(p);
  if (err < 0) return err;
  return fp__wait_for(p, FP__WANT_TASK, id, res, timeout_ms, view_take);
}

FP_EXTERN int fp_collect_view(fp_pool *p, fp_result *res, int timeout_ms) {
  int err = view_ready(p);
  if (err < 0) return err;
  return fp__wait_for(p, FP__WANT_ANY, 0, res, timeout_ms, view_take);
}

FP_EXTERN int fp_view_release(fp_pool *p, fp_result *user) {
  fp_result tmp, *res = user ? fp__res_adopt(user, &tmp) : NULL;
  if (p == NULL || res == NULL) return -EINVAL;
  int err = 0;
  if (res->output == NULL) {
    fp_result_init(res); /* holds nothing: released already, or corrupt */
  } else if (!fp__is_view(res)) {
    return -EINVAL; /* a copy: fp_result_release; nothing changed */
  } else {
    pthread_mutex_lock(&p->mu);
    err = fp__view_drop(p, res);
    pthread_mutex_unlock(&p->mu);
  }
  fp__res_done(user, res);
  return err;
}

FP_EXTERN int fp_view_check(fp_pool *p, const fp_result *user) {
  fp_result tmp;
  const fp_result *res = user ? fp__res_adopt((fp_result *)user, &tmp) : NULL;
  if (p == NULL || res == NULL || !fp__is_view(res)) return -EINVAL;
  pthread_mutex_lock(&p->mu);
  uint32_t i = (uint32_t)(res->id & FP__ID_INDEX_MASK);
  int err;
  if (!fp__in_slots(p, res->output)) {
    err = -EINVAL;
  } else if (p->hold == NULL || i >= p->seg.nslots ||
             p->hold[i].kind != FP__HOLD_VIEW || p->hold[i].id != res->id) {
    err = -ENOENT;
  } else {
    struct fp__slot *sl = fp__slot_at(&p->seg, i);
    struct fp__res_fields f;
    int good =
        atomic_load(&sl->id) == res->id && fp__slot_word(sl) == FP__SLOT_DONE &&
        check_in_place(p, sl, res->id, &f) && f.out_len == res->output_len &&
        f.status == (int32_t)res->status && f.code == res->code &&
        f.sig == res->signal && f.exit_code == res->exit_code;
    err = good ? 0 : -EBADMSG;
  }
  pthread_mutex_unlock(&p->mu);
  return err;
}
