/*
 * Library mode: start a private pool from a program (fork the supervisor),
 * stop it, free it (any handle: an attached one too). Attaching to a named
 * pool is attach.c's; reading counters, stats.c's.
 *
 * A private pool's supervisor is our child: it lives in an anonymous
 * shared mapping that later forks of this process do not inherit, talks
 * to us over a command socket (never a SIGPIPE), and stops the pool when
 * its owner dies. Every task is terminal before fp_pool_stop returns:
 * what the supervisor left unfinished (it died) is settled here.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "alive.h"
#include "client.h"
#include "held.h"
#include "pool.h"
#include "proc.h"
#include "queue.h"

/*
 * Command-pipe write ends of this process's live pools. A new supervisor
 * closes them, so that it does not keep another pool's owner "alive".
 */
#define MAX_TRACKED 64
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static int reg_fds[MAX_TRACKED];
static int reg_n;

static void reg_add(int fd) {
  pthread_mutex_lock(&reg_mu);
  if (reg_n < MAX_TRACKED) reg_fds[reg_n++] = fd;
  pthread_mutex_unlock(&reg_mu);
}

static void reg_del(int fd) {
  pthread_mutex_lock(&reg_mu);
  for (int k = 0; k < reg_n; k++)
    if (reg_fds[k] == fd) reg_fds[k] = reg_fds[--reg_n];
  pthread_mutex_unlock(&reg_mu);
}

/* Wait for the supervisor to leave STARTING. 0 or -errno (it is reaped). */
static int wait_started(struct fp_pool *p) {
  struct fp__hdr *h = p->seg.hdr;
  for (;;) {
    uint32_t st = atomic_load(&h->state);
    if (st == FP__POOL_RUNNING) return 0;
    if (st != FP__POOL_STARTING || !fp__sup_alive(p)) break;
    fp__futex_wait(&h->state, FP__POOL_STARTING, 50000000u);
  }
  int err = atomic_load(&h->start_error);
  return -(err > 0 ? err : ECHILD);
}

/* Block every signal, fork, restore: the child starts with all blocked. */
static pid_t fork_blocked(sigset_t *old) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, old);
  pid_t pid = fork();
  if (pid != 0) pthread_sigmask(SIG_SETMASK, old, NULL);
  return pid;
}

/*
 * Fork the supervisor of p's new segment, with the command socket between
 * us. Returns 0 with p->cmd_fd and p->sup_pid set (the child never
 * returns), or -errno with no child and nothing left open.
 */
static int fork_supervisor(struct fp_pool *p) {
  int pfd[2];
  /*
   * The command channel: a socket rather than a pipe, so that writing to a
   * dead supervisor is an error (MSG_NOSIGNAL), never a SIGPIPE.
   */
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pfd) != 0)
    return -errno;

  /* Copy the registry before fork: the child must not take reg_mu. */
  int others[MAX_TRACKED], nothers;
  pthread_mutex_lock(&reg_mu);
  nothers = reg_n;
  memcpy(others, reg_fds, sizeof(int) * (size_t)reg_n);
  pthread_mutex_unlock(&reg_mu);

  sigset_t old;
  pid_t owner = getpid();
  pid_t pid = fork_blocked(&old);
  if (pid < 0) {
    int err = -errno;
    close(pfd[0]);
    close(pfd[1]);
    return err;
  }
  if (pid == 0) {
    close(pfd[1]);
    for (int k = 0; k < nothers; k++) close(others[k]);
    fp__supervisor_main(&p->seg, &p->cfg, pfd[0], owner);
  }
  close(pfd[0]);
  p->cmd_fd = pfd[1];
  p->sup_pid = pid;
  return 0;
}

FP_EXTERN int fp_pool_start(fp_pool **out, const fp_config *user) {
  fp_config full;
  int err = fp_config_validate(user);
  if (err < 0) return err;
  if (out == NULL || fp__config_load(user, &full) < 0) return -EINVAL;
  const fp_config *cfg = &full;
  struct fp_pool *p = calloc(1, sizeof(*p));
  if (p == NULL) return -ENOMEM;
  p->cfg = *cfg;
  p->cmd_fd = -1;
  struct fp__geometry g = {
      cfg->slots,
      cfg->max_workers > cfg->workers ? cfg->max_workers : cfg->workers, 1,
      (uint32_t)cfg->max_input, (uint32_t)cfg->max_output};
  if ((err = fp__held_alloc(p, cfg->slots)) < 0) goto err;
  if ((err = fp__seg_create_anon(&p->seg, &g)) < 0) goto err;
  fp__rings_join(p); /* client row 0 is ours */
  p->seg.hdr->timeout_ms = cfg->timeout_ms;
  p->seg.hdr->max_tasks = cfg->max_tasks;
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->stop_mu, NULL);
  if ((err = fork_supervisor(p)) < 0) goto err;
  /*
   * Later forks of this process (other pools, the program's own children)
   * must not inherit this mapping: a stray child could otherwise write into
   * it. The supervisor already has its copy.
   */
  fp__seg_dontfork(&p->seg);
  if ((err = wait_started(p)) < 0) {
    close(p->cmd_fd);
    if (!atomic_load(&p->sup_gone)) {
      kill(p->sup_pid, SIGKILL);
      while (waitpid(p->sup_pid, NULL, 0) < 0 && errno == EINTR) {
      }
    }
    p->cmd_fd = -1;
    goto err;
  }
  reg_add(p->cmd_fd);
  *out = p;
  return 0;

err:
  fp__seg_unmap(&p->seg);
  fp__held_free(p);
  free(p);
  return err;
}

/*
 * After the supervisor is gone, nothing will end a task that is not DONE.
 * Its workers died with it (PR_SET_PDEATHSIG), so settle them here.
 */
static void settle_orphans(struct fp_pool *p) {
  struct fp__seg *s = &p->seg;
  for (uint32_t i = 0; i < s->nslots; i++) {
    struct fp__slot *sl = fp__slot_at(s, i);
    if (!fp__slot_unfinished(fp__slot_state(sl))) continue;
    fp__slot_end(s, sl, FP_CANCELLED, 0, 0, -1, 0, sl->run_us);
    atomic_fetch_add(&s->hdr->c.cancelled, 1);
  }
  atomic_store(&s->hdr->state, FP__POOL_STOPPED);
}

FP_EXTERN int fp_pool_stop(fp_pool *p, int mode, int grace_ms) {
  if (p == NULL || (mode != FP_STOP_DRAIN && mode != FP_STOP_NOW))
    return -EINVAL;
  if (p->attached) return -EPERM; /* only the supervisor's owner stops it */
  pthread_mutex_lock(&p->stop_mu);
  if (p->stopped) {
    pthread_mutex_unlock(&p->stop_mu);
    return 0;
  }
  struct fp__cmd cmd = {.op = mode == FP_STOP_NOW ? 'N' : 'D',
                        .grace_ms = grace_ms};
  if (!atomic_load(&p->sup_gone)) {
    /* A failed send means the supervisor is gone already: reap it below. */
    (void)fp__cmd_send(p->cmd_fd, &cmd);
    while (waitpid(p->sup_pid, NULL, 0) < 0 && errno == EINTR) {
    }
    atomic_store(&p->sup_gone, 1);
  }
  if (atomic_load(&p->seg.hdr->state) != FP__POOL_STOPPED) settle_orphans(p);
  reg_del(p->cmd_fd);
  close(p->cmd_fd);
  p->cmd_fd = -1;
  p->stopped = 1;
  pthread_mutex_unlock(&p->stop_mu);
  return 0;
}

FP_EXTERN void fp_pool_free(fp_pool *p) {
  if (p == NULL) return;
  if (!p->attached) fp_pool_stop(p, FP_STOP_NOW, 0);
  /*
   * Attached: closing the descriptor (in unmap) releases our client row's
   * lock; the supervisor then frees what we left (results not collected
   * count as abandoned), exactly as if we had died.
   */
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->stop_mu);
  fp__seg_unmap(&p->seg);
  fp__held_free(p);
  free(p);
}
