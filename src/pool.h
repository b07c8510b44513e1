/*
 * The pool handle as the owning (producer) process holds it. The files of
 * the producer side, each with a header of its own, call only downwards:
 *   pool.c attach.c stats.c   open and close handles, read counters
 *   view.c                    zero-copy submissions and result views
 *   collect.c                 the wait loop: fp_wait, fp_collect, trees
 *   client.c                  submit (spawned tasks too) and cancel
 *   result.c                  handing a result over: verify, settle
 *   held.c tree.c alive.c     what a handle holds, its spawn queue and
 *                             trees, whether its supervisor lives
 */
#ifndef FP_POOL_H
#define FP_POOL_H

#include <pthread.h>

#include "segment.h"

/* Collected slots returned to the free stack in batches of this many. */
#define FP__FREE_BATCH 32

struct fp_pool {
  struct fp__seg seg;
  pid_t sup_pid;
  int cmd_fd;          /* write end of the command pipe; -1 if none */
  uint32_t client;     /* our client row */
  uint32_t client_gen; /* its gen when we claimed it */
  struct fp__ring_writer ring_w[2]; /* our rings (we write them alone), mu */
  int attached;                     /* opened by name: we are not the owner */
  int monitor; /* read-only view: no client row, no submit */
  fp_config cfg;

  /* Local bookkeeping, under mu. */
  pthread_mutex_t mu;
  uint64_t *pend_id;     /* per slot: id of our pending task there, or 0 */
  uint64_t *pend_root;   /* ...its tree's root (itself for a root) */
  uint64_t *pend_parent; /* ...the task that spawned it, or 0 */
  uint32_t *next, *prev; /* pending slots in submission order */
  uint32_t head, tail;
  unsigned npending;

  pthread_mutex_t stop_mu; /* serialises fp_pool_stop */
  int stopped;
  _Atomic int sup_gone;        /* supervisor reaped (by us or someone else) */
  _Atomic uint32_t alive_tick; /* submits since the last liveness check */
  uint64_t fb[FP__FREE_BATCH]; /* ids of collected slots to free (mu) */
  unsigned nfb;
  uint32_t free_cursor; /* where our next scan for a FREE slot starts */

  /*
   * Zero-copy submissions and result views (view.c), under mu: per slot,
   * what this handle holds outside its pending list (a begun submission
   * or a view), allocated at the first fp_submit_begin or view; nheld
   * counts them, and get_slot (client.c) counts them with npending
   * against our share. view_next links the handles that hold a hold
   * array, for fp_result_release() on a view.
   */
  struct fp__hold *hold;
  unsigned nheld;
  struct fp_pool *view_next;

  /* Recursive pools (tree.c), under mu. */
  struct fp__spawn *sq_head, *sq_tail; /* spawned, not yet submitted */
  uint64_t *tree_keys; /* open addressing: root -> spawned tasks */
  int64_t *tree_vals;  /*   outstanding (queued here or pending) */
  size_t tree_cap, tree_n;
};

/* What a handle holds in one slot outside its pending list (view.c). */
#define FP__HOLD_NONE 0u
#define FP__HOLD_BEGUN 1u /* fp_submit_begin: FILLING, not committed */
#define FP__HOLD_VIEW 2u  /* fp_collect_view: DONE, read in place */
struct fp__hold {
  uint64_t id;   /* the slot's task id when the hold began */
  uint32_t kind; /* FP__HOLD_* */
  uint32_t prio; /* BEGUN: the priority fp_submit_begin was given */
};

/* A spawned task waiting here for a free slot. */
struct fp__spawn {
  struct fp__spawn *next;
  uint64_t root, parent;
  uint32_t len;
  unsigned char data[];
};

#endif /* FP_POOL_H */
