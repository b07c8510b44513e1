/*
 * forkpool: the command-line tool's entry point. It only dispatches: each
 * subcommand lives in its own file and is listed in the table below.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "forkpool.h"

struct command {
  const char *name;
  int (*main)(int argc, char **argv);
  void (*usage)(int to_stderr);
  const char *summary;
};

static const struct command commands[] = {
    {"run", cli_run_main, cli_run_usage,
     "run each line of stdin as a task through a worker pool"},
    {"serve", cli_serve_main, cli_serve_usage,
     "run a named pool in the foreground for other processes"},
    {"submit", cli_submit_main, cli_submit_usage,
     "send tasks to a named pool and print their results"},
    {"stat", cli_stat_main, cli_stat_usage,
     "show a named pool's state, counters and workers"},
    {"cancel", cli_cancel_main, cli_cancel_usage,
     "cancel tasks of a named pool by id"},
    {"bench", cli_bench_main, cli_bench_usage,
     "measure throughput and latency with a built-in echo handler"},
    {"bridge", cli_bridge_main, cli_bridge_usage,
     "feed a named pool from a Redis stream (needs hiredis)"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name) {
  size_t i;

  for (i = 0; i < NCOMMANDS; i++)
    if (!strcmp(commands[i].name, name)) return &commands[i];
  return NULL;
}

static void usage(FILE *f) {
  size_t i;

  fprintf(f, "Usage: forkpool COMMAND [options]\n"
             "       forkpool --version | --help | help COMMAND\n"
             "\n"
             "A crash-isolating pre-fork worker pool.\n"
             "\n"
             "Commands:\n");
  for (i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\nRun 'forkpool COMMAND --help' for the options of one.\n");
}

/*
 * Make sure descriptors 0, 1 and 2 are open. Were one closed, the next
 * open() (a plugin's, or the pool's shared-memory segment) would get its
 * number, and results written to "stdout" would land in it. A closed stdin
 * becomes an empty one; a closed stdout becomes /dev/null opened read-only,
 * so that writing results fails (exit status 1) instead of vanishing.
 */
static void sanitize_std_fds(void) {
  static const int modes[3] = {O_RDONLY, O_RDONLY, O_WRONLY};
  int fd;

  for (fd = 0; fd < 3; fd++) {
    int nfd;

    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    /* open() returns the lowest free number, which is fd itself. */
    nfd = open("/dev/null", modes[fd]);
    if (nfd >= 0 && nfd != fd) close(nfd);
  }
}

/* stdout is checked once at the end: a failed write (a full disk, a closed
 * pipe) must not end in exit status 0. */
static int finish_stdout(int rc) {
  if (fflush(stdout) != 0 || ferror(stdout)) return CLI_EXIT_FAIL;
  return rc;
}

int main(int argc, char **argv) {
  const struct command *c;
  const char *name;

  sanitize_std_fds();
  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  name = argv[1];
  if (!strcmp(name, "--version") || !strcmp(name, "-V") ||
      !strcmp(name, "version")) {
    printf("forkpool %s\n", fp_version());
    return finish_stdout(CLI_EXIT_OK);
  }
  if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
    if (argc > 2 && !strcmp(name, "help")) {
      c = find_command(argv[2]);
      if (!c) {
        fprintf(stderr, "forkpool: unknown command '%s'\n", argv[2]);
        return CLI_EXIT_USAGE;
      }
      c->usage(0);
    } else {
      usage(stdout);
    }
    return finish_stdout(CLI_EXIT_OK);
  }
  c = find_command(name);
  if (!c) {
    if (name[0] == '-')
      fprintf(stderr, "forkpool: unknown option '%s'\n", name);
    else fprintf(stderr, "forkpool: unknown command '%s'\n", name);
    fprintf(stderr, "Try 'forkpool --help'.\n");
    return CLI_EXIT_USAGE;
  }
  return finish_stdout(c->main(argc - 1, argv + 1));
}
