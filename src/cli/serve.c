/*
 * forkpool serve: run a named pool in the foreground. This process becomes
 * the pool's supervisor through fp_serve(), which blocks SIGTERM, SIGINT,
 * SIGHUP, SIGTTIN, SIGTTOU and SIGCHLD and reads them from a signalfd: we
 * install no handler for any of them, and the process stays
 * single-threaded, as fp_serve() requires.
 *
 * Everything after option parsing is logged on stderr through log.c, one
 * timestamped line per event.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "cli.h"
#include "log.h"
#include "plugin.h"
#include "serve.h"

#define CMD CLI_SERVE_CMD

struct serve_state {
  const struct serve_opts *o;
  char *pid_tmp;      /* temporary pidfile in the pidfile's directory */
  int pid_written;    /* the pidfile holds our pid */
  int pid_failed;     /* it could not be written: stop, then exit 1 */
};

/* "DIR/.BASE.tmp.PID" for the pidfile "DIR/BASE". Returns NULL on ENOMEM. */
static char *pidfile_tmp_path(const char *path)
{
  const char *slash = strrchr(path, '/');
  size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
  size_t n = strlen(path) + 32;
  char *t = malloc(n);

  if (t)
    snprintf(t, n, "%.*s.%s.tmp.%ld", (int)dlen, path, path + dlen,
             (long)getpid());
  return t;
}

/*
 * Write "PID\n" to the temporary file and rename it over the pidfile, so a
 * reader sees either the old content or ours, never a partial one.
 * Returns 0 or a negative errno (the temporary file is removed).
 */
static int pidfile_write(const char *tmp, const char *path)
{
  char buf[32];
  int fd, n, err = 0;
  ssize_t w;

  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return -errno;
  n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  do
    w = write(fd, buf, (size_t)n);
  while (w < 0 && errno == EINTR);
  if (w != n)
    err = w < 0 ? -errno : -EIO;
  if (close(fd) != 0 && err == 0)
    err = -errno;
  if (err == 0 && rename(tmp, path) != 0)
    err = -errno;
  if (err < 0)
    unlink(tmp);
  return err;
}

/* Remove the pidfile if it still names us (a later server may own it). */
static void pidfile_remove(const char *path)
{
  char buf[32];
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return;
  buf[n] = '\0';
  if (strtol(buf, NULL, 10) == (long)getpid())
    unlink(path);
}

/* fp_serve_config.on_ready: producers can submit from now on. */
static void on_ready(void *ctx)
{
  struct serve_state *s = ctx;
  const struct serve_opts *o = s->o;
  int r;

  cli_logf(FP_LOG_INFO, "ready: pool '%s' (segment /dev/shm/forkpool.%s), "
           "%u worker%s, %u slots, supervisor pid %ld", o->name, o->name,
           o->pool.workers, o->pool.workers == 1 ? "" : "s", o->pool.slots,
           (long)getpid());
  if (!o->pidfile)
    return;
  r = pidfile_write(s->pid_tmp, o->pidfile);
  if (r == 0) {
    s->pid_written = 1;
    cli_logf(FP_LOG_INFO, "pidfile %s written", o->pidfile);
    return;
  }
  /* Stop the way an operator would: SIGTERM reaches fp_serve()'s signalfd
   * and drains the pool (nothing can be queued yet but our own tasks). */
  cli_logf(FP_LOG_ERROR, "cannot write pidfile %s: %s; stopping", o->pidfile,
           strerror(-r));
  s->pid_failed = 1;
  kill(getpid(), SIGTERM);
}

/*
 * Check before serving that the pidfile can be written: create and remove
 * its temporary file. Returns 0 or a negative errno.
 */
static int pidfile_probe(const char *tmp)
{
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                0644);

  if (fd < 0)
    return -errno;
  close(fd);
  unlink(tmp);
  return 0;
}

/*
 * Dispositions we may have inherited through exec. An ignored SIGCHLD makes
 * the kernel reap children by itself: the supervisor's waitpid() would
 * never see a worker die, its task would never end and no replacement
 * would come. (Ignored SIGTERM, SIGINT or SIGHUP are harmless: fp_serve()
 * blocks them, and a blocked signal is queued for its signalfd even when
 * ignored.) SIGPIPE is ignored on purpose: a closed stderr must become
 * EPIPE in the log, not kill the supervisor. Workers reset every
 * disposition after fork.
 */
static void prepare_signals(void)
{
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
}

/* Log why fp_serve() failed. Returns the exit status. */
static int serve_failed(const struct serve_opts *o, int err)
{
  fp_pool *p = NULL;
  fp_stats st;

  switch (-err) {
  case EADDRINUSE:
    /* Ask the live pool who serves it; it may be gone by now. */
    if (fp_pool_open(&p, o->name, FP_OPEN_MONITOR) == 0 &&
        fp_pool_stats(p, &st) == 0 && st.supervisor > 0)
      cli_logf(FP_LOG_ERROR, "a live forkpool already serves %s (pid %ld)",
               o->name, (long)st.supervisor);
    else
      cli_logf(FP_LOG_ERROR, "a live forkpool already serves %s", o->name);
    fp_pool_free(p);
    return CLI_EXIT_FAIL;
  case ECHILD:
    cli_log(FP_LOG_ERROR, "workers could not start (init hook failed)");
    return CLI_EXIT_FAIL;
  case EACCES:
    cli_logf(FP_LOG_ERROR, "cannot serve %s: /dev/shm/forkpool.%s exists and "
             "is not ours (another user's pool?)", o->name, o->name);
    return CLI_EXIT_FAIL;
  case EINVAL:
    cli_logf(FP_LOG_ERROR, "cannot serve %s: invalid configuration",
             o->name);
    return CLI_EXIT_USAGE;
  default:
    cli_logf(FP_LOG_ERROR, "cannot serve %s: %s", o->name, fp_strerror(err));
    return CLI_EXIT_FAIL;
  }
}

int cli_serve_main(int argc, char **argv)
{
  struct serve_opts opt;
  struct serve_state s;
  struct cli_plugin pl;
  fp_config cfg;
  fp_serve_config sc;
  char err[1024];
  int rc, r;

  rc = cli_serve_parse(argc, argv, &opt);
  if (rc >= 0)
    return rc;
  memset(&s, 0, sizeof s);
  memset(&pl, 0, sizeof pl);
  s.o = &opt;
  if (cli_plugin_load(&pl, opt.handler, err, sizeof err) < 0) {
    fprintf(stderr, CMD ": --handler: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  fp_config_init(&cfg);
  cli_pool_config(&opt.pool, &cfg);
  if (opt.min_workers) {
    /* Resizing between --min-workers and --max-workers (or its default). */
    cfg.min_workers = opt.min_workers;
    cfg.max_workers = opt.max_workers ? opt.max_workers
                      : opt.pool.workers > 64 ? opt.pool.workers
                                              : 64;
    cfg.idle_ms = opt.idle_ms;
  }
  cfg.seal = (unsigned)opt.seal;
  cfg.handler = pl.handler;
  cfg.worker_init = pl.init;
  cfg.worker_fini = pl.fini;
  r = fp_config_validate(&cfg);
  if (r < 0) {
    fprintf(stderr, CMD ": invalid configuration (is --queue x "
            "(--max-input + --max-output) too large?): %s\n", fp_strerror(r));
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  fp_serve_config_init(&sc);
  sc.name = opt.name;
  sc.mode = opt.mode;
  sc.grace_ms = opt.grace_ms;
  sc.max_workers = opt.max_workers;
  sc.max_clients = opt.max_clients;
  sc.log = cli_log_fn;
  sc.on_ready = on_ready;
  sc.ready_ctx = &s;
  cli_log_setup(&opt.log);

  if (opt.pidfile) {
    s.pid_tmp = pidfile_tmp_path(opt.pidfile);
    r = s.pid_tmp ? pidfile_probe(s.pid_tmp) : -ENOMEM;
    if (r < 0) {
      cli_logf(FP_LOG_ERROR, "cannot write pidfile %s: %s", opt.pidfile,
               strerror(-r));
      rc = CLI_EXIT_FAIL;
      goto out;
    }
  }
  prepare_signals();
  cli_logf(FP_LOG_INFO, "starting pool '%s': %u worker%s, handler %s, "
           "version %s", opt.name, opt.pool.workers,
           opt.pool.workers == 1 ? "" : "s", opt.handler, fp_version());
  r = fp_serve(&cfg, &sc);
  if (r < 0) {
    rc = serve_failed(&opt, r);
  } else if (s.pid_failed) {
    rc = CLI_EXIT_FAIL;
  } else {
    cli_logf(FP_LOG_INFO, "stopped: pool '%s' removed", opt.name);
    rc = CLI_EXIT_OK;
  }
  if (s.pid_written)
    pidfile_remove(opt.pidfile);

out:
  free(s.pid_tmp);
  cli_plugin_unload(&pl); /* every worker is reaped by now */
  return rc;
}
