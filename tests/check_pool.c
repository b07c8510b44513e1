/*
 * The pool as a program uses it: submit, wait, collect, full queues, stop
 * modes, counters, recycling and the worker hooks. Each test runs with the
 * checked fixture of testutil.c, which fails it if any process or /dev/shm
 * entry outlives the pool.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "suites.h"
#include "testutil.h"

/* --- results by id ------------------------------------------------------- */

#define MANY 20000

struct many_state {
  uint64_t *ids;       /* ids[n]: id of the task whose input is n */
  unsigned char *seen; /* seen[n]: its result was collected */
  unsigned collected;
};

/* Collects one result of the bulk test and checks it against its id. */
static void collect_square(fp_pool *pool, fp_result *res,
                           struct many_state *ms) {
  uint64_t v[2];
  int rc = fp_collect(pool, res, TU_GUARD_MS);

  ck_assert_msg(rc == 0, "fp_collect: %s", fp_strerror(rc));
  ck_assert_int_eq(res->status, FP_OK);
  ck_assert_uint_eq(res->output_len, sizeof v);
  memcpy(v, res->output, sizeof v);
  ck_assert_uint_lt(v[0], MANY);
  ck_assert_msg(!ms->seen[v[0]], "result of task %llu delivered twice",
                (unsigned long long)v[0]);
  ck_assert_uint_eq(res->id, ms->ids[v[0]]);
  ck_assert_uint_eq(v[1], tu_square_of(v[0]));
  ck_assert_uint_eq(res->attempts, 1);
  ck_assert_int_ne(res->worker, 0);
  ms->seen[v[0]] = 1;
  ms->collected++;
}

/* 20000 tasks through a small queue: every result arrives once, intact,
 * under the id its submission returned. */
START_TEST(test_many_tasks) {
  struct many_state ms = {0};
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  fp_stats st;
  uint64_t n = 0;

  tu_config(&cfg, 2, 64);
  cfg.handler = tu_square;
  pool = tu_start(&cfg);
  ms.ids = calloc(MANY, sizeof *ms.ids);
  ms.seen = calloc(MANY, 1);
  ck_assert_ptr_nonnull(ms.ids);
  ck_assert_ptr_nonnull(ms.seen);
  fp_result_init(&res);

  while (n < MANY) {
    int rc = fp_submit(pool, &n, sizeof n, FP_NOWAIT, &ms.ids[n]);
    if (rc == 0) {
      ck_assert_uint_ne(ms.ids[n], 0);
      n++;
      continue;
    }
    ck_assert_msg(rc == -EAGAIN, "fp_submit: %s", fp_strerror(rc));
    collect_square(pool, &res, &ms); /* full: make room */
  }
  ck_assert_uint_eq(fp_pending(pool), MANY - ms.collected);
  while (ms.collected < MANY) collect_square(pool, &res, &ms);
  ck_assert_uint_eq(fp_pending(pool), 0);
  ck_assert_int_eq(fp_collect(pool, &res, FP_NOWAIT), -ENOENT);

  ck_assert_int_eq(fp_pool_stats(pool, &st), 0);
  ck_assert_uint_eq(st.submitted, MANY);
  ck_assert_uint_eq(st.ok, MANY);
  ck_assert_uint_eq(st.failed + st.crashed + st.timeout + st.cancelled, 0);
  ck_assert_uint_eq(st.workers, 2);
  ck_assert_uint_eq(st.slots, 64);
  ck_assert_uint_eq(st.queued, 0);
  ck_assert_uint_eq(st.running, 0);
  ck_assert_int_gt(st.supervisor, 0);

  fp_result_release(&res);
  free(ms.ids);
  free(ms.seen);
}
END_TEST

/* fp_wait picks the one task asked for, in any order. */
START_TEST(test_wait_by_id) {
  static const char *const words[] = {"alpha", "beta", "gamma", "delta"};
  uint64_t ids[4];
  fp_config cfg;
  fp_pool *pool;
  fp_result res;

  tu_config(&cfg, 2, 8);
  pool = tu_start(&cfg);
  for (int i = 0; i < 4; i++) ids[i] = tu_submit(pool, words[i]);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < i; j++) ck_assert_uint_ne(ids[i], ids[j]);
  ck_assert_uint_eq(fp_pending(pool), 4);

  fp_result_init(&res);
  for (int i = 3; i >= 0; i -= 2) { /* delta, then beta */
    tu_wait(pool, ids[i], &res);
    tu_assert_ok(&res, words[i]);
    ck_assert_int_eq(res.code, 0);
    ck_assert_int_eq(res.signal, 0);
    ck_assert_int_eq(res.exit_code, -1);
    ck_assert_uint_eq(res.attempts, 1);
  }
  ck_assert_uint_eq(fp_pending(pool), 2);
  tu_wait(pool, ids[0], &res);
  tu_assert_ok(&res, "alpha");
  tu_wait(pool, ids[2], &res);
  tu_assert_ok(&res, "gamma");
  ck_assert_uint_eq(fp_pending(pool), 0);
  fp_result_release(&res);
}
END_TEST

/* Unknown and already-collected ids are not pending. */
START_TEST(test_enoent) {
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  uint64_t id;

  tu_config(&cfg, 1, 4);
  pool = tu_start(&cfg);
  fp_result_init(&res);
  ck_assert_int_eq(fp_collect(pool, &res, FP_NOWAIT), -ENOENT);
  ck_assert_int_eq(fp_collect(pool, &res, 50), -ENOENT);
  ck_assert_int_eq(fp_wait(pool, 12345, &res, FP_NOWAIT), -ENOENT);

  id = tu_submit(pool, "once");
  ck_assert_int_eq(fp_wait(pool, id + 1000, &res, FP_NOWAIT), -ENOENT);
  ck_assert_int_eq(fp_wait(pool, 0, &res, FP_NOWAIT), -ENOENT);
  tu_wait(pool, id, &res);
  tu_assert_ok(&res, "once");
  ck_assert_int_eq(fp_wait(pool, id, &res, FP_NOWAIT), -ENOENT);
  ck_assert_int_eq(fp_wait(pool, id, &res, FP_FOREVER), -ENOENT);
  ck_assert_int_eq(fp_collect(pool, &res, FP_FOREVER), -ENOENT);
  fp_result_release(&res);
}
END_TEST

/* Input above max_input is refused; max_input itself is fine. */
START_TEST(test_emsgsize) {
  static char buf[4096]; /* every length passed below is readable */
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  uint64_t id = 0;

  memset(buf, 'x', sizeof buf);
  tu_config(&cfg, 1, 4);
  cfg.max_input = 16;
  pool = tu_start(&cfg);
  ck_assert_int_eq(fp_submit(pool, buf, 17, FP_NOWAIT, &id), -EMSGSIZE);
  ck_assert_int_eq(fp_submit(pool, buf, sizeof buf, FP_NOWAIT, &id), -EMSGSIZE);
  ck_assert_uint_eq(fp_pending(pool), 0);
  /* Timed, not FP_NOWAIT: a worker may hold the queue lock for a moment. */
  ck_assert_int_eq(fp_submit(pool, buf, 16, TU_GUARD_MS, &id), 0);
  fp_result_init(&res);
  tu_wait(pool, id, &res);
  tu_assert_ok(&res, "xxxxxxxxxxxxxxxx");
  /* An empty input is a task like any other. */
  ck_assert_int_eq(fp_submit(pool, buf, 0, TU_GUARD_MS, &id), 0);
  tu_wait(pool, id, &res);
  tu_assert_ok(&res, "");
  fp_result_release(&res);
}
END_TEST

/* Outputs up to max_output arrive whole, into one reused fp_result. */
START_TEST(test_output_sizes) {
  static const size_t sizes[] = {TU_IO_BYTES, 1, 200, TU_IO_BYTES - 1, 0};
  static char buf[TU_IO_BYTES];
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  uint64_t id = 0;

  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)('a' + i % 26);
  tu_config(&cfg, 1, 4);
  pool = tu_start(&cfg);
  fp_result_init(&res);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    ck_assert_int_eq(fp_submit(pool, buf, sizes[i], TU_GUARD_MS, &id), 0);
    tu_wait(pool, id, &res);
    ck_assert_int_eq(res.status, FP_OK);
    ck_assert_uint_eq(res.output_len, sizes[i]);
    if (sizes[i] > 0) ck_assert_mem_eq(res.output, buf, sizes[i]);
  }
  fp_result_release(&res);
  ck_assert_ptr_null(res.output);
  ck_assert_uint_eq(res.output_len, 0);
}
END_TEST

/* Waiting less than a task takes times out, and the task stays pending. */
START_TEST(test_wait_timeout) {
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  uint64_t id;

  tu_config(&cfg, 1, 4);
  pool = tu_start(&cfg);
  fp_result_init(&res);
  id = tu_submit(pool, "block");
  ck_assert_int_eq(fp_wait(pool, id, &res, FP_NOWAIT), -ETIMEDOUT);
  ck_assert_int_eq(fp_wait(pool, id, &res, 50), -ETIMEDOUT);
  ck_assert_int_eq(fp_collect(pool, &res, FP_NOWAIT), -ETIMEDOUT);
  ck_assert_int_eq(fp_collect(pool, &res, 20), -ETIMEDOUT);
  ck_assert_uint_eq(fp_pending(pool), 1);
  atomic_store(&tu_sh->gate, 1);
  tu_wait(pool, id, &res);
  tu_assert_ok(&res, "open");
  fp_result_release(&res);
}
END_TEST

/* Slots hold tasks until collected: a full queue refuses or times out. */
START_TEST(test_queue_full) {
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  uint64_t a, b, c = 0;

  tu_config(&cfg, 1, 2);
  pool = tu_start(&cfg);
  fp_result_init(&res);
  a = tu_submit(pool, "block");
  b = tu_submit(pool, "block");
  ck_assert_int_eq(fp_submit(pool, "c", 1, FP_NOWAIT, &c), -EAGAIN);
  ck_assert_int_eq(fp_submit(pool, "c", 1, 50, &c), -ETIMEDOUT);
  ck_assert_uint_eq(fp_pending(pool), 2);

  atomic_store(&tu_sh->gate, 1);
  tu_wait(pool, a, &res);
  tu_assert_ok(&res, "open");
  /* One slot is free again. */
  ck_assert_int_eq(fp_submit(pool, "c", 1, TU_GUARD_MS, &c), 0);
  tu_wait(pool, b, &res);
  tu_assert_ok(&res, "open");
  tu_wait(pool, c, &res);
  tu_assert_ok(&res, "c");
  fp_result_release(&res);
}
END_TEST

/*
 * Issue 13, item 10: a caller whose own finished results fill every slot
 * gets -EDEADLK from a FP_FOREVER submit rather than block for ever.
 */
START_TEST(test_submit_own_results_fill_queue_edeadlk) {
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  uint64_t id;
  unsigned n = 0;
  int r = 0;

  tu_config(&cfg, 2, 4);
  pool = tu_start(&cfg);
  fp_result_init(&res);
  for (; n < 10; n++)
    if ((r = fp_submit(pool, "x", 1, FP_FOREVER, &id)) != 0) break;
  ck_assert_int_eq(r, -EDEADLK);
  ck_assert_uint_eq(n, 4); /* a private pool: every slot, no share */
  ck_assert_int_eq(fp_submit(pool, "x", 1, FP_NOWAIT, &id), -EAGAIN);
  ck_assert_int_eq(fp_submit(pool, "x", 1, 100, &id), -EDEADLK);
  /* Collecting makes room. */
  ck_assert_int_eq(fp_collect(pool, &res, TU_GUARD_MS), 0);
  ck_assert_int_eq(fp_submit(pool, "y", 1, FP_FOREVER, &id), 0);
  while (fp_pending(pool) > 0)
    ck_assert_int_eq(fp_collect(pool, &res, TU_GUARD_MS), 0);
  fp_result_release(&res);
}
END_TEST

struct collector {
  fp_pool *pool;
  int n, got;
};

static void *collect_n(void *arg) {
  struct collector *c = arg;
  fp_result res;
  fp_result_init(&res);
  /* -ENOENT between the other thread's submits: nothing pending yet. */
  for (int k = 0; c->got < c->n && k < TU_GUARD_MS / 10; k++) {
    int r = fp_collect(c->pool, &res, 10);
    if (r == 0) c->got++;
    else if (r != -ENOENT && r != -ETIMEDOUT) break;
    else if (r == -ENOENT) tu_sleep_ms(1);
  }
  fp_result_release(&res);
  return NULL;
}

/* ...but a second thread that collects is not refused: the submit waits. */
START_TEST(test_submit_full_queue_with_collecting_thread) {
  fp_config cfg;
  fp_pool *pool;
  uint64_t id;
  pthread_t t;
  struct collector c;

  tu_config(&cfg, 2, 4);
  pool = tu_start(&cfg);
  for (int k = 0; k < 4; k++)
    ck_assert_int_eq(fp_submit(pool, "sleep 100", 9, FP_FOREVER, &id), 0);
  c.pool = pool;
  c.n = 8;
  c.got = 0;
  ck_assert_int_eq(pthread_create(&t, NULL, collect_n, &c), 0);
  for (int k = 0; k < 4; k++) {
    int r = fp_submit(pool, "x", 1, FP_FOREVER, &id);
    ck_assert_msg(r == 0, "submit %d: %s", k, fp_strerror(r));
  }
  pthread_join(t, NULL);
  ck_assert_int_eq(c.got, 8);
}
END_TEST

/* Starts a pool, runs one task and frees it; returns the supervisor pid. */
static pid_t one_pool_cycle(const char *word) {
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  fp_stats st;

  tu_config(&cfg, 2, 4);
  pool = tu_start(&cfg);
  ck_assert_int_eq(fp_pool_stats(pool, &st), 0);
  fp_result_init(&res);
  tu_wait(pool, tu_submit(pool, word), &res);
  tu_assert_ok(&res, word);
  fp_result_release(&res);
  ck_assert_int_eq(fp_pool_stop(pool, FP_STOP_DRAIN, TU_GUARD_MS), 0);
  fp_pool_free(pool);
  tu_pool = NULL;
  return st.supervisor;
}

START_TEST(test_two_pools_in_a_row) {
  pid_t s1 = one_pool_cycle("first");
  pid_t s2 = one_pool_cycle("second");
  ck_assert_int_gt(s1, 0);
  ck_assert_int_gt(s2, 0);
}
END_TEST

/* Two pools of one program at the same time keep their tasks apart. */
START_TEST(test_two_pools_at_once) {
  fp_config cfg;
  fp_pool *a, *b;
  fp_result res;
  uint64_t ia, ib;
  int rc;

  tu_config(&cfg, 1, 4);
  a = tu_start(&cfg);
  b = NULL;
  rc = fp_pool_start(&b, &cfg);
  ck_assert_msg(rc == 0, "second fp_pool_start: %s", fp_strerror(rc));
  fp_result_init(&res);
  ia = tu_submit(a, "from a");
  ib = tu_submit(b, "from b");
  tu_wait(b, ib, &res);
  tu_assert_ok(&res, "from b");
  tu_wait(a, ia, &res);
  tu_assert_ok(&res, "from a");
  ck_assert_int_eq(fp_collect(a, &res, FP_NOWAIT), -ENOENT);
  ck_assert_int_eq(fp_collect(b, &res, FP_NOWAIT), -ENOENT);
  fp_result_release(&res);
  fp_pool_free(b);
}
END_TEST

/* Stop is idempotent; nothing is accepted after it; a bad mode changes
 * nothing. */
START_TEST(test_stop_idempotent) {
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  fp_stats st;
  uint64_t id = 0;

  tu_config(&cfg, 2, 4);
  pool = tu_start(&cfg);
  fp_result_init(&res);
  ck_assert_int_eq(fp_pool_stop(pool, 42, 0), -EINVAL);
  tu_wait(pool, tu_submit(pool, "still up"), &res);
  tu_assert_ok(&res, "still up");

  ck_assert_int_eq(fp_pool_stop(pool, FP_STOP_DRAIN, TU_GUARD_MS), 0);
  ck_assert_int_eq(fp_pool_stop(pool, FP_STOP_DRAIN, TU_GUARD_MS), 0);
  ck_assert_int_eq(fp_pool_stop(pool, FP_STOP_NOW, 0), 0);
  ck_assert_int_eq(fp_submit(pool, "late", 4, FP_NOWAIT, &id), -ESHUTDOWN);
  ck_assert_int_eq(fp_submit(pool, "late", 4, FP_FOREVER, &id), -ESHUTDOWN);
  ck_assert_int_eq(fp_collect(pool, &res, FP_NOWAIT), -ENOENT);
  ck_assert_int_eq(fp_pool_stats(pool, &st), 0);
  ck_assert_uint_eq(st.submitted, 1);
  ck_assert_uint_eq(st.ok, 1);
  ck_assert_uint_eq(st.alive, 0);
  fp_result_release(&res);
  fp_pool_free(pool);
  tu_pool = NULL;
  fp_pool_free(NULL);
}
END_TEST

struct submitter {
  fp_pool *pool;
  atomic_int entered;
  int rc;
};

static void *submit_forever(void *p) {
  struct submitter *s = p;
  uint64_t id = 0;

  atomic_store(&s->entered, 1);
  s->rc = fp_submit(s->pool, "late", 4, FP_FOREVER, &id);
  return NULL;
}

/* A thread blocked on a full queue returns -ESHUTDOWN when another thread
 * stops the pool. */
START_TEST(test_stop_releases_blocked_submitter) {
  struct submitter s = {0};
  struct timespec deadline;
  fp_config cfg;
  fp_result res;
  pthread_t th;
  uint64_t id;
  int rc;

  tu_config(&cfg, 1, 1);
  s.pool = tu_start(&cfg); /* before any thread, as the header asks */
  id = tu_submit(s.pool, "block");
  tu_wait_started(1);
  ck_assert_int_eq(pthread_create(&th, NULL, submit_forever, &s), 0);
  while (!atomic_load(&s.entered)) tu_sleep_ms(1);
  /* Give the thread time to go to sleep in fp_submit. The outcome must be
   * -ESHUTDOWN either way, so the test does not depend on this delay. */
  tu_sleep_ms(100);
  ck_assert_int_eq(fp_pool_stop(s.pool, FP_STOP_NOW, 0), 0);

  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += TU_GUARD_MS / 1000;
  rc = pthread_timedjoin_np(th, NULL, &deadline);
  ck_assert_msg(rc == 0, "the blocked submitter was not released");
  ck_assert_int_eq(s.rc, -ESHUTDOWN);

  fp_result_init(&res);
  tu_wait(s.pool, id, &res);
  ck_assert_int_eq(res.status, FP_CANCELLED);
  fp_result_release(&res);
}
END_TEST

/* Drain lets queued tasks run to completion. */
START_TEST(test_drain_finishes_queued) {
  uint64_t ids[6];
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  fp_stats st;

  tu_config(&cfg, 1, 8);
  pool = tu_start(&cfg);
  for (int i = 0; i < 6; i++) ids[i] = tu_submit(pool, "sleep 20");
  ck_assert_int_eq(fp_pool_stop(pool, FP_STOP_DRAIN, -1), 0);
  ck_assert_uint_eq(fp_pending(pool), 6);
  fp_result_init(&res);
  for (int i = 0; i < 6; i++) {
    tu_wait(pool, ids[i], &res);
    tu_assert_ok(&res, "slept 20");
  }
  fp_result_release(&res);
  ck_assert_int_eq(fp_pool_stats(pool, &st), 0);
  ck_assert_uint_eq(st.ok, 6);
  ck_assert_uint_eq(st.cancelled, 0);
}
END_TEST

/*
 * Runs one blocked task and two queued ones, stops with mode and grace,
 * and checks that all three ended FP_CANCELLED: the running one after one
 * attempt, the queued ones never started.
 */
static void stop_cancels(int mode, int grace_ms) {
  uint64_t run, q1, q2;
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  fp_stats st;

  tu_config(&cfg, 1, 8);
  pool = tu_start(&cfg);
  run = tu_submit(pool, "block");
  q1 = tu_submit(pool, "queued 1");
  q2 = tu_submit(pool, "queued 2");
  tu_wait_started(1);
  ck_assert_int_eq(fp_pool_stop(pool, mode, grace_ms), 0);

  fp_result_init(&res);
  tu_wait(pool, run, &res);
  ck_assert_int_eq(res.status, FP_CANCELLED);
  ck_assert_uint_eq(res.attempts, 1);
  ck_assert_uint_eq(res.output_len, 0);
  tu_wait(pool, q1, &res);
  ck_assert_int_eq(res.status, FP_CANCELLED);
  ck_assert_uint_eq(res.attempts, 0);
  ck_assert_int_eq(res.worker, 0);
  tu_wait(pool, q2, &res);
  ck_assert_int_eq(res.status, FP_CANCELLED);
  ck_assert_uint_eq(res.attempts, 0);
  fp_result_release(&res);

  ck_assert_int_eq(fp_pool_stats(pool, &st), 0);
  ck_assert_uint_eq(st.cancelled, 3);
  ck_assert_uint_eq(st.submitted, 3);
  ck_assert_int_eq(atomic_load(&tu_sh->started), 1);
}

START_TEST(test_drain_grace_expires) { stop_cancels(FP_STOP_DRAIN, 200); }
END_TEST

START_TEST(test_stop_now_cancels) { stop_cancels(FP_STOP_NOW, 0); }
END_TEST

/* Every accepted task is counted once, in exactly one outcome. */
START_TEST(test_stats_add_up) {
  static const char *const cmds[] = {"a", "fail 9", "exit 4", "hang",
                                     "b", "fail 9", "c"};
  static const fp_status want[] = {FP_OK, FP_FAILED, FP_CRASHED, FP_TIMEOUT,
                                   FP_OK, FP_FAILED, FP_OK};
  uint64_t seen[FP_CANCELLED + 1] = {0};
  uint64_t late[3];
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  fp_stats st;
  uint64_t id;

  tu_config(&cfg, 1, 8);
  cfg.timeout_ms = 300;
  pool = tu_start(&cfg);
  fp_result_init(&res);
  for (int i = 0; i < 7; i++) {
    id = tu_submit(pool, cmds[i]);
    tu_wait(pool, id, &res);
    ck_assert_msg(res.status == want[i], "%s: status %s, want %s", cmds[i],
                  fp_status_name(res.status), fp_status_name(want[i]));
    seen[res.status]++;
  }
  ck_assert_int_eq(fp_pool_stats(pool, &st), 0);
  ck_assert_uint_eq(st.submitted, 7);
  ck_assert_uint_eq(st.ok, 3);
  ck_assert_uint_eq(st.failed, 2);
  ck_assert_uint_eq(st.crashed, 1);
  ck_assert_uint_eq(st.timeout, 1);
  ck_assert_uint_eq(st.cancelled, 0);
  ck_assert_uint_eq(st.workers, 1);
  ck_assert_uint_eq(st.slots, 8);
  ck_assert_uint_eq(st.queued, 0);
  ck_assert_uint_eq(st.running, 0);
  /* The crash and the timeout each cost a worker, and tasks ran after. */
  ck_assert_uint_ge(st.restarts, 2);

  /* Three more that an immediate stop cancels. (Should the stop come more
   * than timeout_ms after "block" started, that one ends FP_TIMEOUT
   * instead: the tally below accepts that, so the test does not depend on
   * speed.) */
  late[0] = tu_submit(pool, "block");
  late[1] = tu_submit(pool, "x");
  late[2] = tu_submit(pool, "y");
  ck_assert_int_eq(fp_pool_stop(pool, FP_STOP_NOW, 0), 0);
  for (int i = 0; i < 3; i++) {
    tu_wait(pool, late[i], &res);
    if (i == 0 && res.status == FP_TIMEOUT) {
      seen[FP_TIMEOUT]++;
      continue;
    }
    ck_assert_int_eq(res.status, FP_CANCELLED);
    seen[FP_CANCELLED]++;
  }
  ck_assert_int_eq(fp_collect(pool, &res, FP_NOWAIT), -ENOENT);
  fp_result_release(&res);

  ck_assert_int_eq(fp_pool_stats(pool, &st), 0);
  ck_assert_uint_eq(st.submitted, 10);
  ck_assert_uint_eq(st.ok, seen[FP_OK]);
  ck_assert_uint_eq(st.failed, seen[FP_FAILED]);
  ck_assert_uint_eq(st.crashed, seen[FP_CRASHED]);
  ck_assert_uint_eq(st.timeout, seen[FP_TIMEOUT]);
  ck_assert_uint_eq(st.cancelled, seen[FP_CANCELLED]);
  ck_assert_uint_eq(st.submitted,
                    st.ok + st.failed + st.crashed + st.timeout + st.cancelled);
  ck_assert_uint_eq(st.abandoned, 0);
  ck_assert_uint_eq(st.alive, 0);
  ck_assert_uint_eq(st.queued, 0);
  ck_assert_uint_eq(st.running, 0);
}
END_TEST

/* max_tasks recycles workers; no task is lost on the way. */
START_TEST(test_recycle_after_max_tasks) {
  uint64_t ids[9];
  pid_t pids[9];
  int distinct = 0;
  fp_config cfg;
  fp_pool *pool;
  fp_result res;

  tu_config(&cfg, 1, 16);
  cfg.max_tasks = 3;
  cfg.worker_init = tu_init;
  cfg.worker_fini = tu_fini;
  pool = tu_start(&cfg);
  for (int i = 0; i < 9; i++) ids[i] = tu_submit(pool, "pid");
  fp_result_init(&res);
  for (int i = 0; i < 9; i++) {
    char want[32];
    tu_wait(pool, ids[i], &res);
    pids[i] = res.worker;
    snprintf(want, sizeof want, "%d", (int)res.worker);
    tu_assert_ok(&res, want); /* the handler saw the same pid */
  }
  fp_result_release(&res);
  ck_assert_int_eq(fp_pool_stop(pool, FP_STOP_DRAIN, TU_GUARD_MS), 0);
  for (int i = 0; i < 9; i++) {
    int j = 0;
    while (j < i && pids[j] != pids[i]) j++;
    distinct += j == i;
  }
  ck_assert_int_ge(distinct, 3);
  /* Each worker got its init, and its fini when recycled or stopped. */
  ck_assert_int_ge(atomic_load(&tu_sh->inits), 3);
  ck_assert_int_eq(atomic_load(&tu_sh->finis), atomic_load(&tu_sh->inits));
}
END_TEST

/* worker_init runs exactly once in each worker, before its first task, and
 * worker_fini once when it stops cleanly. */
START_TEST(test_worker_init_once) {
  fp_config cfg;
  fp_pool *pool;
  fp_result res;

  tu_config(&cfg, 2, 16);
  cfg.worker_init = tu_init;
  cfg.worker_fini = tu_fini;
  pool = tu_start(&cfg);
  /* fp_pool_start returns once every worker is ready. */
  ck_assert_int_eq(atomic_load(&tu_sh->inits), 2);
  ck_assert_int_eq(atomic_load(&tu_sh->finis), 0);
  fp_result_init(&res);
  for (int i = 0; i < 40; i++) {
    int calls = 0, pid = 0;
    char text[32];
    tu_wait(pool, tu_submit(pool, "inits"), &res);
    ck_assert_int_eq(res.status, FP_OK);
    ck_assert_uint_lt(res.output_len, sizeof text);
    memcpy(text, res.output, res.output_len);
    text[res.output_len] = '\0';
    ck_assert_int_eq(sscanf(text, "%d %d", &calls, &pid), 2);
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(pid, res.worker);
  }
  fp_result_release(&res);
  ck_assert_int_eq(fp_pool_stop(pool, FP_STOP_DRAIN, TU_GUARD_MS), 0);
  ck_assert_int_eq(atomic_load(&tu_sh->inits), 2);
  ck_assert_int_eq(atomic_load(&tu_sh->finis), 2);
}
END_TEST

/* When worker_init fails everywhere the pool does not start, and leaves
 * nothing behind (the fixture checks processes and /dev/shm). */
START_TEST(test_worker_init_fails) {
  int sentinel;
  fp_pool *pool = (fp_pool *)&sentinel;
  fp_config cfg;

  tu_config(&cfg, 2, 4);
  cfg.worker_init = tu_init;
  cfg.worker_fini = tu_fini;
  atomic_store(&tu_sh->init_fail, 5);
  ck_assert_int_eq(fp_pool_start(&pool, &cfg), -ECHILD);
  ck_assert_ptr_eq(pool, (fp_pool *)&sentinel);
  ck_assert_int_ge(atomic_load(&tu_sh->inits), 1);
  ck_assert_int_eq(atomic_load(&tu_sh->finis), 0);
}
END_TEST

Suite *make_pool_suite(void) {
  Suite *s = suite_create("pool");
  TCase *tasks = tcase_create("tasks");
  TCase *stop = tcase_create("stop");
  TCase *workers = tcase_create("workers");

  tcase_add_checked_fixture(tasks, tu_setup, tu_teardown);
  tcase_set_timeout(tasks, TU_TCASE_TIMEOUT);
  tcase_add_test(tasks, test_many_tasks);
  tcase_add_test(tasks, test_wait_by_id);
  tcase_add_test(tasks, test_enoent);
  tcase_add_test(tasks, test_emsgsize);
  tcase_add_test(tasks, test_output_sizes);
  tcase_add_test(tasks, test_wait_timeout);
  tcase_add_test(tasks, test_queue_full);
  tcase_add_test(tasks, test_submit_own_results_fill_queue_edeadlk);
  tcase_add_test(tasks, test_submit_full_queue_with_collecting_thread);
  suite_add_tcase(s, tasks);

  tcase_add_checked_fixture(stop, tu_setup, tu_teardown);
  tcase_set_timeout(stop, TU_TCASE_TIMEOUT);
  tcase_add_test(stop, test_two_pools_in_a_row);
  tcase_add_test(stop, test_two_pools_at_once);
  tcase_add_test(stop, test_stop_idempotent);
  tcase_add_test(stop, test_stop_releases_blocked_submitter);
  tcase_add_test(stop, test_drain_finishes_queued);
  tcase_add_test(stop, test_drain_grace_expires);
  tcase_add_test(stop, test_stop_now_cancels);
  tcase_add_test(stop, test_stats_add_up);
  suite_add_tcase(s, stop);

  tcase_add_checked_fixture(workers, tu_setup, tu_teardown);
  tcase_set_timeout(workers, TU_TCASE_TIMEOUT);
  tcase_add_test(workers, test_recycle_after_max_tasks);
  tcase_add_test(workers, test_worker_init_once);
  tcase_add_test(workers, test_worker_init_fails);
  suite_add_tcase(s, workers);
  return s;
}
