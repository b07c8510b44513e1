/*
 * Strict option parsing: "--flag VALUE" / "--flag=VALUE" matching and
 * range-checked decimal numbers. strtoul() is not used on purpose: it
 * accepts blanks, a sign ("-1" wraps to a huge value) and a base prefix,
 * all of which a command line should reject.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "forkpool.h"

int tool_arg_value(const char *cmd, int argc, char **argv, int *i,
                   const char *name, const char **val) {
  const char *a = argv[*i];
  size_t n = strlen(name);

  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '=') {
    *val = a + n + 1;
    return 1;
  }
  if (a[n] != '\0') return 0; /* "--workersX": some other flag, or unknown */
  if (*i + 1 >= argc) {
    fprintf(stderr, "%s: %s: missing value\n", cmd, name);
    return -1;
  }
  *i += 1;
  *val = argv[*i];
  return 1;
}

int tool_arg_flag(const char *cmd, char **argv, int i, const char *name) {
  const char *a = argv[i];
  size_t n = strlen(name);

  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '\0') return 1;
  if (a[n] == '=') {
    fprintf(stderr, "%s: %s takes no value (got '%s')\n", cmd, name, a);
    return -1;
  }
  return 0;
}

int tool_arg_flags(const char *cmd, char **argv, int i,
                   const struct tool_flag *flags, int n) {
  for (int k = 0; k < n; k++) {
    int r = flags[k].short_name && !strcmp(argv[i], flags[k].short_name)
                ? 1
                : tool_arg_flag(cmd, argv, i, flags[k].name);
    if (r > 0) *flags[k].dst = flags[k].value;
    if (r != 0) return r;
  }
  return 0;
}

int tool_parse_u64(const char *cmd, const char *flag, const char *s,
                   uint64_t min, uint64_t max, uint64_t *out) {
  const char *p = s;
  uint64_t v = 0;
  int overflow = 0;

  if (*p == '\0') {
    fprintf(stderr, "%s: %s: empty value is not a number\n", cmd, flag);
    return -1;
  }
  if (*p == '-' && p[1] >= '0' && p[1] <= '9') {
    fprintf(stderr, "%s: %s: '%s' is negative; must be between %llu and %llu\n",
            cmd, flag, s, (unsigned long long)min, (unsigned long long)max);
    return -1;
  }
  for (; *p; p++) {
    unsigned d;

    if (*p < '0' || *p > '9') {
      fprintf(stderr, "%s: %s: '%s' is not a number\n", cmd, flag, s);
      return -1;
    }
    d = (unsigned)(*p - '0');
    /* Keep scanning after an overflow so "99999999999999999999x" is still
     * reported as not a number rather than as out of range. */
    if (v > (UINT64_MAX - d) / 10) overflow = 1;
    else v = v * 10 + d;
  }
  if (overflow || v < min || v > max) {
    fprintf(stderr,
            "%s: %s: '%s' is out of range; must be between %llu and %llu\n",
            cmd, flag, s, (unsigned long long)min, (unsigned long long)max);
    return -1;
  }
  *out = v;
  return 0;
}

int tool_parse_octal(const char *cmd, const char *flag, const char *s,
                     unsigned max, unsigned *out) {
  const char *p = s;
  unsigned v = 0;

  if (*p == '\0') {
    fprintf(stderr, "%s: %s: empty value is not an octal number\n", cmd, flag);
    return -1;
  }
  for (; *p; p++) {
    if (*p < '0' || *p > '7') {
      fprintf(stderr, "%s: %s: '%s' is not an octal number (digits 0-7)\n", cmd,
              flag, s);
      return -1;
    }
    v = v * 8 + (unsigned)(*p - '0');
    if (v > max) {
      fprintf(stderr,
              "%s: %s: '%s' is out of range; must be between 0 and "
              "0%o\n",
              cmd, flag, s, max);
      return -1;
    }
  }
  *out = v;
  return 0;
}

int tool_arg_num(const char *cmd, int argc, char **argv, int *i,
                 struct tool_num_opt *opts, int n) {
  const char *v = NULL;
  int k, r;

  for (k = 0; k < n; k++) {
    r = tool_arg_value(cmd, argc, argv, i, opts[k].name, &v);
    if (r < 0) return -1;
    if (r == 0) continue;
    if (tool_parse_u64(cmd, opts[k].name, v, opts[k].min, opts[k].max,
                       &opts[k].value) < 0)
      return -1;
    opts[k].set = 1;
    return 1;
  }
  return 0;
}

int tool_arg_choice(const char *cmd, int argc, char **argv, int *i,
                    const char *name, const char *const *choices, int n,
                    int *idx) {
  const char *v = NULL;
  int r = tool_arg_value(cmd, argc, argv, i, name, &v), k;

  if (r <= 0) return r;
  for (k = 0; k < n; k++)
    if (!strcmp(v, choices[k])) {
      *idx = k;
      return 1;
    }
  fprintf(stderr, "%s: %s: '%s' is not one of", cmd, name, v);
  for (k = 0; k < n; k++)
    fprintf(stderr, "%s %s",
            k == 0       ? ""
            : k == n - 1 ? " or"
                         : ",",
            choices[k]);
  fputc('\n', stderr);
  return -1;
}

unsigned tool_online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);

  if (n < 1) return 1;
  return n > (long)FP_MAX_WORKERS ? FP_MAX_WORKERS : (unsigned)n;
}

int tool_arg_string(const char *cmd, int argc, char **argv, int *i,
                    const char *name, const char **val) {
  int r = tool_arg_value(cmd, argc, argv, i, name, val);

  if (r <= 0) return r;
  if (**val == '\0') {
    fprintf(stderr, "%s: %s: empty value\n", cmd, name);
    return -1;
  }
  return 1;
}

void tool_arg_reject(const char *cmd, const char *arg) {
  if (arg[0] == '-') fprintf(stderr, "%s: unknown option '%s'\n", cmd, arg);
  else fprintf(stderr, "%s: unexpected argument '%s'\n", cmd, arg);
}
