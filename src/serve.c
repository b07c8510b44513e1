/*
 * fp_serve(): the calling process becomes the supervisor of a named pool.
 */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <stdio.h>
#include <time.h>

#include "shm.h"
#include "sup.h"

static void serve_defaults(fp_serve_config *sc) {
  memset(sc, 0, sizeof(*sc));
  sc->size = sizeof(*sc);
  sc->mode = 0600;
  sc->grace_ms = 10000;
  sc->max_clients = 64;
}

FP_EXTERN void fp_serve_config_init_sized(fp_serve_config *sc, size_t size) {
  fp_serve_config d;
  serve_defaults(&d);
  fp__sized_init(sc, size, &d, sizeof(d));
}

/* The fields every layout has: up to the log function and its context.
 * Past the caller's layout: defaults (every later field's is 0). */
#define SERVE_MIN FP__END_OF(fp_serve_config, log_ctx)

static int serve_config_load(const fp_serve_config *in, fp_serve_config *out) {
  if (in == NULL) return -EINVAL;
  memset(out, 0, sizeof(*out));
  int err = fp__sized_in(out, sizeof(*out), in, in->size, SERVE_MIN);
  out->size = sizeof(*out);
  return err;
}

/*
 * The signals fp_serve() reads from its signalfd. They stay blocked from
 * before the segment exists until after it is unlinked: a signal that
 * arrives in between (a SIGTERM storm) is read or drained, never acted on
 * by its default disposition with the segment still in /dev/shm.
 */
static void serve_signals(sigset_t *set, int with_chld) {
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGHUP);
  sigaddset(set, SIGTTIN);
  sigaddset(set, SIGTTOU);
  if (with_chld) sigaddset(set, SIGCHLD);
}

/*
 * Consume what is pending of the stop, reload and resize signals: they
 * were meant for the pool that just ended. SIGCHLD is left alone (the
 * caller's own children may be behind it).
 */
static void drain_signals(void) {
  sigset_t set;
  struct timespec zero = {0, 0};
  serve_signals(&set, 0);
  for (int k = 0; k < 1000; k++) {
    int r = sigtimedwait(&set, NULL, &zero);
    if (r < 0 && errno != EINTR) break; /* EAGAIN: nothing pending */
  }
}

/*
 * Log, through the pool's log function, why a segment did not fit: its
 * size and what /dev/shm has free (when statvfs can tell).
 */
static void log_no_space(const fp_config *cfg, const fp_serve_config *sc,
                         const struct fp__geometry *g) {
  fp_log_fn log = sc->log ? sc->log : cfg->log;
  void *ctx = sc->log ? sc->log_ctx : cfg->log_ctx;
  if (log == NULL) return;
  char msg[512], avail[96] = "";
  unsigned long long need = (unsigned long long)fp__seg_bytes(g);
  struct statvfs vs;
  if (statvfs("/dev/shm", &vs) == 0)
    snprintf(avail, sizeof(avail), " (%.1f MiB free of %.1f MiB)",
             (double)vs.f_bavail * (double)vs.f_frsize / 1048576.0,
             (double)vs.f_blocks * (double)vs.f_frsize / 1048576.0);
  snprintf(msg, sizeof(msg),
           "segment /dev/shm/forkpool.%s needs %llu bytes "
           "(%.1f MiB), which do not fit in /dev/shm%s: nothing was created",
           sc->name, need, (double)need / 1048576.0, avail);
  log(ctx, FP_LOG_ERROR, msg);
}

/*
 * The mapping the SIGBUS guard watches (fp_serve runs one pool at a time,
 * single-threaded), and whether it fired.
 */
static unsigned char *volatile bus_base;
static volatile size_t bus_len;
static volatile sig_atomic_t bus_lost;

/*
 * SIGBUS on our mapping means the segment file was cut (ftruncate by a
 * process that can open it for writing: a group member of a 0660 pool, or
 * the owner's own code). Its pages are gone for every process. Rather than
 * die, replace the whole mapping with private zero pages, mark that copy
 * STOPPING (nothing new is forked) and send ourselves SIGTERM, which the
 * supervisor reads from its signalfd (blocked: it stays pending) and
 * answers by stopping: it kills and reaps its workers by the pids it
 * forked, none of which it reads from the segment. The faulting access
 * is retried on the zero page. Only mmap, an atomic store and kill here:
 * system calls and a plain store, safe in a handler. A SIGBUS elsewhere
 * gets the default action (the access faults again and kills us).
 */
static void on_sigbus(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  unsigned char *a = si->si_addr, *b = bus_base;
  if (b != NULL && a >= b && a < b + bus_len &&
      mmap(b, bus_len, PROT_READ | PROT_WRITE,
           MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
    atomic_store(&((struct fp__hdr *)(void *)b)->state, FP__POOL_STOPPING);
    bus_base = NULL;
    bus_lost = 1;
    kill(getpid(), SIGTERM);
    kill(getpid(), SIGTERM); /* a second one: stop now, no drain */
    return;
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, NULL);
}

FP_EXTERN int fp_serve(const fp_config *user_cfg,
                       const fp_serve_config *user_sc) {
  /* Full copies of ours, whatever layout the caller's header has. */
  fp_config full;
  fp_serve_config scfull;
  int err = fp_config_validate(user_cfg);
  if (err < 0) return err;
  if (fp__config_load(user_cfg, &full) < 0 ||
      serve_config_load(user_sc, &scfull) < 0)
    return -EINVAL;
  const fp_config *cfg = &full;
  const fp_serve_config *sc = &scfull;
  /* The owner must be able to use its own pool; others never may: the
   * group is the only way to share it (see fp_serve_config.mode). */
  if (fp_name_validate(sc->name) < 0 || (sc->mode & ~0777u) ||
      (sc->mode & 0600u) != 0600u || (sc->mode & 0007u) ||
      sc->max_clients == 0 || sc->max_clients > 4096 ||
      sc->max_workers > FP_MAX_WORKERS)
    return -EINVAL;
  uint32_t rows = sc->max_workers != 0 ? sc->max_workers
                  : cfg->workers > 64  ? cfg->workers
                                       : 64;
  if (rows < cfg->max_workers) rows = cfg->max_workers;
  if (rows < cfg->workers) return -EINVAL;
  struct fp__geometry g = {cfg->slots, rows, sc->max_clients,
                           (uint32_t)cfg->max_input, (uint32_t)cfg->max_output};
  sigset_t set, caller_mask;
  serve_signals(&set, 1);
  if (sigprocmask(SIG_BLOCK, &set, &caller_mask) != 0) return -errno;
  struct fp__seg seg;
  memset(&seg, 0, sizeof(seg));
  if ((err = fp__shm_create(&seg, sc->name, sc->mode, &g)) < 0) {
    if (err == -ENOSPC) log_no_space(cfg, sc, &g);
    sigprocmask(SIG_SETMASK, &caller_mask, NULL);
    return err;
  }
  seg.hdr->timeout_ms = cfg->timeout_ms;
  seg.hdr->max_tasks = cfg->max_tasks;

  /*
   * An ignored SIGCHLD (inherited from a careless parent) would make the
   * kernel reap our workers behind our back: waitpid would never report a
   * death. Default while we serve; the caller's setting comes back after.
   */
  struct sigaction dfl, saved;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &dfl, &saved);
  struct sigaction bus, saved_bus;
  memset(&bus, 0, sizeof(bus));
  bus.sa_sigaction = on_sigbus;
  bus.sa_flags = SA_SIGINFO;
  sigemptyset(&bus.sa_mask);
  bus_len = seg.maplen ? seg.maplen : seg.len;
  bus_lost = 0;
  bus_base = (unsigned char *)seg.base;
  sigaction(SIGBUS, &bus, &saved_bus);

  struct fp__sup_opts o = {.seg = &seg,
                           .cfg = cfg,
                           .cmd_fd = -1,
                           .serve = 1,
                           .grace_ms = sc->grace_ms,
                           .log = sc->log ? sc->log : cfg->log,
                           .log_ctx = sc->log ? sc->log_ctx : cfg->log_ctx,
                           .on_ready = sc->on_ready,
                           .ready_ctx = sc->ready_ctx,
                           .on_reload = sc->on_reload,
                           .reload_ctx = sc->reload_ctx,
                           .user_cfg = user_cfg,
                           .reload_cfg = &full};
  /* fp__sup_run restores the mask it found: ours, with the set blocked. */
  err = fp__sup_run(&o);

  /*
   * Every task is terminal and every worker reaped. Producers still mapped
   * keep reading their results after the unlink; the name is free at once.
   * We still hold the liveness lock, so the name cannot be someone else's.
   */
  char path[FP_NAME_MAX + 16];
  if (fp__shm_path(sc->name, path, sizeof(path)) == 0) shm_unlink(path);
  bus_base = NULL;
  fp__seg_unmap(&seg); /* closes the fd: the lock goes with it */
  if (bus_lost) {
    if (o.log != NULL) {
      char msg[256];
      snprintf(msg, sizeof(msg),
               "segment /dev/shm/forkpool.%s was "
               "truncated by another process while serving (a SIGBUS on "
               "it): the pool was stopped",
               sc->name);
      o.log(o.log_ctx, FP_LOG_ERROR, msg);
    }
    err = -EIO;
  }
  /* Only now may a late signal act: nothing of the pool is left. */
  sigaction(SIGBUS, &saved_bus, NULL);
  sigaction(SIGCHLD, &saved, NULL);
  drain_signals();
  sigprocmask(SIG_SETMASK, &caller_mask, NULL);
  return err;
}
