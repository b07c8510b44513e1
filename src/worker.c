/*
 * The worker loop: take a READY task, run the handler on the slot's input,
 * write the result, mark the slot DONE and wake its producer.
 *
 * If this process is SIGKILLed between any two instructions:
 *   - inside the queue lock: the next locker rebuilds the rings (queue.c);
 *   - after claiming a task (row->slot set, slot RUNNING with our pid): the
 *     supervisor, after reaping us, ends that task CRASHED;
 *   - after storing DONE: the result stands; the task is not touched again.
 */
#include <signal.h>
#include <string.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#include "proc.h"
#include "queue.h"
#include "report.h"
#include "spin.h"
#include "sum.h"

void fp__reset_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &sa, NULL); /* EINVAL for glibc-reserved ones: fine */
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

void fp__purge_stdio(void) {
  __fpurge(stdin);
  __fpurge(stdout);
  __fpurge(stderr);
}

/*
 * The sealed room (DESIGN.md, invariant 8), worker side:
 *   - fd 0 is /dev/null and fd 1 and 2 are pipes to the supervisor
 *     (sup_output.c), set up before fp__worker_main;
 *   - the segment is mapped MADV_DONTFORK, so a process the handler forks
 *     has no mapping of it at all; and a fork() child that returns from the
 *     handler (a failed exec) ends at once (in_child, set by an atfork
 *     hook, costs no system call per task);
 *   - exit() in user code runs our on_exit hook first (handlers run LIFO,
 *     and ours is registered after everything the host registered), which
 *     _exits with the status: no atexit handler of the host runs, and no
 *     stdio buffer is flushed but the worker's own stdout and stderr, which
 *     hold only what user code printed (the host's bytes were purged).
 */
static volatile sig_atomic_t in_child;   /* a fork() child of the worker */
static volatile sig_atomic_t out_written; /* SIGURG: fd 1 or 2 written */

static void atfork_child(void) { in_child = 1; }

static void on_out_written(int sig) {
  (void)sig;
  out_written = 1;
}

static void exit_hook(int status, void *arg) {
  (void)arg;
  /* What the handler printed before exit() is logged, as exit() would. */
  fflush(stdout);
  fflush(stderr);
  _exit(status);
}

/*
 * After a task that wrote to fd 1 or 2: wait until the supervisor has read
 * the pipes empty, so that it logs those bytes under this task. 200 ms at
 * most: a leftover child that keeps writing must not hold every task that
 * long. FIONREAD fails (ENOTTY, EBADF) when user code redirected or closed
 * the descriptor: nothing to wait for then.
 */
static void settle_output(void) {
  out_written = 0;
  for (int k = 0; k < 400; k++) {
    int a = 0, b = 0;
    if ((ioctl(1, FIONREAD, &a) != 0 || a == 0) &&
        (ioctl(2, FIONREAD, &b) != 0 || b == 0))
      return;
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL);
  }
}

/* Right after user code returned (the handler), before the segment is
 * touched again. Returns only in the worker itself. */
static void after_user_code(void) {
  if (in_child) _exit(127); /* a second worker must never exist */
  if (out_written) settle_output();
}

struct take_ctx {
  struct fp__seg *s;
  struct fp__row *row;
};

static int ready_or_stopping(void *arg) {
  struct take_ctx *c = arg;
  return atomic_load(&c->s->hdr->q.ready_len) > 0 ||
         atomic_load(&c->s->hdr->state) >= FP__POOL_DRAINING ||
         atomic_load(&c->row->retire);
}

/*
 * Claim the oldest READY task for row `r`. Returns its slot index, or NONE
 * when the pool is draining with nothing queued, stopping, the row is
 * retired, or the supervisor is gone: the worker should then exit.
 */
static uint32_t take(struct fp__seg *s, uint32_t r, pid_t self, pid_t sup) {
  struct fp__hdr *h = s->hdr;
  struct fp__row *row = fp__row_at(s, r);
  struct take_ctx ctx = {s, row};
  for (;;) {
    uint32_t st = atomic_load(&h->state);
    /* Retired (reload, shrink): exit between tasks, never inside one. */
    if (st >= FP__POOL_STOPPING || atomic_load(&row->retire)) return FP__NONE;
    if (fp__q_lock(s) != 0) return FP__NONE;
    uint32_t i = fp__q_take_ready(s);
    if (i != FP__NONE) {
      struct fp__slot *sl = fp__slot_at(s, i);
      /*
       * Row first: the supervisor finds our task through row->slot, and
       * ends it only if the slot is RUNNING with our pid. Dying between
       * these stores leaves either a READY slot (rebuilt into the ring) or
       * a RUNNING one the supervisor can find.
       */
      atomic_store_explicit(&row->slot, i, memory_order_release);
      sl->attempts++;
      sl->row = r;
      atomic_store_explicit(&sl->worker, self, memory_order_release);
      /* Release stores keep this order without a full barrier each. */
      atomic_store_explicit(&sl->state, FP__SLOT_RUNNING, memory_order_release);
      fp__q_unlock(s);
      /*
       * The rest after the lock, which producers wait for: moving the clock
       * read and these stores out of it raised throughput by about 10%
       * (forkpool bench --inflight 256, medians of five). Dying before
       * task_id is set leaves task_id 0: the supervisor ends the RUNNING
       * slot as crashed, and the stale snapshots are never read (they
       * matter only once task_id names this task; see struct fp__row).
       * started_ns goes before task_id for the timeout check's seqlock.
       */
      uint64_t now = fp__now_ns();
      sl->started_ns = now;
      atomic_store(&row->ok_snap, atomic_load(&row->ok));
      atomic_store(&row->failed_snap, atomic_load(&row->failed));
      atomic_store(&row->started_ns, now);
      atomic_store(&row->task_id, atomic_load(&sl->id));
      atomic_store(&row->state, FP__ROW_BUSY);
      /* More waiting: maybe another worker should help (cascade). */
      if (atomic_load(&h->q.ready_len) > 0) fp__q_kick(s);
      return i;
    }
    fp__q_unlock(s);
    if (st >= FP__POOL_DRAINING) return FP__NONE;
    /* Idle and awake: producers count on us before they wake a sleeper. */
    fp__pset(&h->w_idle, r);
    uint32_t idle = fp__pcount(&h->w_idle, s->nrows);
    /*
     * Spin only while a core is free for it: busy workers plus one
     * producer already fill the others, and spinning then steals the CPU
     * the work needs.
     */
    uint32_t alive = atomic_load(&h->workers_alive);
    uint32_t asleep = fp__pcount(&h->w_asleep, s->nrows);
    uint32_t busy = alive > asleep + idle ? alive - asleep - idle : 0;
    int hit = busy + 1 < h->ncpu &&
              fp__spin(h, &h->w_spin, r, s->nrows, ready_or_stopping, &ctx);
    fp__pclr(&h->w_idle, r);
    if (hit) continue;
    fp__q_sleep(&h->q.ready_sem, &h->w_asleep, r, 1000000000u,
                ready_or_stopping, &ctx);
    /* PR_SET_PDEATHSIG covers this; the check covers a lost race. */
    if (getppid() != sup) return FP__NONE;
  }
}

/*
 * Seal mode: the segment (with its guard pages) is PROT_NONE while user
 * code runs; the handler works on private copies.
 */
static unsigned char *seal_in, *seal_out;

static int call_sealed(const struct fp__seg *s, const fp_config *cfg,
                       struct fp__slot *sl, uint32_t in_len, size_t *out_len) {
  memcpy(seal_in, fp__slot_in(sl), in_len);
  unsigned char *out = fp__slot_out(s, sl);
  fp__seal(s, 1);
  int rc = cfg->handler(cfg->arg, seal_in, in_len, seal_out, s->max_output,
                        out_len);
  after_user_code(); /* a child must not unseal (its mprotect would fail
                        anyway: it has no mapping) */
  fp__seal(s, 0);
  if (*out_len <= s->max_output) memcpy(out, seal_out, *out_len);
  return rc;
}

/*
 * Tasks the running handler spawned (fp_spawn), kept in this worker's own
 * memory until the handler returns: records of a 4-byte length and bytes.
 * They go after the output in the slot only if the task finishes (ok or
 * failed); a crash spawns nothing.
 */
static struct {
  int active;
  uint32_t max_input;
  unsigned char *buf;
  size_t used, cap;
} spawned;

FP_EXTERN int fp_spawn(const void *in, size_t len) {
  if (!spawned.active) return -EPERM;
  if (in == NULL && len > 0) return -EINVAL;
  if (len > spawned.max_input) return -EMSGSIZE;
  size_t need = spawned.used + 4 + len;
  if (need > spawned.cap) {
    size_t cap = spawned.cap ? spawned.cap : 256;
    while (cap < need) cap *= 2;
    unsigned char *b = realloc(spawned.buf, cap);
    if (b == NULL) return -ENOMEM;
    spawned.buf = b;
    spawned.cap = cap;
  }
  uint32_t l = (uint32_t)len;
  memcpy(spawned.buf + spawned.used, &l, 4);
  if (len > 0) memcpy(spawned.buf + spawned.used + 4, in, len);
  spawned.used = need;
  return 0;
}

/* Run the handler on slot i and publish the result. */
static void run_task(struct fp__seg *s, uint32_t r, uint32_t i,
                     const fp_config *cfg) {
  struct fp__hdr *h = s->hdr;
  struct fp__slot *sl = fp__slot_at(s, i);
  struct fp__row *row = fp__row_at(s, r);
  size_t out_len = 0;
  int rc;
  uint32_t in_len = sl->in_len;
  uint64_t id = atomic_load(&sl->id);
  int damaged = in_len > s->max_input ||
                fp__in_sum(sl, id, in_len) != sl->in_sum;
  if (damaged) {
    rc = 0; /* a damaged input never reaches the handler */
    atomic_fetch_add(&h->c.corrupt, 1);
  } else {
    spawned.active = 1;
    spawned.used = 0;
    spawned.max_input = s->max_input;
    rc = seal_in != NULL
             ? call_sealed(s, cfg, sl, in_len, &out_len)
             : cfg->handler(cfg->arg, fp__slot_in(sl), in_len,
                            fp__slot_out(s, sl), s->max_output, &out_len);
    if (seal_in == NULL) after_user_code();
    spawned.active = 0;
  }
  uint64_t end = fp__now_ns();
  /* Moving average (1/8) of run time, for the wake-up policy (queue.h). */
  int64_t avg = atomic_load(&h->avg_task_ns);
  int64_t d = (int64_t)(end - sl->started_ns);
  if (d > UINT32_MAX) d = UINT32_MAX;
  atomic_store(&h->avg_task_ns, (uint32_t)(avg + (d - avg) / 8));
  if (damaged) {
    sl->status = FP_CORRUPT;
    sl->code = EBADMSG;
    out_len = 0;
  } else if (rc < 0 || out_len > s->max_output) {
    sl->status = FP_FAILED;
    sl->code = EPROTO; /* handler broke its contract */
    out_len = out_len > s->max_output ? 0 : out_len;
  } else {
    sl->status = rc == 0 ? FP_OK : FP_FAILED;
    sl->code = rc;
  }
  sl->spawn_len = 0;
  if (!damaged && spawned.used > 0) {
    if (out_len + spawned.used <= s->max_output) {
      memcpy(fp__slot_out(s, sl) + out_len, spawned.buf, spawned.used);
      sl->spawn_len = (uint32_t)spawned.used;
    } else {
      /* Output and spawned tasks must fit in max_output together. */
      sl->status = FP_FAILED;
      sl->code = ENOSPC;
    }
  }
  sl->sig = 0;
  sl->exit_code = -1;
  sl->out_len = (uint32_t)out_len;
  sl->run_us = (end - sl->started_ns) / 1000u;
  fp__row_duration(row, sl->run_us);
  sl->res_sum = fp__res_sum(s, sl, id);
  uint32_t owner = sl->owner;
  int ok = sl->status == FP_OK;
  /* Commit (see struct fp__row), publish, count: three single stores. */
  atomic_store(&row->fin_status, (uint32_t)sl->status);
  atomic_store(&row->fin_task, atomic_load(&row->task_id));
  /* Release: the producer that sees DONE sees every field above. */
  atomic_store(&sl->state, FP__SLOT_DONE);
  if (ok) atomic_store(&row->ok, atomic_load(&row->ok_snap) + 1);
  else atomic_store(&row->failed, atomic_load(&row->failed_snap) + 1);
  atomic_store(&row->task_id, 0);
  atomic_store(&row->slot, FP__NONE);
  atomic_store(&row->state, FP__ROW_IDLE);
  atomic_fetch_add(&row->done, 1);
  atomic_fetch_add(&row->total_done, 1);
  fp__notify_owner(s, owner);
}

/*
 * Bound what this worker may allocate: its address space now (the program
 * image, the shared segment) plus max_memory_mb. Returns 0 or -errno.
 */
static int limit_memory(unsigned mb) {
  if (mb == 0) return 0;
  unsigned long pages = 0;
  FILE *f = fopen("/proc/self/statm", "re");
  if (f == NULL) return -errno;
  int n = fscanf(f, "%lu", &pages);
  fclose(f);
  if (n != 1) return -EIO;
  rlim_t lim = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) +
               (rlim_t)mb * 1024 * 1024;
  struct rlimit rl = {lim, lim};
  return setrlimit(RLIMIT_AS, &rl) == 0 ? 0 : -errno;
}

void fp__worker_main(struct fp__seg *s, uint32_t r, const fp_config *cfg,
                     pid_t sup, const int *fds, int nfds) {
  /* Die with the supervisor; then make sure it did not die already. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != sup) _exit(1);
  /* Own process group, so a timeout kill takes the task's children too. */
  setpgid(0, 0);
  for (int k = 0; k < nfds; k++)
    if (fds[k] >= 0) close(fds[k]);
  struct fp__row *row = fp__row_at(s, r);
  /* The sealed room: see above. The host's stdio bytes are not ours. */
  fp__seg_dontfork(s);
  fp__purge_stdio();
  /* A pipe makes stdout fully buffered: lines go out as they are printed. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (on_exit(exit_hook, NULL) != 0 ||
      pthread_atfork(NULL, NULL, atfork_child) != 0) {
    atomic_store(&row->init_error, ENOMEM);
    _exit(FP__EXIT_INIT);
  }
  fp__reset_signals();
  /* SA_RESTART: a write the signal follows is not cut short by it. */
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_out_written;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGURG, &sa, NULL); /* cannot fail for SIGURG */
  /* Crash and hang reports; a worker without them still works. */
  fp__report_arm(s, r);

  pid_t self = getpid();
  if (cfg->seal) {
    seal_in = malloc(s->max_input ? s->max_input : 1);
    seal_out = malloc(s->max_output);
    if (seal_in == NULL || seal_out == NULL) _exit(FP__EXIT_INIT);
  }
  int lerr = limit_memory(cfg->max_memory_mb);
  if (lerr < 0) {
    atomic_store(&row->init_error, (uint32_t)-lerr);
    _exit(FP__EXIT_INIT);
  }
  if (cfg->worker_init != NULL) {
    int rc = cfg->worker_init(cfg->arg);
    if (rc != 0) {
      atomic_store(&row->init_error, rc > 0 ? (uint32_t)rc : EPROTO);
      _exit(FP__EXIT_INIT);
    }
  }
  atomic_store(&row->state, FP__ROW_IDLE);

  uint64_t done = 0;
  while (cfg->max_tasks == 0 || done < cfg->max_tasks) {
    uint32_t i = take(s, r, self, sup);
    if (i == FP__NONE) break;
    run_task(s, r, i, cfg);
    done++;
  }
  if (cfg->worker_fini != NULL) cfg->worker_fini(cfg->arg);
  _exit(0);
}
