/*
 * Named pools from the command line: checking a pool name and attaching
 * to a pool that `forkpool serve` runs, with one clear message per way it
 * can fail. Shared by serve, submit and stat.
 */
#ifndef FORKPOOL_CLI_ATTACH_H
#define FORKPOOL_CLI_ATTACH_H

#include "forkpool.h"

/* The rules of fp_name_validate(), for messages. */
#define CLI_NAME_RULES \
  "[A-Za-z0-9_-], 1-"  \
  "64"                 \
  " chars, not starting with '-'"

/*
 * Check that name is a valid pool name. Returns 0, or -1 after a message
 * ("CMD: --name: 'x y' is not a valid pool name: use ...").
 */
int cli_name_check(const char *cmd, const char *name);

/*
 * Print the message for err, a negative errno from fp_pool_open() or from
 * a producer call on a named pool: "no forkpool named NAME is running",
 * "pool NAME is shutting down", "supervisor of NAME died", ...
 */
void cli_pool_error(const char *cmd, const char *name, int err);

/* What cli_shm_describe() found at /dev/shm/forkpool.NAME. */
#define CLI_SHM_GONE 0    /* nothing there (or lstat failed) */
#define CLI_SHM_LINK 1    /* a symbolic link */
#define CLI_SHM_ODD 2     /* not a regular file */
#define CLI_SHM_FOREIGN 3 /* another user's file */
#define CLI_SHM_MODE 4    /* ours, but its mode denies us read or write */
#define CLI_SHM_OURS 5    /* ours, readable and writable */

/*
 * Describe the object at /dev/shm/forkpool.NAME for a message, naming its
 * path, owner, group and mode, or the link it is ("/dev/shm/forkpool.x
 * belongs to user bob (uid 1001), group bob (gid 1001), mode 0600").
 * Writes a NUL-terminated text into buf (size n) and returns a CLI_SHM_*
 * value; never fails (an lstat error is described in buf).
 */
int cli_shm_describe(const char *name, char *buf, size_t n);

/*
 * fp_pool_open(name, flags), and for a pool that is still starting, wait
 * until it runs (a producer cannot submit before). Returns 0 with *out set,
 * or the exit status CLI_EXIT_NOPOOL after cli_pool_error().
 */
int cli_attach(const char *cmd, const char *name, unsigned flags,
               fp_pool **out);

#endif /* FORKPOOL_CLI_ATTACH_H */
