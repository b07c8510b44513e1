/*
 * forkpool bridge: feeds a local named pool from a Redis stream.
 *
 * One process, one thread. It is a producer like any other (fp_pool_open,
 * fp_submit with FP_NOWAIT, fp_collect, fp_pending) and a Redis client
 * (hiredis, synchronous). The main loop (main.c) moves stream entries
 * through a fixed table of "held" entries (held.c):
 *
 *   read (XREADGROUP >) or claimed (XPENDING IDLE + XCLAIM, script)
 *     -> BACKLOG (ours in Redis, not yet in the pool)
 *     -> RUNNING (submitted; fp task id known)
 *     -> DONE    (fp_result collected, result not yet in Redis)
 *     -> freed once a script has appended the result and XACKed the entry
 *        (or found the entry is no longer ours: then nothing is written).
 *
 * Every Redis-side decision that must be atomic (claim, heartbeat, write
 * result + ack, dead-letter) is one Lua script: see scripts.c for why.
 */
#ifndef FORKPOOL_BRIDGE_H
#define FORKPOOL_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "forkpool.h"
/* The tool layer shared with forkpool (src/tool/): tool_logf() writes the
 * event lines ("2026-01-31T12:00:00.123Z INFO msg", as `forkpool serve`
 * does), tool_now_ms() and tool_sleep_ms() keep the main loop's time. */
#include "tool/clock.h"
#include "tool/log.h"
#include "tool/signame.h"

#define BRIDGE_CMD "forkpool bridge"

/* Exit statuses, as for the forkpool tool (src/cli/cli.h): 0 after a
 * stop by signal, 2 usage error, 3 the pool cannot be attached at start
 * (as for submit, stat and cancel); and the bridge's own 4: Redis cannot
 * be reached or set up at start (without --retry-connect). */
#define BRIDGE_EXIT_OK 0
#define BRIDGE_EXIT_FAIL 1
#define BRIDGE_EXIT_USAGE 2
#define BRIDGE_EXIT_NOPOOL 3
#define BRIDGE_EXIT_NOREDIS 4

/* A stream id is "<ms>-<seq>", two 64-bit numbers: at most 41 bytes. */
#define BRIDGE_ID_MAX 48
#define BRIDGE_INFLIGHT_MAX 4096u
#define BRIDGE_HOST_MAX 256

/* The error code of a result for an entry over the pool's max input, the
 * same as `forkpool run` uses for a line over --max-input. */
#define BRIDGE_CODE_OVERSIZE 90 /* EMSGSIZE on Linux */

struct bridge_opts {
  const char *name;     /* pool name */
  const char *redis;    /* HOST:PORT, [V6]:PORT or /unix/socket */
  const char *stream;   /* task stream key */
  const char *group;    /* consumer group */
  const char *consumer; /* this bridge's consumer name */
  const char *results;  /* results stream key */
  const char *dead;     /* dead-letter stream key */
  unsigned max_deliveries;
  unsigned claim_idle_ms;
  unsigned inflight;
  int verbose;
  int retry_connect; /* --retry-connect: wait for Redis at start */
  /* Filled by bridge_parse(). */
  char host[BRIDGE_HOST_MAX]; /* gethostname(), for result entries */
  char redis_host[256];       /* empty for a unix socket */
  int redis_port;
  char redis_addr[272]; /* for messages: HOST:PORT, [V6]:PORT, path */
  char *owned[3];       /* defaults built with malloc, freed at exit */
};

/*
 * Parse argv (argv[0] is the command name) into *o, defaults filled in.
 * Returns -1 to go on, or the exit status to end with: 0 after --help
 * (printed on stdout), 2 after a message on stderr.
 */
int bridge_parse(int argc, char **argv, struct bridge_opts *o);
void bridge_usage(int to_stderr);
void bridge_opts_free(struct bridge_opts *o);

/* ---- held.c ------------------------------------------------------------ */

enum held_state {
  HELD_FREE = 0,
  HELD_BACKLOG, /* ours in Redis, waiting for room in the pool */
  HELD_RUNNING, /* in the pool as task `task` */
  HELD_DONE     /* result in `res` (or `reject`), to be written */
};

struct held {
  enum held_state state;
  int lost;               /* Redis says it is no longer ours */
  unsigned deliveries;    /* as counted by Redis when we got it */
  char id[BRIDGE_ID_MAX]; /* stream entry id */
  unsigned char *data;    /* the entry's `data` field; NULL if none */
  size_t len;
  int has_data;
  uint64_t task; /* fp task id (RUNNING) */
  fp_result res; /* DONE: the pool's result */
  int reject;    /* DONE without running: see main.c */
};

struct held_table {
  struct held *e;
  unsigned cap;
  unsigned n[4]; /* entries per state */
};

/* Returns 0 or -ENOMEM. */
int held_init(struct held_table *t, unsigned cap);
void held_free(struct held_table *t);
/* Entries not FREE. */
unsigned held_count(const struct held_table *t);
/* A FREE entry, now BACKLOG with a copy of id and data (data may be NULL:
 * no `data` field). Returns NULL when the table is full or on ENOMEM. */
struct held *held_add(struct held_table *t, const char *id, const void *data,
                      size_t len, int has_data, unsigned deliveries);
void held_set(struct held_table *t, struct held *h, enum held_state st);
/* Release the entry (its result buffer is kept for reuse). */
void held_drop(struct held_table *t, struct held *h);
struct held *held_by_id(struct held_table *t, const char *id);
struct held *held_by_task(struct held_table *t, uint64_t task);

/* ---- redis.c: the connection ------------------------------------------- */

struct redisContext;

struct bridge_redis {
  struct redisContext *c; /* NULL while disconnected */
  const struct bridge_opts *o;
  char sha[4][41];      /* loaded scripts, see scripts.c */
  uint64_t retry_at_ms; /* next connection attempt */
  unsigned backoff_ms;
  unsigned failures;  /* consecutive failed attempts */
  int connected_once; /* set up at least once since the start */
};

/* Script slots. */
enum {
  SCRIPT_CLAIM,
  SCRIPT_HEARTBEAT,
  SCRIPT_WRITE,
  SCRIPT_RETIRE,
  SCRIPT_COUNT
};
extern const char *const bridge_scripts[SCRIPT_COUNT];
extern const char *const bridge_script_names[SCRIPT_COUNT];

void bridge_redis_init(struct bridge_redis *r, const struct bridge_opts *o);
/*
 * The first connection, at start: connect and set up as
 * bridge_redis_ensure() does. Returns 0 when connected, or when it failed
 * and --retry-connect was given (the failure is logged and a retry
 * scheduled, as after a lost connection). Returns -1 when it failed
 * without --retry-connect: nothing is logged or scheduled, the error is in
 * err ("connect: Connection refused", "AUTH: WRONGPASS ...") and *connect
 * says whether it was the connection itself that failed.
 */
int bridge_redis_start(struct bridge_redis *r, char *err, size_t len,
                       int *connect);
/*
 * Connect when disconnected and the backoff allows: connect, AUTH (when
 * $REDISCLI_AUTH is set), load the scripts, create the group (from id 0,
 * MKSTREAM; an existing group is fine). Returns 1 when connected (now or
 * already), 0 when not (the failure was logged and a retry scheduled).
 */
int bridge_redis_ensure(struct bridge_redis *r, uint64_t now_ms);
/* Drop the connection after an error and schedule a reconnect. `what`
 * names the failed operation for the log. */
void bridge_redis_fail(struct bridge_redis *r, const char *what,
                       const char *err);
void bridge_redis_close(struct bridge_redis *r);

/* ---- stream.c: the operations ------------------------------------------ */

struct bridge_counts {
  uint64_t read, claimed, dead, written, dropped, rejected, released;
};

struct bridge {
  struct bridge_opts *o;
  struct bridge_redis r;
  struct held_table held;
  struct bridge_counts n;
  char claim_cursor[BRIDGE_ID_MAX + 1]; /* "-" or "(<id>" */
  int own_scan_done;                    /* our own PEL re-read at start */
};

/*
 * XREADGROUP up to `count` new entries, blocking up to block_ms (0: do
 * not block). Adds them to the held table as BACKLOG. Returns the number
 * added, or -1 after a Redis failure (logged, connection dropped).
 */
int bridge_read(struct bridge *b, unsigned count, unsigned block_ms);

/*
 * Claim up to `count` entries from the group's pending list, idle at
 * least min_idle_ms, starting at the cursor; with `own`, only this
 * consumer's own (at start: what a previous run under the same name left).
 * Entries delivered more than --max-deliveries times are moved to the
 * dead-letter stream by the script instead. Returns the number of entries
 * added to the held table, or -1 after a Redis failure. *more is set when
 * the scan stopped at `count` (the cursor then points past it).
 */
int bridge_claim(struct bridge *b, unsigned count, unsigned min_idle_ms,
                 int own, int *more);

/*
 * Refresh the idle time of every entry we hold and still own, so no other
 * bridge claims it while it runs here; entries found owned by someone else
 * are marked lost (their results will not be written). Returns 0, or -1
 * after a Redis failure.
 */
int bridge_heartbeat(struct bridge *b);

/*
 * Write the result of every DONE entry and acknowledge it, each in one
 * script that first checks the entry is still pending for us. Entries are
 * freed once Redis answered for them. Returns 0, or -1 after a Redis
 * failure (unanswered entries stay DONE for the next attempt).
 */
int bridge_write(struct bridge *b);

/* At a clean exit: delete our consumer from the group when it has nothing
 * pending (so consumer names hostname-PID do not pile up). */
void bridge_retire(struct bridge *b);

#endif /* FORKPOOL_BRIDGE_H */
