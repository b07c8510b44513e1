/*
 * forkpool bridge: runs build/bin/forkpool-bridge (installed next to this
 * binary). The bridge is a binary of its own because it links hiredis,
 * while `forkpool` links libc alone; it is built only where hiredis is
 * installed. This file only finds it and execs it with our arguments.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define BRIDGE_BIN "forkpool-bridge"

/* exec the bridge with argv (argv[0] is replaced). Returns only on error. */
static int exec_bridge(char **argv) {
  char path[PATH_MAX];
  ssize_t n;

  /* First the binary next to ours: /proc/self/exe is .../forkpool, so the
   * bridge is .../forkpool-bridge, whatever PATH says. */
  n = readlink("/proc/self/exe", path, sizeof path - sizeof "-bridge");
  if (n > 0) {
    path[n] = '\0';
    strcat(path, "-bridge");
    argv[0] = path;
    execv(path, argv);
  }
  argv[0] = BRIDGE_BIN;
  execvp(BRIDGE_BIN, argv);
  fprintf(stderr,
          "forkpool bridge: " BRIDGE_BIN " is not installed; it is built "
          "with make when hiredis is present (apt-get install "
          "libhiredis-dev)\n");
  return CLI_EXIT_USAGE;
}

int cli_bridge_main(int argc, char **argv) {
  (void)argc;
  fflush(NULL);
  return exec_bridge(argv);
}

void cli_bridge_usage(int to_stderr) {
  char help[] = "--help";
  char *argv[3] = {NULL, help, NULL};

  if (to_stderr) {
    fprintf(stderr, "Try 'forkpool bridge --help'.\n");
    return;
  }
  fflush(NULL);
  exec_bridge(argv);
}
