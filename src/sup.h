/*
 * The supervisor's private state, shared by supervisor.c (the loop,
 * forking, signals), its sup_*.c files (sup_death.c: a worker's death and
 * its task; sup_kill.c: timeouts and cancels; sup_stop.c: drain and stop;
 * sup_strays.c: what dead workers left; sup_clients.c: reclaiming what dead
 * producers held; sup_output.c, sup_resize.c, sup_verify.c) and the two
 * ways to run one: a private pool's forked child (pool.c) and fp_serve().
 * All of it runs in the supervisor, on its one thread (fp__out_child: in
 * a worker just forked, before it runs anything else).
 */
#ifndef FP_SUP_H
#define FP_SUP_H

#include <poll.h>

#include "queue.h"

/*
 * Time in the supervisor is in nanoseconds (fp__now_ns()); fp_config, the
 * command channel and the log speak milliseconds, reports microseconds.
 */
#define FP__NS_PER_MS 1000000ull
#define FP__NS_PER_US 1000ull

/* How to run a supervisor. */
struct fp__sup_opts {
  struct fp__seg *seg;
  const fp_config *cfg;
  /* clang-format off */
  int cmd_fd;          /* owner's command channel (private pools), else -1 */
  pid_t owner;         /* the process that started the pool, else 0: when
                          it dies, the pool stops (see owner_gone()) */
  int serve;           /* named pool: signals, logging, client reclaiming */
  int grace_ms;        /* drain limit on SIGTERM/SIGINT (serve) */
  /* clang-format on */
  fp_log_fn log;
  void *log_ctx;
  void (*on_ready)(void *ctx);
  void *ready_ctx;
  int (*on_reload)(void *ctx); /* fp_serve_config.on_reload */
  void *reload_ctx;
  /* fp_serve: the caller's config, which on_reload may change, and our
   * full copy of it (cfg), whose handler fields a reload refreshes. */
  const fp_config *user_cfg;
  fp_config *reload_cfg;
};

enum {
  FP__KILL_NONE = 0,
  FP__KILL_TIMEOUT = 1,
  FP__KILL_STOP = 2,
  FP__KILL_CANCEL = 3
};

/*
 * What one worker wrote to its stdout or stderr (sup_output.c): the line
 * being assembled, for the task it belongs to. Supervisor memory only.
 */
#define FP__OUT_LINE 256      /* a longer line is logged in pieces */
#define FP__OUT_TASK_CAP 4096 /* bytes logged per task and stream */
struct fp__outbuf {
  int active;       /* holds bytes of `task` (len, logged or dropped) */
  uint64_t task;    /* the task running when they were read; 0: none */
  pid_t pid;        /* the worker that wrote them */
  uint32_t len;     /* bytes in line */
  uint32_t logged;  /* bytes of this task logged or in line */
  uint64_t dropped; /* bytes of this task past FP__OUT_TASK_CAP */
  char line[FP__OUT_LINE];
};

struct fp__rowctl {
  /* clang-format off */
  pid_t pid;          /* the worker in this row (the shared row's copy is
                         for display: a scribbled pid must never be killed) */
  uint64_t spawn_at;  /* when an empty row may be forked again */
  int kill_reason;    /* why we SIGKILLed it, if we did */
  /* clang-format on */
  uint64_t kill_task;
  /* clang-format off */
  uint64_t dump_at;   /* hang dump asked for at (timeout), 0 if not */
  uint64_t spare_task;  /* a kill aimed at it was withdrawn: committed */
  uint64_t spare_until; /* ...withdrawn again until then, then made */
  int out_fd[2];      /* read ends of the worker's stdout and stderr
                         pipes (non-blocking), -1 when none */
  /* clang-format on */
  struct fp__outbuf out[2];
};

struct fp__sup {
  const struct fp__sup_opts *o;
  struct fp__seg *s;
  const fp_config *cfg;
  /* clang-format off */
  int sfd;                 /* signalfd */
  int owner_fd;            /* pidfd of o->owner, readable once it died;
                              -1 (no owner, or no pidfd: then getppid()) */
  /* clang-format on */
  uint32_t nrows;
  struct fp__rowctl *rc;
  /* clang-format off */
  uint32_t *settled_gen;   /* per client row: gen fully reclaimed */
  struct fp__ring_writer retry; /* the retry ring: we write it alone */
  uint32_t *suspect;       /* per slot: READY word no ring held at the last
                              tick's sweep (fp__q_sweep), or 0 */
  uint64_t last_sweep_ns;  /* that sweep's time */
  uint32_t streak;         /* consecutive deaths with no task finished */
  uint64_t last_finished;  /* tasks finished in the pool, at last turn */
  int backoff_logged;      /* once per burst */
  /* clang-format on */
  uint64_t drain_deadline;
  int hup_next;           /* next row to replace on SIGHUP; -1: none */
  uint64_t backlog_since; /* autoscaling: tasks waiting, all busy, since */
  uint64_t idle_since;    /* autoscaling: a worker idle, nothing queued */
  int stopped;            /* loop ends */
  pid_t self;
  /* clang-format off */
  struct fp__hdr hdr_copy; /* the header's fixed part, as laid out */
  int sweep;               /* we are a subreaper and end stray children */
  int strays_left;         /* a sweep ran out of time: try again */
  int old_subreaper;       /* PR_GET_CHILD_SUBREAPER before we ran */
  int devnull;             /* read-only stdin for workers (/dev/null, or
                              an empty pipe's read end), -1 before start */
  int out_pipe_failed;     /* a worker got /dev/null for output: logged */
  struct pollfd *pf;       /* the loop's poll set: 2 + 2 per row */
  uint32_t fork_failures;  /* failed forks since the last one that worked */
  /* clang-format on */
};

/* The row of our worker `pid`, or -1 (supervisor.c). */
FP__HIDDEN int fp__sup_find_row(struct fp__sup *sp, pid_t pid);

/* supervisor.c. Store the pool's state and wake its futex watchers. */
FP__HIDDEN void fp__sup_set_state(struct fp__sup *sp, uint32_t st);

/*
 * Reap dead children, settling each worker's death (fp__sup_on_death):
 * block 0, those already dead; block 1, wait until no worker is left
 * (after killing them all). Other children are reaped and ignored.
 */
FP__HIDDEN void fp__sup_reap(struct fp__sup *sp, int block);

/* "SEGV" for SIGSEGV, "?" for a number with no name; never NULL. */
FP__HIDDEN const char *fp__sup_signame(int sig);

/*
 * How long one sweep for strays may take: in the loop (on a turn, or when
 * a worker died), and at stop. In the loop the rest of the pool must go on
 * being served while a fork bomb is killed: 100 ms a sweep, the rest on
 * later turns (STRAYS_RETRY_NS, supervisor.c). At stop nothing else is
 * left to do, but the stop must still end on time: 2 s, then it gives up
 * and says so.
 */
#define FP__SWEEP_TURN_NS (100 * FP__NS_PER_MS)
#define FP__SWEEP_STOP_NS (2000 * FP__NS_PER_MS)

/*
 * sup_strays.c. Kill and reap every child of ours that is not a worker's
 * (dead workers' descendants, reparented to us), for budget_ns at most;
 * sets sp->strays_left when some are left for a later turn. No-op unless
 * we are a subreaper (sp->sweep). Cannot fail.
 */
FP__HIDDEN void fp__sup_sweep_strays(struct fp__sup *sp, uint64_t budget_ns);

/*
 * At start: become a child subreaper if we have no child yet, and set
 * sp->sweep if we did (sp->old_subreaper: what we were before). A failure
 * leaves sweeping off: strays then escape to init.
 */
FP__HIDDEN void fp__sup_start_sweeping(struct fp__sup *sp);

/* At the end: stop being a subreaper, unless we were one before. */
FP__HIDDEN void fp__sup_stop_sweeping(struct fp__sup *sp);

/*
 * sup_death.c. Row r's worker was reaped with wait status ws (and only
 * then: invariant 2): kill what it left, settle its task (ended, retried
 * or requeued unrun, exactly once), empty the row, and plan its restart
 * (sp->rc[r].spawn_at, with the crash-loop backoff), or fail the pool's
 * start if it was starting. Cannot fail.
 */
FP__HIDDEN void fp__sup_on_death(struct fp__sup *sp, uint32_t r, int ws);

/*
 * End a task that will not finish normally with status st (FP_CRASHED,
 * FP_TIMEOUT or FP_CANCELLED, counted as such), waking its producer. The
 * caller holds the slot (slot.h, fp__slot_end): RUNNING under a worker it
 * reaped, or claimed READY -> ENDING. `report` (may be NULL) becomes its
 * output, truncated to max_output.
 */
FP__HIDDEN void fp__sup_end_task(struct fp__sup *sp, struct fp__slot *sl,
                                 fp_status st, int sig, int exit_code,
                                 uint64_t now, const char *report, size_t rlen);

/*
 * Every turn: a task finished anywhere in the pool since the last call
 * ends a crash loop (resets the streak that fp__sup_on_death grows).
 */
FP__HIDDEN void fp__sup_note_progress(struct fp__sup *sp);

/*
 * sup_kill.c. Kill row r's worker with its process group, recording why
 * (the first reason stands until it is reaped) and for which task. No-op
 * for an empty row. Cannot fail: a worker that died already is reaped.
 */
FP__HIDDEN void fp__sup_kill_worker(struct fp__sup *sp, uint32_t r, int reason,
                                    uint64_t id);

/* Hang-dump, then kill, tasks past their deadline; returns when to look
 * again (UINT64_MAX: no deadline pending). */
FP__HIDDEN uint64_t fp__sup_check_timeouts(struct fp__sup *sp, uint64_t now);

/* Kill the workers of running tasks fp_cancel() asked to end. */
FP__HIDDEN void fp__sup_check_cancels(struct fp__sup *sp);

/*
 * sup_stop.c. Stop now: cancel the queued tasks, kill and reap every
 * worker, end what is left as cancelled, mark the pool STOPPED and wake
 * everyone; sets sp->stopped (the loop ends). Bounded in time whatever
 * other processes do. No-op once stopped.
 */
FP__HIDDEN void fp__sup_stop_now(struct fp__sup *sp);

/*
 * Drain: mark the pool DRAINING (new tasks are refused) and wake everyone;
 * the loop stops the pool once the queue is empty and the workers are gone,
 * or grace_ms from now (< 0: no limit). Only from RUNNING, else a no-op.
 */
FP__HIDDEN void fp__sup_begin_drain(struct fp__sup *sp, int grace_ms);

/*
 * The pool could not start (err > 0, an errno): record it, kill and reap
 * every worker, mark the pool FAILED, end the loop.
 */
FP__HIDDEN void fp__sup_fail_start(struct fp__sup *sp, int err);

/* sup_resize.c. Ask row r's worker to exit before its next task. */
FP__HIDDEN void fp__sup_retire(struct fp__sup *sp, uint32_t r);

/* One worker more (delta > 0) or fewer, within the pool's bounds; logs
 * why, or that it was refused. */
FP__HIDDEN void fp__sup_resize(struct fp__sup *sp, int delta, const char *why);

/* min/max workers: grow while tasks wait and every worker is busy, shrink
 * after idle_ms with a worker idle. */
FP__HIDDEN void fp__sup_autoscale(struct fp__sup *sp, uint64_t now);

/* SIGHUP: retire the next row once the ones before it were replaced. */
FP__HIDDEN void fp__sup_reload_step(struct fp__sup *sp);

/*
 * SIGHUP, after fp_serve_config.on_reload returned 0: the workers forked
 * from now on run the handler, arg and hooks the hook put in the caller's
 * fp_config (sup_resize.c). Cannot fail.
 */
FP__HIDDEN void fp__sup_reload_code(struct fp__sup *sp);

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
 * Make every READY slot reachable (queue.c, fp__q_sweep), counting as
 * submitted the tasks of gone producers it queued, and wake workers for
 * them. tick: the once-a-tick sweep, which also requeues READY tasks that
 * no ring held at the last tick's sweep either (sp->suspect). Returns how
 * many slots it queued, or -ENOMEM.
 */
FP__HIDDEN int fp__sup_sweep(struct fp__sup *sp, int tick);

/*
 * Named pools: count the producers attached (client rows whose OFD lock is
 * held) and publish the count and each producer's share of the slots in
 * the header (producers, producer_share). Called every tick; a row whose
 * lock cannot be tested counts as attached (the share errs small, never
 * lets one producer take what others need).
 */
FP__HIDDEN void fp__sup_count_producers(struct fp__sup *sp);

/*
 * Free COLLECTED slots when producers wait for space, and recount the free
 * slots (queue.c, fp__q_recount). Called every tick.
 */
FP__HIDDEN void fp__sup_free_collected(struct fp__sup *sp);

/* Keep a copy of the header's fixed part (at start). */
FP__HIDDEN void fp__sup_save_header(struct fp__sup *sp);

/*
 * After a worker died of a signal: check and repair the shared bookkeeping
 * it could have damaged (sup_verify.c). Logs what it repaired.
 */
FP__HIDDEN void fp__sup_verify(struct fp__sup *sp);

/*
 * Workers' stdin, stdout and stderr (sup_output.c). A worker reads
 * /dev/null; what it writes to fd 1 and 2 goes through a pipe per stream to
 * the supervisor, which logs it, per task and bounded, as
 *   "task N (worker PID) stdout: TEXT"
 * through opts->log at FP_LOG_WARN, or, with no log function, as
 * "forkpool: task N ..." lines on the supervisor's own stderr.
 */

/*
 * At start: open the workers' stdin (sp->devnull) and set every row's
 * out_fd to -1. 0, or -errno when neither /dev/null nor a pipe could be had
 * (nothing left open).
 */
FP__HIDDEN int fp__out_init(struct fp__sup *sp);

/* At the end: close everything fp__out_init and the rows opened. */
FP__HIDDEN void fp__out_fini(struct fp__sup *sp);

/*
 * Before forking row r's worker: make its two output pipes. Stores the read
 * ends in sp->rc[r].out_fd and the write ends in wfd[0..1]. A pipe that
 * cannot be made (RLIMIT_NOFILE...) leaves -1 in both places: that stream
 * goes to /dev/null, logged once per burst. Never fails.
 */
FP__HIDDEN void fp__out_prepare(struct fp__sup *sp, uint32_t r, int wfd[2]);

/*
 * In row r's forked child, before fp__worker_main: ask the kernel to send
 * this process SIGURG when it writes to its pipes (see worker.c), stdin from
 * /dev/null, fd 1 and 2 onto wfd (or /dev/null), and every supervisor
 * descriptor of this module closed. Async-signal-safe (fcntl, dup2, close).
 * Failures cannot be reported from here and leave the stream as it was.
 */
FP__HIDDEN void fp__out_child(struct fp__sup *sp, uint32_t r, int wfd[2]);

/*
 * In the supervisor after fork() returned pid (< 0: failed): close the
 * write ends; on failure close the read ends too.
 */
FP__HIDDEN void fp__out_forked(struct fp__sup *sp, uint32_t r, int wfd[2],
                               pid_t pid);

/* Add the rows' open read ends to pf from pf[n]; returns the new count. */
FP__HIDDEN nfds_t fp__out_pollset(struct fp__sup *sp, struct pollfd *pf,
                                  nfds_t n);

/* After poll: read (bounded, non-blocking) what pf[from..n) says is ready. */
FP__HIDDEN void fp__out_drain(struct fp__sup *sp, const struct pollfd *pf,
                              nfds_t from, nfds_t n);

/* Every turn: log the partial lines of tasks that have ended. */
FP__HIDDEN void fp__out_tick(struct fp__sup *sp);

/*
 * Row r's worker was reaped: read what is left in its pipes (bounded), log
 * it for the task it was running, close the read ends.
 */
FP__HIDDEN void fp__out_reap(struct fp__sup *sp, uint32_t r);

#endif /* FP_SUP_H */
