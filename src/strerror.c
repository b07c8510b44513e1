/*
 * Names and messages: statuses, errors, version.
 */
#include <string.h>

#include "internal.h"

FP_EXTERN const char *fp_status_name(fp_status st) {
  switch (st) {
  case FP_OK: return "ok";
  case FP_FAILED: return "failed";
  case FP_CRASHED: return "crashed";
  case FP_TIMEOUT: return "timeout";
  case FP_CANCELLED: return "cancelled";
  case FP_CORRUPT: return "corrupt";
  }
  return "unknown";
}

FP_EXTERN const char *fp_pool_state_name(fp_pool_state st) {
  switch (st) {
  case FP_POOL_STARTING: return "starting";
  case FP_POOL_RUNNING: return "running";
  case FP_POOL_DRAINING: return "draining";
  case FP_POOL_STOPPING: return "stopping";
  case FP_POOL_STOPPED: return "stopped";
  case FP_POOL_FAILED: return "failed";
  }
  return "unknown";
}

FP_EXTERN const char *fp_worker_state_name(fp_worker_state st) {
  switch (st) {
  case FP_WORKER_EMPTY: return "empty";
  case FP_WORKER_STARTING: return "starting";
  case FP_WORKER_IDLE: return "idle";
  case FP_WORKER_BUSY: return "busy";
  case FP_WORKER_BACKOFF: return "backoff";
  }
  return "unknown";
}

FP_EXTERN const char *fp_strerror(int err) {
  if (err < 0) err = -err;
  /* Our own wording where the libc text would mislead a pool user. */
  switch (err) {
  case 0: return "success";
  case EAGAIN: return "queue full (try again)";
  case ESHUTDOWN: return "pool is stopping or stopped";
  case EPIPE: return "pool supervisor died";
  case EMSGSIZE: return "input larger than the pool's max input";
  case ENOENT: return "no such pending task, or no such pool";
  case ECHILD: return "workers could not start (init hook failed or died)";
  case ETIMEDOUT: return "timed out";
  case EINVAL: return "invalid argument";
  case EBADMSG: return "not a forkpool segment, or a corrupt one";
  case EPROTO: return "forkpool segment of another layout version";
  case ECONNREFUSED: return "no live supervisor (segment left by a dead one)";
  case EADDRINUSE: return "a live supervisor already serves this name";
  case EUSERS: return "too many producers attached to the pool";
  case EPERM: return "not allowed on this handle";
  case EDEADLK:
    return "every slot this producer may use holds its own uncollected "
           "results: collect before submitting more";
  case EACCES: return "permission denied (another user's pool?)";
  }
  /* strerrordesc_np returns static strings: thread-safe, never NULL here. */
  const char *s = strerrordesc_np(err);
  return s != NULL ? s : "unknown error";
}

FP_EXTERN const char *fp_version(void) { return FP_VERSION_STRING; }
