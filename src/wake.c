/*
 * Putting sleepers to bed and waking them. The no-lost-wake-up argument:
 * wake.h.
 */
#include "wake.h"

#include "queue.h"
#include "spin.h"

__thread uint32_t fp__spin_budget;

void fp__wake_workers(struct fp__seg *s, uint32_t n) {
  struct fp__queue *q = &s->hdr->q;
  uint32_t sl = fp__pcount(&s->hdr->w_asleep, s->nrows);
  if (sl == 0) return;
  /*
   * Tokens already posted will wake that many sleepers: post only for the
   * rest, so a burst of submits makes one system call per sleeper, not one
   * per task.
   */
  uint32_t v = fp__hint_value(&q->work_hint);
  if (v >= sl) return;
  if (n > sl - v) n = sl - v;
  while (n-- > 0) fp__hint_post(&q->work_hint);
}

void fp__wake_space(struct fp__seg *s) {
  if (fp__pcount(&s->hdr->p_asleep, s->nclients) > 0)
    fp__hint_post(&s->hdr->q.space_hint);
}

void fp__wake_sleep(struct fp__hint *h, struct fp__presence *sleepers,
                    uint32_t me, uint64_t rel_ns, int (*recheck)(void *),
                    void *arg) {
  /*
   * Registered first (an atomic read-modify-write: a full barrier), then
   * recheck: a waker that changed the state before our registration is
   * seen by the recheck; one after it sees a sleeper and posts.
   */
  fp__pset(sleepers, me);
  /* A timeout, an interruption or a post end the sleep: callers recheck. */
  if (!recheck(arg)) fp__hint_wait(h, rel_ns);
  fp__pclr(sleepers, me);
}

void fp__wake_kick(struct fp__seg *s) {
  struct fp__hdr *h = s->hdr;
  uint32_t sleepers = fp__pcount(&h->w_asleep, s->nrows);
  if (sleepers == 0) return;
  uint32_t ready = fp__q_queued(s);
  uint32_t idle = fp__pcount(&h->w_idle, s->nrows);
  if (ready <= idle) return; /* awake idle workers will take them */
  /* Live workers: a row waiting out a backoff is nobody. */
  uint32_t alive = atomic_load(&h->workers_alive);
  uint32_t awake = alive > sleepers ? alive - sleepers : 0;
  /*
   * A worker is busy and tasks are short: it frees up sooner than a
   * sleeper wakes (a wake-up costs a system call here and a context switch
   * there), and waking every sleeper for short tasks is how 64 workers on
   * 2 cores collapse. Wake one anyway once a backlog builds.
   */
  if (awake > idle && atomic_load(&h->avg_task_ns) < FP__WAKE_WORTH_NS &&
      ready < FP__WAKE_BACKLOG)
    return;
  fp__wake_workers(s, 1);
}
