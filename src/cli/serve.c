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
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "attach.h"
#include "cli.h"
#include "tool/log.h"
#include "plugin.h"
#include "serve.h"
#include "tool/signame.h"

#define CMD CLI_SERVE_CMD

struct serve_state {
  struct serve_opts *o;
  fp_config *cfg;  /* the pool's: a reload points it at new code */
  int pid_written; /* the pidfile holds our pid */
  int pid_failed;  /* it could not be written: stop, then exit 1 */
};

/*
 * Create a new temporary file "DIR/.BASE.tmp.<12 random characters>" next to the
 * pidfile "DIR/BASE" under an unpredictable name (12 random characters),
 * exclusively (O_EXCL: never a file or link someone else made in advance,
 * whoever owns the directory), O_NOFOLLOW and O_CLOEXEC, mode 0644 (less
 * if our umask says so).
 * Returns the descriptor, open for writing, and the malloc'ed name in
 * *tmp; or a negative errno with nothing created and *tmp NULL.
 */
static int pidfile_tmp_open(const char *path, char **tmp) {
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  const char *slash = strrchr(path, '/');
  size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
  size_t n = strlen(path) + 32;
  char *t = malloc(n);
  int fd = -EEXIST;

  *tmp = NULL;
  if (!t) return -ENOMEM;
  for (int attempt = 0; attempt < 100 && fd == -EEXIST; attempt++) {
    unsigned char rnd[12];
    char suffix[sizeof rnd + 1];
    ssize_t g;

    do g = getrandom(rnd, sizeof rnd, 0);
    while (g < 0 && errno == EINTR);
    if (g != (ssize_t)sizeof rnd) {
      fd = g < 0 ? -errno : -EIO;
      break;
    }
    for (size_t k = 0; k < sizeof rnd; k++)
      suffix[k] = digits[rnd[k] % (sizeof digits - 1)];
    suffix[sizeof rnd] = '\0';
    snprintf(t, n, "%.*s.%s.tmp.%s", (int)dlen, path, path + dlen, suffix);
    do fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) fd = -errno;
  }
  if (fd < 0) {
    free(t);
    return fd;
  }
  *tmp = t;
  return fd;
}

/*
 * Write "PID\n" to a new temporary file and rename it over the pidfile, so
 * a reader sees either the old content or ours, never a partial one, and
 * the pidfile is always a file we created. Returns 0 or a negative errno
 * (the temporary file is removed).
 */
static int pidfile_write(const char *path) {
  char buf[32];
  char *tmp;
  int fd, n, err = 0;
  ssize_t w;

  fd = pidfile_tmp_open(path, &tmp);
  if (fd < 0) return fd;
  n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  do w = write(fd, buf, (size_t)n);
  while (w < 0 && errno == EINTR);
  if (w != n) err = w < 0 ? -errno : -EIO;
  if (close(fd) != 0 && err == 0) err = -errno;
  if (err == 0 && rename(tmp, path) != 0) err = -errno;
  if (err < 0) unlink(tmp);
  free(tmp);
  return err;
}

/* Remove the pidfile if it still names us (a later server may own it). */
static void pidfile_remove(const char *path) {
  char buf[32];
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0) return;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = '\0';
  if (strtol(buf, NULL, 10) == (long)getpid()) unlink(path);
}

/*
 * fp_serve_config.on_reload (SIGHUP): load the plugin again, or check the
 * command again. Returns 0, or -ENOEXEC with the reason logged (the
 * library then logs that the old code keeps running).
 */
static int on_reload(void *ctx) {
  struct serve_state *s = ctx;
  char err[1024];

  if (cli_handler_reload(&s->o->handler, s->cfg, err, sizeof err) < 0) {
    tool_logf(FP_LOG_ERROR, "reload of %s failed: %s",
              cli_handler_name(&s->o->handler), err);
    return -ENOEXEC;
  }
  tool_logf(FP_LOG_INFO, "reload: %s loaded again",
            cli_handler_name(&s->o->handler));
  return 0;
}

/* fp_serve_config.on_ready: producers can submit from now on. */
static void on_ready(void *ctx) {
  struct serve_state *s = ctx;
  const struct serve_opts *o = s->o;
  int r;

  tool_logf(FP_LOG_INFO,
            "ready: pool '%s' (segment /dev/shm/forkpool.%s), "
            "%u worker%s, %u slots, supervisor pid %ld",
            o->name, o->name, o->pool.workers, o->pool.workers == 1 ? "" : "s",
            o->pool.slots, (long)getpid());
  if (!o->pidfile) return;
  r = pidfile_write(o->pidfile);
  if (r == 0) {
    s->pid_written = 1;
    tool_logf(FP_LOG_INFO, "pidfile %s written", o->pidfile);
    return;
  }
  /* Stop the way an operator would: SIGTERM reaches fp_serve()'s signalfd
   * and drains the pool (nothing can be queued yet but our own tasks). */
  tool_logf(FP_LOG_ERROR, "cannot write pidfile %s: %s; stopping", o->pidfile,
            strerror(-r));
  s->pid_failed = 1;
  kill(getpid(), SIGTERM);
}

/*
 * Check before serving that the pidfile can be written: create and remove
 * a temporary file next to it. Returns 0 or a negative errno.
 */
static int pidfile_probe(const char *path) {
  char *tmp;
  int fd = pidfile_tmp_open(path, &tmp);

  if (fd < 0) return fd;
  close(fd);
  unlink(tmp);
  free(tmp);
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
static void prepare_signals(void) {
  (void)tool_signal_set(SIGCHLD, SIG_DFL); /* valid numbers: cannot fail */
  (void)tool_signal_set(SIGPIPE, SIG_IGN);
}

/* "RLIMIT_NPROC 3" or "RLIMIT_NPROC unlimited", for a fork failure. */
static void nproc_desc(char *buf, size_t n) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    snprintf(buf, n, "ulimit -u %llu", (unsigned long long)rl.rlim_cur);
  else snprintf(buf, n, "ulimit -u unlimited");
}

/* Log why fp_serve() failed, naming the real cause. Returns the exit status. */
static int serve_failed(const struct serve_opts *o, int err) {
  fp_pool *p = NULL;
  fp_stats st;
  char desc[600];
  int what, r;

  switch (-err) {
  case EADDRINUSE:
    /* Ask the live pool who serves it; it may be gone by now. */
    r = fp_pool_open(&p, o->name, FP_OPEN_MONITOR);
    if (r == 0 && fp_pool_stats(p, &st) == 0 && st.supervisor > 0)
      tool_logf(FP_LOG_ERROR, "a live forkpool already serves %s (pid %ld)",
                o->name, (long)st.supervisor);
    else if (r == 0 || r == -ECONNREFUSED)
      tool_logf(FP_LOG_ERROR, "a live forkpool already serves %s", o->name);
    else /* Locked by a process of ours that is no pool we can read. */
      tool_logf(FP_LOG_ERROR,
                "cannot serve %s: /dev/shm/forkpool.%s is held "
                "(locked) by a live process and is no forkpool segment we can "
                "read (%s); it is left alone",
                o->name, o->name, fp_strerror(r));
    fp_pool_free(p);
    return CLI_EXIT_FAIL;
  case ECHILD:
    tool_log(FP_LOG_ERROR, "workers could not start (init hook failed)");
    return CLI_EXIT_FAIL;
  case EACCES:
  case ELOOP:
    what = cli_shm_describe(o->name, desc, sizeof desc);
    if (what == CLI_SHM_FOREIGN || what == CLI_SHM_LINK)
      tool_logf(FP_LOG_ERROR,
                "cannot serve %s: %s; it is left alone: remove "
                "it or choose another --name",
                o->name, desc);
    else
      tool_logf(FP_LOG_ERROR, "cannot serve %s: %s (%s)", o->name, desc,
                fp_strerror(err));
    return CLI_EXIT_FAIL;
  case ENOSPC:
    tool_logf(FP_LOG_ERROR,
              "cannot serve %s: no room in /dev/shm for its "
              "segment: lower --queue, --max-input or --max-output, or free "
              "or enlarge /dev/shm",
              o->name);
    return CLI_EXIT_FAIL;
  case EAGAIN:
    /* The one EAGAIN of fp_serve(): fork() of a worker at start. */
    nproc_desc(desc, sizeof desc);
    tool_logf(FP_LOG_ERROR,
              "cannot serve %s: fork of a worker failed: the "
              "process limit of uid %ld is reached (%s) or the system "
              "is out of processes",
              o->name, (long)getuid(), desc);
    return CLI_EXIT_FAIL;
  case EIO:
    /* fp_serve() logged the truncation; this is how the pool ended. */
    tool_logf(FP_LOG_ERROR, "pool %s stopped: its segment was cut under it",
              o->name);
    return CLI_EXIT_FAIL;
  case EINVAL:
    tool_logf(FP_LOG_ERROR, "cannot serve %s: invalid configuration", o->name);
    return CLI_EXIT_USAGE;
  default:
    tool_logf(FP_LOG_ERROR, "cannot serve %s (/dev/shm/forkpool.%s): %s",
              o->name, o->name, fp_strerror(err));
    return CLI_EXIT_FAIL;
  }
}

int cli_serve_main(int argc, char **argv) {
  struct serve_opts opt;
  struct serve_state s;
  fp_config cfg;
  fp_serve_config sc;
  char err[1024];
  sigset_t stop_set;
  int rc, r;

  rc = cli_serve_parse(argc, argv, &opt);
  if (rc >= 0) return rc;
  memset(&s, 0, sizeof s);
  s.o = &opt;
  s.cfg = &cfg;
  fp_config_init(&cfg);
  if (cli_handler_open(&opt.handler, &cfg, err, sizeof err) < 0) {
    fprintf(stderr, CMD ": %s\n", err);
    return CLI_EXIT_USAGE;
  }
  cli_pool_config(&opt.pool, &cfg);
  if (opt.min_workers) {
    /* Resizing between --min-workers and --max-workers (or its default). */
    cfg.min_workers = opt.min_workers;
    cfg.max_workers = opt.max_workers         ? opt.max_workers
                      : opt.pool.workers > 64 ? opt.pool.workers
                                              : 64;
    cfg.idle_ms = opt.idle_ms;
  }
  if (opt.seal) cfg.flags |= FP_CONFIG_SEAL;
  r = cli_pool_validate(CMD, &cfg);
  if (r < 0) {
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  fp_serve_config_init(&sc);
  sc.name = opt.name;
  sc.mode = opt.mode;
  sc.grace_ms = opt.grace_ms;
  sc.max_workers = opt.max_workers;
  sc.max_clients = opt.max_clients;
  sc.log = tool_log_fn;
  sc.on_ready = on_ready;
  sc.ready_ctx = &s;
  sc.on_reload = on_reload;
  sc.reload_ctx = &s;
  tool_log_setup(&opt.log);

  if (opt.pidfile) {
    r = pidfile_probe(opt.pidfile);
    if (r < 0) {
      tool_logf(FP_LOG_ERROR, "cannot write pidfile %s: %s", opt.pidfile,
                strerror(-r));
      rc = CLI_EXIT_FAIL;
      goto out;
    }
  }
  prepare_signals();
  /*
   * Block the stop signals for the rest of our life: fp_serve() reads
   * them from its signalfd while it serves and drains them after, and no
   * storm of them may kill us between its return and the pidfile's
   * removal. We exit with them still blocked.
   */
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop_set, NULL);
  tool_logf(FP_LOG_INFO,
            "starting pool '%s': %u worker%s, handler %s, "
            "version %s",
            opt.name, opt.pool.workers, opt.pool.workers == 1 ? "" : "s",
            cli_handler_name(&opt.handler), fp_version());
  r = fp_serve(&cfg, &sc);
  if (r < 0) {
    rc = serve_failed(&opt, r);
  } else if (s.pid_failed) {
    rc = CLI_EXIT_FAIL;
  } else {
    tool_logf(FP_LOG_INFO, "stopped: pool '%s' removed", opt.name);
    rc = CLI_EXIT_OK;
  }
  if (s.pid_written) pidfile_remove(opt.pidfile);

out:
  cli_handler_close(&opt.handler); /* every worker is reaped by now */
  return rc;
}
