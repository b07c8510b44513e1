/*
 * Handing a finished task's result over to its producer, in two halves.
 *
 * Copy/verify: the slot is shared and its bytes may change under us (a
 * stray write from another process), so every field is read once
 * (fp__res_read), the output is copied out (fp__deliver) or pointed at in
 * place (a view, view.c), and the check value is computed over exactly
 * what is handed out (fp__res_good). A mismatch, or a slot whose id or
 * state was overwritten, is reported as FP_CORRUPT, never as the (wrong)
 * result.
 *
 * Bookkeeping (fp__settle): the result's spawned tasks join its tree, it
 * leaves its tree and our pending list, and its slot goes back
 * (fp__slot_retire), or stays held for a view. A result that failed
 * verification in a slot whose state says free (or another producer's) is
 * never touched: a rebuild may have handed the slot out again, and a slot
 * lost to damage is the price, never someone else's task. Each result is
 * handed over once: it leaves the pending list here, under mu.
 */
#include <stdlib.h>
#include <string.h>

#include "held.h"
#include "result.h"
#include "slot.h"
#include "sum.h"
#include "tree.h"

int fp__res_read(const struct fp__seg *s, struct fp__slot *sl,
                 struct fp__res_fields *f) {
  f->out_len = sl->out_len;
  f->spawn_len = sl->spawn_len;
  f->status = sl->status;
  f->code = sl->code;
  f->sig = sl->sig;
  f->exit_code = sl->exit_code;
  f->sum = sl->res_sum;
  if ((uint64_t)f->out_len + f->spawn_len > s->max_output) {
    f->out_len = f->spawn_len = 0;
    return 0;
  }
  return 1;
}

int fp__res_good(uint64_t id, const struct fp__res_fields *f,
                 const unsigned char *bytes) {
  return f->status >= FP_OK && f->status <= FP_CORRUPT &&
         fp__res_sum_of(id ^ ((uint64_t)f->spawn_len << 40), f->status, f->code,
                        f->sig, f->exit_code, bytes,
                        f->out_len + f->spawn_len) == f->sum;
}

void fp__res_fill(struct fp_pool *p, uint32_t i, const struct fp__res_fields *f,
                  fp_result *res) {
  struct fp__slot *sl = fp__slot_at(&p->seg, i);
  res->id = p->pend_id[i];
  res->root = p->pend_root[i];
  res->parent = p->pend_parent[i];
  res->status = (fp_status)f->status;
  res->code = f->code;
  res->signal = f->sig;
  res->exit_code = f->exit_code;
  res->attempts = sl->attempts;
  res->worker = atomic_load(&sl->worker);
  res->run_us = sl->run_us;
}

int fp__settle(struct fp_pool *p, uint32_t i, int good,
               const unsigned char *spawns, uint32_t spawn_len, int keep,
               fp_result *res) {
  struct fp__seg *s = &p->seg;
  struct fp__slot *sl = fp__slot_at(s, i);
  uint64_t id = p->pend_id[i], root = p->pend_root[i];
  /* Its spawned tasks join its tree; it leaves it (unless it is the root). */
  if (good && spawn_len > 0 &&
      fp__tree_take(p, root, id, spawns, spawn_len) < 0)
    good = 0;
  if (root != id) fp__tree_add(p, root, -1);
  fp__pend_del(p, i);
  if (good) {
    if (!keep) fp__slot_retire(p, i, id);
    return 1;
  }
  res->status = FP_CORRUPT;
  res->code = EBADMSG;
  res->signal = 0;
  res->exit_code = -1;
  res->output_len = 0;
  atomic_fetch_add(&s->hdr->c.corrupt, 1);
  uint32_t st = fp__slot_state(sl);
  if (st == FP__SLOT_FREE || st == FP__SLOT_FILLING) {
    /*
     * Its state says free (or another producer's): a rebuild may have
     * handed it out again. Touch nothing; a slot really lost to damage
     * is the price, never someone else's task.
     */
    return 0;
  }
  /* Still ours (pending): give it back our id, so we free it below. */
  atomic_store(&sl->id, id);
  fp__slot_retire(p, i, id);
  return 0;
}

int fp__deliver(struct fp_pool *p, uint32_t i, fp_result *res) {
  struct fp__seg *s = &p->seg;
  struct fp__slot *sl = fp__slot_at(s, i);
  /* A view in *res (fp_collect_view): give its slot back first. */
  if (fp__view_drop(p, res) == -EINVAL) return -EINVAL;
  uint64_t id = p->pend_id[i];
  /* Read every field once: the slot is shared, its bytes may change. */
  int ours = atomic_load(&sl->id) == id && fp__slot_word(sl) == FP__SLOT_DONE;
  struct fp__res_fields f;
  if (!fp__res_read(s, sl, &f)) ours = 0;
  size_t total = (size_t)f.out_len + f.spawn_len;
  if (fp__outbuf_room(res, total) < 0) return -ENOMEM;
  memcpy(res->output, fp__slot_out(s, sl), total);
  res->output_len = f.out_len;
  fp__res_fill(p, i, &f, res);
  /*
   * The check value is computed over our copy: what we hand out is what
   * was checked. A mismatch, or a slot whose id or state was overwritten,
   * is reported as FP_CORRUPT, never as the (wrong) result.
   */
  int good = ours && fp__res_good(id, &f, res->output);
  good = fp__settle(p, i, good, res->output + f.out_len, f.spawn_len, 0, res);
  res->output[f.out_len] = 0;
  if (!good) res->output[0] = 0;
  return 0;
}
