/*
 * forkpool cancel: cancel tasks of a named pool by id (the ids that
 * `forkpool submit --json` prints). A queued task ends cancelled and never
 * runs; a running one has its worker killed and replaced, and ends
 * cancelled; its producer gets the result.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/args.h"
#include "attach.h"
#include "cli.h"

#define CMD "forkpool cancel"

void cli_cancel_usage(int to_stderr) {
  fprintf(
      to_stderr ? stderr : stdout,
      "Usage: forkpool cancel --name NAME ID [ID ...]\n"
      "\n"
      "Cancel tasks of the pool NAME by id (as 'forkpool submit --json' "
      "prints\n"
      "them). A queued task ends cancelled and never runs; a running one has "
      "its\n"
      "worker killed and replaced, and ends cancelled. Its producer is told.\n"
      "Prints one line per ID: cancelled, killing (it was running), finished\n"
      "(too late: it had ended) or unknown.\n"
      "\n"
      "  --name NAME        the pool\n"
      "  -h, --help         show this help\n"
      "\n"
      "Exit status: 0 every ID cancelled or being killed, 1 some ID finished "
      "or\n"
      "unknown, 2 usage error, 3 no pool NAME runs or it cannot be attached "
      "to.\n");
}

int cli_cancel_main(int argc, char **argv) {
  const char *name = NULL;
  uint64_t *ids = calloc((size_t)argc, sizeof(*ids));
  int nids = 0, i, r, rc = CLI_EXIT_OK;
  fp_pool *pool = NULL;

  if (ids == NULL) {
    fprintf(stderr, CMD ": out of memory\n");
    return CLI_EXIT_FAIL;
  }
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      cli_cancel_usage(0);
      free(ids);
      return CLI_EXIT_OK;
    }
    if ((r = tool_arg_value(CMD, argc, argv, &i, "--name", &name)) != 0) {
      if (r < 0) goto usage;
      continue;
    }
    if (argv[i][0] == '-') {
      fprintf(stderr, CMD ": unknown option '%s'\n", argv[i]);
      goto usage;
    }
    if (tool_parse_u64(CMD, "ID", argv[i], 1, UINT64_MAX, &ids[nids]) < 0)
      goto usage;
    nids++;
  }
  if (name == NULL) {
    fprintf(stderr, CMD ": --name is required\n");
    goto usage;
  }
  if (cli_name_check(CMD, name) < 0) goto usage;
  if (nids == 0) {
    fprintf(stderr, CMD ": no task ID given\n");
    goto usage;
  }
  if ((rc = cli_attach(CMD, name, 0, &pool)) != 0) {
    free(ids);
    return rc;
  }
  for (i = 0; i < nids; i++) {
    r = fp_cancel(pool, ids[i]);
    const char *what = r == 0              ? "cancelled"
                       : r == -EINPROGRESS ? "killing (it was running)"
                       : r == -EALREADY    ? "finished"
                       : r == -ENOENT      ? "unknown"
                                           : fp_strerror(r);
    printf("%llu\t%s\n", (unsigned long long)ids[i], what);
    if (r != 0 && r != -EINPROGRESS) rc = CLI_EXIT_FAIL;
  }
  fp_pool_free(pool);
  free(ids);
  return rc;

usage:
  fprintf(stderr, "Try 'forkpool cancel --help'.\n");
  free(ids);
  return CLI_EXIT_USAGE;
}
