/*
 * The two process bodies: supervisor and worker. Each runs in a freshly
 * forked child and never returns (they end with _exit, never exit(): the
 * caller's atexit handlers and stdio buffers are not theirs).
 */
#ifndef FP_PROC_H
#define FP_PROC_H

#include <sys/socket.h>
#include <sys/types.h>

#include "segment.h"

/*
 * Supervisor body. `cmd_fd` is the supervisor's end of the owner's command
 * channel (-1 when there is no owner process): 8-byte messages (struct
 * fp__cmd), and EOF when every copy of the owner's end is closed. `owner`
 * is the pid of the process that started the pool: its death stops the pool
 * even while a child it forked keeps the owner's end open. Runs until the
 * pool is stopped.
 */
FP__HIDDEN void fp__supervisor_main(struct fp__seg *s, const fp_config *cfg,
                                    int cmd_fd, pid_t owner)
    __attribute__((noreturn));

/*
 * Worker body, forked by the supervisor into scoreboard row `row`. Closes
 * `fds[0..nfds)` (the supervisor's own descriptors) first.
 */
FP__HIDDEN void fp__worker_main(struct fp__seg *s, uint32_t row,
                                const fp_config *cfg, pid_t sup, const int *fds,
                                int nfds) __attribute__((noreturn));

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
  char op; /* 'D' drain, 'N' stop now, 'C' look for cancels now */
  char pad_[3];
  int32_t grace_ms; /* 'D': negative means no limit */
};

/*
 * Send one command on the owner's end of the command channel (a
 * SOCK_SEQPACKET socket: one message per command). MSG_NOSIGNAL: a
 * supervisor that died must never kill the host with SIGPIPE, whatever the
 * host's disposition. Returns 0, or -EPIPE (the supervisor is gone),
 * -errno; retries EINTR.
 */
static inline int fp__cmd_send(int fd, const struct fp__cmd *cmd) {
  ssize_t n;
  do n = send(fd, cmd, sizeof(*cmd), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n == (ssize_t)sizeof(*cmd)) return 0;
  if (n >= 0) return -EIO; /* cannot happen: a datagram is sent whole */
  return errno == ECONNRESET || errno == ENOTCONN ? -EPIPE : -errno;
}

#endif /* FP_PROC_H */
