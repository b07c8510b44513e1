/*
 * Where `forkpool run` and `forkpool serve` get their handler: a plugin
 * (--handler LIB.so[:SYMBOL] [--handler-arg STRING]) or a command
 * (--exec CMD [ARG...], --coproc CMD [ARG...]: command.h). One of the
 * three, and --exec and --coproc take the rest of the command line.
 *
 * Reload (serve's SIGHUP, cli_handler_reload): a plugin is loaded again
 * from its path, so a new build of the file (a new inode: `make`,
 * `install`, `mv`, never a copy over the old file in place) takes effect
 * in the workers started after; a command is checked again on PATH.
 */
#ifndef FORKPOOL_CLI_HANDLER_H
#define FORKPOOL_CLI_HANDLER_H

#include <stddef.h>

#include "command.h"
#include "forkpool.h"
#include "plugin.h"

#define CLI_HANDLER_USAGE                                                     \
  "  --handler LIB.so[:SYMBOL]  plugin and handler symbol (default symbol\n"  \
  "                     forkpool_handler; hooks forkpool_init and\n"          \
  "                     forkpool_fini are used when present)\n"               \
  "  --handler-arg STRING  the plugin's arg: its handler and hooks get a\n"   \
  "                     pointer to STRING (NUL-terminated; without it, "      \
  "NULL)\n"                                                                   \
  "  --exec CMD [ARG...]  instead of --handler, and last: each task runs "    \
  "CMD\n"                                                                     \
  "                     (found on PATH, no shell); '{}' in an ARG is "        \
  "replaced\n"                                                                \
  "                     by the task, else the task is CMD's stdin; its "      \
  "stdout\n"                                                                  \
  "                     is the output; exit 0 is ok, exit N failed code=N, "  \
  "a\n"                                                                       \
  "                     signal crashed\n"                                     \
  "  --coproc CMD [ARG...]  instead of --handler, and last: each worker "     \
  "keeps\n"                                                                   \
  "                     one CMD and sends it tasks over its stdin, reading\n" \
  "                     results from its stdout (framing: forkpool(1),\n"     \
  "                     COPROC PROTOCOL)\n"

struct cli_handler {
  const char *plugin;     /* --handler spec, or NULL */
  const char *arg;        /* --handler-arg, or NULL */
  struct cli_command cmd; /* --exec / --coproc when cmd.argv != NULL */
  struct cli_plugin pl;   /* the loaded plugin */
  struct cli_plugin old;  /* the plugin a reload replaced */
};

/*
 * Match argv[*i] against --handler, --handler-arg, --exec and --coproc.
 * Returns 1 when one matched (*i on the last element it used: argc - 1
 * for --exec and --coproc, which take the rest), 0 when none did, -1
 * after a message on stderr.
 */
int cli_handler_arg(const char *cmd, int argc, char **argv, int *i,
                    struct cli_handler *h);

/* After parsing: exactly one source given, --handler-arg only with a
 * plugin. Returns 0, or -1 after a message on stderr. */
int cli_handler_check(const char *cmd, const struct cli_handler *h);

/*
 * Load the plugin or check the command, and fill cfg->handler, arg,
 * worker_init and worker_fini. Returns 0, or -1 with a one-line reason in
 * err that starts with the option ("--exec: 'x' not found on PATH"),
 * nothing loaded.
 */
int cli_handler_open(struct cli_handler *h, fp_config *cfg, char *err,
                     size_t errlen);

/*
 * SIGHUP, in the serving process: load the plugin again (in a child
 * first, so a plugin that crashes while loading costs that child, not the
 * pool) or check the command again, and on success point cfg at the new
 * code, for the workers forked from now on. Returns 0, or -1 with the
 * reason in err and cfg and what is loaded unchanged. The plugin the
 * previous reload replaced is unloaded (no worker forks from it any more).
 */
int cli_handler_reload(struct cli_handler *h, fp_config *cfg, char *err,
                       size_t errlen);

/* What runs the tasks, for a log line: "plugin X", "--exec CMD". */
const char *cli_handler_name(const struct cli_handler *h);

/* Unload what is loaded. */
void cli_handler_close(struct cli_handler *h);

#endif /* FORKPOOL_CLI_HANDLER_H */
