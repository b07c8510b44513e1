/*
 * The bridge's stream operations: read new entries, claim idle ones,
 * heartbeat what it holds, write results. Each is one command or one
 * script (scripts.c) per call, or one pipeline of scripts for the writes.
 *
 * Replies are checked for their shape before use: a reply of another shape
 * (a proxy, a future Redis) is reported as an error and the connection is
 * dropped, never dereferenced blindly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "bridge.h"

#define ISTYPE(rep, t) ((rep) != NULL && (rep)->type == (t))

static int is_array(const redisReply *rep, size_t min) {
  return ISTYPE(rep, REDIS_REPLY_ARRAY) && rep->elements >= min;
}

static int is_string(const redisReply *rep) {
  return ISTYPE(rep, REDIS_REPLY_STRING) || ISTYPE(rep, REDIS_REPLY_STATUS);
}

/* The reply to a command, or NULL after a failure (logged, connection
 * dropped). An error reply is a failure too. */
static redisReply *command(struct bridge *b, const char *what, int argc,
                           const char **argv, const size_t *lens) {
  redisReply *rep = redisCommandArgv(b->r.c, argc, argv, lens);

  if (rep == NULL) {
    bridge_redis_fail(&b->r, what, NULL);
    return NULL;
  }
  if (rep->type == REDIS_REPLY_ERROR) {
    char err[256];

    snprintf(err, sizeof err, "%s", rep->str);
    freeReplyObject(rep);
    bridge_redis_fail(&b->r, what, err);
    return NULL;
  }
  return rep;
}

static void bad_reply(struct bridge *b, const char *what, redisReply *rep) {
  freeReplyObject(rep);
  bridge_redis_fail(&b->r, what, "unexpected reply");
}

/* Add entry [id, [field, value, ...]] to the held table. Returns 1 added,
 * 0 skipped, -1 malformed. */
static int take_entry(struct bridge *b, const redisReply *id,
                      const redisReply *fields, unsigned deliveries) {
  const redisReply *data = NULL;
  size_t k;

  if (!is_string(id)) return -1;
  if (is_array(fields, 0)) {
    for (k = 0; k + 1 < fields->elements; k += 2)
      if (is_string(fields->element[k]) && fields->element[k]->len == 4 &&
          !memcmp(fields->element[k]->str, "data", 4) &&
          is_string(fields->element[k + 1])) {
        data = fields->element[k + 1];
        break;
      }
  }
  if (!held_add(&b->held, id->str, data ? data->str : NULL,
                data ? data->len : 0, data != NULL, deliveries)) {
    /* Full or out of memory: the entry stays pending for us without a
     * heartbeat, so a claim (ours or another bridge's) brings it back. */
    tool_logf(FP_LOG_ERROR,
              "entry %s: cannot hold it (out of memory?); "
              "left pending",
              id->str);
    return 0;
  }
  return 1;
}

int bridge_read(struct bridge *b, unsigned count, unsigned block_ms) {
  const struct bridge_opts *o = b->o;
  char cnt[16], blk[16];
  const char *argv[11] = {"XREADGROUP", "GROUP", o->group,
                          o->consumer,  "COUNT", cnt};
  int argc = 6, added = 0;
  redisReply *rep;
  size_t k;

  snprintf(cnt, sizeof cnt, "%u", count);
  if (block_ms > 0) {
    snprintf(blk, sizeof blk, "%u", block_ms);
    argv[argc++] = "BLOCK";
    argv[argc++] = blk;
  }
  argv[argc++] = "STREAMS";
  argv[argc++] = o->stream;
  argv[argc++] = ">";
  rep = command(b, "XREADGROUP", argc, argv, NULL);
  if (rep == NULL) return -1;
  if (rep->type == REDIS_REPLY_NIL) { /* nothing new within the block */
    freeReplyObject(rep);
    return 0;
  }
  /* [[stream, [[id, [field, value, ...]], ...]]] */
  if (!is_array(rep, 1) || !is_array(rep->element[0], 2) ||
      !is_array(rep->element[0]->element[1], 0)) {
    bad_reply(b, "XREADGROUP", rep);
    return -1;
  }
  {
    const redisReply *list = rep->element[0]->element[1];

    for (k = 0; k < list->elements; k++) {
      const redisReply *e = list->element[k];
      int r;

      if (!is_array(e, 2) ||
          (r = take_entry(b, e->element[0], e->element[1], 1)) < 0) {
        bad_reply(b, "XREADGROUP", rep);
        return -1;
      }
      added += r;
    }
  }
  freeReplyObject(rep);
  b->n.read += (uint64_t)added;
  return added;
}

int bridge_claim(struct bridge *b, unsigned count, unsigned min_idle_ms,
                 int own, int *more) {
  const struct bridge_opts *o = b->o;
  char idle[16], cnt[16], maxd[16];
  const char *argv[13] = {"EVALSHA",
                          b->r.sha[SCRIPT_CLAIM],
                          "2",
                          o->stream,
                          o->dead,
                          o->group,
                          o->consumer,
                          idle,
                          b->claim_cursor,
                          cnt,
                          maxd,
                          o->host,
                          own ? o->consumer : ""};
  const redisReply *dead, *list;
  redisReply *rep;
  unsigned added = 0, again = 0;
  size_t k;

  *more = 0;
  snprintf(idle, sizeof idle, "%u", min_idle_ms);
  snprintf(cnt, sizeof cnt, "%u", count);
  snprintf(maxd, sizeof maxd, "%u", o->max_deliveries);
  rep = command(b, "claim", 13, argv, NULL);
  if (rep == NULL) return -1;
  if (!is_array(rep, 3) || !is_string(rep->element[0]) ||
      !is_array(rep->element[1], 0) || !is_array(rep->element[2], 0)) {
    bad_reply(b, "claim", rep);
    return -1;
  }
  dead = rep->element[1];
  list = rep->element[2];
  for (k = 0; k < dead->elements; k++) {
    if (!is_string(dead->element[k])) continue;
    b->n.dead++;
    tool_logf(FP_LOG_WARN,
              "entry %s was delivered %u times without a "
              "result: moved to dead-letter stream '%s'",
              dead->element[k]->str, o->max_deliveries, o->dead);
  }
  for (k = 0; k < list->elements; k++) {
    const redisReply *e = list->element[k];
    struct held *h;
    int r;

    /* { id, deliveries, previous owner, idle ms, fields } */
    if (!is_array(e, 5) || !is_string(e->element[0]) ||
        !ISTYPE(e->element[1], REDIS_REPLY_INTEGER) ||
        !is_string(e->element[2]) ||
        !ISTYPE(e->element[3], REDIS_REPLY_INTEGER)) {
      bad_reply(b, "claim", rep);
      return -1;
    }
    h = held_by_id(&b->held, e->element[0]->str);
    if (h != NULL) {
      /* Ours already: we had stopped proving it (a stall), or it had been
       * claimed away and is back. It runs once here; we own it again. */
      h->lost = 0;
      again++;
      continue;
    }
    r = take_entry(b, e->element[0], e->element[4],
                   (unsigned)e->element[1]->integer);
    if (r < 0) {
      bad_reply(b, "claim", rep);
      return -1;
    }
    if (r == 0) continue;
    added++;
    tool_logf(FP_LOG_DEBUG,
              "claimed %s from %s (idle %lld ms, delivery "
              "%lld)",
              e->element[0]->str, e->element[2]->str, e->element[3]->integer,
              e->element[1]->integer);
  }
  if (added > 0) {
    const redisReply *first = list->element[0];

    if (own)
      tool_logf(FP_LOG_INFO,
                "took back %u entries left pending by a "
                "previous run as '%s'",
                added, o->consumer);
    else
      tool_logf(FP_LOG_INFO,
                "claimed %u entries idle over %u ms (the "
                "first from '%s')",
                added, min_idle_ms, first->element[2]->str);
  }
  if (again > 0)
    tool_logf(FP_LOG_WARN,
              "claimed back %u entries we were still "
              "holding (a stall of over %u ms?)",
              again, min_idle_ms);
  b->n.claimed += added;
  if (rep->element[0]->len == 0 ||
      rep->element[0]->len >= sizeof b->claim_cursor) {
    strcpy(b->claim_cursor, "-");
  } else {
    memcpy(b->claim_cursor, rep->element[0]->str, rep->element[0]->len);
    b->claim_cursor[rep->element[0]->len] = '\0';
    *more = 1;
  }
  freeReplyObject(rep);
  return (int)added;
}

int bridge_heartbeat(struct bridge *b) {
  const struct bridge_opts *o = b->o;
  struct held_table *t = &b->held;
  const char **argv;
  unsigned i, n = 0, lost = 0;
  redisReply *rep;
  size_t k;

  argv = malloc((6 + (size_t)t->cap) * sizeof *argv);
  if (argv == NULL) return 0; /* try again next time; nothing was changed */
  argv[0] = "EVALSHA";
  argv[1] = b->r.sha[SCRIPT_HEARTBEAT];
  argv[2] = "1";
  argv[3] = o->stream;
  argv[4] = o->group;
  argv[5] = o->consumer;
  for (i = 0; i < t->cap; i++)
    if (t->e[i].state != HELD_FREE && !t->e[i].lost) argv[6 + n++] = t->e[i].id;
  if (n == 0) {
    free(argv);
    return 0;
  }
  rep = command(b, "heartbeat", (int)(6 + n), argv, NULL);
  free(argv);
  if (rep == NULL) return -1;
  if (!is_array(rep, 0)) {
    bad_reply(b, "heartbeat", rep);
    return -1;
  }
  for (k = 0; k < rep->elements; k++) {
    struct held *h;

    if (!is_string(rep->element[k]) ||
        (h = held_by_id(t, rep->element[k]->str)) == NULL)
      continue;
    lost++;
    if (h->state == HELD_BACKLOG) {
      held_drop(t, h); /* never ran here: simply let it go */
      b->n.released++;
    } else {
      h->lost = 1; /* running or done: its result will be dropped */
    }
  }
  if (lost > 0)
    tool_logf(FP_LOG_WARN,
              "%u held entries are no longer ours (another "
              "bridge claimed them after --claim-idle, or they were "
              "acknowledged): their results will not be written",
              lost);
  freeReplyObject(rep);
  return 0;
}

/* The fields of one result entry (after "task ID", before "deliveries"). */
struct fields {
  const char *argv[32];
  size_t lens[32];
  int n;
  char num[6][32];
  char sig[32];
  char err[96];
};

static void put(struct fields *f, const char *s, size_t len) {
  f->argv[f->n] = s;
  f->lens[f->n] = len;
  f->n++;
}

static void puts_(struct fields *f, const char *s) { put(f, s, strlen(s)); }

static void build_fields(struct fields *f, const struct bridge_opts *o,
                         const struct held *h) {
  const fp_result *r = &h->res;
  const char *sig;

  f->n = 0;
  if (h->reject == 2) { /* no data field: a dead letter, see main.c */
    puts_(f, "reason");
    puts_(f, "no data field");
    puts_(f, "dead_by");
    puts_(f, o->consumer);
    puts_(f, "host");
    puts_(f, o->host);
    return;
  }
  puts_(f, "status");
  if (h->reject == 1) {
    snprintf(f->num[0], sizeof f->num[0], "%d", BRIDGE_CODE_OVERSIZE);
    snprintf(f->err, sizeof f->err,
             "input is %zu bytes, over the pool's "
             "max input",
             h->len);
    puts_(f, "failed");
    puts_(f, "code");
    puts_(f, f->num[0]);
    puts_(f, "error");
    puts_(f, f->err);
  } else {
    puts_(f, fp_status_name(r->status));
    if (r->status == FP_OK || (r->status == FP_FAILED && r->output_len)) {
      puts_(f, "output");
      put(f, r->output ? (const char *)r->output : "", r->output_len);
    }
    if (r->signal) {
      sig = tool_signal_name(r->signal, f->sig, sizeof f->sig);
      puts_(f, "signal");
      puts_(f, sig);
    } else if ((r->status == FP_CRASHED || r->status == FP_TIMEOUT) &&
               r->exit_code >= 0) {
      snprintf(f->num[0], sizeof f->num[0], "%d", r->exit_code);
      puts_(f, "exit");
      puts_(f, f->num[0]);
    }
    if (r->status == FP_FAILED) {
      snprintf(f->num[1], sizeof f->num[1], "%d", r->code);
      puts_(f, "code");
      puts_(f, f->num[1]);
    }
  }
  snprintf(f->num[2], sizeof f->num[2], "%u", h->reject ? 0 : r->attempts);
  snprintf(f->num[3], sizeof f->num[3], "%ld",
           h->reject ? 0L : (long)r->worker);
  snprintf(f->num[4], sizeof f->num[4], "%.3f",
           h->reject ? 0.0 : (double)r->run_us / 1000.0);
  puts_(f, "attempts");
  puts_(f, f->num[2]);
  puts_(f, "worker");
  puts_(f, f->num[3]);
  puts_(f, "ms");
  puts_(f, f->num[4]);
  puts_(f, "host");
  puts_(f, o->host);
  puts_(f, "consumer");
  puts_(f, o->consumer);
}

int bridge_write(struct bridge *b) {
  const struct bridge_opts *o = b->o;
  struct held_table *t = &b->held;
  struct held **sent;
  struct fields f;
  unsigned i, n = 0;
  int rc = 0;

  if (t->n[HELD_DONE] == 0) return 0;
  sent = malloc(t->cap * sizeof *sent);
  if (sent == NULL) return 0; /* try again next time */
  /* One pipeline: every script is sent, then every reply read. */
  for (i = 0; i < t->cap; i++) {
    struct held *h = &t->e[i];
    const char *argv[40];
    size_t lens[40];
    int argc = 0, k;

    if (h->state != HELD_DONE) continue;
    if (h->lost) {
      held_drop(t, h);
      b->n.dropped++;
      continue;
    }
    build_fields(&f, o, h);
    argv[argc++] = "EVALSHA";
    argv[argc++] = b->r.sha[SCRIPT_WRITE];
    argv[argc++] = "2";
    argv[argc++] = o->stream;
    argv[argc++] = h->reject == 2 ? o->dead : o->results;
    argv[argc++] = o->group;
    argv[argc++] = o->consumer;
    argv[argc++] = h->id;
    for (k = 0; k < argc; k++) lens[k] = strlen(argv[k]);
    for (k = 0; k < f.n; k++) {
      argv[argc] = f.argv[k];
      lens[argc++] = f.lens[k];
    }
    /* hiredis copies the arguments into its output buffer here. */
    if (redisAppendCommandArgv(b->r.c, argc, argv, lens) != REDIS_OK) {
      rc = -1;
      break;
    }
    sent[n++] = h;
  }
  for (i = 0; i < n && rc == 0; i++) {
    struct held *h = sent[i];
    redisReply *rep = NULL;

    if (redisGetReply(b->r.c, (void **)&rep) != REDIS_OK || rep == NULL) {
      rc = -1;
      break;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
      char err[300];

      snprintf(err, sizeof err, "entry %s: %s", h->id, rep->str);
      freeReplyObject(rep);
      bridge_redis_fail(&b->r, "write result", err);
      free(sent);
      return -1;
    }
    if (!ISTYPE(rep, REDIS_REPLY_INTEGER)) {
      bad_reply(b, "write result", rep);
      free(sent);
      return -1;
    }
    if (rep->integer == 1) {
      if (h->reject == 2) b->n.dead++;
      else b->n.written++;
    } else {
      b->n.dropped++;
      tool_logf(FP_LOG_INFO,
                "entry %s: result not written: no longer "
                "pending for us (claimed by another bridge, or already "
                "acknowledged)",
                h->id);
    }
    freeReplyObject(rep);
    held_drop(t, h);
  }
  free(sent);
  if (rc < 0) {
    /* The rest stay DONE and are sent again after reconnecting; the
     * scripts Redis ran meanwhile make those retries write nothing. */
    bridge_redis_fail(&b->r, "write result", NULL);
    return -1;
  }
  return 0;
}

void bridge_retire(struct bridge *b) {
  const struct bridge_opts *o = b->o;
  const char *argv[6] = {"EVALSHA", b->r.sha[SCRIPT_RETIRE],
                         "1",       o->stream,
                         o->group,  o->consumer};
  redisReply *rep;

  if (b->r.c == NULL) return;
  rep = redisCommandArgv(b->r.c, 6, argv, NULL);
  if (ISTYPE(rep, REDIS_REPLY_INTEGER) && rep->integer == 1)
    tool_logf(FP_LOG_DEBUG, "consumer '%s' removed from group '%s'",
              o->consumer, o->group);
  if (rep) freeReplyObject(rep);
}
