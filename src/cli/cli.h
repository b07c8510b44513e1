/*
 * The forkpool command-line tool: the subcommand table's entry points.
 *
 * Every subcommand takes the argv that follows the tool's name (argv[0] is
 * the subcommand's own name) and returns the process exit status:
 *   0  success,
 *   1  the work ran but something in it did not succeed (or stdout closed),
 *   2  usage error, plugin or setup failure (a message is on stderr).
 */
#ifndef FORKPOOL_CLI_H
#define FORKPOOL_CLI_H

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

int cli_run_main(int argc, char **argv);
void cli_run_usage(int to_stderr);

#endif /* FORKPOOL_CLI_H */
