/*
 * Strays: the processes dead workers leave behind. The supervisor becomes a
 * child subreaper (when it may, see fp__sup_start_sweeping), so every
 * descendant of a worker is reparented to it once its parent dies,
 * whatever group or session it moved to (DESIGN.md, invariant 8: every
 * descendant of a task ends with the task). A sweep kills and reaps every
 * child of ours that is not a worker row's (reap.c; by pid, which cannot be
 * reused before we reap it). It runs when a worker died, before its task is
 * settled, so a result arrives with the task's processes gone; on a later
 * turn when a sweep ran out of time; and at stop.
 */
#include <sys/prctl.h>

#include "reap.h"
#include "sup.h"

static int is_worker(void *arg, pid_t pid) {
  return fp__sup_find_row(arg, pid) >= 0;
}

/*
 * Kill and reap every child of ours that is not a worker row's: the
 * descendants of dead workers, reparented to us (a subreaper) whatever
 * group or session they moved to. Spends at most budget_ns; what is left
 * then is tried again on the next turn (strays_left). Nothing to do when
 * sweeping is off (see fp__sup_start_sweeping).
 */
void fp__sup_sweep_strays(struct fp__sup *sp, uint64_t budget_ns) {
  if (!sp->sweep) return;
  unsigned n = 0;
  int rc = fp__reap_children(is_worker, sp, fp__now_ns() + budget_ns, &n);
  if (n > 0)
    fp__sup_log(sp, FP_LOG_DEBUG,
                "ended %u process(es) left by dead "
                "workers",
                n);
  if (rc == -ETIMEDOUT && !sp->strays_left)
    fp__sup_log(sp, FP_LOG_WARN,
                "processes left by dead workers do not "
                "die (a fork bomb?): still killing them");
  sp->strays_left = rc == -ETIMEDOUT;
}

static int count_child(void *arg, pid_t pid) {
  (void)pid;
  ++*(int *)arg;
  return 1; /* one is enough */
}

/*
 * Become a child subreaper, so that a dead worker's descendants become ours
 * and fp__sup_sweep_strays() can end them. Only when we have no child yet (a
 * private pool's supervisor, forkpool serve): a program that calls
 * fp_serve() with children of its own keeps them, and its descendants
 * orphaned later must not become ours to kill; its pool's strays then
 * escape to init as before. Sets sp->sweep.
 */
void fp__sup_start_sweeping(struct fp__sup *sp) {
  int kids = 0;
  if (fp__list_children(count_child, &kids) < 0 || kids > 0) return;
  if (prctl(PR_GET_CHILD_SUBREAPER, &sp->old_subreaper) != 0)
    sp->old_subreaper = 0;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return; /* before Linux 3.4 */
  sp->sweep = 1;
}

void fp__sup_stop_sweeping(struct fp__sup *sp) {
  if (sp->sweep && !sp->old_subreaper) prctl(PR_SET_CHILD_SUBREAPER, 0);
}
