/*
 * The two process bodies: supervisor and worker. Each runs in a freshly
 * forked child and never returns (they end with _exit, never exit(): the
 * caller's atexit handlers and stdio buffers are not theirs).
 */
#ifndef FP_PROC_H
#define FP_PROC_H

#include <sys/types.h>

#include "segment.h"

/*
 * Supervisor body. `cmd_fd` is the read end of the owner's command pipe
 * (-1 when there is no owner process): 8-byte messages (struct fp__cmd), and
 * EOF when the owner died. Runs until the pool is stopped.
 */
FP__HIDDEN void fp__supervisor_main(struct fp__seg *s, const fp_config *cfg,
                                    int cmd_fd) __attribute__((noreturn));

/*
 * Worker body, forked by the supervisor into scoreboard row `row`. Closes
 * `fds[0..nfds)` (the supervisor's own descriptors) first.
 */
FP__HIDDEN void fp__worker_main(struct fp__seg *s, uint32_t row,
                                const fp_config *cfg, pid_t sup,
                                const int *fds, int nfds)
    __attribute__((noreturn));

/* Reset every signal disposition to default and unblock all signals. */
FP__HIDDEN void fp__reset_signals(void);

/*
 * In a freshly forked child: discard what the stdio buffers of stdin,
 * stdout and stderr inherited from the parent (never written or read
 * here). Cannot fail.
 */
FP__HIDDEN void fp__purge_stdio(void);

/* A command from the owner to its supervisor. */
struct fp__cmd {
  char op; /* 'D' drain, 'N' stop now */
  char pad_[3];
  int32_t grace_ms; /* 'D': negative means no limit */
};

#endif /* FP_PROC_H */
