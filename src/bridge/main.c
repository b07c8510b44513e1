/*
 * forkpool bridge (build/bin/forkpool-bridge): feeds a local named pool
 * from a Redis stream. See bridge.h for the life of an entry and
 * scripts.c for why each entry ends with exactly one result.
 *
 * One thread runs one loop. Each turn it, as far as it can:
 *   1. reconnects to Redis or re-attaches the pool when due (backoff);
 *   2. heartbeats the entries it holds (every --claim-idle / 3);
 *   3. claims entries idle over --claim-idle (every --claim-idle / 4,
 *      at most 5 s), the first time its own leftovers instead;
 *   4. reads new entries, at most --inflight held in all; it blocks in
 *      XREADGROUP only when it holds nothing (up to 500 ms, so a signal
 *      is seen within that);
 *   5. submits held entries to the pool (FP_NOWAIT: a full pool queue
 *      leaves them held for the next turn);
 *   6. collects results, waiting up to 50 ms when there was nothing else
 *      to do;
 *   7. writes the results, one pipeline of scripts.
 *
 * What happens to an entry when something fails:
 *   - Redis unreachable: held entries stay held, results are kept in
 *     memory and written after reconnecting (or dropped unwritten if
 *     another bridge claimed the entries meanwhile). Nothing is acked.
 *   - The pool dies or stops: entries not finished are released (they
 *     stay pending in Redis, so any bridge claims them after
 *     --claim-idle); the bridge re-attaches with backoff.
 *   - A task ends `cancelled` (its pool was stopping): released likewise;
 *     it did not run, so no result is written.
 *   - No `data` field: nothing to run; moved to the dead-letter stream
 *     (reason "no data field"). Over the pool's max input: a result
 *     `failed`, code 90, as `forkpool run` reports a too-long line.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "tool/signame.h"

#define POOL_BACKOFF_MIN_MS 100u
#define POOL_BACKOFF_MAX_MS 5000u
#define READ_BLOCK_MAX_MS 500u
#define COLLECT_WAIT_MAX_MS 50u

static volatile sig_atomic_t stop_signals;

static void on_signal(int sig) {
  (void)sig;
  if (stop_signals < 2) stop_signals++;
}

struct loop {
  struct bridge b;
  fp_pool *pool;
  int pool_closing; /* fp_submit said -ESHUTDOWN: draining */
  uint64_t pool_retry_at;
  unsigned pool_backoff;
  fp_result scratch; /* fp_collect target, swapped into entries */
};

static unsigned min_u(unsigned a, unsigned b) { return a < b ? a : b; }

static unsigned until(uint64_t t, uint64_t now) {
  return t <= now ? 0 : (unsigned)min_u((unsigned)(t - now), 60000u);
}

/* Let go of every entry in `state`: it stays pending in Redis for us,
 * without a heartbeat, so a claim (anyone's, ours included) redoes it. */
static unsigned release_all(struct loop *L, enum held_state state) {
  struct held_table *t = &L->b.held;
  unsigned i, n = 0;

  for (i = 0; i < t->cap; i++)
    if (t->e[i].state == state) {
      held_drop(t, &t->e[i]);
      n++;
    }
  L->b.n.released += n;
  return n;
}

static void pool_lost(struct loop *L, const char *why) {
  unsigned n = release_all(L, HELD_RUNNING) + release_all(L, HELD_BACKLOG);

  fp_pool_free(L->pool);
  L->pool = NULL;
  L->pool_closing = 0;
  L->pool_retry_at = tool_now_ms() + L->pool_backoff;
  tool_logf(FP_LOG_WARN,
            "pool '%s': %s; %u unfinished entries left "
            "pending for a claim; attaching again in %u ms",
            L->b.o->name, why, n, L->pool_backoff);
  L->pool_backoff = min_u(L->pool_backoff * 2, POOL_BACKOFF_MAX_MS);
}

/* fp_strerror, except for -ENOENT, whose text also covers unknown tasks. */
static const char *pool_error(int err) {
  return err == -ENOENT ? "no pool of that name" : fp_strerror(err);
}

/* Returns 0, or the negative errno of fp_pool_open (logged when `quiet`
 * is not set, and a retry is scheduled). */
static int pool_attach(struct loop *L, int quiet) {
  int err = fp_pool_open(&L->pool, L->b.o->name, 0);

  if (err == 0) {
    L->pool_backoff = POOL_BACKOFF_MIN_MS;
    L->pool_closing = 0;
    tool_logf(FP_LOG_INFO, "pool '%s': attached", L->b.o->name);
    return 0;
  }
  L->pool = NULL;
  if (!quiet)
    tool_logf(FP_LOG_WARN,
              "pool '%s': cannot attach: %s; retrying in %u "
              "ms",
              L->b.o->name, pool_error(err), L->pool_backoff);
  L->pool_retry_at = tool_now_ms() + L->pool_backoff;
  L->pool_backoff = min_u(L->pool_backoff * 2, POOL_BACKOFF_MAX_MS);
  return err;
}

/* Submit BACKLOG entries until the pool's queue is full. Returns the
 * number that changed state. */
static unsigned submit_backlog(struct loop *L) {
  struct held_table *t = &L->b.held;
  unsigned i, n = 0;

  for (i = 0; i < t->cap && L->pool && !L->pool_closing; i++) {
    struct held *h = &t->e[i];
    uint64_t id;
    int err;

    if (h->state != HELD_BACKLOG) continue;
    if (!h->has_data) {
      h->reject = 2;
      held_set(t, h, HELD_DONE);
      n++;
      continue;
    }
    err = fp_submit(L->pool, h->data, h->len, FP_NOWAIT, &id);
    if (err == -EAGAIN)
      break; /* the queue is full (other producers share it): next turn */
    if (err == 0) {
      h->task = id;
      held_set(t, h, HELD_RUNNING);
    } else if (err == -EMSGSIZE) {
      h->reject = 1;
      held_set(t, h, HELD_DONE);
    } else if (err == -ESHUTDOWN) {
      /* Draining: what already runs still finishes; the rest goes back. */
      L->pool_closing = 1;
      tool_logf(FP_LOG_WARN,
                "pool '%s' is stopping: %u entries not "
                "submitted are left for a claim",
                L->b.o->name, release_all(L, HELD_BACKLOG));
      break;
    } else {
      pool_lost(L, fp_strerror(err));
      break;
    }
    n++;
  }
  return n;
}

/* Collect every finished task; the first fp_collect waits up to wait_ms.
 * Returns the number collected. */
static unsigned collect(struct loop *L, unsigned wait_ms) {
  struct held_table *t = &L->b.held;
  unsigned n = 0;

  while (L->pool) {
    int err = fp_collect(L->pool, &L->scratch, n == 0 ? (int)wait_ms : 0);
    struct held *h;
    fp_result tmp;

    if (err == -ETIMEDOUT || err == -ENOENT || err == -ENOMEM) break;
    if (err < 0) {
      pool_lost(L, fp_strerror(err));
      break;
    }
    n++;
    h = held_by_task(t, L->scratch.id);
    if (h == NULL)
      continue; /* NEVER: every task of this handle is a held entry */
    if (L->scratch.status == FP_CANCELLED) {
      tool_logf(FP_LOG_INFO,
                "entry %s: cancelled by the stopping pool; "
                "left for a claim",
                h->id);
      held_drop(t, h);
      L->b.n.released++;
      continue;
    }
    /* Swap, so each entry keeps an output buffer for reuse. */
    tmp = h->res;
    h->res = L->scratch;
    L->scratch = tmp;
    held_set(t, h, HELD_DONE);
  }
  if (L->pool && L->pool_closing && fp_pending(L->pool) == 0) {
    fp_pool_free(L->pool);
    L->pool = NULL;
    L->pool_closing = 0;
    L->pool_retry_at = tool_now_ms() + L->pool_backoff;
    tool_logf(FP_LOG_INFO,
              "pool '%s' stopped; attaching again when it "
              "is back",
              L->b.o->name);
  }
  return n;
}

static void install_signals(void) {
  /* No SA_RESTART (tool_signal_set): a signal cuts short the waits of the
   * loop. Valid signal numbers: these cannot fail. */
  (void)tool_signal_set(SIGTERM, on_signal);
  (void)tool_signal_set(SIGINT, on_signal);
  /* A write to a Redis that closed the connection is an error to handle,
   * not a reason to die. */
  (void)tool_signal_set(SIGPIPE, SIG_IGN);
}

/* One turn of the loop (see the top of the file). */
static void turn(struct loop *L, int stopping, uint64_t *next_hb,
                 uint64_t *next_claim) {
  struct bridge *b = &L->b;
  const struct bridge_opts *o = b->o;
  struct held_table *t = &b->held;
  uint64_t now = tool_now_ms();
  unsigned hb_every = o->claim_idle_ms / 3;
  unsigned claim_every = min_u(o->claim_idle_ms / 4, 5000u);
  unsigned progress = 0, room;
  int waited = 0, more, r;

  if (!L->pool && !stopping && now >= L->pool_retry_at) pool_attach(L, 0);
  bridge_redis_ensure(&b->r, now);

  if (b->r.c && held_count(t) > 0 && now >= *next_hb) {
    bridge_heartbeat(b);
    *next_hb = now + hb_every;
  }
  room = o->inflight - held_count(t);
  if (b->r.c && L->pool && !L->pool_closing && !stopping && room > 0) {
    if (!b->own_scan_done) {
      r = bridge_claim(b, room, 0, 1, &more);
      if (r >= 0 && !more) b->own_scan_done = 1;
    } else if (now >= *next_claim) {
      r = bridge_claim(b, room, o->claim_idle_ms, 0, &more);
      if (r >= 0) *next_claim = more ? now : now + claim_every;
    } else {
      r = 0;
    }
    progress += r > 0 ? (unsigned)r : 0;
    room = o->inflight - held_count(t);
    if (b->r.c && b->own_scan_done && room > 0) {
      unsigned block = 0;

      if (held_count(t) == 0) {
        block = min_u(READ_BLOCK_MAX_MS, until(*next_claim, now));
        if (block == 0) block = 1; /* XREADGROUP BLOCK 0 would mean forever */
        waited = 1;
      }
      r = bridge_read(b, room, block);
      progress += r > 0 ? (unsigned)r : 0;
    }
  }
  if (L->pool) progress += submit_backlog(L);
  if (L->pool && t->n[HELD_RUNNING] > 0) {
    unsigned wait = 0;

    if (!progress && !waited && t->n[HELD_DONE] == 0) {
      wait = min_u(COLLECT_WAIT_MAX_MS, until(*next_hb, now));
      waited = wait > 0;
    }
    progress += collect(L, wait);
  }
  if (b->r.c && t->n[HELD_DONE] > 0 && bridge_write(b) == 0) progress++;
  if (!progress && !waited) {
    /* Nothing moved: waiting for Redis, the pool, or room in its queue. */
    uint64_t next = now + 100;

    if (!b->r.c && b->r.retry_at_ms < next) next = b->r.retry_at_ms;
    if (!L->pool && !stopping && L->pool_retry_at < next)
      next = L->pool_retry_at;
    if (t->n[HELD_BACKLOG] > 0 && now + 5 < next) next = now + 5;
    tool_sleep_ms(until(next, tool_now_ms()) + 1);
  }
}

int main(int argc, char **argv) {
  static struct loop L;
  struct bridge *b = &L.b;
  struct bridge_opts o;
  uint64_t next_hb = 0, next_claim = 0;
  char why[256];
  int stopping = 0, rc, err, connect = 0;

  rc = bridge_parse(argc, argv, &o);
  if (rc >= 0) return rc;
  if (o.verbose) tool_log_set_level(FP_LOG_DEBUG);
  b->o = &o;
  strcpy(b->claim_cursor, "-");
  fp_result_init(&L.scratch);
  if (held_init(&b->held, o.inflight) < 0) {
    fprintf(stderr, BRIDGE_CMD ": out of memory\n");
    bridge_opts_free(&o);
    return BRIDGE_EXIT_USAGE;
  }
  bridge_redis_init(&b->r, &o);
  install_signals();
  L.pool_backoff = POOL_BACKOFF_MIN_MS;
  /* The pool first: it is local, and without it there is nothing to do.
   * Exit status 3, as submit, stat and cancel say it. */
  err = pool_attach(&L, 1);
  if (err < 0) {
    fprintf(stderr, BRIDGE_CMD ": pool '%s': %s%s\n", o.name, pool_error(err),
            err == -ENOENT || err == -ECONNREFUSED
                ? " (start it first: forkpool serve --name NAME ...)"
                : "");
    rc = BRIDGE_EXIT_NOPOOL;
    goto out;
  }
  /* Then Redis, once: a bridge that cannot reach it at start says so and
   * exits (a wrong --redis must not look like a bridge waiting for work),
   * unless --retry-connect asked it to wait. */
  if (bridge_redis_start(&b->r, why, sizeof why, &connect) < 0) {
    if (connect)
      fprintf(stderr,
              BRIDGE_CMD ": cannot reach Redis at %s: %s "
                         "(--retry-connect waits for it)\n",
              o.redis_addr, why);
    else fprintf(stderr, BRIDGE_CMD ": Redis at %s: %s\n", o.redis_addr, why);
    rc = BRIDGE_EXIT_NOREDIS;
    goto out;
  }
  tool_logf(FP_LOG_INFO,
            "bridge '%s' on %s: stream '%s', group '%s', "
            "results '%s', dead letters '%s', inflight %u, claim-idle %u "
            "ms, max-deliveries %u",
            o.consumer, o.host, o.stream, o.group, o.results, o.dead,
            o.inflight, o.claim_idle_ms, o.max_deliveries);

  for (;;) {
    struct held_table *t = &b->held;

    if (stop_signals >= 2) {
      tool_logf(FP_LOG_WARN,
                "second signal: exiting now; %u held entries "
                "stay pending for a claim",
                held_count(t));
      break;
    }
    if (stop_signals == 1 && !stopping) {
      unsigned left = release_all(&L, HELD_BACKLOG);

      stopping = 1;
      tool_logf(FP_LOG_INFO,
                "stopping: no more reading; %u entries not "
                "yet in the pool left for a claim; finishing %u",
                left, t->n[HELD_RUNNING] + t->n[HELD_DONE]);
    }
    if (stopping && t->n[HELD_RUNNING] == 0 && t->n[HELD_DONE] == 0) break;
    turn(&L, stopping, &next_hb, &next_claim);
  }

  if (held_count(&b->held) == 0) bridge_retire(b);
  tool_logf(FP_LOG_INFO,
            "stopped: %llu entries read, %llu claimed, %llu "
            "results written, %llu dead-lettered, %llu results not "
            "written (entry no longer ours), %llu entries released",
            (unsigned long long)b->n.read, (unsigned long long)b->n.claimed,
            (unsigned long long)b->n.written, (unsigned long long)b->n.dead,
            (unsigned long long)b->n.dropped,
            (unsigned long long)b->n.released);
  rc = BRIDGE_EXIT_OK;
out:
  bridge_redis_close(&b->r);
  fp_pool_free(L.pool);
  fp_result_release(&L.scratch);
  held_free(&b->held);
  bridge_opts_free(&o);
  return rc;
}
