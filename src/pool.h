/*
 * The pool handle as the owning (producer) process holds it.
 */
#ifndef FP_POOL_H
#define FP_POOL_H

#include <pthread.h>

#include "segment.h"

/* Collected slots returned to the free stack in batches of this many. */
#define FP__FREE_BATCH 32
/* Inputs up to this many bytes are copied inside the queue lock. */
#define FP__INLINE_COPY 4096

struct fp_pool {
  struct fp__seg seg;
  pid_t sup_pid;
  int cmd_fd;             /* write end of the command pipe; -1 if none */
  uint32_t client;        /* our client row */
  uint32_t client_gen;    /* its gen when we claimed it */
  int attached;           /* opened by name: we are not the owner */
  int monitor;            /* read-only view: no client row, no submit */
  fp_config cfg;

  /* Local bookkeeping, under mu. Lock order: mu, then the queue lock. */
  pthread_mutex_t mu;
  uint64_t *pend_id;      /* per slot: id of our pending task there, or 0 */
  uint32_t *next, *prev;  /* pending slots in submission order */
  uint32_t head, tail;
  unsigned npending;

  pthread_mutex_t stop_mu; /* serialises fp_pool_stop */
  int stopped;
  _Atomic int sup_gone;   /* supervisor reaped (by us or someone else) */
  _Atomic uint32_t alive_tick; /* submits since the last liveness check */
  uint64_t fb[FP__FREE_BATCH];  /* ids of collected slots to free (mu) */
  unsigned nfb;
  int sup_status;
};

/* 1 while the supervisor process lives; reaps it when it is gone. */
FP__HIDDEN int fp__sup_alive(struct fp_pool *p);

/* Local pending list (mu held). */
FP__HIDDEN void fp__pend_add(struct fp_pool *p, uint32_t i, uint64_t id);
FP__HIDDEN void fp__pend_del(struct fp_pool *p, uint32_t i);

#endif /* FP_POOL_H */
