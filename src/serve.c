/*
 * fp_serve(): the calling process becomes the supervisor of a named pool.
 */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "shm.h"
#include "sup.h"

FP_EXTERN void fp_serve_config_init(fp_serve_config *sc) {
  memset(sc, 0, sizeof(*sc));
  sc->mode = 0600;
  sc->grace_ms = 10000;
  sc->max_clients = 64;
}

FP_EXTERN int fp_serve(const fp_config *cfg, const fp_serve_config *sc) {
  int err = fp_config_validate(cfg);
  if (err < 0) return err;
  if (sc == NULL || fp_name_validate(sc->name) < 0 || (sc->mode & ~0777u) ||
      sc->max_clients == 0 || sc->max_clients > 4096 ||
      sc->max_workers > FP_MAX_WORKERS)
    return -EINVAL;
  uint32_t rows = sc->max_workers != 0 ? sc->max_workers
                  : cfg->workers > 64  ? cfg->workers
                                       : 64;
  if (rows < cfg->max_workers) rows = cfg->max_workers;
  if (rows < cfg->workers) return -EINVAL;
  struct fp__geometry g = {cfg->slots, rows, sc->max_clients,
                           (uint32_t)cfg->max_input,
                           (uint32_t)cfg->max_output};
  struct fp__seg seg;
  memset(&seg, 0, sizeof(seg));
  if ((err = fp__shm_create(&seg, sc->name, sc->mode, &g)) < 0) return err;
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

  struct fp__sup_opts o = {.seg = &seg, .cfg = cfg, .cmd_fd = -1,
                           .serve = 1, .grace_ms = sc->grace_ms,
                           .log = sc->log ? sc->log : cfg->log,
                           .log_ctx = sc->log ? sc->log_ctx : cfg->log_ctx,
                           .on_ready = sc->on_ready,
                           .ready_ctx = sc->ready_ctx};
  err = fp__sup_run(&o);
  sigaction(SIGCHLD, &saved, NULL);

  /*
   * Every task is terminal and every worker reaped. Producers still mapped
   * keep reading their results after the unlink; the name is free at once.
   * We still hold the liveness lock, so the name cannot be someone else's.
   */
  char path[FP_NAME_MAX + 16];
  if (fp__shm_path(sc->name, path, sizeof(path)) == 0) shm_unlink(path);
  fp__seg_unmap(&seg); /* closes the fd: the lock goes with it */
  return err;
}
