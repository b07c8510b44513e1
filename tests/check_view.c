/*
 * Zero-copy producers: fp_submit_begin / fp_submit_commit / fp_submit_abort
 * and result views (fp_collect_view, fp_wait_view, fp_view_release):
 * 1 MiB round trips bit-exact, views of crashed tasks, aborts, double
 * releases, limits, views and begun slots counting against the slots,
 * and a producer that dies holding begun slots and a view in a named pool.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

#define MIB (1u << 20)

/*
 * Echo handler for big tasks. Input "segv" crashes, "fail" fails with 7,
 * "slp" sleeps 300 ms (outputs nothing); anything else is copied to the
 * output, each byte plus 1 (so an echo that never ran cannot pass for
 * one).
 */
static int big_handler(void *arg, const void *in, size_t in_len, void *out,
                       size_t out_cap, size_t *out_len) {
  (void)arg;
  if (in_len == 4 && memcmp(in, "segv", 4) == 0) {
    volatile int *nil = NULL;
    *nil = 1;
  }
  if (in_len == 4 && memcmp(in, "fail", 4) == 0) return 7;
  if (in_len == 3 && memcmp(in, "slp", 3) == 0) {
    tu_sleep_ms(300);
    *out_len = 0;
    return 0;
  }
  if (in_len > out_cap) return ENOBUFS;
  const unsigned char *a = in;
  unsigned char *b = out;
  for (size_t k = 0; k < in_len; k++) b[k] = (unsigned char)(a[k] + 1);
  *out_len = in_len;
  return 0;
}

static void big_config(fp_config *cfg, unsigned workers, unsigned slots,
                       size_t io) {
  fp_config_init(cfg);
  cfg->workers = workers;
  cfg->slots = slots;
  cfg->max_input = io;
  cfg->max_output = io;
  cfg->handler = big_handler;
}

/* Deterministic bytes for task k: a xorshift stream. */
static void pattern(unsigned char *b, size_t n, uint64_t k) {
  uint64_t x = 0x9e3779b97f4a7c15ull * (k + 1);
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = (unsigned char)x;
  }
}

/* Asserts that out is in, each byte plus 1 (big_handler's echo). */
static void assert_echo(const unsigned char *in, const unsigned char *out,
                        size_t n) {
  for (size_t i = 0; i < n; i++)
    if (out[i] != (unsigned char)(in[i] + 1))
      ck_abort_msg("byte %zu: got 0x%02x, want 0x%02x", i, out[i],
                   (unsigned char)(in[i] + 1));
}

/* Begin, write pattern k of n bytes in place, commit; returns the id. */
static uint64_t put(fp_pool *p, size_t n, uint64_t k) {
  void *buf = NULL;
  int r = fp_submit_begin(p, n, TU_GUARD_MS, FP_PRIO_NORMAL, &buf);
  ck_assert_msg(r == 0, "fp_submit_begin: %s", fp_strerror(r));
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq((uintptr_t)buf % 64, 0);
  pattern(buf, n, k);
  uint64_t id = 0;
  r = fp_submit_commit(p, buf, n, TU_GUARD_MS, &id);
  ck_assert_msg(r == 0, "fp_submit_commit: %s", fp_strerror(r));
  ck_assert_uint_ne(id, 0);
  return id;
}

/* 1 MiB in, 1 MiB out, in place both ways, bit-exact, slots reused. */
START_TEST(test_round_trip_1mib) {
  fp_config cfg;
  big_config(&cfg, 2, 3, MIB);
  fp_pool *p = tu_start(&cfg);
  unsigned char *want = malloc(MIB);
  ck_assert_ptr_nonnull(want);
  fp_result res;
  fp_result_init(&res);
  /* Three rounds over the slots: fresh slots, then collected ones reused. */
  for (uint64_t k = 0; k < 9; k++) {
    uint64_t id = put(p, MIB, k);
    ck_assert_uint_eq(fp_pending(p), 1);
    int r = fp_wait_view(p, id, &res, TU_GUARD_MS);
    ck_assert_msg(r == 0, "fp_wait_view: %s", fp_strerror(r));
    ck_assert_uint_eq(fp_pending(p), 0);
    ck_assert_uint_eq(res.id, id);
    ck_assert_int_eq(res.status, FP_OK);
    ck_assert_uint_eq(res.output_len, MIB);
    pattern(want, MIB, k);
    assert_echo(want, res.output, MIB);
    ck_assert_int_eq(fp_view_check(p, &res), 0);
    ck_assert_int_eq(fp_view_release(p, &res), 0);
    ck_assert_ptr_null(res.output);
  }
  /* Several in flight, collected in any order, mixed with the copy API. */
  uint64_t ids[3];
  for (uint64_t k = 0; k < 3; k++) ids[k] = put(p, MIB - k, 100 + k);
  for (int n = 0; n < 3; n++) {
    int r = fp_collect_view(p, &res, TU_GUARD_MS);
    ck_assert_msg(r == 0, "fp_collect_view: %s", fp_strerror(r));
    uint64_t k = res.id == ids[0] ? 0 : res.id == ids[1] ? 1 : 2;
    ck_assert_uint_eq(res.id, ids[k]);
    ck_assert_uint_eq(res.output_len, MIB - k);
    pattern(want, MIB - k, 100 + k);
    assert_echo(want, res.output, MIB - k);
    /* The next collect releases this view first (n < 2). */
  }
  ck_assert_int_eq(fp_collect_view(p, &res, FP_NOWAIT), -ENOENT);
  ck_assert_int_eq(fp_view_release(p, &res), 0);
  /* fp_submit's copy, viewed; a begun task, copied by fp_wait. */
  pattern(want, MIB, 7);
  uint64_t id;
  ck_assert_int_eq(fp_submit(p, want, MIB, TU_GUARD_MS, &id), 0);
  ck_assert_int_eq(fp_wait_view(p, id, &res, TU_GUARD_MS), 0);
  assert_echo(want, res.output, MIB);
  id = put(p, MIB, 7);
  /* fp_wait into a result holding a view: the view is released first. */
  ck_assert_int_eq(fp_wait(p, id, &res, TU_GUARD_MS), 0);
  ck_assert_int_eq(fp_view_check(p, &res), -EINVAL); /* a copy */
  ck_assert_uint_eq(res.output_len, MIB);
  assert_echo(want, res.output, MIB);
  /* And a view into a result holding a copy: the copy is freed. */
  id = put(p, 5, 8);
  ck_assert_int_eq(fp_wait_view(p, id, &res, TU_GUARD_MS), 0);
  ck_assert_int_eq(fp_view_check(p, &res), 0); /* a view */
  ck_assert_int_eq(fp_view_release(p, &res), 0);
  /* Every slot came back: all three can be begun at once. */
  void *b[3];
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(fp_submit_begin(p, 1, FP_NOWAIT, FP_PRIO_HIGH, &b[k]), 0);
  for (int k = 0; k < 3; k++) ck_assert_int_eq(fp_submit_abort(p, b[k]), 0);
  fp_stats st;
  ck_assert_int_eq(fp_pool_stats(p, &st), 0);
  ck_assert_uint_eq(st.ok, st.submitted);
  ck_assert_uint_eq(st.corrupt, 0);
  free(want);
}
END_TEST

/* A crashed task's result is viewed like any other: its crash report. */
START_TEST(test_view_of_crashed_and_failed_tasks) {
  fp_config cfg;
  big_config(&cfg, 1, 2, 64 * 1024);
  fp_pool *p = tu_start(&cfg);
  void *buf;
  uint64_t id;
  ck_assert_int_eq(fp_submit_begin(p, 4, TU_GUARD_MS, 0, &buf), 0);
  memcpy(buf, "segv", 4);
  ck_assert_int_eq(fp_submit_commit(p, buf, 4, TU_GUARD_MS, &id), 0);
  fp_result res;
  fp_result_init(&res);
  ck_assert_int_eq(fp_wait_view(p, id, &res, TU_GUARD_MS), 0);
  ck_assert_int_eq(res.status, FP_CRASHED);
  ck_assert_int_eq(res.signal, SIGSEGV);
  ck_assert_uint_ge(res.output_len, 7);
  ck_assert_msg(memcmp(res.output, "SIGSEGV", 7) == 0, "report: %.*s",
                (int)res.output_len, (const char *)res.output);
  ck_assert_int_eq(fp_view_check(p, &res), 0);
  /* fp_result_release gives a view's slot back too. */
  fp_result_release(&res);
  ck_assert_ptr_null(res.output);
  ck_assert_int_eq(fp_submit_begin(p, 4, TU_GUARD_MS, 0, &buf), 0);
  memcpy(buf, "fail", 4);
  ck_assert_int_eq(fp_submit_commit(p, buf, 4, TU_GUARD_MS, &id), 0);
  ck_assert_int_eq(fp_collect_view(p, &res, TU_GUARD_MS), 0);
  ck_assert_int_eq(res.status, FP_FAILED);
  ck_assert_int_eq(res.code, 7);
  ck_assert_uint_eq(res.output_len, 0);
  ck_assert_ptr_nonnull(res.output); /* a view of nothing is still a view */
  ck_assert_int_eq(fp_view_release(p, &res), 0);
  /* The pool is whole: two begun at once. */
  void *b1, *b2;
  ck_assert_int_eq(fp_submit_begin(p, 1, FP_NOWAIT, 0, &b1), 0);
  ck_assert_int_eq(fp_submit_begin(p, 1, FP_NOWAIT, 0, &b2), 0);
  ck_assert_ptr_ne(b1, b2);
  ck_assert_int_eq(fp_submit_abort(p, b1), 0);
  ck_assert_int_eq(fp_submit_abort(p, b2), 0);
}
END_TEST

/* Abort gives the slot back; a second abort or a late commit is refused. */
START_TEST(test_abort_and_misuse) {
  fp_config cfg;
  big_config(&cfg, 1, 2, 4096);
  fp_pool *p = tu_start(&cfg);
  void *b1, *b2, *b3;
  uint64_t id;
  ck_assert_int_eq(fp_submit_begin(p, 10, FP_NOWAIT, 0, &b1), 0);
  ck_assert_int_eq(fp_submit_begin(p, 10, FP_NOWAIT, 0, &b2), 0);
  /* Both slots begun: none left, and only our own holds stand in the way. */
  ck_assert_int_eq(fp_submit_begin(p, 10, FP_NOWAIT, 0, &b3), -EAGAIN);
  ck_assert_int_eq(fp_submit(p, "x", 1, FP_NOWAIT, &id), -EAGAIN);
  ck_assert_int_eq(fp_submit_begin(p, 10, 2000, 0, &b3), -EDEADLK);
  ck_assert_uint_eq(fp_pending(p), 0);
  ck_assert_int_eq(fp_submit_abort(p, b1), 0);
  ck_assert_int_eq(fp_submit_abort(p, b1), -ENOENT);
  ck_assert_int_eq(fp_submit_commit(p, b1, 1, FP_NOWAIT, &id), -ENOENT);
  /* Not a slot's input: refused, nothing changed. */
  char local[8];
  ck_assert_int_eq(fp_submit_commit(p, local, 1, FP_NOWAIT, &id), -ENOENT);
  ck_assert_int_eq(fp_submit_abort(p, (char *)b2 + 1), -ENOENT);
  ck_assert_int_eq(fp_submit_abort(p, NULL), -ENOENT);
  ck_assert_int_eq(fp_submit_begin(p, 10, 0, 5, &b3), -EINVAL);
  ck_assert_int_eq(fp_submit_begin(p, 10, 0, 0, NULL), -EINVAL);
  /* The aborted slot is ours again at once. */
  ck_assert_int_eq(fp_submit_begin(p, 10, FP_NOWAIT, 0, &b3), 0);
  memcpy(b2, "two", 3);
  memcpy(b3, "three", 5);
  uint64_t i2, i3;
  ck_assert_int_eq(fp_submit_commit(p, b3, 5, TU_GUARD_MS, &i3), 0);
  ck_assert_int_eq(fp_submit_commit(p, b2, 3, TU_GUARD_MS, &i2), 0);
  ck_assert_int_eq(fp_submit_commit(p, b2, 3, TU_GUARD_MS, &id), -ENOENT);
  ck_assert_int_eq(fp_submit_abort(p, b3), -ENOENT);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, i2, &res);
  tu_assert_ok(&res, "uxp");
  tu_wait(p, i3, &res);
  tu_assert_ok(&res, "uisff");
  fp_result_release(&res);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.submitted, 2); /* aborted ones never were tasks */
}
END_TEST

/* len above max_input: refused at begin (nothing held) and at commit. */
START_TEST(test_begin_too_large) {
  fp_config cfg;
  big_config(&cfg, 1, 1, 4096);
  fp_pool *p = tu_start(&cfg);
  void *buf = NULL;
  uint64_t id;
  ck_assert_int_eq(fp_submit_begin(p, 4097, FP_NOWAIT, 0, &buf), -EMSGSIZE);
  ck_assert_ptr_null(buf);
  /* The only slot is still free. */
  ck_assert_int_eq(fp_submit_begin(p, 4096, FP_NOWAIT, 0, &buf), 0);
  memset(buf, 'a', 4096);
  ck_assert_int_eq(fp_submit_commit(p, buf, 4097, FP_NOWAIT, &id), -EMSGSIZE);
  /* Still begun: a right length goes through. */
  ck_assert_int_eq(fp_submit_commit(p, buf, 4096, TU_GUARD_MS, &id), 0);
  fp_result res;
  fp_result_init(&res);
  ck_assert_int_eq(fp_wait_view(p, id, &res, TU_GUARD_MS), 0);
  ck_assert_int_eq(res.status, FP_OK);
  ck_assert_uint_eq(res.output_len, 4096);
  ck_assert_int_eq(res.output[0], 'b');
  ck_assert_int_eq(res.output[4095], 'b');
  ck_assert_int_eq(fp_view_release(p, &res), 0);
}
END_TEST

/*
 * Releasing twice is harmless; a stale copy of a released view touches no
 * slot; a copied result is not released as a view; views hold slots.
 */
START_TEST(test_double_release_and_holding) {
  fp_config cfg;
  big_config(&cfg, 1, 2, 4096);
  fp_pool *p = tu_start(&cfg);
  uint64_t a = put(p, 100, 1), b = put(p, 100, 2);
  fp_result ra, rb, copy;
  fp_result_init(&ra);
  fp_result_init(&rb);
  ck_assert_int_eq(fp_wait_view(p, a, &ra, TU_GUARD_MS), 0);
  ck_assert_int_eq(fp_wait_view(p, b, &rb, TU_GUARD_MS), 0);
  ck_assert_uint_eq(fp_pending(p), 0);
  /* Two views hold both slots: no submission can get one. */
  uint64_t id;
  void *buf;
  ck_assert_int_eq(fp_submit(p, "x", 1, FP_NOWAIT, &id), -EAGAIN);
  ck_assert_int_eq(fp_submit_begin(p, 1, 2000, 0, &buf), -EDEADLK);
  copy = ra;
  ck_assert_int_eq(fp_view_release(p, &ra), 0);
  ck_assert_ptr_null(ra.output);
  ck_assert_int_eq(fp_view_release(p, &ra), 0); /* twice: nothing happens */
  /* One slot free: a new task may take it, and land in a's old slot. */
  uint64_t c = put(p, 100, 3);
  ck_assert_uint_eq(c & 0xffffff, a & 0xffffff);
  /* The stale copy names a's slot, now c's: refused, nothing touched. */
  ck_assert_int_eq(fp_view_release(p, &copy), -ENOENT);
  ck_assert_ptr_null(copy.output);
  ck_assert_int_eq(fp_view_check(p, &rb), 0);
  fp_result rc;
  fp_result_init(&rc);
  ck_assert_int_eq(fp_wait(p, c, &rc, TU_GUARD_MS), 0); /* a copy */
  unsigned char want[100];
  pattern(want, 100, 3);
  assert_echo(want, rc.output, 100);
  ck_assert_int_eq(fp_view_release(p, &rc), -EINVAL);
  ck_assert_ptr_nonnull(rc.output); /* untouched: still the copy */
  fp_result_release(&rc);
  pattern(want, 100, 2);
  assert_echo(want, rb.output, 100);
  fp_result_release(&rb); /* a view: the slot goes back */
  fp_result_release(&rb);
  /* Both slots usable again. */
  void *b1, *b2;
  ck_assert_int_eq(fp_submit_begin(p, 1, FP_NOWAIT, 0, &b1), 0);
  ck_assert_int_eq(fp_submit_begin(p, 1, FP_NOWAIT, 0, &b2), 0);
  ck_assert_int_eq(fp_submit_abort(p, b1), 0);
  ck_assert_int_eq(fp_submit_abort(p, b2), 0);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.ok, 3);
  ck_assert_uint_eq(st.corrupt, 0);
}
END_TEST

/* A view of one pool passed to another pool's call is refused. */
START_TEST(test_view_of_another_pool) {
  fp_config cfg;
  big_config(&cfg, 1, 2, 4096);
  fp_pool *p = tu_start(&cfg);
  fp_pool *q = NULL;
  ck_assert_int_eq(fp_pool_start(&q, &cfg), 0);
  uint64_t a = put(p, 10, 1), b = put(q, 10, 2);
  fp_result res;
  fp_result_init(&res);
  ck_assert_int_eq(fp_wait_view(p, a, &res, TU_GUARD_MS), 0);
  ck_assert_int_eq(fp_view_release(q, &res), -EINVAL);
  ck_assert_int_eq(fp_wait_view(q, b, &res, TU_GUARD_MS), -EINVAL);
  ck_assert_int_eq(fp_wait(q, b, &res, TU_GUARD_MS), -EINVAL);
  ck_assert_int_eq(fp_view_check(p, &res), 0);
  ck_assert_int_eq(fp_view_release(p, &res), 0);
  ck_assert_int_eq(fp_wait_view(q, b, &res, TU_GUARD_MS), 0);
  fp_result_release(&res); /* finds q by the view's address */
  fp_pool_free(q);
}
END_TEST

/*
 * A view is not a collected slot: while this producer waits for space
 * (the supervisor then returns collected slots to the free stack), the
 * viewed slot stays ours and its bytes stay as they were.
 */
START_TEST(test_view_survives_waiting_for_space) {
  fp_config cfg;
  big_config(&cfg, 1, 3, 4096);
  fp_pool *p = tu_start(&cfg);
  uint64_t a = put(p, 4096, 11);
  fp_result res;
  fp_result_init(&res);
  ck_assert_int_eq(fp_wait_view(p, a, &res, TU_GUARD_MS), 0);
  uint64_t s1, s2, id;
  ck_assert_int_eq(fp_submit(p, "slp", 3, TU_GUARD_MS, &s1), 0);
  ck_assert_int_eq(fp_submit(p, "slp", 3, TU_GUARD_MS, &s2), 0);
  /* Asleep for a slot while the two run: only ours are left, in the end. */
  ck_assert_int_eq(fp_submit(p, "overwrite", 9, 3000, &id), -EDEADLK);
  unsigned char want[4096];
  pattern(want, sizeof(want), 11);
  assert_echo(want, res.output, sizeof(want));
  ck_assert_int_eq(fp_view_check(p, &res), 0);
  ck_assert_int_eq(fp_view_release(p, &res), 0);
  /* Released: a slot for the next task. */
  ck_assert_int_eq(fp_submit(p, "later", 5, TU_GUARD_MS, &id), 0);
  fp_result r2;
  fp_result_init(&r2);
  tu_wait(p, id, &r2);
  tu_assert_ok(&r2, "mbufs");
  fp_result_release(&r2);
}
END_TEST

/* ---- Named pools: a producer dies holding begun slots and a view ---- */

static char name[32];
static char path[64];
static pid_t server;

static void view_named_setup(void) {
  tu_setup();
  snprintf(name, sizeof(name), "fpv%d", (int)getpid());
  snprintf(path, sizeof(path), "/forkpool.%s", name);
  server = 0;
}

static void view_named_teardown(void) {
  if (server > 0) {
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
    server = 0;
  }
  shm_unlink(path);
  tu_teardown();
}

static void serve_big(unsigned workers, unsigned slots) {
  server = fork();
  ck_assert_int_ge(server, 0);
  if (server == 0) {
    fp_config cfg;
    big_config(&cfg, workers, slots, 64 * 1024);
    fp_serve_config sc;
    fp_serve_config_init(&sc);
    sc.name = name;
    sc.grace_ms = 1000;
    _exit(fp_serve(&cfg, &sc) == 0 ? 0 : 1);
  }
  for (int k = 0; k < TU_GUARD_MS / 10; k++) {
    fp_pool *m;
    if (fp_pool_open(&m, name, FP_OPEN_MONITOR) == 0) {
      fp_stats st;
      fp_pool_stats(m, &st);
      int running = st.state == FP_POOL_RUNNING;
      fp_pool_free(m);
      if (running) return;
    }
    tu_sleep_ms(10);
  }
  ck_abort_msg("pool %s never became ready", name);
}

START_TEST(test_producer_dies_between_begin_and_commit) {
  const unsigned slots = 4, share = slots - slots / 4; /* a lone producer's */
  serve_big(1, slots);
  int ready[2];
  ck_assert_int_eq(pipe(ready), 0);
  pid_t prod = fork();
  ck_assert_int_ge(prod, 0);
  if (prod == 0) {
    close(ready[0]);
    fp_pool *q;
    if (fp_pool_open(&q, name, 0) != 0) _exit(10);
    /* One task done and viewed (never released), the rest begun. */
    void *buf;
    uint64_t id;
    fp_result res;
    fp_result_init(&res);
    if (fp_submit_begin(q, 5, FP_FOREVER, 0, &buf) != 0) _exit(11);
    memcpy(buf, "viewd", 5);
    if (fp_submit_commit(q, buf, 5, FP_FOREVER, &id) != 0) _exit(12);
    if (fp_wait_view(q, id, &res, FP_FOREVER) != 0) _exit(13);
    for (unsigned k = 1; k < share; k++) {
      if (fp_submit_begin(q, 64, FP_FOREVER, 0, &buf) != 0) _exit(14);
      memset(buf, 'h', 64); /* half written when it dies */
    }
    /* Its share is used up: one more cannot be had. */
    if (fp_submit_begin(q, 1, FP_NOWAIT, 0, &buf) != -EAGAIN) _exit(15);
    if (write(ready[1], "r", 1) != 1) _exit(16);
    pause(); /* killed here */
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  ck_assert_int_eq(read(ready[0], &c, 1), 1);
  close(ready[0]);
  kill(prod, SIGKILL);
  int status = 0;
  waitpid(prod, &status, 0);
  ck_assert(WIFSIGNALED(status));
  fp_pool *p = NULL;
  ck_assert_int_eq(fp_pool_open(&p, name, 0), 0);
  tu_sleep_ms(300); /* the supervisor counts one producer again */
  /* Every slot of the share comes back: begun ones freed, the view too. */
  void *bufs[4];
  for (unsigned k = 0; k < share; k++) {
    int r = fp_submit_begin(p, 16, TU_GUARD_MS, 0, &bufs[k]);
    ck_assert_msg(r == 0, "slot %u never came back: %s", k, fp_strerror(r));
  }
  uint64_t ids[4];
  for (unsigned k = 0; k < share; k++) {
    memset(bufs[k], 'a' + (int)k, 16);
    ck_assert_int_eq(fp_submit_commit(p, bufs[k], 16, TU_GUARD_MS, &ids[k]), 0);
  }
  fp_result res;
  fp_result_init(&res);
  for (unsigned k = 0; k < share; k++) {
    ck_assert_int_eq(fp_wait_view(p, ids[k], &res, TU_GUARD_MS), 0);
    ck_assert_int_eq(res.status, FP_OK);
    ck_assert_uint_eq(res.output_len, 16);
    for (int j = 0; j < 16; j++) ck_assert_int_eq(res.output[j], 'b' + (int)k);
  }
  ck_assert_int_eq(fp_view_release(p, &res), 0);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.abandoned, 1); /* the view nobody released */
  ck_assert_uint_eq(st.submitted, 1 + share);
  ck_assert_uint_eq(st.corrupt, 0);
  fp_pool_free(p);
}
END_TEST

Suite *make_view_suite(void) {
  Suite *s = suite_create("view");
  TCase *tc = tcase_create("private");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_round_trip_1mib);
  tcase_add_test(tc, test_view_of_crashed_and_failed_tasks);
  tcase_add_test(tc, test_abort_and_misuse);
  tcase_add_test(tc, test_begin_too_large);
  tcase_add_test(tc, test_double_release_and_holding);
  tcase_add_test(tc, test_view_of_another_pool);
  tcase_add_test(tc, test_view_survives_waiting_for_space);
  suite_add_tcase(s, tc);

  tc = tcase_create("named");
  tcase_add_checked_fixture(tc, view_named_setup, view_named_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_producer_dies_between_begin_and_commit);
  suite_add_tcase(s, tc);
  return s;
}
