/*
 * A pool's counters and scoreboard: fp_pool_stats and fp_pool_worker, from
 * any handle (a monitor's included). Nothing of the segment is written:
 * each value is one load of the shared header or of a worker row, so a
 * snapshot is not consistent across fields (they move while it is taken),
 * and a state word outside the known names reads as "?", never as an
 * index out of bounds: the segment is untrusted input.
 */
#include <string.h>

#include "alive.h"
#include "pool.h"
#include "queue.h"
#include "shm.h"

/*
 * Add the worker rows' counts into *st: live workers, tasks ok and failed,
 * run-time buckets (per bucket: made cumulative by the caller), workers
 * running a task.
 */
static void add_rows(const struct fp__seg *s, fp_stats *st) {
  for (uint32_t r = 0; r < s->nrows; r++) {
    const struct fp__row *row = fp__row_at(s, r);
    st->alive += atomic_load(&row->pid) > 0;
    st->ok += atomic_load(&row->ok);
    st->failed += atomic_load(&row->failed);
    for (unsigned k = 0; k < FP_DURATION_BUCKETS; k++) {
      uint64_t n = atomic_load(&row->dur[k]);
      st->duration_le[k] += n; /* made cumulative below */
      st->duration_count += n;
    }
    st->duration_sum_us += atomic_load(&row->dur_sum_us);
    st->running += atomic_load(&row->slot) != FP__NONE;
  }
}

/* The fields every layout of fp_stats and fp_worker_info has (forkpool.h,
 * ABI policy). */
#define STATS_MIN FP__END_OF(fp_stats, supervisor)
#define WORKER_MIN FP__END_OF(fp_worker_info, state)

/* The segment's pool state (FP__POOL_*, 0 before the first is set) as
 * ours; a value no supervisor writes (damage) as one no name has. */
static fp_pool_state pool_state(uint32_t s) {
  if (s <= FP__POOL_STARTING) return FP_POOL_STARTING;
  if (s <= FP__POOL_FAILED) return (fp_pool_state)(s - 1);
  return (fp_pool_state)255;
}

FP_EXTERN int fp_pool_stats_sized(const fp_pool *p, fp_stats *user,
                                  size_t size) {
  if (p == NULL || user == NULL || size < STATS_MIN) return -EINVAL;
  const struct fp__hdr *h = p->seg.hdr;
  fp_stats full, *st = &full;
  memset(st, 0, sizeof(*st));
  st->submitted = fp__q_submitted(&p->seg);
  st->crashed = atomic_load(&h->c.crashed);
  st->timeout = atomic_load(&h->c.timeout);
  st->cancelled = atomic_load(&h->c.cancelled);
  st->restarts = atomic_load(&h->c.restarts);
  st->abandoned = atomic_load(&h->c.abandoned);
  st->workers = atomic_load(&h->workers_target);
  st->slots = p->seg.nslots;
  /* READY slots, exactly (the rings also hold stale entries). */
  for (uint32_t i = 0; i < p->seg.nslots; i++)
    st->queued += fp__slot_state(fp__slot_at(&p->seg, i)) == FP__SLOT_READY;
  add_rows(&p->seg, st);
  st->supervisor = fp__sup_alive((struct fp_pool *)p) ? p->sup_pid : 0;
  uint64_t t0 = atomic_load(&h->sup_start_ns);
  st->uptime_us = st->supervisor && t0 ? (fp__now_ns() - t0) / 1000u : 0;
  for (unsigned k = 1; k < FP_DURATION_BUCKETS; k++)
    st->duration_le[k] += st->duration_le[k - 1];
  st->rows = p->seg.nrows;
  st->max_input = p->seg.max_input;
  st->max_output = p->seg.max_output;
  st->timeout_ms = h->timeout_ms;
  st->segment_bytes = h->seg_bytes;
  st->retried = atomic_load(&h->c.retried);
  st->min_workers = h->min_workers;
  st->max_workers = h->max_workers;
  uint64_t lr = atomic_load(&h->last_resize_ns);
  st->last_resize_us = lr ? (fp__now_ns() - lr) / 1000u : 0;
  st->quarantined = atomic_load(&h->c.quarantined);
  st->corrupt = atomic_load(&h->c.corrupt);
  st->repairs = atomic_load(&h->c.repairs);
  st->state = pool_state(atomic_load(&h->state));
  if (p->seg.fd >= 0)
    for (uint32_t c = 0; c < p->seg.nclients; c++)
      st->clients += fp__ofd_held(p->seg.fd, FP__CLIENT_LOCK_BYTE(c)) == 1;
  /* Our own lock does not conflict with our own open: count ourselves. */
  if (p->attached && !p->monitor) st->clients++;
  fp__sized_out(user, size, st, sizeof(*st));
  return 0;
}

FP_EXTERN int fp_pool_worker_sized(const fp_pool *p, unsigned r,
                                   fp_worker_info *user, size_t size) {
  if (p == NULL || user == NULL || size < WORKER_MIN) return -EINVAL;
  if (r >= p->seg.nrows) return -ERANGE;
  const struct fp__row *row = fp__row_at(&p->seg, r);
  fp_worker_info full, *wi = &full;
  memset(wi, 0, sizeof(*wi));
  wi->pid = atomic_load(&row->pid);
  /* FP__ROW_* are numbered as fp_worker_state; damage shows as itself,
   * a value no name has. */
  wi->state = (fp_worker_state)atomic_load(&row->state);
  uint64_t id = atomic_load(&row->task_id);
  uint64_t t0 = atomic_load(&row->started_ns);
  if (id != 0 && atomic_load(&row->task_id) == id) {
    wi->task_id = id;
    uint64_t now = fp__now_ns();
    wi->running_us = now > t0 ? (now - t0) / 1000u : 0;
  }
  wi->done = atomic_load(&row->total_done);
  wi->restarts = atomic_load(&row->restarts);
  fp__sized_out(user, size, wi, sizeof(*wi));
  return 0;
}
