/*
 * Ending the processes a task left behind. A worker and the supervisor are
 * child subreapers (PR_SET_CHILD_SUBREAPER): whatever group or session a
 * descendant moved to, once its parent dies it becomes their child, and a
 * child's pid cannot be reused before its parent reaps it. So killing by
 * pid only the processes listed in /proc/self/task/ * /children hits our
 * own descendants and nothing else, with no race against pid reuse.
 */
#ifndef FP_REAP_H
#define FP_REAP_H

#include <stddef.h>
#include <sys/types.h>

#include "internal.h"

/* Says whether child `pid` must be left alone (a worker, a host's own). */
typedef int (*fp__keep_fn)(void *ctx, pid_t pid);

/*
 * SIGKILL and reap every child of this process for which keep (may be NULL)
 * returns 0, then the children they leave us (their orphans reparent to us,
 * a subreaper), until none is left or CLOCK_MONOTONIC passes deadline_ns.
 * Reaps each by its pid (waitpid(pid, WNOHANG | __WALL)), never waitpid(-1),
 * so a kept child's exit status stays for its owner. The caller must make
 * sure nothing else reaps its children meanwhile (SIGCHLD not SIG_IGN, no
 * SA_NOCLDWAIT, no other thread in waitpid), or a listed pid could be
 * reused before the kill.
 *
 * Returns 0 when no child but kept ones is left; -ETIMEDOUT when some still
 * were at the deadline (killed, not yet reaped, or new: call again);
 * -errno when /proc/self/task cannot be read (nothing was killed then).
 * *killed (may be NULL) gets the number of processes it reaped.
 */
FP__HIDDEN int fp__reap_children(fp__keep_fn keep, void *ctx,
                                 uint64_t deadline_ns, unsigned *killed);

/*
 * Call fn(ctx, pid) for every child of this process (every thread's),
 * as /proc lists it; stops early when fn returns nonzero. Returns the
 * number of children listed, or -errno when /proc/self/task cannot be read.
 * Allocates nothing: safe in a worker whatever the handler did to the heap.
 */
FP__HIDDEN int fp__list_children(int (*fn)(void *ctx, pid_t pid), void *ctx);

#endif /* FP_REAP_H */
