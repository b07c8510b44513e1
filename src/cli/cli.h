/*
 * The forkpool command-line tool: the subcommand table's entry points.
 *
 * Every subcommand takes the argv that follows the tool's name (argv[0] is
 * the subcommand's own name) and returns the process exit status:
 *   0  success,
 *   1  the work ran but something in it did not succeed (or stdout closed),
 *   2  usage error, plugin or setup failure (a message is on stderr),
 *   3  (submit, stat) no pool of that name runs, it cannot be attached to,
 *      it is shutting down, or its supervisor died.
 */
#ifndef FORKPOOL_CLI_H
#define FORKPOOL_CLI_H

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_NOPOOL 3

int cli_run_main(int argc, char **argv);
void cli_run_usage(int to_stderr);
int cli_serve_main(int argc, char **argv);
void cli_serve_usage(int to_stderr);
int cli_submit_main(int argc, char **argv);
void cli_submit_usage(int to_stderr);
int cli_stat_main(int argc, char **argv);
void cli_stat_usage(int to_stderr);
int cli_cancel_main(int argc, char **argv);
void cli_cancel_usage(int to_stderr);
int cli_bridge_main(int argc, char **argv);
void cli_bridge_usage(int to_stderr);

#endif /* FORKPOOL_CLI_H */
