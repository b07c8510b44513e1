/*
 * How many workers run: resizing (SIGTTIN/SIGTTOU, min/max autoscaling)
 * and replacing them one at a time (SIGHUP reload). A worker leaves only
 * between tasks, when it sees its row's retire flag (worker.c): no task is
 * cut short. workers_target and retire are written by the supervisor alone;
 * a worker killed or stopped while retiring is reaped and replaced (or not,
 * above the target) like any other.
 */
#include "queue.h"
#include "sup.h"

/* Ask every worker of row r to exit before its next task. */
void fp__sup_retire(struct fp__sup *sp, uint32_t r) {
  atomic_store(&fp__row_at(sp->s, r)->retire, 1);
  struct fp__hdr *h = sp->s->hdr;
  for (uint32_t k = fp__pcount(&h->w_asleep, sp->s->nrows); k > 0; k--)
    fp__hint_post(&h->q.work_hint);
}

void fp__sup_resize(struct fp__sup *sp, int delta, const char *why) {
  struct fp__hdr *h = sp->s->hdr;
  uint32_t t = atomic_load(&h->workers_target);
  uint32_t lo = h->max_workers ? h->min_workers : 1;
  uint32_t hi = h->max_workers ? h->max_workers : sp->nrows;
  if (lo < 1) lo = 1;
  if (hi > sp->nrows) hi = sp->nrows;
  uint32_t nt = t;
  if (delta > 0 && t < hi) nt = t + 1;
  if (delta < 0 && t > lo) nt = t - 1;
  if (nt == t) {
    fp__sup_log(sp, FP_LOG_WARN, "resize refused: %u worker(s), limits %u..%u",
                t, lo, hi);
    return;
  }
  atomic_store(&h->workers_target, nt);
  atomic_store(&h->last_resize_ns, fp__now_ns());
  /* Shrinking retires the top row between tasks: no task is cut short. */
  if (nt < t) fp__sup_retire(sp, nt);
  fp__sup_log(sp, FP_LOG_INFO, "workers %u -> %u (%s)", t, nt, why);
}

/*
 * How long tasks must have waited with every worker busy before the pool
 * grows by one: long enough that a burst the busy workers absorb at once
 * forks nothing, short next to the cost of queueing behind a busy pool.
 * The loop ticks at half of it (TICK_SCALE_NS, supervisor.c).
 */
#define SCALE_BACKLOG_NS (20 * FP__NS_PER_MS)
#define SCALE_IDLE_MS 5000 /* fp_config.idle_ms when 0 (forkpool.h) */

/*
 * min/max workers: grow by one when tasks have waited 20 ms with no worker
 * idle; shrink by one after idle_ms with a worker asleep and nothing
 * queued. One step per decision keeps it calm.
 */
void fp__sup_autoscale(struct fp__sup *sp, uint64_t now) {
  struct fp__hdr *h = sp->s->hdr;
  if (h->max_workers == 0 || atomic_load(&h->state) != FP__POOL_RUNNING) return;
  uint32_t queued = fp__q_queued(sp->s);
  uint32_t asleep = fp__pcount(&h->w_asleep, sp->s->nrows);
  uint32_t idle = fp__pcount(&h->w_idle, sp->s->nrows);
  if (queued > 0 && asleep == 0 && idle == 0) {
    sp->idle_since = 0;
    if (sp->backlog_since == 0) sp->backlog_since = now;
    if (now - sp->backlog_since >= SCALE_BACKLOG_NS) {
      fp__sup_resize(sp, +1, "tasks waiting, every worker busy");
      sp->backlog_since = now;
    }
  } else if (queued == 0 && asleep > 0) {
    sp->backlog_since = 0;
    uint64_t idle_ns =
        (uint64_t)(sp->cfg->idle_ms ? sp->cfg->idle_ms : SCALE_IDLE_MS) *
        FP__NS_PER_MS;
    if (sp->idle_since == 0) sp->idle_since = now;
    if (now - sp->idle_since >= idle_ns &&
        atomic_load(&h->workers_target) >
            (h->min_workers ? h->min_workers : 1)) {
      fp__sup_resize(sp, -1, "idle");
      sp->idle_since = now;
    }
  } else {
    sp->backlog_since = sp->idle_since = 0;
  }
}

/* SIGHUP: retire rows in turn, each once its predecessor was replaced. */
void fp__sup_reload_step(struct fp__sup *sp) {
  if (sp->hup_next < 0) return;
  uint32_t target = atomic_load(&sp->s->hdr->workers_target);
  /* One at a time: wait until the rows already retired are back at work. */
  for (uint32_t r = 0; r < (uint32_t)sp->hup_next && r < target; r++) {
    struct fp__row *row = fp__row_at(sp->s, r);
    if (atomic_load(&row->retire) || sp->rc[r].pid <= 0 ||
        atomic_load(&row->state) < FP__ROW_IDLE)
      return;
  }
  if ((uint32_t)sp->hup_next >= target) {
    fp__sup_log(sp, FP_LOG_INFO, "reload done: %u worker(s) replaced", target);
    sp->hup_next = -1;
    return;
  }
  fp__sup_retire(sp, (uint32_t)sp->hup_next++);
}

/*
 * After a reload hook changed the caller's config: the workers forked
 * from now on run its handler, arg and hooks (our full copy's other fields
 * stay as the pool was started).
 */
void fp__sup_reload_code(struct fp__sup *sp) {
  fp_config *c = sp->o->reload_cfg;
  const fp_config *u = sp->o->user_cfg;
  if (c == NULL || u == NULL) return;
  c->handler = u->handler;
  c->arg = u->arg;
  if (u->size >= FP__END_OF(fp_config, worker_fini)) {
    c->worker_init = u->worker_init;
    c->worker_fini = u->worker_fini;
  }
}
