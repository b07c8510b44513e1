/*
 * Strict command-line option helpers shared by the subcommands.
 *
 * Every helper that can fail prints one line on stderr that names the
 * subcommand, the flag and the offending value, e.g.
 *   forkpool run: --workers: 'abc' is not a number
 * and returns -1; the caller then exits with status 2.
 */
#ifndef FORKPOOL_CLI_ARGS_H
#define FORKPOOL_CLI_ARGS_H

#include <stdint.h>

/*
 * Match argv[*i] against the valued flag `name` ("--workers"), in either
 * form "--workers 4" or "--workers=4". Returns 1 when it matches, with the
 * value in *val and *i on the last argv element used; 0 when argv[*i] is not
 * this flag (nothing changed); -1 when it is but its value is missing.
 * An empty value ("--workers=" or "--workers ''") is returned as is: the
 * value parser rejects it.
 */
int cli_arg_value(const char *cmd, int argc, char **argv, int *i,
                  const char *name, const char **val);

/*
 * Match argv[*i] against the boolean flag `name`. Returns 1 when it
 * matches, 0 when not, -1 (message printed) for "--flag=anything".
 */
int cli_arg_flag(const char *cmd, char **argv, int i, const char *name);

/*
 * Parse `s` as a decimal integer in [min, max] into *out. Only ASCII digits
 * are accepted: no sign, no blanks, no base prefix, no trailing bytes; the
 * empty string and values that overflow are rejected. Returns 0, or -1 with
 * a message naming `flag` and `s`; *out is untouched on error.
 */
int cli_parse_u64(const char *cmd, const char *flag, const char *s,
                  uint64_t min, uint64_t max, uint64_t *out);

#endif /* FORKPOOL_CLI_ARGS_H */
