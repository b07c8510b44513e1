/*
 * forkpool bridge: options and usage.
 *
 * The same strict rules as the forkpool tool's flags, from the same code
 * (src/tool/args.c): "--flag VALUE" or "--flag=VALUE", decimal numbers of
 * ASCII digits only (no sign, blank, base prefix or trailing byte), ranges
 * checked, one message naming the flag and the value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "tool/args.h"

#define CMD BRIDGE_CMD

void bridge_usage(int to_stderr) {
  fprintf(
      to_stderr ? stderr : stdout,
      "Usage: forkpool bridge --name NAME --redis HOST:PORT --stream KEY\n"
      "                       --group GROUP [options]\n"
      "\n"
      "Feed the local named pool NAME (started with 'forkpool serve') from "
      "the\n"
      "Redis stream KEY, as one consumer of the consumer group GROUP. Run one\n"
      "bridge per host; any number of hosts may share the group. Each task is\n"
      "the 'data' field of a stream entry; each result is an entry appended "
      "to\n"
      "the results stream, and only then is the task acknowledged (XACK).\n"
      "Delivery is at least once: make the handler idempotent.\n"
      "\n"
      "  --name NAME            the local pool (/dev/shm/forkpool.NAME)\n"
      "  --redis HOST:PORT      Redis server ([IPv6]:PORT, or a unix socket "
      "path\n"
      "                         starting with '/'; PORT defaults to 6379);\n"
      "                         password from $REDISCLI_AUTH when set\n"
      "  --stream KEY           task stream\n"
      "  --group GROUP          consumer group (created from the start of the\n"
      "                         stream when missing)\n"
      "  --consumer ID          this bridge's name in the group (default\n"
      "                         HOSTNAME-PID); a bridge restarted with the "
      "same\n"
      "                         name first takes back what it left pending\n"
      "  --results KEY          results stream (default KEY:results)\n"
      "  --dead-letter KEY      dead-letter stream (default KEY:dead)\n"
      "  --max-deliveries N     an entry delivered N times without a result\n"
      "                         goes to the dead-letter stream instead of a\n"
      "                         further run (default 3, 1..1000000)\n"
      "  --claim-idle MS        take over entries another bridge has held\n"
      "                         without a sign of life for MS ms (XCLAIM);\n"
      "                         default 30000, 100..86400000\n"
      "  --inflight K           most entries held at once (default 64, 1..%u)\n"
      "  --retry-connect        when Redis cannot be reached (or set up) at\n"
      "                         start, keep trying, 100 ms, 200 ms, ... up to "
      "5 s\n"
      "                         apart, instead of exiting 4: for a bridge "
      "that\n"
      "                         may start before Redis. (Once connected, a "
      "lost\n"
      "                         connection is always retried.)\n"
      "  -v, --verbose          also log DEBUG events\n"
      "  -h, --help             show this help\n"
      "\n"
      "Result entry fields: task (the entry id), status (ok, failed, crashed,\n"
      "timeout), output, signal, exit, code, error, attempts, worker, ms, "
      "host,\n"
      "consumer, deliveries.\n"
      "\n"
      "Signals: SIGTERM or SIGINT stops reading, finishes the tasks in the "
      "pool,\n"
      "writes their results and exits 0 (entries not yet in the pool stay\n"
      "pending for another bridge); a second one exits at once, leaving what "
      "is\n"
      "held pending.\n"
      "\n"
      "Exit status: 0 after a stop by signal, 2 usage error (or "
      "forkpool-bridge\n"
      "is not installed), 3 no pool NAME runs or it cannot be attached to at\n"
      "start, 4 Redis cannot be reached or set up at start (connect, AUTH,\n"
      "SCRIPT LOAD or XGROUP CREATE failed) and --retry-connect was not "
      "given.\n",
      BRIDGE_INFLIGHT_MAX);
}

/* A decimal in [min, max] (the CLI's strict parser). 0, or -1 with a message. */
static int parse_num(const char *flag, const char *s, unsigned long min,
                     unsigned long max, unsigned *out) {
  uint64_t v;

  if (tool_parse_u64(CMD, flag, s, min, max, &v) < 0) return -1;
  *out = (unsigned)v;
  return 0;
}

/* HOST:PORT, [V6]:PORT, HOST (port 6379) or /unix/path into o. */
static int parse_redis(struct bridge_opts *o) {
  const char *s = o->redis, *host = s, *colon = NULL;
  size_t hlen;
  unsigned port = 6379;

  if (s[0] == '/') {
    o->redis_host[0] = '\0';
    o->redis_port = 0;
    snprintf(o->redis_addr, sizeof o->redis_addr, "%s", s);
    return 0;
  }
  if (s[0] == '[') {
    const char *end = strchr(s, ']');

    if (end == NULL || (end[1] != '\0' && end[1] != ':')) goto bad;
    host = s + 1;
    hlen = (size_t)(end - host);
    if (end[1] == ':') colon = end + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon && strchr(s, ':') != colon)
      goto bad; /* a bare IPv6 address: needs brackets around it */
    hlen = colon ? (size_t)(colon - s) : strlen(s);
  }
  if (hlen == 0 || hlen >= sizeof o->redis_host) goto bad;
  if (colon && parse_num("--redis", colon + 1, 1, 65535, &port) < 0) return -1;
  memcpy(o->redis_host, host, hlen);
  o->redis_host[hlen] = '\0';
  o->redis_port = (int)port;
  /* Names the port even when it was left to its default. */
  snprintf(o->redis_addr, sizeof o->redis_addr,
           memchr(host, ':', hlen) ? "[%s]:%u" : "%s:%u", o->redis_host, port);
  return 0;
bad:
  fprintf(stderr,
          CMD ": --redis: '%s' is not HOST:PORT, [IPV6]:PORT or "
              "a socket path\n",
          s);
  return -1;
}

/* KEY + suffix, malloc'ed and remembered in o->owned for bridge_opts_free. */
static const char *derived(struct bridge_opts *o, int slot, const char *base,
                           const char *suffix) {
  size_t n = strlen(base) + strlen(suffix) + 1;
  char *s = malloc(n);

  if (s == NULL) return NULL;
  snprintf(s, n, "%s%s", base, suffix);
  o->owned[slot] = s;
  return s;
}

void bridge_opts_free(struct bridge_opts *o) {
  int k;

  for (k = 0; k < 3; k++) {
    free(o->owned[k]);
    o->owned[k] = NULL;
  }
}

int bridge_parse(int argc, char **argv, struct bridge_opts *o) {
  struct {
    const char *flag;
    const char **dst;
  } strs[] = {
      {"--name", &o->name},         {"--redis", &o->redis},
      {"--stream", &o->stream},     {"--group", &o->group},
      {"--consumer", &o->consumer}, {"--results", &o->results},
      {"--dead-letter", &o->dead},
  };
  struct {
    const char *flag;
    unsigned long min, max;
    unsigned *dst;
  } nums[] = {
      {"--max-deliveries", 1, 1000000, &o->max_deliveries},
      {"--claim-idle", 100, 86400000, &o->claim_idle_ms},
      {"--inflight", 1, BRIDGE_INFLIGHT_MAX, &o->inflight},
  };
  int help = 0;
  const struct tool_flag flags[] = {
      {"--help", "-h", &help, 1},
      {"--verbose", "-v", &o->verbose, 1},
      {"--retry-connect", NULL, &o->retry_connect, 1},
  };
  const int nflags = (int)(sizeof flags / sizeof flags[0]);
  const size_t nstrs = sizeof strs / sizeof strs[0];
  const size_t nnums = sizeof nums / sizeof nums[0];
  int i;
  size_t k;

  memset(o, 0, sizeof *o);
  o->max_deliveries = 3;
  o->claim_idle_ms = 30000;
  o->inflight = 64;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    int r = tool_arg_flags(CMD, argv, i, flags, nflags);

    if (r < 0) goto usage;
    if (help) break; /* the rest is not read */
    if (r > 0) continue;
    for (k = 0; k < nstrs && r == 0; k++)
      if ((r = tool_arg_value(CMD, argc, argv, &i, strs[k].flag, &v)) > 0) {
        if (*v == '\0') {
          fprintf(stderr, CMD ": %s: empty value\n", strs[k].flag);
          goto usage;
        }
        *strs[k].dst = v;
      }
    for (k = 0; k < nnums && r == 0; k++)
      if ((r = tool_arg_value(CMD, argc, argv, &i, nums[k].flag, &v)) > 0 &&
          parse_num(nums[k].flag, v, nums[k].min, nums[k].max, nums[k].dst) < 0)
        goto usage;
    if (r < 0) goto usage;
    if (r > 0) continue;
    tool_arg_reject(CMD, a);
    goto usage;
  }
  if (help) {
    bridge_usage(0);
    return BRIDGE_EXIT_OK;
  }
  for (k = 0; k < 4; k++)
    if (*strs[k].dst == NULL) {
      fprintf(stderr, CMD ": %s is required\n", strs[k].flag);
      goto usage;
    }
  if (fp_name_validate(o->name) < 0) {
    fprintf(stderr,
            CMD ": --name: '%s' is not a pool name (1 to %d of "
                "A-Z a-z 0-9 _ -, not starting with '-')\n",
            o->name, FP_NAME_MAX);
    goto usage;
  }
  if (parse_redis(o) < 0) goto usage;
  if (gethostname(o->host, sizeof o->host) != 0) strcpy(o->host, "unknown");
  o->host[sizeof o->host - 1] = '\0';
  if (o->consumer == NULL) {
    char buf[BRIDGE_HOST_MAX + 24];

    snprintf(buf, sizeof buf, "%s-%ld", o->host, (long)getpid());
    o->consumer = derived(o, 0, buf, "");
  }
  if (o->results == NULL) o->results = derived(o, 1, o->stream, ":results");
  if (o->dead == NULL) o->dead = derived(o, 2, o->stream, ":dead");
  if (!o->consumer || !o->results || !o->dead) {
    fprintf(stderr, CMD ": out of memory\n");
    bridge_opts_free(o);
    return BRIDGE_EXIT_USAGE;
  }
  if (!strcmp(o->results, o->stream) || !strcmp(o->dead, o->stream) ||
      !strcmp(o->results, o->dead)) {
    fprintf(stderr, CMD ": --stream, --results and --dead-letter must be "
                        "three different keys\n");
    bridge_opts_free(o);
    goto usage;
  }
  return -1;

usage:
  fprintf(stderr, "Try 'forkpool bridge --help'.\n");
  return BRIDGE_EXIT_USAGE;
}
