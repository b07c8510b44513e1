/*
 * The shared segment: one mapping holding the header, the counters, the
 * queue bookkeeping, the worker scoreboard, the client rows and the task
 * slots. This module lays it out, maps it and validates it; it depends on
 * nothing else of ours.
 *
 * Who writes what (and what happens if the writer dies mid-way):
 *   header fixed part   creator, before any other process exists
 *   header state/pid    supervisor only (also producers, producer_share)
 *   counters            atomics; increments are single instructions
 *   free-slot count     a hint: producers and the supervisor, atomics
 *   ready rings         one writer each (a producer's: that producer; the
 *                       retry ring: the supervisor) stores entries and tail;
 *                       anyone taking a task advances head (queue.c)
 *   worker rows         the worker (its current task), the supervisor (pid)
 *   client rows         the client (waiters), workers (done_seq bumps)
 *   slots               the state word: slot.h, the only code storing it
 * Wake-up words and sleeper sets (fp__hint, fp__presence): wake.h.
 */
#ifndef FP_SEGMENT_H
#define FP_SEGMENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

#define FP__MAGIC 0x4c4f4f504b524f46ull /* "FORKPOOL" read little-endian */
/* 6: ready rings, state words with holders, check values (sum.h)
 * computed another way: peers of version 5 would misread everything. */
#define FP__LAYOUT_VERSION 6u

/* Pool states, in the header's futex word `state`. Only move forward. */
enum fp__pool_state {
  FP__POOL_STARTING = 1, /* workers forking and running init */
  FP__POOL_RUNNING = 2,  /* accepting tasks */
  FP__POOL_DRAINING = 3, /* refusing new tasks, finishing queued ones */
  FP__POOL_STOPPING = 4, /* cancelling everything left */
  FP__POOL_STOPPED = 5,  /* every task terminal; supervisor gone or going */
  FP__POOL_FAILED = 6    /* could not start; see start_error */
};

/*
 * Slot states, in the low 8 bits of the slot's state word; RUNNING and
 * ENDING carry who holds the slot in the bits above (slot.h has the
 * transitions, who may make each, and what a death between two stores
 * leaves behind).
 */
enum fp__slot_state {
  FP__SLOT_FREE = 0,
  FP__SLOT_FILLING = 1,
  FP__SLOT_READY = 2,
  FP__SLOT_RUNNING = 3, /* holder: the worker row that claimed it */
  FP__SLOT_DONE = 4,
  FP__SLOT_COLLECTED = 5,
  FP__SLOT_ENDING = 6 /* holder: who ends it unrun (slot.h) */
};

/* Worker row states, for the scoreboard. */
enum fp__row_state {
  FP__ROW_EMPTY = 0,    /* no process */
  FP__ROW_STARTING = 1, /* forked, running init */
  FP__ROW_IDLE = 2,     /* waiting for a task */
  FP__ROW_BUSY = 3,     /* running a task */
  FP__ROW_BACKOFF = 4   /* dead, waiting out a crash-loop delay */
};

/* Task ids: generation << FP__ID_SHIFT | slot index. Never 0. */
#define FP__ID_SHIFT 24u
#define FP__ID_INDEX_MASK ((1u << FP__ID_SHIFT) - 1u)

struct fp__counters {
  /* submitted is q.next_seq; ok and failed are sums over worker rows. */
  _Atomic uint64_t crashed;
  _Atomic uint64_t timeout;
  _Atomic uint64_t cancelled;
  _Atomic uint64_t restarts;
  _Atomic uint64_t abandoned;
  _Atomic uint64_t repairs; /* queue rebuilt after a lock holder died */
  _Atomic uint64_t retried;
  _Atomic uint64_t quarantined;
  _Atomic uint64_t corrupt; /* damage found (any process); see fp_stats */
} FP__ALIGNED;

/*
 * A counting wake-up hint on a futex: our own rather than glibc's sem_t,
 * whose functions abort the process ("The futex facility returned an
 * unexpected error code") when a stray write damaged the semaphore. Here a
 * damaged value costs at worst some spurious wake-ups, which every caller
 * rechecks anyway, until the supervisor resets it.
 */
struct fp__hint {
  _Atomic uint32_t v; /* tokens posted and not yet taken */
};

/*
 * One ready ring: a FIFO of slot indices (entries in the segment's ring
 * region, fp__ring_cap(nslots) of them per ring). Counters never wrap
 * (64 bits); entry k lives at k % cap.
 *   tail  the ring's single writer stores entry `tail`, then tail + 1
 *         (a producer for its own rings, the supervisor for the retry ring)
 *   head  whoever takes a task (workers; the supervisor when it sweeps)
 *         moves it on by compare-and-swap, after it claimed the slot or
 *         found the entry stale (queue.c)
 * On separate lines: the writer's stores do not steal the takers' line.
 */
struct fp__ring {
  _Atomic uint64_t tail FP__ALIGNED;
  _Atomic uint64_t head FP__ALIGNED;
};

/*
 * What a ring's writer keeps in its own memory (never in the segment): the
 * tail it writes, and the head it last read, so that a push reads the
 * takers' line only when the ring looks full.
 */
struct fp__ring_writer {
  uint64_t tail;
  uint64_t head_seen;
};

/* Entries per ring: nslots rounded up to a power of two. */
static inline uint32_t fp__ring_cap(uint32_t nslots) {
  uint32_t c = 1;
  while (c < nslots) c <<= 1;
  return c;
}

struct fp__queue {
  /*
   * FREE slots, roughly (a hint: whether a scan for one is worth it, and
   * the fair shares' reserve): -1 by a producer after it claimed a FREE
   * slot, +1 by whoever freed one. A process killed between its move and
   * its count leaves it off by one; the supervisor recounts at every tick
   * (queue.c, fp__q_recount). Nobody waits on it.
   */
  _Atomic uint32_t nfree;
  /*
   * Rows a producer ever claimed + 1 (workers scan the rings of rows below
   * it): raised by a producer as it attaches (compare-and-swap, only up),
   * never lowered. A stray write is bounded by nclients where read.
   */
  _Atomic uint32_t clients_hwm;
  /*
   * Set by anyone who finds a ring damaged (head past tail, or more than
   * a ring's capacity between them): the supervisor then sweeps (queue.c,
   * fp__q_sweep) at its next tick. Single stores; nothing to undo.
   */
  _Atomic uint32_t sweep;
  /*
   * READY tasks of dead producers that no ring held (their producer died
   * between publishing the slot and its ring entry), put on the retry ring
   * by the supervisor: counted as submitted (fp_stats.submitted is the sum
   * of the producers' ring tails plus this).
   */
  _Atomic uint64_t rescued;
  struct fp__ring retry; /* retries and rescues: the supervisor writes */
  struct fp__hint work_hint FP__ALIGNED; /* wakes sleeping workers */
  struct fp__hint space_hint; /* ...producers waiting for a free slot */
} FP__ALIGNED;

/* A set of up to 4096 rows, one bit each (see struct fp__hdr). */
#define FP__SET_WORDS 64
struct fp__presence {
  _Atomic uint64_t w[FP__SET_WORDS];
} FP__ALIGNED;

struct fp__hdr {
  /* Fixed at creation, before any other process can see the segment. */
  uint64_t magic;
  uint32_t version;
  uint32_t hdr_bytes;
  uint64_t seg_bytes;
  uint32_t nslots;
  uint32_t nrows; /* worker rows in the scoreboard */
  uint32_t nclients;
  uint32_t max_input;
  uint32_t max_output;
  uint32_t slot_stride;
  uint64_t ring_off, rows_off, clients_off, slots_off;
  uint32_t uid;
  uint32_t timeout_ms;
  uint32_t max_tasks;
  uint32_t flags;

  /* Supervisor-written. */
  _Atomic uint32_t state; /* enum fp__pool_state; futex word */
  _Atomic int32_t sup_pid;
  _Atomic int32_t start_error; /* positive errno when FAILED */
  _Atomic uint32_t workers_target;
  _Atomic uint64_t sup_start_ns;
  uint32_t min_workers, max_workers; /* autoscaling bounds (0: fixed) */
  _Atomic uint64_t last_resize_ns;
  uint32_t spin_max; /* workers (and producers) spinning at once */
  uint32_t ncpu;     /* online CPUs when the pool was made */
  /*
   * Fair shares between the producers of a named pool (sup_clients.c,
   * fp__sup_count_producers). Written by the supervisor once per tick,
   * each a single store, and by a producer as it attaches (attach.c,
   * share_join: +1 on producers, then a compare-and-swap that only
   * lowers producer_share). Whoever is stopped or killed between the two
   * stores leaves a count off by one for at most a tick (the supervisor's
   * next count rewrites both): a share too small or too large for 100 ms,
   * which still bounds every producer. A hostile write is undone the same
   * way. 0 in a private pool: no share.
   *   producers       client rows whose OFD lock is held
   *   producer_share  uncollected tasks one producer may hold:
   *                   max(1, (nslots - nslots / 4) / producers)
   * Producers read producer_share at each submit (client.c) and compare it
   * with their own count of pending tasks: one load on the fast path. The
   * last quarter of the free stack is taken only by a producer holding
   * fewer than max(1, (nslots / 4) / producers) tasks (fp__q_reserve_ok).
   */
  _Atomic uint32_t producers;
  _Atomic uint32_t producer_share;
  /* Scheduling hints, on their own line: written often, by everyone. */
  _Atomic uint32_t avg_task_ns FP__ALIGNED; /* moving average of run time */
  _Atomic uint32_t workers_alive;           /* supervisor-written */
  /*
   * Who is idle, asleep or spinning: one bit per worker row (w_*) or
   * producer row (p_*), set and cleared only by its owner. The supervisor
   * clears the bits of a worker it reaped or a producer it found gone, so
   * a process killed while asleep or spinning leaves no phantom behind
   * (plain counters would keep it for ever).
   */
  struct fp__presence w_idle, w_asleep, w_spin, p_asleep, p_spin;

  struct fp__counters c;
  struct fp__queue q;
};

struct fp__row {
  _Atomic int32_t pid;
  _Atomic uint32_t state;      /* enum fp__row_state */
  _Atomic uint32_t slot;       /* slot index of the current task, or NONE */
  _Atomic uint32_t init_error; /* init hook's error code, when it failed */
  _Atomic uint64_t task_id;    /* current task, 0 when idle */
  _Atomic uint64_t started_ns; /* CLOCK_MONOTONIC start of current task */
  _Atomic uint64_t done;       /* tasks finished by this process */
  _Atomic uint64_t total_done; /* tasks finished in this row, all processes */
  _Atomic uint32_t restarts;   /* processes forked into this row - 1 */
  _Atomic uint32_t retire;     /* supervisor asks: exit before next task */
  /*
   * The kill handshake (worker.c, "Ending a task" explains it): the
   * supervisor stores the id of a task it means to kill (timeout, cancel)
   * in doom before it reads task_id; the worker clears task_id before it
   * reads doom. Only the supervisor writes doom and doom_gen; it zeroes
   * doom when it forks a worker into the row. doom_gen is a futex word,
   * bumped when the supervisor withdraws a doom, to wake a parked worker.
   * The worker writes neither, so its death or a SIGSTOP between any two
   * of its stores leaves them consistent.
   */
  _Atomic uint64_t doom;     /* task the supervisor will kill, or 0 */
  _Atomic uint32_t doom_gen; /* +1 per doom withdrawn (futex word) */
  /*
   * Exactly-once counting of finished tasks, whatever instant the worker
   * dies at. Only the row's worker writes ok/failed (or the supervisor,
   * once that worker is reaped). At take the worker snapshots them; it
   * commits a result by writing fin_status then fin_task, publishes DONE,
   * then stores snapshot + 1: a single store that counts. The supervisor
   * sees from fin_task whether the result was committed and from the
   * snapshot whether it was counted. Pool totals are the sums over rows.
   */
  _Atomic uint64_t ok, failed;
  _Atomic uint64_t ok_snap, failed_snap; /* FP_CORRUPT counts as failed */
  _Atomic uint64_t fin_task;
  _Atomic uint32_t fin_status;
  /* Run-time histogram of tasks ended in this row (not cumulative). */
  _Atomic uint64_t dur[FP_DURATION_BUCKETS];
  _Atomic uint64_t dur_sum_us;
  /*
   * max_rss_mb: the resident set (KiB) this row's worker had when it left
   * to be recycled, written by it just before its clean _exit(0), zeroed
   * by the supervisor at fork. The supervisor reads it only after reaping
   * a worker that exited 0, for the log line; a worker SIGKILLed or
   * SIGSTOPped after the store is no clean exit (or no exit), so the value
   * is never read then and is reset at the next fork.
   */
  _Atomic uint32_t rss_exit_kb;
} FP__ALIGNED;

/*
 * A producer's row. A producer owns row r while it holds the OFD lock on
 * byte FP__CLIENT_LOCK_BYTE(r) of the segment's file; on claiming it bumps
 * `gen` and stamps every slot it takes with (r, gen). When the lock is free,
 * the supervisor reclaims slots stamped (r, gen <= the gen it read before
 * testing the lock): a later claimant's slots carry a higher gen.
 */
struct fp__client {
  /*
   * Cache lines by writer: done_seq (workers, per task watched), the wait
   * and claim
   * fields (this producer, rarely), then each ring's tail (this producer)
   * and head (workers). Sharing one line made every finished task steal
   * the line the next submit needs.
   */
  /*
   * done_seq: a futex word, +1 per task of ours finished while somebody
   * watches (watchers or waiters non-zero: wake.h, fp__wake_owner). Both
   * counts are the producer's (+1 before it looks, -1 after); one killed
   * in between leaves a count too high, which only makes finishers bump
   * done_seq for nobody until the row's next claimant (fp__rings_join
   * clears them: nobody else watches a row whose holder is gone).
   */
  _Atomic uint32_t done_seq FP__ALIGNED;
  _Atomic uint32_t waiters FP__ALIGNED; /* threads asleep on done_seq */
  _Atomic uint32_t watchers;            /* threads spinning on done_seq */
  _Atomic uint32_t woken; /* a wake is on its way: skip the syscall */
  _Atomic int32_t pid;    /* last claimant, for stat; 0 if never */
  _Atomic uint32_t gen;   /* bumped on each claim */
  /*
   * Tasks this row's producers published and then took back because a
   * stop began (client.c, publish): fp_stats.submitted subtracts them.
   * Single writer (the producer), one increment after the take-back;
   * killed between the two, one task too many is counted submitted.
   */
  _Atomic uint64_t withdrawn;
  /*
   * This producer's READY tasks, one ring per priority (normal, high).
   * Workers take from the producers in turn: one that floods the queue
   * cannot starve the others.
   */
  struct fp__ring rq[2];
} FP__ALIGNED;

/* OFD lock bytes of a named segment's file: liveness tokens. */
#define FP__SUP_LOCK_BYTE 0
#define FP__CLIENT_LOCK_BYTE(r) (1 + (off_t)(r))

/*
 * A slot: a header of two cache lines (producer-written fields first,
 * result fields on the second line), then the input and output buffers.
 */
struct fp__slot {
  _Atomic uint32_t state; /* enum fp__slot_state | holder << 8 (slot.h) */
  uint32_t owner;         /* client row */
  uint32_t owner_gen;     /* that row's gen when the slot was taken */
  uint32_t prio;          /* 0 normal, 1 high */
  _Atomic uint64_t id;
  uint64_t gen; /* bumped on each FREE -> FILLING */
  uint64_t seq; /* submission order */
  uint32_t in_len;
  /* clang-format off */
  uint32_t attempts;        /* runs ended so far: by its worker at the end
                               of a run, by the supervisor for a run its
                               worker died in (0 at submit) */
  _Atomic int32_t worker;   /* pid running it (set with RUNNING) */
  uint32_t row;             /* scoreboard row of that worker */
  uint64_t in_sum;          /* check value of id, in_len, input (sum.h) */
  /* clang-format on */
  /*
   * 1: fp_cancel asked the supervisor to kill this RUNNING task's worker
   * (sup_kill.c, check_cancels). Reset to 0 by fill. A queued task is
   * cancelled by its state word instead (READY -> ENDING, slot.h).
   */
  _Atomic uint32_t cancel;

  /* Result: written before state becomes DONE (release). */
  int32_t status FP__ALIGNED;
  int32_t code;
  int32_t sig;
  int32_t exit_code;
  uint32_t out_len;
  uint32_t spawn_len; /* bytes of spawned tasks after the output */
  uint64_t run_us;
  uint64_t started_ns;
  uint64_t res_sum; /* check value of the result (sum.h) */
};

#define FP__SLOT_HDR_BYTES ((uint32_t)sizeof(struct fp__slot))

/* Sizes a segment is created from. */
struct fp__geometry {
  uint32_t nslots, nrows, nclients, max_input, max_output;
};

/* A mapped segment as one process sees it. */
struct fp__seg {
  struct fp__hdr *hdr;
  unsigned char *base;
  size_t len;    /* the layout's size */
  size_t maplen; /* bytes mapped, when not len (attached segments) */
  int fd;        /* the shm object of a named pool, else -1 */
  /*
   * Geometry, copied from the header once it was validated (or laid out).
   * Code reads these, never the header's: a buggy worker scribbling over
   * the shared header cannot steer anyone's indexing out of bounds.
   */
  uint32_t nslots, nrows, nclients, max_input, max_output, slot_stride;
  uint64_t ring_off, rows_off, clients_off, slots_off;
  uint32_t ring_cap; /* entries per ready ring: fp__ring_cap(nslots) */
  /*
   * Ready ring entries: ring c (a client row's normal ring 2c, its high
   * ring 2c + 1; the retry ring 2 * nclients) holds ents + c * ring_cap.
   */
  _Atomic uint32_t *ents;
};

/* Number of ready rings: two per client row, and the retry ring. */
static inline uint32_t fp__nrings(uint32_t nclients) {
  return 2 * nclients + 1;
}

/*
 * Bytes a segment of this geometry needs, or 0 when it would exceed
 * FP_MAX_SEGMENT_BYTES (or overflow).
 */
FP__HIDDEN uint64_t fp__seg_bytes(const struct fp__geometry *g);

/*
 * Map a new anonymous shared segment (inherited by fork) and lay it out:
 * header, empty rings and wake-up words, every slot FREE (and counted
 * so). Returns 0 and fills *seg, or -ENOMEM/-EINVAL/-errno with
 * nothing mapped.
 */
FP__HIDDEN int fp__seg_create_anon(struct fp__seg *seg,
                                   const struct fp__geometry *g);

/*
 * Lay out a new segment in `len` zeroed bytes at `map` (magic written last)
 * and fill *seg. Returns 0, or -EINVAL (too small), -errno (sync init).
 */
FP__HIDDEN int fp__seg_layout(void *map, size_t len,
                              const struct fp__geometry *g,
                              struct fp__seg *seg);

/* Set the geometry and seg->ents from a validated header. */
FP__HIDDEN void fp__seg_bind(struct fp__seg *seg);

/*
 * mmap `len` bytes at a random address between two PROT_NONE guard pages.
 * Same arguments and return as mmap (fd -1 for anonymous). Unmap with
 * fp__unmap_guarded(), which removes the guards too.
 */
FP__HIDDEN void *fp__map_guarded(size_t len, int prot, int flags, int fd);
FP__HIDDEN void fp__unmap_guarded(void *map, size_t len);

/* Keep the mapping (and its guards) out of children forked from now on. */
FP__HIDDEN void fp__seg_dontfork(const struct fp__seg *seg);

/*
 * Seal mode (worker): make the segment inaccessible (on = 1) or usable
 * again (on = 0). 0 or -errno. fp__sealed() says whether it is
 * sealed now (for the fault handler).
 */
FP__HIDDEN int fp__seal(const struct fp__seg *s, int on);
FP__HIDDEN int fp__sealed(void);

/* Unmap and close. Leaves *seg zeroed with fd -1. Safe on a zeroed seg. */
FP__HIDDEN void fp__seg_unmap(struct fp__seg *seg);

/*
 * Check that a mapping of `len` bytes holds a segment this code can use:
 * magic, version, every size and offset against len. Returns 0 or -EPROTO
 * (other version), -EBADMSG (not a segment, or corrupt). Reads only.
 */
FP__HIDDEN int fp__seg_validate(const void *map, size_t len);

/* Count a task's run time in row r's histogram (single writer per row). */
static inline void fp__row_duration(struct fp__row *row, uint64_t us) {
  static const uint64_t bounds[] = FP_DURATION_BOUNDS_US;
  unsigned k = 0;
  while (k + 1 < FP_DURATION_BUCKETS && us > bounds[k]) k++;
  /* One writer at a time (the worker, or the supervisor once it is
   * reaped): a load and a store, no locked instruction. */
  atomic_store_explicit(
      &row->dur[k],
      atomic_load_explicit(&row->dur[k], memory_order_relaxed) + 1,
      memory_order_relaxed);
  atomic_store_explicit(
      &row->dur_sum_us,
      atomic_load_explicit(&row->dur_sum_us, memory_order_relaxed) + us,
      memory_order_relaxed);
}

static inline struct fp__slot *fp__slot_at(const struct fp__seg *s,
                                           uint32_t i) {
  return (struct fp__slot *)(s->base + s->slots_off +
                             (uint64_t)i * s->slot_stride);
}

static inline unsigned char *fp__slot_in(struct fp__slot *sl) {
  return (unsigned char *)sl + FP__SLOT_HDR_BYTES;
}

static inline unsigned char *fp__slot_out(const struct fp__seg *s,
                                          struct fp__slot *sl) {
  return (unsigned char *)sl + FP__SLOT_HDR_BYTES +
         ((s->max_input + FP__CACHELINE - 1) & ~(FP__CACHELINE - 1u));
}

static inline struct fp__row *fp__row_at(const struct fp__seg *s, uint32_t i) {
  return (struct fp__row *)(s->base + s->rows_off) + i;
}

static inline struct fp__client *fp__client_at(const struct fp__seg *s,
                                               uint32_t i) {
  return (struct fp__client *)(s->base + s->clients_off) + i;
}

/*
 * Per worker row: a crash or hang report the worker writes from a signal
 * handler (queue.h does not apply: only that worker writes it, and only
 * the supervisor reads it, after reaping or after the report is flagged).
 */
#define FP__REPORT_BYTES 4096u

struct fp__report {
  _Atomic uint64_t task_id; /* the task it is about; written last */
  _Atomic uint32_t len;     /* bytes of text */
  _Atomic uint32_t done;    /* a hang dump finished */
  char text[FP__REPORT_BYTES - 16];
};

static inline struct fp__report *fp__report_at(const struct fp__seg *s,
                                               uint32_t r) {
  uint64_t off =
      s->clients_off + (uint64_t)s->nclients * sizeof(struct fp__client);
  off = (off + FP__CACHELINE - 1) & ~(uint64_t)(FP__CACHELINE - 1);
  return (struct fp__report *)(s->base + off) + r;
}

#endif /* FP_SEGMENT_H */
