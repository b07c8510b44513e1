/*
 * Strict option parsing: "--flag VALUE" / "--flag=VALUE" matching and
 * range-checked decimal numbers. strtoul() is not used on purpose: it
 * accepts blanks, a sign ("-1" wraps to a huge value) and a base prefix,
 * all of which a command line should reject.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

int cli_arg_value(const char *cmd, int argc, char **argv, int *i,
                  const char *name, const char **val)
{
  const char *a = argv[*i];
  size_t n = strlen(name);

  if (strncmp(a, name, n) != 0)
    return 0;
  if (a[n] == '=') {
    *val = a + n + 1;
    return 1;
  }
  if (a[n] != '\0')
    return 0; /* "--workersX": some other flag, or unknown */
  if (*i + 1 >= argc) {
    fprintf(stderr, "%s: %s: missing value\n", cmd, name);
    return -1;
  }
  *i += 1;
  *val = argv[*i];
  return 1;
}

int cli_arg_flag(const char *cmd, char **argv, int i, const char *name)
{
  const char *a = argv[i];
  size_t n = strlen(name);

  if (strncmp(a, name, n) != 0)
    return 0;
  if (a[n] == '\0')
    return 1;
  if (a[n] == '=') {
    fprintf(stderr, "%s: %s takes no value (got '%s')\n", cmd, name, a);
    return -1;
  }
  return 0;
}

int cli_parse_u64(const char *cmd, const char *flag, const char *s,
                  uint64_t min, uint64_t max, uint64_t *out)
{
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
    if (v > (UINT64_MAX - d) / 10)
      overflow = 1;
    else
      v = v * 10 + d;
  }
  if (overflow || v < min || v > max) {
    fprintf(stderr, "%s: %s: '%s' is out of range; must be between %llu and %llu\n",
            cmd, flag, s, (unsigned long long)min, (unsigned long long)max);
    return -1;
  }
  *out = v;
  return 0;
}
