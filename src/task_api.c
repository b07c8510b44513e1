/*
 * The calls a handler makes from inside a worker (forkpool.h): fp_spawn,
 * fp_task_crashed and fp_task_decline. Each is valid only while the
 * handler runs, in the worker itself (not in a process it forked): -EPERM
 * otherwise. worker.c brackets each call of the handler with
 * fp__spawn_begin() and fp__spawn_end().
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "report.h"
#include "room.h"

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

/* This worker's row, for the calls a handler makes (set before any task). */
static struct fp__row *my_row;

void fp__task_api_init(struct fp__row *row) { my_row = row; }

void fp__spawn_begin(uint32_t max_input) {
  spawned.active = 1;
  spawned.used = 0;
  spawned.max_input = max_input;
}

size_t fp__spawn_end(const unsigned char **buf) {
  spawned.active = 0;
  *buf = spawned.buf;
  return spawned.used;
}

/* Signals whose default action does not end a process: no child died of
 * one, so no task can be said to have. */
static int ends_process(int sig) {
  switch (sig) {
  case SIGCHLD:
  case SIGCONT:
  case SIGSTOP:
  case SIGTSTP:
  case SIGTTIN:
  case SIGTTOU:
  case SIGURG:
  case SIGWINCH: return 0;
  default: return sig >= 1 && sig <= SIGRTMAX;
  }
}

/*
 * See forkpool.h. The worker dies the way the task's process did, so the
 * supervisor's one path for a dead worker settles the task (status,
 * retries, quarantine, backoff, log): the report area holds the handler's
 * text for this task, rendered in place of a crash report. Killed between
 * the report and the exit, the task ends crashed by SIGKILL with that text:
 * as the handler meant, but for the signal.
 */
FP_EXTERN int fp_task_crashed(int signal, int exit_code, const void *report,
                              size_t len) {
  if (!spawned.active || fp__room_in_child() || my_row == NULL) return -EPERM;
  if (signal != 0 ? !ends_process(signal) : exit_code < 0 || exit_code > 255)
    return -EINVAL;
  if (report == NULL && len > 0) return -EINVAL;
  fp__report_text(report, len);
  if (signal == 0) _exit(exit_code);
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none); /* the crash was not this process's */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signal, &dfl, NULL); /* EINVAL for SIGKILL: fine */
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signal);
  sigprocmask(SIG_UNBLOCK, &one, NULL);
  raise(signal);
  _exit(128 + signal); /* not reached: its default action ends us */
}

/*
 * See forkpool.h. task_id = 0 with the slot still RUNNING under our row is
 * what a worker killed between its claim and the handler's start leaves:
 * the supervisor puts such a task back in the queue, unrun (sup_death.c,
 * on a worker's death). Killed before the store, the task ends crashed
 * (SIGKILL), as any task whose worker was killed.
 */
FP_EXTERN int fp_task_decline(void) {
  if (!spawned.active || fp__room_in_child() || my_row == NULL) return -EPERM;
  atomic_store(&my_row->task_id, 0);
  _exit(FP_EXIT_DECLINED);
}
