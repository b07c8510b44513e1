/*
 * The supervisor: forks the workers, reaps them, ends the task of a dead
 * worker, kills tasks past their timeout, restarts workers with a capped
 * exponential backoff when they keep dying without finishing a task, and
 * carries out stop requests. It never runs user code.
 *
 * It is single-threaded and sleeps in poll() on a signalfd (SIGCHLD, SIGTERM,
 * SIGINT) and the owner's command pipe, waking at least once per tick to
 * check task deadlines and due restarts.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "proc.h"
#include "queue.h"

enum { KILL_NONE = 0, KILL_TIMEOUT = 1, KILL_STOP = 2 };

#define BACKOFF_BASE_NS 10000000ull /* 10 ms */
#define BACKOFF_MAX_NS 1000000000ull /* 1 s */

struct rowctl {
  uint64_t spawn_at; /* when an empty row may be forked again */
  int kill_reason;   /* why we SIGKILLed it, if we did */
  uint64_t kill_task;
};

struct sup {
  struct fp__seg *s;
  const fp_config *cfg;
  int cmd_fd, sfd;
  uint32_t nrows;
  struct rowctl *rc;
  uint32_t streak;         /* consecutive deaths with no task finished */
  uint64_t drain_deadline;
  pid_t self;
};

static void set_state(struct sup *sp, uint32_t st) {
  atomic_store(&sp->s->hdr->state, st);
  fp__futex_wake(&sp->s->hdr->state);
}

/* Wake everyone who might sleep on the pool: workers, producers. */
static void wake_all(struct sup *sp) {
  struct fp__hdr *h = sp->s->hdr;
  for (uint32_t k = atomic_load(&h->q.ready_sleepers); k > 0; k--)
    sem_post(&h->q.ready_sem);
  for (uint32_t k = atomic_load(&h->q.space_sleepers); k > 0; k--)
    sem_post(&h->q.space_sem);
  for (uint32_t c = 0; c < h->nclients; c++) fp__notify_owner(sp->s, c);
  fp__futex_wake(&h->state);
}

/* End a task that will not finish normally. Slot must be READY or RUNNING. */
static void end_task(struct sup *sp, struct fp__slot *sl, fp_status st,
                     int sig, int exit_code, uint64_t now) {
  struct fp__hdr *h = sp->s->hdr;
  sl->status = st;
  sl->code = 0;
  sl->sig = sig;
  sl->exit_code = exit_code;
  sl->out_len = 0;
  sl->run_us = sl->started_ns != 0 && now > sl->started_ns
                   ? (now - sl->started_ns) / 1000u
                   : 0;
  uint32_t owner = sl->owner;
  atomic_store(&sl->state, FP__SLOT_DONE);
  _Atomic uint64_t *ctr = st == FP_CRASHED   ? &h->c.crashed
                          : st == FP_TIMEOUT ? &h->c.timeout
                                             : &h->c.cancelled;
  atomic_fetch_add(ctr, 1);
  fp__notify_owner(sp->s, owner);
}

static int spawn(struct sup *sp, uint32_t r) {
  struct fp__row *row = fp__row_at(sp->s, r);
  atomic_store(&row->slot, FP__NONE);
  atomic_store(&row->task_id, 0);
  atomic_store(&row->done, 0);
  atomic_store(&row->init_error, 0);
  atomic_store(&row->state, FP__ROW_STARTING);
  int fds[2] = {sp->sfd, sp->cmd_fd};
  /* Our handled signals stay blocked across fork; the worker resets all. */
  pid_t pid = fork();
  if (pid == 0) fp__worker_main(sp->s, r, sp->cfg, sp->self, fds, 2);
  if (pid < 0) {
    int err = errno;
    atomic_store(&row->state, FP__ROW_BACKOFF);
    sp->rc[r].spawn_at = fp__now_ns() + 100000000u;
    return -err;
  }
  /* Also set in the child; doing it here closes the race with a kill. */
  setpgid(pid, pid);
  atomic_store(&row->pid, pid);
  sp->rc[r].kill_reason = KILL_NONE;
  return 0;
}

static void kill_worker(struct sup *sp, uint32_t r, int reason, uint64_t id) {
  pid_t pid = atomic_load(&fp__row_at(sp->s, r)->pid);
  if (pid <= 0) return;
  if (sp->rc[r].kill_reason == KILL_NONE) {
    sp->rc[r].kill_reason = reason;
    sp->rc[r].kill_task = id;
  }
  kill(-pid, SIGKILL); /* the task's children, in its process group */
  kill(pid, SIGKILL);
}

static void reap_all_blocking(struct sup *sp);

static void fail_start(struct sup *sp, int err) {
  atomic_store(&sp->s->hdr->start_error, err);
  for (uint32_t r = 0; r < sp->nrows; r++) kill_worker(sp, r, KILL_STOP, 0);
  reap_all_blocking(sp);
  set_state(sp, FP__POOL_FAILED);
  _exit(1);
}

/* A worker in row r exited with wait status ws: settle its task, plan. */
static void on_death(struct sup *sp, uint32_t r, int ws) {
  struct fp__hdr *h = sp->s->hdr;
  struct fp__row *row = fp__row_at(sp->s, r);
  pid_t pid = atomic_load(&row->pid);
  uint64_t now = fp__now_ns();
  int sig = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
  int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  int had_task = 0;

  /*
   * The worker is reaped: it can no longer touch its slot. The task is ours
   * to end only if it is still RUNNING under this pid (the row pointer is a
   * hint; the slot's own fields decide).
   */
  uint32_t i = atomic_load(&row->slot);
  if (i < h->nslots) {
    struct fp__slot *sl = fp__slot_at(sp->s, i);
    if (atomic_load(&sl->state) == FP__SLOT_RUNNING &&
        atomic_load(&sl->worker) == pid) {
      fp_status st = FP_CRASHED;
      if (sp->rc[r].kill_reason == KILL_STOP) st = FP_CANCELLED;
      else if (sp->rc[r].kill_reason == KILL_TIMEOUT &&
               sp->rc[r].kill_task == atomic_load(&sl->id))
        st = FP_TIMEOUT;
      end_task(sp, sl, st, sig, code, now);
      had_task = 1;
    }
  }
  kill(-pid, SIGKILL); /* leftovers of the task, if any */
  atomic_store(&row->pid, 0);
  atomic_store(&row->slot, FP__NONE);
  atomic_store(&row->task_id, 0);
  atomic_store(&row->state, FP__ROW_EMPTY);

  uint32_t st = atomic_load(&h->state);
  if (st == FP__POOL_STARTING) fail_start(sp, ECHILD);
  if (st >= FP__POOL_STOPPING) return;

  int clean = !had_task && WIFEXITED(ws) && code == 0;
  if (clean) {
    sp->rc[r].spawn_at = now;
  } else {
    if (atomic_load(&row->done) == 0) sp->streak++;
    else sp->streak = 0;
    uint64_t delay = 0;
    if (sp->streak >= 2) {
      uint32_t e = sp->streak - 2 < 20 ? sp->streak - 2 : 20;
      delay = BACKOFF_BASE_NS << e;
      if (delay > BACKOFF_MAX_NS) delay = BACKOFF_MAX_NS;
    }
    sp->rc[r].spawn_at = now + delay;
    if (delay > 0) atomic_store(&row->state, FP__ROW_BACKOFF);
  }
}

static int find_row(struct sup *sp, pid_t pid) {
  for (uint32_t r = 0; r < sp->nrows; r++)
    if (atomic_load(&fp__row_at(sp->s, r)->pid) == pid) return (int)r;
  return -1;
}

static void reap(struct sup *sp) {
  int ws;
  pid_t pid;
  while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
    int r = find_row(sp, pid);
    if (r >= 0) on_death(sp, (uint32_t)r, ws);
  }
}

static void reap_all_blocking(struct sup *sp) {
  for (;;) {
    int alive = 0;
    for (uint32_t r = 0; r < sp->nrows; r++)
      alive += atomic_load(&fp__row_at(sp->s, r)->pid) > 0;
    if (!alive) return;
    int ws;
    pid_t pid = waitpid(-1, &ws, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      return; /* ECHILD: nothing left to reap */
    }
    int r = find_row(sp, pid);
    if (r >= 0) on_death(sp, (uint32_t)r, ws);
  }
}

/* Cancel what is queued, kill what runs, end everything, exit. */
static void stop_now(struct sup *sp) {
  struct fp__seg *s = sp->s;
  if (atomic_load(&s->hdr->state) < FP__POOL_STOPPING)
    set_state(sp, FP__POOL_STOPPING);
  uint64_t now = fp__now_ns();
  if (fp__q_lock(s) == 0) {
    uint32_t i;
    while ((i = fp__q_take_ready(s)) != FP__NONE)
      end_task(sp, fp__slot_at(s, i), FP_CANCELLED, 0, -1, now);
    fp__q_unlock(s);
  }
  for (uint32_t r = 0; r < sp->nrows; r++) kill_worker(sp, r, KILL_STOP, 0);
  reap_all_blocking(sp);
  /* Belt and braces: with every worker reaped, nothing may stay pending. */
  now = fp__now_ns();
  for (uint32_t i = 0; i < s->hdr->nslots; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    uint32_t st = atomic_load(&sl->state);
    if (st == FP__SLOT_READY || st == FP__SLOT_RUNNING)
      end_task(sp, sl, FP_CANCELLED, 0, -1, now);
  }
  set_state(sp, FP__POOL_STOPPED);
  wake_all(sp);
  _exit(0);
}

static void begin_drain(struct sup *sp, int grace_ms) {
  if (atomic_load(&sp->s->hdr->state) != FP__POOL_RUNNING) return;
  sp->drain_deadline =
      grace_ms < 0 ? UINT64_MAX
                   : fp__now_ns() + (uint64_t)grace_ms * 1000000u;
  set_state(sp, FP__POOL_DRAINING);
  wake_all(sp);
}

/* Drain the command pipe. EOF means the owner is gone: stop now. */
static void read_cmds(struct sup *sp) {
  struct fp__cmd cmd;
  for (;;) {
    /* Each command is one write of 8 bytes < PIPE_BUF: reads are whole. */
    ssize_t n = read(sp->cmd_fd, &cmd, sizeof(cmd));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return; /* EAGAIN: nothing more */
    if (n == 0) stop_now(sp);
    if (n != (ssize_t)sizeof(cmd)) continue;
    if (cmd.op == 'N') stop_now(sp);
    if (cmd.op == 'D') begin_drain(sp, cmd.grace_ms);
  }
}

static void read_signals(struct sup *sp) {
  struct signalfd_siginfo si;
  for (;;) {
    ssize_t n = read(sp->sfd, &si, sizeof(si));
    if (n < 0 && errno == EINTR) continue;
    if (n != (ssize_t)sizeof(si)) return;
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) stop_now(sp);
    /* SIGCHLD: reaping happens on every loop turn anyway. */
  }
}

/* Kill workers whose task passed its deadline; return the next deadline. */
static uint64_t check_timeouts(struct sup *sp, uint64_t now) {
  uint64_t next = UINT64_MAX;
  uint64_t limit = (uint64_t)sp->cfg->timeout_ms * 1000000u;
  if (limit == 0) return next;
  for (uint32_t r = 0; r < sp->nrows; r++) {
    struct fp__row *row = fp__row_at(sp->s, r);
    if (atomic_load(&row->pid) <= 0 || sp->rc[r].kill_reason != KILL_NONE)
      continue;
    /* Seqlock-style read: the start time must belong to this task. */
    uint64_t id = atomic_load(&row->task_id);
    uint64_t t0 = atomic_load(&row->started_ns);
    if (id == 0 || atomic_load(&row->task_id) != id) continue;
    if (now >= t0 + limit) kill_worker(sp, r, KILL_TIMEOUT, id);
    else if (t0 + limit < next) next = t0 + limit;
  }
  return next;
}

/* Fork into empty rows whose restart is due; return the next due time. */
static uint64_t respawn(struct sup *sp, uint64_t now) {
  struct fp__hdr *h = sp->s->hdr;
  uint32_t st = atomic_load(&h->state);
  if (st >= FP__POOL_STOPPING) return UINT64_MAX;
  /* Draining: replace a worker only while tasks still wait for one. */
  if (st == FP__POOL_DRAINING && atomic_load(&h->q.ready_len) == 0)
    return UINT64_MAX;
  uint64_t next = UINT64_MAX;
  for (uint32_t r = 0; r < sp->nrows; r++) {
    struct fp__row *row = fp__row_at(sp->s, r);
    if (atomic_load(&row->pid) > 0) continue;
    if (sp->rc[r].spawn_at <= now) {
      if (spawn(sp, r) == 0) {
        atomic_fetch_add(&h->c.restarts, 1);
        atomic_fetch_add(&row->restarts, 1);
      }
    } else if (sp->rc[r].spawn_at < next) {
      next = sp->rc[r].spawn_at;
    }
  }
  return next;
}

static int workers_alive(struct sup *sp) {
  int n = 0;
  for (uint32_t r = 0; r < sp->nrows; r++)
    n += atomic_load(&fp__row_at(sp->s, r)->pid) > 0;
  return n;
}

static int all_ready(struct sup *sp) {
  for (uint32_t r = 0; r < sp->nrows; r++)
    if (atomic_load(&fp__row_at(sp->s, r)->state) < FP__ROW_IDLE) return 0;
  return 1;
}

static int setup_signals(struct sup *sp) {
  fp__reset_signals();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return -errno;
  sp->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  return sp->sfd < 0 ? -errno : 0;
}

void fp__supervisor_main(struct fp__seg *s, const fp_config *cfg,
                         int cmd_fd) {
  struct fp__hdr *h = s->hdr;
  struct sup sp = {.s = s, .cfg = cfg, .cmd_fd = cmd_fd, .sfd = -1,
                   .nrows = cfg->workers, .drain_deadline = UINT64_MAX,
                   .self = getpid()};
  atomic_store(&h->sup_pid, sp.self);
  atomic_store(&h->sup_start_ns, fp__now_ns());
  atomic_store(&h->workers_target, cfg->workers);
  sp.rc = calloc(sp.nrows, sizeof(*sp.rc));
  int err = sp.rc == NULL ? -ENOMEM : setup_signals(&sp);
  if (err == 0 && cmd_fd >= 0 &&
      fcntl(cmd_fd, F_SETFL, fcntl(cmd_fd, F_GETFL) | O_NONBLOCK) != 0)
    err = -errno;
  if (err < 0) {
    atomic_store(&h->start_error, -err);
    set_state(&sp, FP__POOL_FAILED);
    _exit(1);
  }
  for (uint32_t r = 0; r < sp.nrows; r++) {
    err = spawn(&sp, r);
    if (err < 0) fail_start(&sp, -err);
  }

  uint64_t tick = cfg->timeout_ms == 0 ? 1000000000ull
                  : cfg->timeout_ms >= 1000 ? 100000000ull
                  : (uint64_t)cfg->timeout_ms * 100000u + 1000000u;
  for (;;) {
    uint64_t now = fp__now_ns();
    uint32_t st = atomic_load(&h->state);
    uint64_t wake = now + tick;
    if (st == FP__POOL_STARTING) {
      if (all_ready(&sp)) set_state(&sp, FP__POOL_RUNNING);
      else wake = now + 2000000u;
    }
    uint64_t t = check_timeouts(&sp, now);
    if (t < wake) wake = t;
    t = respawn(&sp, now);
    if (t < wake) wake = t;
    if (st == FP__POOL_DRAINING) {
      if (workers_alive(&sp) == 0 && atomic_load(&h->q.ready_len) == 0)
        stop_now(&sp); /* nothing left: stop_now only settles and exits */
      if (now >= sp.drain_deadline) stop_now(&sp);
      if (sp.drain_deadline < wake) wake = sp.drain_deadline;
    }
    int ms = wake <= now ? 0 : (int)((wake - now + 999999u) / 1000000u);
    struct pollfd pf[2] = {{.fd = sp.sfd, .events = POLLIN},
                           {.fd = cmd_fd, .events = POLLIN}};
    int n = poll(pf, cmd_fd >= 0 ? 2 : 1, ms);
    if (n < 0 && errno != EINTR) ms = 10; /* cannot happen; do not spin */
    read_signals(&sp);
    reap(&sp);
    if (cmd_fd >= 0 && n > 0 && pf[1].revents != 0) read_cmds(&sp);
  }
}
