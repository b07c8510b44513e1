/*
 * Strict command-line option helpers shared by the forkpool subcommands
 * and forkpool-bridge.
 *
 * Every helper that can fail prints one line on stderr that names the
 * subcommand, the flag and the offending value, e.g.
 *   forkpool run: --workers: 'abc' is not a number
 * and returns -1; the caller then exits with status 2.
 */
#ifndef FORKPOOL_TOOL_ARGS_H
#define FORKPOOL_TOOL_ARGS_H

#include <stdint.h>

/*
 * Match argv[*i] against the valued flag `name` ("--workers"), in either
 * form "--workers 4" or "--workers=4". Returns 1 when it matches, with the
 * value in *val and *i on the last argv element used; 0 when argv[*i] is not
 * this flag (nothing changed); -1 when it is but its value is missing.
 * An empty value ("--workers=" or "--workers ''") is returned as is: the
 * value parser rejects it.
 */
int tool_arg_value(const char *cmd, int argc, char **argv, int *i,
                   const char *name, const char **val);

/*
 * Match argv[*i] against the boolean flag `name`. Returns 1 when it
 * matches, 0 when not, -1 (message printed) for "--flag=anything".
 */
int tool_arg_flag(const char *cmd, char **argv, int i, const char *name);

/* A flag without a value: its long name, its short one (or NULL), and the
 * int it sets to `value`. */
struct tool_flag {
  const char *name, *short_name;
  int *dst;
  int value;
};

/*
 * Match argv[i] against every flag of flags[0..n) (long or short name).
 * Returns 1 when one matched (its int set), 0 when none did, -1 after a
 * message ("--json=1": a flag takes no value).
 */
int tool_arg_flags(const char *cmd, char **argv, int i,
                   const struct tool_flag *flags, int n);

/*
 * Parse `s` as a decimal integer in [min, max] into *out. Only ASCII digits
 * are accepted: no sign, no blanks, no base prefix, no trailing bytes; the
 * empty string and values that overflow are rejected. Returns 0, or -1 with
 * a message naming `flag` and `s`; *out is untouched on error.
 */
int tool_parse_u64(const char *cmd, const char *flag, const char *s,
                   uint64_t min, uint64_t max, uint64_t *out);

/*
 * Parse `s` as an octal number in [0, max] (digits 0-7 only, no prefix, no
 * sign, not empty) into *out. Returns 0, or -1 with a message.
 */
int tool_parse_octal(const char *cmd, const char *flag, const char *s,
                     unsigned max, unsigned *out);

/* A numeric option of a table: its flag, its range, and its value. */
struct tool_num_opt {
  const char *name;
  uint64_t min, max;
  uint64_t value; /* preset to the default */
  int set;        /* given on the command line */
};

/*
 * Match argv[*i] against every option of opts[0..n) and parse its value.
 * Returns 1 when one matched (value stored, set = 1, *i advanced past a
 * separate value), 0 when none did, -1 after a message.
 */
int tool_arg_num(const char *cmd, int argc, char **argv, int *i,
                 struct tool_num_opt *opts, int n);

/*
 * Match argv[*i] against the valued flag `name`, whose value must be one
 * of the n strings choices[] (exactly, case-sensitive). Returns 1 with the
 * index in *idx (and *i advanced past a separate value), 0 when argv[*i]
 * is not this flag, -1 after a message that lists the choices.
 */
int tool_arg_choice(const char *cmd, int argc, char **argv, int *i,
                    const char *name, const char *const *choices, int n,
                    int *idx);

/*
 * tool_arg_value() for a string option that may not be empty: returns as it
 * does, and -1 (message printed) for an empty value.
 */
int tool_arg_string(const char *cmd, int argc, char **argv, int *i,
                    const char *name, const char **val);

/* Say that arg is an unknown option or an unexpected argument. */
void tool_arg_reject(const char *cmd, const char *arg);

/* Online CPUs, clamped to 1..FP_MAX_WORKERS: the default worker count. */
unsigned tool_online_cpus(void);

#endif /* FORKPOOL_TOOL_ARGS_H */
