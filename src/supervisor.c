/*
 * The supervisor: forks the workers, reaps them, ends the task of a dead
 * worker, kills tasks past their timeout, restarts workers with a capped
 * exponential backoff when they keep dying without finishing a task, and
 * carries out stop, reload and resize requests. It never runs user code.
 *
 * It is single-threaded and sleeps in poll() on a signalfd and (private
 * pools) the owner's command pipe, waking at least once per tick to check
 * task deadlines, due restarts and (named pools) dead producers.
 *
 * This file is the loop and what it owns directly: start-up and the end of
 * the run, forking (and reforking) workers, waitpid, our signals, the
 * owner's command channel and its death. Each decision has its own file:
 * a worker's death, its task and its row's restart in sup_death.c; kills
 * (timeouts with hang dumps, cancels) in sup_kill.c; drain and stop in
 * sup_stop.c; strays in sup_strays.c; output in sup_output.c; resizing and
 * reload in sup_resize.c; dead producers in sup_clients.c; repairs after a
 * crash in sup_verify.c. They share struct fp__sup (sup.h).
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "proc.h"
#include "queue.h"
#include "report.h"
#include "shm.h"
#include "sum.h"
#include "sup.h"

/*
 * How often the ready rings are swept (fp__sup_sweep with tick set): a
 * READY task that no ring held at two sweeps in a row is requeued, so a
 * lost or half-published task is late by at most about two sweeps. A
 * sweep reads every slot: 100 ms keeps that cheap on big pools.
 */
#define SWEEP_EVERY_NS (100 * FP__NS_PER_MS)

/*
 * A failed fork (RLIMIT_NPROC, ENOMEM) leaves its row BACKOFF and is tried
 * again this much later: soon enough that a limit lifted costs little,
 * seldom enough that a lasting one does not keep the supervisor forking.
 */
#define FORK_RETRY_NS (100 * FP__NS_PER_MS)

/*
 * While the workers start, the loop looks this often whether all are
 * ready, so the pool turns RUNNING (and on_ready runs) at most 2 ms after
 * the last one is; start-up is short, so the polling costs nothing.
 */
#define STARTUP_POLL_NS (2 * FP__NS_PER_MS)

/*
 * A sweep for strays that ran out of its budget (a fork bomb) is tried
 * again this soon: strays are killed at a steady pace while the loop keeps
 * serving between sweeps.
 */
#define STRAYS_RETRY_NS (10 * FP__NS_PER_MS)

/*
 * The wake-up policy's safety net (turn()): queued tasks with workers
 * asleep get a worker within this long, whatever the producers decided.
 * Short next to any task worth a pool, long enough that the turns it adds
 * cost the supervisor nothing to speak of.
 */
#define WAKE_NET_NS (10 * FP__NS_PER_MS)

/*
 * The loop's tick: the longest it sleeps in poll() with nothing to do, so
 * how late it can notice what no descriptor announces (a task that began,
 * a named pool's cancel request, a dead producer, a dead owner without a
 * pidfd).
 *   TICK_IDLE_NS      no task timeout: a second, owner_gone()'s getppid()
 *                     fallback (a dead owner stops its pool within a
 *                     second, DESIGN.md invariant 4)
 *   TICK_TIMEOUT_NS   timeouts of a second or more
 *   TICK_TIMEOUT_DIV  shorter timeouts: a tenth of the timeout, plus
 *   TICK_FLOOR_NS     so that tiny timeouts do not make the loop spin
 * A task that begins between two turns is first seen at the next one:
 * ticking well inside the timeout lets its deadline be planned before it
 * passes (fp__sup_check_timeouts).
 *   TICK_SERVE_NS     named pools: dead producers' slots are reclaimed
 *                     and the producers' shares recounted within 100 ms
 *                     (README, "A producer")
 *   TICK_SCALE_NS     autoscaling: a backlog is measured against
 *                     SCALE_BACKLOG_NS (20 ms, sup_resize.c)
 */
#define TICK_IDLE_NS (1000 * FP__NS_PER_MS)
#define TICK_TIMEOUT_NS (100 * FP__NS_PER_MS)
#define TICK_TIMEOUT_DIV 10u
#define TICK_FLOOR_NS (1 * FP__NS_PER_MS)
#define TICK_SERVE_NS (100 * FP__NS_PER_MS)
#define TICK_SCALE_NS (10 * FP__NS_PER_MS)

/* poll() failing (it cannot, bar a bug): pause this long, never spin. */
#define POLL_ERROR_PAUSE_US 10000 /* 10 ms */

void fp__sup_log(struct fp__sup *sp, fp_log_level lvl, const char *fmt, ...) {
  if (sp->o->log == NULL) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  sp->o->log(sp->o->log_ctx, lvl, buf);
}

void fp__sup_set_state(struct fp__sup *sp, uint32_t st) {
  atomic_store(&sp->s->hdr->state, st);
  fp__futex_wake(&sp->s->hdr->state);
}

/*
 * Fork the worker of row r, its stdin /dev/null and its stdout and stderr
 * pipes to us (sup_output.c). Returns 0, or -errno when fork failed: the
 * row is then BACKOFF, retried in 100 ms, and no descriptor is left open.
 */
static int spawn(struct fp__sup *sp, uint32_t r) {
  struct fp__row *row = fp__row_at(sp->s, r);
  atomic_store(&row->slot, FP__NONE);
  atomic_store(&row->task_id, 0);
  atomic_store(&row->done, 0);
  atomic_store(&row->init_error, 0);
  atomic_store(&row->retire, 0);
  atomic_store(&row->doom, 0); /* no kill aimed at the new worker's tasks */
  atomic_store(&row->rss_exit_kb, 0);
  atomic_store(&row->state, FP__ROW_STARTING);
  int fds[4] = {sp->sfd, sp->o->cmd_fd, sp->s->fd, sp->owner_fd};
  int wfd[2]; /* the worker's stdout and stderr pipes (write ends) */
  fp__out_prepare(sp, r, wfd);
  /* Our handled signals stay blocked across fork; the worker resets all. */
  pid_t pid = fork();
  if (pid == 0) {
    fp__out_child(sp, r, wfd);
    fp__worker_main(sp->s, r, sp->cfg, sp->self, fds, 4);
  }
  fp__out_forked(sp, r, wfd, pid);
  if (pid < 0) {
    int err = errno;
    atomic_store(&row->state, FP__ROW_BACKOFF);
    sp->rc[r].spawn_at = fp__now_ns() + FORK_RETRY_NS;
    /* Retried every 100 ms: say it once per burst, not once per try. */
    if (sp->fork_failures++ == 0)
      fp__sup_log(sp, FP_LOG_ERROR,
                  "fork for worker row %u failed: %s "
                  "(retrying every %llu ms; logged again once a fork works)",
                  r, strerror(err), FORK_RETRY_NS / FP__NS_PER_MS);
    return -err;
  }
  if (sp->fork_failures > 0)
    fp__sup_log(sp, FP_LOG_INFO,
                "fork works again, after %u failed "
                "attempt(s)",
                sp->fork_failures);
  sp->fork_failures = 0;
  /* Also done in the child; doing it here closes the race with a kill. */
  setpgid(pid, pid);
  sp->rc[r].pid = pid;
  atomic_store(&row->pid, pid); /* for `stat` only: never trusted back */
  atomic_fetch_add(&sp->s->hdr->workers_alive, 1);
  sp->rc[r].kill_reason = FP__KILL_NONE;
  sp->rc[r].dump_at = 0;
  fp__sup_log(sp, FP_LOG_DEBUG, "worker %d started in row %u", (int)pid, r);
  return 0;
}

const char *fp__sup_signame(int sig) {
  const char *n = sigabbrev_np(sig);
  return n != NULL ? n : "?";
}

int fp__sup_find_row(struct fp__sup *sp, pid_t pid) {
  for (uint32_t r = 0; r < sp->nrows; r++)
    if (sp->rc[r].pid == pid) return (int)r;
  return -1;
}

static int workers_alive(struct fp__sup *sp) {
  int n = 0;
  for (uint32_t r = 0; r < sp->nrows; r++) n += sp->rc[r].pid > 0;
  return n;
}

void fp__sup_reap(struct fp__sup *sp, int block) {
  for (;;) {
    if (block && workers_alive(sp) == 0) return;
    int ws;
    pid_t pid = waitpid(-1, &ws, block ? 0 : WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return; /* none ready, or ECHILD: nothing left */
    int r = fp__sup_find_row(sp, pid);
    if (r >= 0) fp__sup_on_death(sp, (uint32_t)r, ws);
  }
}

/* Drain the command pipe. EOF means the owner is gone: stop now. */
static void read_cmds(struct fp__sup *sp) {
  struct fp__cmd cmd;
  for (;;) {
    /* Each command is one write of 8 bytes < PIPE_BUF: reads are whole. */
    ssize_t n = read(sp->o->cmd_fd, &cmd, sizeof(cmd));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return; /* EAGAIN: nothing more */
    if (n == 0) {
      fp__sup_stop_now(sp);
      return;
    }
    if (n != (ssize_t)sizeof(cmd)) continue;
    if (cmd.op == 'N') fp__sup_stop_now(sp);
    if (cmd.op == 'D') fp__sup_begin_drain(sp, cmd.grace_ms);
    /* 'C': a cancel request; the loop's turn looks for it. */
  }
}

static void read_signals(struct fp__sup *sp) {
  struct signalfd_siginfo si;
  for (;;) {
    ssize_t n = read(sp->sfd, &si, sizeof(si));
    if (n < 0 && errno == EINTR) continue;
    if (n != (ssize_t)sizeof(si)) return;
    int sig = (int)si.ssi_signo;
    if (sig == SIGTERM || sig == SIGINT) {
      if (!sp->o->serve) {
        fp__sup_stop_now(sp);
      } else if (atomic_load(&sp->s->hdr->state) == FP__POOL_RUNNING) {
        fp__sup_log(sp, FP_LOG_INFO, "SIG%s received", fp__sup_signame(sig));
        fp__sup_begin_drain(sp, sp->o->grace_ms);
      } else {
        fp__sup_log(sp, FP_LOG_WARN, "SIG%s again: stopping now",
                    fp__sup_signame(sig));
        fp__sup_stop_now(sp);
      }
    } else if (sig == SIGHUP && sp->o->serve) {
      /* The hook loads the new code (it logs why when it cannot). */
      int rr =
          sp->o->on_reload != NULL ? sp->o->on_reload(sp->o->reload_ctx) : 0;
      if (rr < 0) {
        fp__sup_log(sp, FP_LOG_ERROR,
                    "SIGHUP: reload failed (%s); the "
                    "workers keep the code they run",
                    fp_strerror(rr));
      } else {
        fp__sup_reload_code(sp);
        fp__sup_log(sp, FP_LOG_INFO, "SIGHUP: replacing workers one at a time");
        sp->hup_next = 0;
      }
    } else if (sig == SIGTTIN && sp->o->serve) {
      fp__sup_resize(sp, +1, "SIGTTIN");
    } else if (sig == SIGTTOU && sp->o->serve) {
      fp__sup_resize(sp, -1, "SIGTTOU");
    }
    /* SIGCHLD: reaping happens on every loop turn anyway. */
  }
}

/*
 * Private pools: is the process that started the pool gone? The command
 * channel's EOF does not tell: every plain fork() of the owner inherits its
 * end, so a daemon child of the owner would keep the pool alive for ever.
 * Its pidfd (readable once it exited) does; without pidfds (before Linux
 * 5.3), getppid() changes when the owner dies and we are reparented.
 */
static int owner_gone(struct fp__sup *sp) {
  if (sp->o->owner <= 0) return 0;
  if (sp->owner_fd < 0) return getppid() != sp->o->owner;
  struct pollfd pf = {.fd = sp->owner_fd, .events = POLLIN};
  return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLIN | POLLHUP)) != 0;
}

/* Open the owner's pidfd; stop at once when it died before we could. */
static void watch_owner(struct fp__sup *sp) {
  if (sp->o->owner <= 0) return;
  long fd = syscall(SYS_pidfd_open, sp->o->owner, 0); /* O_CLOEXEC */
  sp->owner_fd = fd >= 0 ? (int)fd : -1;
  /* The pidfd may name a reused pid if the owner is gone already. */
  if (getppid() != sp->o->owner) fp__sup_stop_now(sp);
}

/* Fork into empty rows whose restart is due; return the next due time. */
static uint64_t respawn(struct fp__sup *sp, uint64_t now) {
  struct fp__hdr *h = sp->s->hdr;
  uint32_t st = atomic_load(&h->state);
  if (st >= FP__POOL_STOPPING || st == FP__POOL_STARTING) return UINT64_MAX;
  /* Draining: replace a worker only while tasks still wait for one. */
  if (st == FP__POOL_DRAINING && fp__q_queued(sp->s) == 0) return UINT64_MAX;
  uint32_t target = atomic_load(&h->workers_target);
  uint64_t next = UINT64_MAX;
  for (uint32_t r = 0; r < target && r < sp->nrows; r++) {
    struct fp__row *row = fp__row_at(sp->s, r);
    if (sp->rc[r].pid > 0) continue;
    if (sp->rc[r].spawn_at <= now) {
      /* Counted before the fork: the new worker may finish tasks before
       * fork() returns here, and stats must not show them first. */
      atomic_fetch_add(&h->c.restarts, 1);
      atomic_fetch_add(&row->restarts, 1);
      if (spawn(sp, r) != 0) {
        atomic_fetch_sub(&h->c.restarts, 1);
        atomic_fetch_sub(&row->restarts, 1);
      }
    } else if (sp->rc[r].spawn_at < next) {
      next = sp->rc[r].spawn_at;
    }
  }
  return next;
}

static int all_ready(struct fp__sup *sp) {
  uint32_t target = atomic_load(&sp->s->hdr->workers_target);
  for (uint32_t r = 0; r < target; r++)
    if (atomic_load(&fp__row_at(sp->s, r)->state) < FP__ROW_IDLE) return 0;
  return 1;
}

static int setup_signals(struct fp__sup *sp, sigset_t *old) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (sp->o->serve) {
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTTIN);
    sigaddset(&set, SIGTTOU);
  }
  if (sigprocmask(SIG_BLOCK, &set, old) != 0) return -errno;
  sp->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sp->sfd < 0) {
    int err = -errno;
    sigprocmask(SIG_SETMASK, old, NULL);
    return err;
  }
  return 0;
}

/* Starting: the pool runs once every worker is ready; until then, look
 * again soon. Returns when to wake (wake, or sooner). */
static uint64_t check_started(struct fp__sup *sp, uint64_t now, uint64_t wake) {
  if (all_ready(sp)) {
    fp__sup_set_state(sp, FP__POOL_RUNNING);
    if (sp->o->on_ready != NULL) sp->o->on_ready(sp->o->ready_ctx);
    return wake;
  }
  return now + STARTUP_POLL_NS;
}

/* Every turn: repair a damaged ready ring; every SWEEP_EVERY_NS, sweep. */
static void check_rings(struct fp__sup *sp, uint64_t now) {
  struct fp__hdr *h = sp->s->hdr;
  if (atomic_load(&h->q.sweep) != 0) {
    /* Someone met a damaged ring (queue.h): requeue what it held. */
    int n = fp__sup_sweep(sp, 0);
    atomic_fetch_add(&h->c.repairs, 1);
    fp__sup_log(sp, FP_LOG_ERROR,
                "a ready ring was damaged: emptied, %d "
                "queued task(s) it held requeued",
                n > 0 ? n : 0);
  }
  if (now - sp->last_sweep_ns >= SWEEP_EVERY_NS) {
    /*
     * A READY task that no ring holds for a whole tick is lost (a stray
     * write into its entry or its word) or its producer stopped halfway
     * through publishing it: requeued either way (queue.h, fp__q_sweep).
     */
    sp->last_sweep_ns = now;
    if (fp__sup_sweep(sp, 1) > 0)
      fp__sup_log(sp, FP_LOG_WARN,
                  "requeued queued task(s) that no ready "
                  "ring held for %llu ms",
                  SWEEP_EVERY_NS / FP__NS_PER_MS);
  }
}

/* Named pools, every turn: producers, reload, rows above the target. */
static void serve_turn(struct fp__sup *sp) {
  fp__sup_count_producers(sp);
  fp__sup_reclaim_clients(sp);
  fp__sup_reload_step(sp);
  /* Rows above the target retire; idle sleepers are woken by fp__sup_retire(). */
  uint32_t target = atomic_load(&sp->s->hdr->workers_target);
  for (uint32_t r = target; r < sp->nrows; r++)
    if (sp->rc[r].pid > 0 && !atomic_load(&fp__row_at(sp->s, r)->retire))
      fp__sup_retire(sp, r);
}

/* One turn of the loop: returns the poll timeout in ms. */
static int turn(struct fp__sup *sp, uint64_t tick) {
  struct fp__hdr *h = sp->s->hdr;
  uint64_t now = fp__now_ns();
  uint32_t st = atomic_load(&h->state);
  uint64_t wake = now + tick;
  if (st == FP__POOL_STARTING) wake = check_started(sp, now, wake);
  fp__sup_note_progress(sp);
  fp__out_tick(sp);
  uint64_t t = fp__sup_check_timeouts(sp, now);
  if (t < wake) wake = t;
  if (sp->strays_left) {
    fp__sup_sweep_strays(sp, FP__SWEEP_TURN_NS);
    if (sp->strays_left && now + STRAYS_RETRY_NS < wake)
      wake = now + STRAYS_RETRY_NS;
  }
  t = respawn(sp, now);
  if (t < wake) wake = t;
  fp__sup_free_collected(sp);
  fp__sup_check_cancels(sp);
  check_rings(sp, now);
  fp__sup_autoscale(sp, now);
  /*
   * Safety net for the wake-up policy: tasks waiting while workers sleep
   * get a worker within 10 ms, whatever the producers decided.
   */
  if (fp__q_queued(sp->s) > 0 && fp__pcount(&h->w_asleep, sp->s->nrows) > 0) {
    fp__wake_workers(sp->s, 1);
    if (now + WAKE_NET_NS < wake) wake = now + WAKE_NET_NS;
  }
  if (sp->o->serve) serve_turn(sp);
  if (st == FP__POOL_DRAINING) {
    if (workers_alive(sp) == 0 && fp__q_queued(sp->s) == 0)
      fp__sup_stop_now(sp); /* drained: stop_now only settles */
    else if (now >= sp->drain_deadline) fp__sup_stop_now(sp);
    if (sp->drain_deadline < wake) wake = sp->drain_deadline;
  }
  return wake <= now ? 0
                     : (int)((wake - now + FP__NS_PER_MS - 1) / FP__NS_PER_MS);
}

static void free_tables(struct fp__sup *sp) {
  free(sp->rc);
  free(sp->settled_gen);
  free(sp->suspect);
  free(sp->pf);
}

/*
 * Publish who supervises the pool and its sizes in the header, allocate
 * sp's tables, open the workers' stdin, block our signals (old: the mask
 * before) behind a signalfd and make the command channel non-blocking.
 * 0, or -errno: the pool is then FAILED with start_error set, and nothing
 * is left allocated, open or blocked.
 */
static int sup_open(struct fp__sup *sp, sigset_t *old) {
  const struct fp__sup_opts *o = sp->o;
  struct fp__seg *s = sp->s;
  struct fp__hdr *h = s->hdr;
  const fp_config *cfg = sp->cfg;
  atomic_store(&h->sup_pid, sp->self);
  atomic_store(&h->sup_start_ns, fp__now_ns());
  atomic_store(&h->workers_target, cfg->workers);
  h->min_workers =
      cfg->max_workers ? (cfg->min_workers ? cfg->min_workers : 1) : 0;
  h->max_workers = cfg->max_workers;
  sp->rc = calloc(sp->nrows, sizeof(*sp->rc));
  sp->settled_gen = calloc(s->nclients, sizeof(*sp->settled_gen));
  sp->suspect = calloc(s->nslots, sizeof(*sp->suspect));
  sp->retry.tail = atomic_load(&s->hdr->q.retry.tail);
  sp->retry.head_seen = atomic_load(&s->hdr->q.retry.head);
  sp->pf = calloc(3 + 2 * (size_t)sp->nrows, sizeof(*sp->pf));
  int err = sp->rc == NULL || sp->settled_gen == NULL || sp->pf == NULL ||
                    sp->suspect == NULL
                ? -ENOMEM
                : fp__out_init(sp);
  if (err == 0 && (err = setup_signals(sp, old)) < 0) fp__out_fini(sp);
  if (err == 0 && o->cmd_fd >= 0 &&
      fcntl(o->cmd_fd, F_SETFL, fcntl(o->cmd_fd, F_GETFL) | O_NONBLOCK) != 0)
    err = -errno;
  if (err < 0) {
    atomic_store(&h->start_error, -err);
    fp__sup_set_state(sp, FP__POOL_FAILED);
    if (sp->sfd >= 0) {
      close(sp->sfd);
      sigprocmask(SIG_SETMASK, old, NULL);
    }
    fp__out_fini(sp);
    free_tables(sp);
  }
  return err;
}

/* The loop's tick for this pool (see TICK_IDLE_NS). */
static uint64_t pick_tick(const struct fp__sup *sp) {
  const fp_config *cfg = sp->cfg;
  uint64_t tick =
      cfg->timeout_ms == 0 ? TICK_IDLE_NS
      : cfg->timeout_ms >= 1000
          ? TICK_TIMEOUT_NS
          : (uint64_t)cfg->timeout_ms * (FP__NS_PER_MS / TICK_TIMEOUT_DIV) +
                TICK_FLOOR_NS;
  if (sp->o->serve && tick > TICK_SERVE_NS) tick = TICK_SERVE_NS;
  if (sp->s->hdr->max_workers != 0 && tick > TICK_SCALE_NS)
    tick = TICK_SCALE_NS;
  return tick;
}

/*
 * Sleep in poll() for up to ms, then take what woke us: the workers'
 * output, our signals, dead children, commands, the owner's death.
 */
static void wait_turn(struct fp__sup *sp, int ms) {
  const struct fp__sup_opts *o = sp->o;
  /*
   * The signalfd, the command channel and the owner's pidfd (-1:
   * ignored), the workers' output. A tick is at most a second:
   * owner_gone()'s getppid() fallback.
   */
  struct pollfd *pf = sp->pf;
  pf[0] = (struct pollfd){.fd = sp->sfd, .events = POLLIN};
  pf[1] = (struct pollfd){.fd = o->cmd_fd, .events = POLLIN};
  pf[2] = (struct pollfd){.fd = sp->owner_fd, .events = POLLIN};
  nfds_t np = fp__out_pollset(sp, pf, 3);
  int n = poll(pf, np, ms);
  if (n < 0 && errno != EINTR)
    usleep(POLL_ERROR_PAUSE_US);           /* cannot happen: no spin */
  if (n > 0) fp__out_drain(sp, pf, 3, np); /* before reap closes any */
  read_signals(sp);
  fp__sup_reap(sp, 0);
  if (o->cmd_fd >= 0 && n > 0 && pf[1].revents != 0) read_cmds(sp);
  if (!sp->stopped && owner_gone(sp)) {
    fp__sup_log(sp, FP_LOG_WARN,
                "the pool's owner (pid %d) died without "
                "stopping it: stopping now",
                (int)o->owner);
    fp__sup_stop_now(sp);
  }
}

int fp__sup_run(const struct fp__sup_opts *o) {
  struct fp__seg *s = o->seg;
  struct fp__hdr *h = s->hdr;
  const fp_config *cfg = o->cfg;
  struct fp__sup sp = {.o = o,
                       .s = s,
                       .cfg = cfg,
                       .sfd = -1,
                       .owner_fd = -1,
                       .nrows = s->nrows,
                       .drain_deadline = UINT64_MAX,
                       .hup_next = -1,
                       .self = getpid(),
                       .devnull = -1};
  sigset_t old;
  int err = sup_open(&sp, &old);
  if (err < 0) return err;
  fp__report_warm();
  fp__sup_save_header(&sp);
  watch_owner(&sp);
  fp__sup_start_sweeping(&sp);
  /* Shares are in force before a producer can submit. */
  if (o->serve) fp__sup_count_producers(&sp);
  for (uint32_t r = 0; r < cfg->workers && !sp.stopped; r++)
    if ((err = spawn(&sp, r)) < 0) fp__sup_fail_start(&sp, -err);

  uint64_t tick = pick_tick(&sp);
  while (!sp.stopped) {
    int ms = turn(&sp, tick);
    if (sp.stopped) break;
    wait_turn(&sp, ms);
  }
  err = atomic_load(&h->state) == FP__POOL_FAILED
            ? -atomic_load(&h->start_error)
            : 0;
  /* Consume what is pending of our signals before unblocking them. */
  read_signals(&sp);
  fp__sup_stop_sweeping(&sp);
  close(sp.sfd);
  if (sp.owner_fd >= 0) close(sp.owner_fd);
  sigprocmask(SIG_SETMASK, &old, NULL);
  fp__out_fini(&sp);
  free_tables(&sp);
  return err;
}

void fp__supervisor_main(struct fp__seg *s, const fp_config *cfg, int cmd_fd,
                         pid_t owner) {
  fp__reset_signals();
  /*
   * What the host's stdio buffers held when it forked us is the host's to
   * write, not ours: a log function that flushes stdout must not write the
   * host's pending bytes a second time.
   */
  fp__purge_stdio();
  struct fp__sup_opts o = {.seg = s,
                           .cfg = cfg,
                           .cmd_fd = cmd_fd,
                           .owner = owner,
                           .log = cfg->log,
                           .log_ctx = cfg->log_ctx};
  _exit(fp__sup_run(&o) == 0 ? 0 : 1);
}
