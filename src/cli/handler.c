/*
 * The handler of run and serve: a plugin or a command (handler.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tool/args.h"
#include "handler.h"

/* A plugin whose load has not ended in this long is taken as hung. */
#define PROBE_MS 10000

int cli_handler_arg(const char *cmd, int argc, char **argv, int *i,
                    struct cli_handler *h) {
  const char *a = argv[*i];
  int r, coproc = !strcmp(a, "--coproc");

  if (coproc || !strcmp(a, "--exec")) {
    if (h->cmd.argv) {
      fprintf(stderr, "%s: only one of --exec and --coproc\n", cmd);
      return -1;
    }
    if (*i + 1 >= argc) {
      fprintf(stderr,
              "%s: %s needs a command: %s CMD [ARG...] (last on "
              "the command line)\n",
              cmd, a, a);
      return -1;
    }
    h->cmd.argv = argv + *i + 1;
    h->cmd.argc = argc - *i - 1;
    h->cmd.coproc = coproc;
    for (int k = 1; k < h->cmd.argc && !coproc; k++)
      if (strstr(h->cmd.argv[k], "{}")) h->cmd.brace = 1;
    *i = argc - 1;
    return 1;
  }
  if ((r = tool_arg_string(cmd, argc, argv, i, "--handler", &h->plugin)) != 0)
    return r;
  /* Any string, the empty one too: it is the plugin's to read. */
  return tool_arg_value(cmd, argc, argv, i, "--handler-arg", &h->arg);
}

int cli_handler_check(const char *cmd, const struct cli_handler *h) {
  if (!h->plugin && !h->cmd.argv) {
    fprintf(stderr, "%s: --handler, --exec or --coproc is required\n", cmd);
    return -1;
  }
  if (h->plugin && h->cmd.argv) {
    fprintf(stderr, "%s: --handler and %s exclude each other\n", cmd,
            h->cmd.coproc ? "--coproc" : "--exec");
    return -1;
  }
  if (h->arg && !h->plugin) {
    fprintf(stderr,
            "%s: --handler-arg is for a plugin (--handler); give "
            "a command its arguments after %s CMD\n",
            cmd, h->cmd.coproc ? "--coproc" : "--exec");
    return -1;
  }
  return 0;
}

static void plugin_config(const struct cli_handler *h, fp_config *cfg) {
  cfg->handler = h->pl.handler;
  /* The plugin's string, in this process's memory: every worker, forked
   * from it, has the same copy. */
  cfg->arg = (void *)h->arg;
  cfg->worker_init = h->pl.init;
  cfg->worker_fini = h->pl.fini;
}

/* The option that named the handler, for messages. */
static const char *option(const struct cli_handler *h) {
  return !h->cmd.argv ? "--handler" : h->cmd.coproc ? "--coproc" : "--exec";
}

int cli_handler_open(struct cli_handler *h, fp_config *cfg, char *err,
                     size_t errlen) {
  size_t n = (size_t)snprintf(err, errlen, "%s: ", option(h));

  if (n >= errlen) n = 0;
  h->pl.fd = h->old.fd = -1;
  if (h->cmd.argv) {
    if (cli_command_check(&h->cmd, err + n, errlen - n) < 0) return -1;
    if (h->cmd.coproc) cli_coproc_config(&h->cmd, cfg);
    else cli_exec_config(&h->cmd, cfg);
    return 0;
  }
  if (cli_plugin_load(&h->pl, h->plugin, err + n, errlen - n) < 0) return -1;
  plugin_config(h, cfg);
  return 0;
}

/*
 * Load the plugin in a child, which then exits: 0 when it loaded, else -1
 * with why (its error, or how it died: a constructor that crashes or
 * hangs). Our own load follows only after this one worked.
 */
static int probe(const char *spec, char *err, size_t errlen) {
  int p[2], ws = 0, r;
  char buf[512];
  ssize_t n = 0;
  pid_t pid;

  if (pipe2(p, O_CLOEXEC) != 0) {
    snprintf(err, errlen, "pipe: %s", strerror(errno));
    return -1;
  }
  pid = fork();
  if (pid < 0) {
    snprintf(err, errlen, "fork: %s", strerror(errno));
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) {
    struct cli_plugin pl;
    char e[512];
    size_t len;

    close(p[0]);
    if (cli_plugin_load(&pl, spec, e, sizeof e) == 0) _exit(0);
    len = strlen(e);
    while (write(p[1], e, len) < 0 && errno == EINTR) {
    }
    _exit(1);
  }
  close(p[1]);
  {
    struct pollfd pf = {.fd = p[0], .events = POLLIN};

    do r = poll(&pf, 1, PROBE_MS);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
      do n = read(p[0], buf, sizeof buf - 1);
      while (n < 0 && errno == EINTR);
    }
  }
  close(p[0]);
  if (r == 0)
    kill(pid, SIGKILL); /* our child, not reaped: the pid is its own */
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (r == 0) {
    snprintf(err, errlen,
             "loading '%s' did not end within %d ms (a "
             "constructor that hangs?)",
             spec, PROBE_MS);
    return -1;
  }
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return 0;
  if (n > 0) {
    buf[n] = '\0';
    snprintf(err, errlen, "%s", buf);
  } else {
    char st[64];

    snprintf(err, errlen, "loading '%s' %s", spec,
             cli_wait_text(ws, st, sizeof st));
  }
  return -1;
}

int cli_handler_reload(struct cli_handler *h, fp_config *cfg, char *err,
                       size_t errlen) {
  struct cli_plugin pl;

  if (h->cmd.argv) return cli_command_check(&h->cmd, err, errlen);
  if (probe(h->plugin, err, errlen) < 0 ||
      cli_plugin_load(&pl, h->plugin, err, errlen) < 0)
    return -1;
  /* Workers of the plugin before last are gone or retiring: each has its
   * own copy of the code, so unloading ours takes nothing from them. */
  cli_plugin_unload(&h->old);
  h->old = h->pl;
  h->pl = pl;
  plugin_config(h, cfg);
  return 0;
}

const char *cli_handler_name(const struct cli_handler *h) {
  static char buf[256];

  if (!h->cmd.argv) snprintf(buf, sizeof buf, "plugin %s", h->plugin);
  else
    snprintf(buf, sizeof buf, "%s %s%s", option(h), h->cmd.argv[0],
             h->cmd.argc > 1 ? " ..." : "");
  return buf;
}

void cli_handler_close(struct cli_handler *h) {
  if (h->pl.dl) cli_plugin_unload(&h->pl);
  if (h->old.dl) cli_plugin_unload(&h->old);
}
