/*
 * Producer side: is the supervisor still there? A private pool's
 * supervisor is our child: waitpid(WNOHANG) asks, and reaps it once it
 * died. A named pool's is not: its open of the segment holds the liveness
 * lock (an OFD lock, shm.c), which the kernel releases when it dies, pid
 * reuse or not. Once seen gone, p->sup_gone stays set: nothing restarts a
 * supervisor under a handle.
 */
#include <sys/wait.h>

#include "alive.h"
#include "shm.h"

int fp__sup_alive(struct fp_pool *p) {
  if (atomic_load(&p->sup_gone)) return 0;
  if (p->attached) {
    /* Not our child: its open of the segment holds the liveness lock. */
    if (fp__ofd_held(p->seg.fd, FP__SUP_LOCK_BYTE) == 0) {
      atomic_store(&p->sup_gone, 1);
      return 0;
    }
    return 1;
  }
  pid_t r = waitpid(p->sup_pid, NULL, WNOHANG);
  if (r == 0) return 1;
  if (r == p->sup_pid) {
    atomic_store(&p->sup_gone, 1);
    return 0;
  }
  /* ECHILD: someone else reaped it, so it is gone. EINTR: ask later. */
  if (errno == ECHILD) {
    atomic_store(&p->sup_gone, 1);
    return 0;
  }
  return 1;
}
