/*
 * The supervisor's private state, shared by supervisor.c (processes, tasks,
 * the loop), sup_clients.c (reclaiming what dead producers held) and the two
 * ways to run one: a private pool's forked child (pool.c) and fp_serve().
 */
#ifndef FP_SUP_H
#define FP_SUP_H

#include "queue.h"

/* How to run a supervisor. */
struct fp__sup_opts {
  struct fp__seg *seg;
  const fp_config *cfg;
  int cmd_fd;          /* owner's command pipe (private pools), else -1 */
  int serve;           /* named pool: signals, logging, client reclaiming */
  int grace_ms;        /* drain limit on SIGTERM/SIGINT (serve) */
  fp_log_fn log;
  void *log_ctx;
  void (*on_ready)(void *ctx);
  void *ready_ctx;
};

enum {
  FP__KILL_NONE = 0,
  FP__KILL_TIMEOUT = 1,
  FP__KILL_STOP = 2,
  FP__KILL_CANCEL = 3,
  FP__KILL_LOCK = 4 /* stopped or stuck holding the queue lock */
};

struct fp__rowctl {
  pid_t pid;          /* the worker in this row (the shared row's copy is
                         for display: a scribbled pid must never be killed) */
  uint64_t spawn_at;  /* when an empty row may be forked again */
  int kill_reason;    /* why we SIGKILLed it, if we did */
  uint64_t kill_task;
  uint64_t dump_at;   /* hang dump asked for at (timeout), 0 if not */
};

struct fp__sup {
  const struct fp__sup_opts *o;
  struct fp__seg *s;
  const fp_config *cfg;
  int sfd;                 /* signalfd */
  uint32_t nrows;
  struct fp__rowctl *rc;
  uint32_t *settled_gen;   /* per client row: gen fully reclaimed */
  uint32_t streak;         /* consecutive deaths with no task finished */
  uint64_t last_finished;  /* tasks finished in the pool, at last turn */
  int backoff_logged;      /* once per burst */
  uint64_t drain_deadline;
  int hup_next;            /* next row to replace on SIGHUP; -1: none */
  uint64_t backlog_since;  /* autoscaling: tasks waiting, all busy, since */
  uint64_t idle_since;     /* autoscaling: a worker idle, nothing queued */
  int stopped;             /* loop ends */
  pid_t self;
  struct fp__hdr hdr_copy; /* the header's fixed part, as laid out */
  int lock_kind;           /* the queue mutex's type word, as made */
  /* The queue lock seen held (check_lock_holder in supervisor.c). */
  pid_t lock_holder;       /* the holder the last failed try named, or 0 */
  uint64_t lock_since;     /* since when it held it, every look failing */
  int lock_busy;           /* this turn's look failed: only try the lock */
  int lock_logged;         /* the long hold by lock_holder was logged */
};

/* How long the supervisor waits for the queue lock at most, per attempt. */
#define FP__SUP_LOCK_NS 20000000ull /* 20 ms */

/*
 * The supervisor's queue lock: it never waits long, whatever process holds
 * the lock (a stopped worker, a hostile group member): 20 ms at most, and
 * only a try once this turn found the lock held. Returns as
 * fp__q_lock_until: 0 (held), -ETIMEDOUT (skip the work, try next tick),
 * -ENOTRECOVERABLE.
 */
static inline int fp__sup_lock(struct fp__sup *sp) {
  return fp__q_lock_until(sp->s, sp->lock_busy ? 0
                                               : fp__now_ns() + FP__SUP_LOCK_NS);
}

/* Log a formatted event through opts->log, if any. */
FP__HIDDEN void fp__sup_log(struct fp__sup *sp, fp_log_level lvl,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Run the supervisor until the pool stops. The segment must be laid out and
 * the state STARTING. Returns 0 after a stop (every task terminal, every
 * worker reaped), or -errno when the pool could not start (state FAILED,
 * start_error set, every worker reaped).
 */
FP__HIDDEN int fp__sup_run(const struct fp__sup_opts *o);

/*
 * Named pools: free what dead producers held (FILLING slots; DONE results
 * nobody will collect, counted as abandoned). Called every tick.
 */
FP__HIDDEN void fp__sup_reclaim_clients(struct fp__sup *sp);

/*
 * Named pools: count the producers attached (client rows whose OFD lock is
 * held) and publish the count and each producer's share of the slots in
 * the header (producers, producer_share). Called every tick; a row whose
 * lock cannot be tested counts as attached (the share errs small, never
 * lets one producer take what others need).
 */
FP__HIDDEN void fp__sup_count_producers(struct fp__sup *sp);

/*
 * Return COLLECTED slots to the free stack when producers wait for space.
 * Called every tick; skipped for the tick when the lock is busy.
 */
FP__HIDDEN void fp__sup_free_collected(struct fp__sup *sp);

/* Keep a copy of the header's fixed part (at start). */
FP__HIDDEN void fp__sup_save_header(struct fp__sup *sp);

/*
 * After a worker died of a signal: check and repair the shared bookkeeping
 * it could have damaged (sup_verify.c). Logs what it repaired.
 */
FP__HIDDEN void fp__sup_verify(struct fp__sup *sp);

#endif /* FP_SUP_H */
