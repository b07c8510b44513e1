/*
 * Handlers in any language: a task run by a program instead of a plugin.
 *
 *   --exec CMD [ARG...]    each task runs CMD once (exec.c);
 *   --coproc CMD [ARG...]  each worker keeps one CMD and sends it tasks in
 *                          the coproc framing (coproc.c).
 *
 * Both run inside a worker, as the pool's fp_handler_fn: every rule of the
 * worker holds for the command too (the timeout kills it with everything
 * it started; processes a task left are ended when it ends). The command
 * is found on PATH by posix_spawnp(), with no shell between.
 *
 * Failures of forkpool's own making end the task FP_FAILED with a code
 * above every exit status (FP_CODE_* in forkpool.h); a command killed by a
 * signal ends it FP_CRASHED with that signal (fp_task_crashed()).
 */
#ifndef FORKPOOL_CLI_COMMAND_H
#define FORKPOOL_CLI_COMMAND_H

#include <stddef.h>
#include <sys/types.h>

#include "forkpool.h"

/* The command of --exec or --coproc: argv[0..argc) (NULL-terminated), in
 * the CLI's own argv. */
struct cli_command {
  char **argv;
  int argc;
  int brace;  /* --exec: some ARG holds "{}": the task goes there */
  int coproc; /* --coproc, not --exec */
};

/*
 * Check that the command can be run: argv[0] names an executable file,
 * directly (it holds a '/') or on PATH, as posix_spawnp() would find it.
 * Returns 0, or -1 with a one-line reason in err ("'foo' not found on
 * PATH", "'./x': permission denied").
 */
int cli_command_check(const struct cli_command *c, char *err, size_t errlen);

/* Fill cfg->handler, arg, worker_init and worker_fini to run c (which
 * must outlive the pool), as --exec (exec.c) or --coproc (coproc.c). */
void cli_exec_config(const struct cli_command *c, fp_config *cfg);
void cli_coproc_config(const struct cli_command *c, fp_config *cfg);

/* A process a worker started, with our ends of its pipes. */
struct cli_child {
  pid_t pid; /* 0: none */
  int pidfd; /* readable once it exited; -1 without pidfd_open */
  int in;    /* its stdin, nonblocking; -1 when not piped */
  int out;   /* its stdout, nonblocking */
  int err;   /* its stderr, nonblocking; -1 when not piped (ours) */
};

/*
 * Start argv as a child of this process: stdout always a pipe to us,
 * stdin a pipe when pipe_in (else ours: /dev/null in a worker), stderr a
 * pipe when pipe_err (else ours: the worker's log). Default signal
 * actions and an empty mask in the child; our ends close on exec.
 * Returns 0 with *c filled, or -errno (posix_spawnp's: ENOENT, EACCES,
 * E2BIG, EAGAIN, EMFILE...) with nothing left open or running.
 */
int cli_child_start(struct cli_child *c, char *const argv[], int pipe_in,
                    int pipe_err);

/*
 * Reap c, which exited or is about to (blocking waitpid, EINTR retried),
 * store its wait status in *status, and close every descriptor of c.
 * Returns 0, or -errno (ECHILD: it was reaped behind our back; *status
 * is then 0).
 */
int cli_child_reap(struct cli_child *c, int *status);

/* SIGKILL c (if it still runs) and reap it, closing its descriptors. */
void cli_child_kill(struct cli_child *c);

/*
 * End a task with a text of ours: copy text (len bytes, truncated to cap)
 * into the output, and return code, the handler's return value.
 */
int cli_fail_text(int code, const void *text, size_t len, void *out, size_t cap,
                  size_t *out_len);

/* Close and forget our end *fd (-1 afterwards); nothing when -1. */
void cli_fd_close(int *fd);

/*
 * Describe a wait status: "exited with status 3", "killed by SIGSEGV
 * (core dumped)". Returns buf.
 */
const char *cli_wait_text(int status, char *buf, size_t len);

#endif /* FORKPOOL_CLI_COMMAND_H */
