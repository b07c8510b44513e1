/*
 * Loading a handler plugin: a shared object named on the command line as
 * LIB.so[:SYMBOL].
 *
 * The handler symbol defaults to "forkpool_handler" (an fp_handler_fn); the
 * optional per-worker hooks are "forkpool_init" (fp_init_fn) and
 * "forkpool_fini" (fp_fini_fn). All three receive the --handler-arg
 * string, or NULL.
 */
#ifndef FORKPOOL_CLI_PLUGIN_H
#define FORKPOOL_CLI_PLUGIN_H

#include <stddef.h>

#include "forkpool.h"

#define CLI_PLUGIN_HANDLER "forkpool_handler"
#define CLI_PLUGIN_INIT "forkpool_init"
#define CLI_PLUGIN_FINI "forkpool_fini"

struct cli_plugin {
  void *dl; /* dlopen() handle */
  int fd;   /* the file, open while loaded; -1: none */
  fp_handler_fn handler;
  fp_init_fn init; /* NULL when the plugin has none */
  fp_fini_fn fini; /* NULL when the plugin has none */
};

/*
 * Open the plugin named by `spec` and look up its functions.
 *
 * `spec` is PATH or PATH:SYMBOL; the text after the last ':' is taken as the
 * symbol only when it is a C identifier, so a path that holds a ':' still
 * works ("a:b/x.so"). PATH is always opened as a file: one without a '/' is
 * opened as "./PATH", so dlopen() never searches the library path for it.
 * It is opened with RTLD_NOW | RTLD_LOCAL, so unresolved symbols are found
 * now rather than in a worker mid-task.
 *
 * Returns 0 with *p filled in, or -1 with a one-line reason (including the
 * dlerror() text and the path or symbol) in err; on error nothing stays
 * loaded.
 */
int cli_plugin_load(struct cli_plugin *p, const char *spec, char *err,
                    size_t errlen);

/* dlclose() the plugin. Call only after the pool using it is freed. */
void cli_plugin_unload(struct cli_plugin *p);

#endif /* FORKPOOL_CLI_PLUGIN_H */
