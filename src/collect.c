/*
 * Producers waiting for results: fp_wait, fp_collect, fp_collect_tree and,
 * through the same loop (fp__wait_for), view.c's fp_wait_view and
 * fp_collect_view; fp_pending.
 *
 * One loop serves them all: submit queued spawned tasks, look under mu
 * (the kind of wait decides what it looks for and when nothing is left:
 * look()), hand a finished result over (take), or sleep on our client
 * row's done_seq and look again. Its rules:
 *   - timeouts: the deadline is set when we first have to wait (a call
 *     that need not wait reads no clock); every sleep lasts at most
 *     FP__RECHECK_NS, so a supervisor that died is noticed within it;
 *   - -EPIPE: the supervisor is gone, and (for a task or any task) none
 *     finished in the meantime, looked at once more: nothing will end
 *     the rest. fp_collect_tree does not look again;
 *   - sleeping: done_seq is a hint, the slots' state words are the truth
 *     (invariant 3): we register as a watcher before looking, so a
 *     finisher either stored DONE before our look or sees us and bumps
 *     done_seq (wake.h, fp__wake_owner); an interrupted or spurious
 *     wake-up (EINTR included) just ends the sleep early: the loop looks
 *     again.
 * No lock shared with another process is taken: mu is this handle's.
 */
#include "alive.h"
#include "client.h"
#include "collect.h"
#include "held.h"
#include "result.h"
#include "slot.h"
#include "spin.h"
#include "tree.h"

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/*
 * Our pending task in slot i has a result to deliver: it is DONE, or its
 * state word was damaged (a pending task is only ever READY, RUNNING or
 * DONE): fp__deliver() then reports it FP_CORRUPT rather than wait for
 * ever on a state nobody will change. A damaged id alone is not a reason:
 * the slot is still ours (nobody reuses a pending slot), and its worker
 * will end it.
 */
static int is_done(struct fp_pool *p, uint64_t i) {
  return !fp__slot_unfinished(fp__slot_state(fp__slot_at(&p->seg, i)));
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
  /*
   * Registered first (a read-modify-write: a full barrier), then the look
   * at our slots: a finisher that stored DONE before it is seen there, one
   * after it sees us and bumps done_seq (wake.h, fp__wake_owner).
   */
  atomic_fetch_add(&c->watchers, 1);
  uint32_t seq = atomic_load(&c->done_seq);
  /* A task of ours finishing bumps done_seq: watch it a moment first. */
  struct seq_ctx sc = {&c->done_seq, seq};
  if (ready(p, arg) || fp__spin(p->seg.hdr, &p->seg.hdr->p_spin, p->client,
                                p->seg.nclients, seq_moved, &sc)) {
    atomic_fetch_sub(&c->watchers, 1);
    return;
  }
  atomic_fetch_add(&c->waiters, 1);
  /* Clear before the recheck: a finisher after it will wake us again. */
  atomic_store(&c->woken, 0);
  if (!ready(p, arg) && atomic_load(&p->seg.hdr->state) != FP__POOL_STOPPED)
    fp__futex_wait(&c->done_seq, seq, rel_ns);
  atomic_fetch_sub(&c->waiters, 1);
  atomic_fetch_sub(&c->watchers, 1);
}

/*
 * One look for what `want` waits for (mu held): 0 with *slot set when a
 * result is there to hand over, 1 when it is still to come, -ENOENT when
 * nothing is left to wait for. Each kind keeps its order of the checks.
 */
static int look(struct fp_pool *p, enum fp__want want, uint64_t id,
                uint32_t *slot) {
  uint32_t i = (uint32_t)(id & FP__ID_INDEX_MASK);
  switch (want) {
  case FP__WANT_TASK: /* i < nslots: fp__wait_for checked */
    if (p->pend_id[i] != id) return -ENOENT;
    *slot = i;
    return is_done(p, i) ? 0 : 1;
  case FP__WANT_ANY:
    if (p->npending == 0 && !fp__tree_queued(p)) return -ENOENT;
    *slot = find_done(p, 0);
    return *slot != FP__NONE ? 0 : 1;
  default: /* FP__WANT_TREE, rooted at id */
    if ((*slot = find_done(p, id)) != FP__NONE) return 0;
    /* Done when the root was collected and nothing it spawned is left. */
    if (id != 0 && i < p->seg.nslots && p->pend_id[i] == id) return 1;
    return fp__tree_get(p, id) > 0 ? 1 : -ENOENT;
  }
}

/* fp__wait_for on a result of our own layout. */
static int wait_loop(struct fp_pool *p, enum fp__want want, uint64_t id,
                     fp_result *res, int timeout_ms, fp__take_fn take) {
  if (p->monitor) return -EPERM;
  uint32_t ti = (uint32_t)(id & FP__ID_INDEX_MASK);
  if (want == FP__WANT_TASK && (id == 0 || ti >= p->seg.nslots)) return -ENOENT;
  /* The recheck in wait_done and before -EPIPE: our task, or such a task
   * (any_done's root: the tree's, or 0 for any). */
  int (*ready)(struct fp_pool *, uint64_t) =
      want == FP__WANT_TASK ? is_done : any_done;
  uint64_t arg = want == FP__WANT_TASK ? ti : want == FP__WANT_TREE ? id : 0;
  uint64_t deadline = 0; /* set when we first have to wait */
  for (;;) {
    fp__submit_spawned(p);
    pthread_mutex_lock(&p->mu);
    uint32_t i;
    int found = look(p, want, id, &i);
    int err = found == 0 ? take(p, i, res) : found;
    pthread_mutex_unlock(&p->mu);
    if (found <= 0) return err;
    uint64_t now = fp__now_ns();
    if (deadline == 0) deadline = fp__deadline_ns(now, timeout_ms);
    if (now >= deadline) return -ETIMEDOUT;
    if (!fp__sup_alive(p) && (want == FP__WANT_TREE || !ready(p, arg)))
      return -EPIPE;
    /* With spawns queued here, look again soon: a slot may free up. */
    uint64_t nap =
        want == FP__WANT_TREE && fp__tree_queued(p) ? 1000000u : FP__RECHECK_NS;
    wait_done(p, min_u64(deadline - now, nap), ready, arg);
  }
}

int fp__wait_for(struct fp_pool *p, enum fp__want want, uint64_t id,
                 fp_result *user, int timeout_ms, fp__take_fn take) {
  /* The caller's layout (ABI policy): ours, or a full copy of ours. */
  fp_result tmp, *res = user ? fp__res_adopt(user, &tmp) : NULL;
  if (p == NULL || res == NULL) return -EINVAL;
  int err = wait_loop(p, want, id, res, timeout_ms, take);
  fp__res_done(user, res);
  return err;
}

FP_EXTERN int fp_wait(fp_pool *p, uint64_t id, fp_result *res, int timeout_ms) {
  return fp__wait_for(p, FP__WANT_TASK, id, res, timeout_ms, fp__deliver);
}

FP_EXTERN int fp_collect(fp_pool *p, fp_result *res, int timeout_ms) {
  return fp__wait_for(p, FP__WANT_ANY, 0, res, timeout_ms, fp__deliver);
}

FP_EXTERN int fp_collect_tree(fp_pool *p, uint64_t root, fp_result *res,
                              int timeout_ms) {
  return fp__wait_for(p, FP__WANT_TREE, root, res, timeout_ms, fp__deliver);
}

FP_EXTERN unsigned fp_pending(const fp_pool *p) {
  if (p == NULL) return 0;
  pthread_mutex_lock((pthread_mutex_t *)&p->mu);
  unsigned n = p->npending;
  pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
  return n;
}
