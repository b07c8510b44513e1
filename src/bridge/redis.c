/*
 * The bridge's Redis connection: connect with a timeout, set up (AUTH,
 * scripts, group), and reconnect with a capped exponential backoff after
 * any failure.
 *
 * Every failure (refused, reset, timed out, an error reply the bridge did
 * not expect) goes through bridge_redis_fail(): the connection is dropped
 * and the next attempt waits 100 ms, 200 ms, ... up to 5 s. Dropping the
 * connection is always safe: the bridge acknowledges nothing outside the
 * write script, and every script is idempotent when retried (scripts.c).
 *
 * The one exception is the first attempt at start (bridge_redis_start):
 * a Redis that cannot be reached or set up then is most likely a wrong
 * --redis or password, so the bridge says so and exits, unless
 * --retry-connect asks it to wait for Redis.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "bridge.h"

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define CONNECT_TIMEOUT_MS 2000
/* Longest wait for one reply. Above the longest XREADGROUP BLOCK the main
 * loop uses (500 ms); a Redis that answers nothing for this long is
 * treated as gone. */
#define REPLY_TIMEOUT_MS 5000

void bridge_redis_init(struct bridge_redis *r, const struct bridge_opts *o) {
  memset(r, 0, sizeof *r);
  r->o = o;
  r->backoff_ms = BACKOFF_MIN_MS;
}

void bridge_redis_close(struct bridge_redis *r) {
  if (r->c) {
    redisFree(r->c);
    r->c = NULL;
  }
}

static void schedule_retry(struct bridge_redis *r) {
  r->retry_at_ms = tool_now_ms() + r->backoff_ms;
  r->backoff_ms =
      r->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : r->backoff_ms * 2;
  r->failures++;
}

void bridge_redis_fail(struct bridge_redis *r, const char *what,
                       const char *err) {
  const struct bridge_opts *o = r->o;
  char buf[160];

  /* Copied first: errstr lives in the context we are about to free. */
  if (err == NULL) {
    snprintf(buf, sizeof buf, "%s",
             r->c && r->c->err && r->c->errstr[0] ? r->c->errstr
                                                  : "connection lost");
    err = buf;
  }
  bridge_redis_close(r);
  tool_logf(FP_LOG_WARN, "redis %s: %s: %s; retrying in %u ms", o->redis_addr,
            what, err, r->backoff_ms);
  schedule_retry(r);
}

/* A command whose reply must not be an error; the reply is freed. Returns
 * 0, or -1 with *err set to a static or reply-owned text copied to buf. */
static int simple(struct bridge_redis *r, int argc, const char **argv,
                  char *buf, size_t len) {
  redisReply *rep = redisCommandArgv(r->c, argc, argv, NULL);

  if (rep == NULL) {
    snprintf(buf, len, "%s", r->c->errstr[0] ? r->c->errstr : "no reply");
    return -1;
  }
  if (rep->type == REDIS_REPLY_ERROR) {
    snprintf(buf, len, "%s", rep->str);
    freeReplyObject(rep);
    return -1;
  }
  freeReplyObject(rep);
  return 0;
}

static int load_scripts(struct bridge_redis *r, char *buf, size_t len) {
  int k;

  for (k = 0; k < SCRIPT_COUNT; k++) {
    const char *argv[3] = {"SCRIPT", "LOAD", bridge_scripts[k]};
    redisReply *rep = redisCommandArgv(r->c, 3, argv, NULL);

    if (rep == NULL) {
      snprintf(buf, len, "%s", r->c->errstr[0] ? r->c->errstr : "no reply");
      return -1;
    }
    if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
      snprintf(buf, len, "SCRIPT LOAD %s: %s", bridge_script_names[k],
               rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
      freeReplyObject(rep);
      return -1;
    }
    memcpy(r->sha[k], rep->str, 40);
    r->sha[k][40] = '\0';
    freeReplyObject(rep);
  }
  return 0;
}

/*
 * The group starts at id 0, not $: entries added before the first bridge
 * ever ran are work too. MKSTREAM creates an empty stream if needed.
 * BUSYGROUP (it exists) is the normal case after the first bridge.
 */
static int create_group(struct bridge_redis *r, char *buf, size_t len) {
  const struct bridge_opts *o = r->o;
  const char *argv[6] = {"XGROUP", "CREATE", o->stream,
                         o->group, "0",      "MKSTREAM"};

  if (simple(r, 6, argv, buf, len) == 0) {
    tool_logf(FP_LOG_INFO, "created consumer group '%s' on stream '%s'",
              o->group, o->stream);
    return 0;
  }
  if (!strncmp(buf, "BUSYGROUP", 9)) return 0;
  return -1;
}

/*
 * Connect and set up: connect, AUTH (when $REDISCLI_AUTH is set), load the
 * scripts, create the group. Returns 0 connected, or -1 with the context
 * freed, *step naming what failed and the error text in err.
 */
static int connect_setup(struct bridge_redis *r, const char **step, char *err,
                         size_t len) {
  const struct bridge_opts *o = r->o;
  struct timeval ct = {CONNECT_TIMEOUT_MS / 1000,
                       (CONNECT_TIMEOUT_MS % 1000) * 1000};
  struct timeval rt = {REPLY_TIMEOUT_MS / 1000,
                       (REPLY_TIMEOUT_MS % 1000) * 1000};
  const char *pass = getenv("REDISCLI_AUTH");

  *step = "connect";
  if (o->redis_host[0])
    r->c = redisConnectWithTimeout(o->redis_host, o->redis_port, ct);
  else r->c = redisConnectUnixWithTimeout(o->redis, ct);
  if (r->c == NULL) {
    snprintf(err, len, "out of memory");
    goto fail;
  }
  if (r->c->err) {
    snprintf(err, len, "%s", r->c->errstr);
    goto fail;
  }
  if (redisSetTimeout(r->c, rt) != REDIS_OK) {
    snprintf(err, len, "cannot set the reply timeout");
    goto fail;
  }
  if (o->redis_host[0]) redisEnableKeepAlive(r->c);
  if (pass && *pass) {
    const char *argv[2] = {"AUTH", pass};

    *step = "AUTH";
    if (simple(r, 2, argv, err, len) < 0) goto fail;
  }
  *step = "setup";
  if (load_scripts(r, err, len) < 0) goto fail;
  *step = "XGROUP CREATE";
  if (create_group(r, err, len) < 0) goto fail;
  return 0;

fail:
  bridge_redis_close(r);
  return -1;
}

/* Log the connection that connect_setup() made; reset the backoff. */
static void connected(struct bridge_redis *r) {
  const struct bridge_opts *o = r->o;

  if (r->failures > 0)
    tool_logf(FP_LOG_INFO,
              "redis %s: connected%s after %u failed "
              "attempts",
              o->redis_addr, r->connected_once ? " again" : "", r->failures);
  else tool_logf(FP_LOG_INFO, "redis %s: connected", o->redis_addr);
  r->connected_once = 1;
  r->failures = 0;
  r->backoff_ms = BACKOFF_MIN_MS;
}

int bridge_redis_start(struct bridge_redis *r, char *err, size_t len,
                       int *connect) {
  char text[256];
  const char *step;

  if (connect_setup(r, &step, text, sizeof text) == 0) {
    connected(r);
    return 0;
  }
  *connect = !strcmp(step, "connect");
  if (!r->o->retry_connect) {
    snprintf(err, len, "%s: %s", step, text);
    return -1;
  }
  bridge_redis_fail(r, step, text);
  return 0;
}

int bridge_redis_ensure(struct bridge_redis *r, uint64_t now_ms) {
  char err[256];
  const char *step;

  if (r->c) return 1;
  if (now_ms < r->retry_at_ms) return 0;
  if (connect_setup(r, &step, err, sizeof err) < 0) {
    bridge_redis_fail(r, step, err);
    return 0;
  }
  connected(r);
  return 1;
}
