/*
 * Attaching to a named pool: fp_pool_open.
 *
 * The segment is untrusted input (invariant 5): fp__shm_open (shm.c,
 * segment.c) checks its owner, magic, version and every size against the
 * mapping before anything here reads it. Then, for a producer: a pool that
 * is draining or stopping takes no newcomer; a free producer row is
 * claimed by its OFD lock, which is our liveness token for the supervisor
 * (sup_clients.c reclaims what a row held once its lock is free), and its
 * gen bumped only after the lock is ours; the row's rings are taken over
 * and we count ourselves in the fair shares at once. A monitor handle
 * (FP_OPEN_MONITOR) maps the segment read-only and claims nothing.
 *
 * Killed at any point, an attaching producer leaves at most a locked row,
 * freed with its descriptor, and a producer count off by one until the
 * supervisor's next count (segment.h, producer_share).
 */
#include <stdlib.h>

#include "client.h"
#include "held.h"
#include "pool.h"
#include "queue.h"
#include "shm.h"

/*
 * A producer just attached to a named pool: count it in the
 * header's producers and lower producer_share to match at once, rather
 * than at the supervisor's next count (which rewrites both): a newcomer
 * must not take slots on a share that did not count it.
 */
static void share_join(struct fp_pool *p) {
  struct fp__hdr *h = p->seg.hdr;
  uint32_t n = atomic_fetch_add(&h->producers, 1) + 1;
  uint32_t want = fp__share_of(p->seg.nslots, n);
  uint32_t cur = atomic_load(&h->producer_share);
  /* Only lower it (0: no share published yet, the supervisor sets it). */
  while (cur != 0 && cur > want &&
         !atomic_compare_exchange_weak(&h->producer_share, &cur, want)) {
  }
}

/*
 * Claim a free producer row: its lock is our liveness token. Returns 0
 * with p->client and p->client_gen set; -EUSERS when every row is held,
 * or the lock's -errno; nothing held then.
 */
static int claim_row(struct fp_pool *p) {
  for (uint32_t r = 0; r < p->seg.nclients; r++) {
    int lr = fp__ofd_lock(p->seg.fd, FP__CLIENT_LOCK_BYTE(r));
    if (lr == -EAGAIN) continue;
    if (lr < 0) return lr;
    struct fp__client *c = fp__client_at(&p->seg, r);
    /* Lock first, then gen: see sup_clients.c for why the order holds. */
    p->client = r;
    p->client_gen = atomic_fetch_add(&c->gen, 1) + 1;
    atomic_store(&c->pid, getpid());
    return 0;
  }
  return -EUSERS;
}

FP_EXTERN int fp_pool_open(fp_pool **out, const char *name, unsigned flags) {
  if (out == NULL || (flags & ~FP_OPEN_MONITOR) != 0) return -EINVAL;
  if (fp_name_validate(name) < 0) return -EINVAL;
  struct fp_pool *p = calloc(1, sizeof(*p));
  if (p == NULL) return -ENOMEM;
  p->cmd_fd = -1;
  p->attached = 1;
  p->monitor = (flags & FP_OPEN_MONITOR) != 0;
  p->stopped = 1; /* nothing for us to stop */
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->stop_mu, NULL);
  int err = fp__shm_open(&p->seg, name, !p->monitor);
  if (err < 0) goto err;
  struct fp__hdr *h = p->seg.hdr;
  p->sup_pid = atomic_load(&h->sup_pid);
  if (!p->monitor) {
    if (atomic_load(&h->state) >= FP__POOL_DRAINING) {
      err = -ESHUTDOWN;
      goto err;
    }
    if ((err = fp__held_alloc(p, p->seg.nslots)) < 0) goto err;
    if ((err = claim_row(p)) < 0) goto err;
    fp__rings_join(p);
    share_join(p); /* our share counts us from now on */
  }
  *out = p;
  return 0;

err:
  fp__seg_unmap(&p->seg);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->stop_mu);
  fp__held_free(p);
  free(p);
  return err;
}
