/*
 * Scheduling: priorities, fairness between producers, cancellation.
 * Order is observed with the "order" command (its start position) on one
 * worker held by a "block" task while the queue is arranged.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "suites.h"
#include "testutil.h"

static int order_of(fp_pool *p, uint64_t id) {
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, id, &res);
  ck_assert_int_eq(res.status, FP_OK);
  int k = atoi((const char *)res.output);
  fp_result_release(&res);
  return k;
}

static uint64_t submit_prio(fp_pool *p, const char *cmd, int prio) {
  uint64_t id;
  int r = fp_submit_prio(p, cmd, strlen(cmd), TU_GUARD_MS, prio, &id);
  ck_assert_msg(r == 0, "submit: %s", fp_strerror(r));
  return id;
}

START_TEST(test_high_priority_starts_first) {
  fp_config cfg;
  tu_config(&cfg, 1, 64);
  fp_pool *p = tu_start(&cfg);
  uint64_t blk = tu_submit(p, "block");
  tu_wait_started(1);
  uint64_t normal[20], high[5];
  for (int k = 0; k < 20; k++) normal[k] = submit_prio(p, "order", 0);
  for (int k = 0; k < 5; k++) high[k] = submit_prio(p, "order", 1);
  atomic_store(&tu_sh->gate, 1);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, blk, &res);
  /* 4 high, 1 normal, 1 high: positions 2..7 (the block was 1). */
  int worst = 0;
  for (int k = 0; k < 5; k++) {
    int o = order_of(p, high[k]);
    if (o > worst) worst = o;
  }
  printf("priority: 5 high tasks submitted after 20 normal ones started by "
         "position %d of 26\n",
         worst);
  ck_assert_int_le(worst, 7);
  for (int k = 0; k < 20; k++) order_of(p, normal[k]);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_normal_not_starved_by_high_flood) {
  fp_config cfg;
  tu_config(&cfg, 1, 128);
  fp_pool *p = tu_start(&cfg);
  uint64_t blk = tu_submit(p, "block");
  tu_wait_started(1);
  uint64_t high[60], normal[3];
  for (int k = 0; k < 60; k++) high[k] = submit_prio(p, "order", 1);
  for (int k = 0; k < 3; k++) normal[k] = submit_prio(p, "order", 0);
  atomic_store(&tu_sh->gate, 1);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, blk, &res);
  int worst = 0;
  for (int k = 0; k < 3; k++) {
    int o = order_of(p, normal[k]);
    if (o > worst) worst = o;
  }
  printf("starvation: 3 normal tasks behind 60 high ones started by "
         "position %d of 64\n",
         worst);
  ck_assert_int_le(worst, 1 + 3 * 5); /* one normal per 4 high */
  for (int k = 0; k < 60; k++) order_of(p, high[k]);
  fp_result_release(&res);
}
END_TEST

/* Two producers of a named pool: the small one is served in turn. */
START_TEST(test_fair_between_producers) {
  char name[32];
  snprintf(name, sizeof(name), "fpt%d", (int)getpid());
  pid_t server = fork();
  ck_assert_int_ge(server, 0);
  if (server == 0) {
    fp_config cfg;
    tu_config(&cfg, 1, 512);
    fp_serve_config sc;
    fp_serve_config_init(&sc);
    sc.name = name;
    _exit(fp_serve(&cfg, &sc) == 0 ? 0 : 1);
  }
  fp_pool *big = NULL, *small = NULL;
  for (int k = 0; k < 1000 && fp_pool_open(&big, name, 0) != 0; k++)
    tu_sleep_ms(10);
  ck_assert_ptr_nonnull(big);
  ck_assert_int_eq(fp_pool_open(&small, name, 0), 0);
  uint64_t blk = tu_submit(big, "block");
  tu_wait_started(1);
  /* BIG within the big one's share of the slots: 512 * 3/4 / 2 = 192. */
  enum { BIG = 180, SMALL = 4 };
  uint64_t b[BIG], sm[SMALL];
  for (int k = 0; k < BIG; k++) b[k] = tu_submit(big, "order");
  for (int k = 0; k < SMALL; k++) sm[k] = tu_submit(small, "order");
  atomic_store(&tu_sh->gate, 1);
  fp_result res;
  fp_result_init(&res);
  tu_wait(big, blk, &res);
  /* In turn: big, small, big, small... the small ones go by 1 + 2*4. */
  int worst = 0;
  for (int k = 0; k < SMALL; k++) {
    int o = order_of(small, sm[k]);
    if (o > worst) worst = o;
  }
  printf("fairness: %d tasks of a small producer behind %d of a big one "
         "started by position %d (one queue-turn = 2 producers)\n",
         SMALL, BIG, worst);
  ck_assert_int_le(worst, 1 + 2 * SMALL);
  for (int k = 0; k < BIG; k++) order_of(big, b[k]);
  fp_result_release(&res);
  fp_pool_free(big);
  fp_pool_free(small);
  kill(server, SIGTERM);
  int ws;
  ck_assert_int_eq(waitpid(server, &ws, 0), server);
  ck_assert_int_eq(WEXITSTATUS(ws), 0);
}
END_TEST

START_TEST(test_cancel_queued_and_running) {
  fp_config cfg;
  tu_config(&cfg, 1, 8);
  fp_pool *p = tu_start(&cfg);
  uint64_t run = tu_submit(p, "hang");
  tu_wait_started(1);
  uint64_t queued = tu_submit(p, "order");
  ck_assert_int_eq(fp_cancel(p, queued), 0);
  ck_assert_int_eq(fp_cancel(p, queued), -EALREADY);
  ck_assert_int_eq(fp_cancel(p, run), -EINPROGRESS);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, queued, &res);
  ck_assert_int_eq(res.status, FP_CANCELLED);
  ck_assert_uint_eq(res.attempts, 0); /* never ran */
  tu_wait(p, run, &res);
  ck_assert_int_eq(res.status, FP_CANCELLED);
  ck_assert_int_eq(atomic_load(&tu_sh->started), 1);
  /* The pool lives on, in a new worker. */
  tu_wait(p, tu_submit(p, "after"), &res);
  tu_assert_ok(&res, "after");
  ck_assert_int_eq(fp_cancel(p, 12345), -ENOENT);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.cancelled, 2);
  fp_result_release(&res);
}
END_TEST

/* A task tree far larger than the queue, with crashing leaves. */
START_TEST(test_recursive_tree_with_crashes) {
  fp_config cfg;
  tu_config(&cfg, 2, 8);
  fp_pool *p = tu_start(&cfg);
  uint64_t root = tu_submit(p, "tree 8");
  fp_result res;
  fp_result_init(&res);
  int ok = 0, crashed = 0, other = 0, roots = 0, r;
  while ((r = fp_collect_tree(p, root, &res, TU_GUARD_MS)) == 0) {
    ck_assert_uint_eq(res.root, root);
    if (res.id == root) {
      roots++;
      ck_assert_uint_eq(res.parent, 0);
    } else {
      ck_assert_uint_ne(res.parent, 0);
    }
    if (res.status == FP_OK) ok++;
    else if (res.status == FP_CRASHED) crashed++;
    else other++;
  }
  ck_assert_int_eq(r, -ENOENT);
  printf("recursion: tree of depth 8 through 8 slots: %d ok, %d crashed\n", ok,
         crashed);
  ck_assert_int_eq(roots, 1);
  ck_assert_int_eq(ok, 511);      /* 2^9 - 1 nodes and leaves */
  ck_assert_int_eq(crashed, 128); /* one "segv" per depth-1 node */
  ck_assert_int_eq(other, 0);
  ck_assert_int_eq(fp_collect_tree(p, root, &res, 0), -ENOENT);
  ck_assert_uint_eq(fp_pending(p), 0);
  /* Outside a handler there is nothing to spawn from. */
  ck_assert_int_eq(fp_spawn("x", 1), -EPERM);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_spawns_must_fit_in_max_output) {
  fp_config cfg;
  tu_config(&cfg, 1, 8);
  cfg.max_output = 64;
  fp_pool *p = tu_start(&cfg);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "spawnmany 100"), &res); /* 500 bytes > 64 */
  ck_assert_int_eq(res.status, FP_FAILED);
  ck_assert_int_eq(res.code, ENOSPC);
  ck_assert_uint_eq(fp_pending(p), 0); /* nothing spawned */
  uint64_t id = tu_submit(p, "spawnmany 3");
  int n = 0;
  while (fp_collect_tree(p, id, &res, TU_GUARD_MS) == 0) n++;
  ck_assert_int_eq(n, 4);
  fp_result_release(&res);
}
END_TEST

/* min/max workers: grows under load, shrinks when idle, loses nothing. */
START_TEST(test_min_max_workers) {
  fp_config cfg;
  tu_config(&cfg, 1, 64);
  cfg.min_workers = 1;
  cfg.max_workers = 4;
  cfg.idle_ms = 200;
  fp_pool *p = tu_start(&cfg);
  uint64_t ids[40];
  for (int k = 0; k < 40; k++) ids[k] = tu_submit(p, "sleep 30");
  unsigned most = 0;
  fp_stats st;
  fp_result res;
  fp_result_init(&res);
  for (int k = 0; k < 40; k++) {
    fp_pool_stats(p, &st);
    if (st.alive > most) most = st.alive;
    tu_wait(p, ids[k], &res);
    tu_assert_ok(&res, "slept 30");
  }
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.min_workers, 1);
  ck_assert_uint_eq(st.max_workers, 4);
  ck_assert_uint_gt(st.last_resize_us, 0);
  printf("resize: grew to %u workers under load\n", most);
  ck_assert_uint_ge(most, 3);
  ck_assert_uint_le(most, 4);
  /* Idle: back to the minimum, one step per idle period. */
  for (int k = 0; k < 500 && (st.workers > 1 || st.alive > 1); k++) {
    tu_sleep_ms(10);
    fp_pool_stats(p, &st);
  }
  ck_assert_uint_eq(st.workers, 1);
  ck_assert_uint_eq(st.alive, 1);
  ck_assert_uint_eq(st.ok, 40);
  ck_assert_uint_eq(st.failed + st.crashed + st.cancelled, 0);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_min_max_config_checked) {
  fp_config cfg;
  tu_config(&cfg, 2, 8);
  cfg.max_workers = 1; /* below workers */
  ck_assert_int_eq(fp_config_validate(&cfg), -EINVAL);
  cfg.max_workers = 0;
  cfg.min_workers = 1; /* min without max */
  ck_assert_int_eq(fp_config_validate(&cfg), -EINVAL);
  cfg.min_workers = 3; /* above workers */
  cfg.max_workers = 4;
  ck_assert_int_eq(fp_config_validate(&cfg), -EINVAL);
  cfg.min_workers = 1;
  ck_assert_int_eq(fp_config_validate(&cfg), 0);
}
END_TEST

Suite *make_sched_suite(void) {
  Suite *s = suite_create("sched");
  TCase *tc = tcase_create("order");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_high_priority_starts_first);
  tcase_add_test(tc, test_normal_not_starved_by_high_flood);
  tcase_add_test(tc, test_fair_between_producers);
  tcase_add_test(tc, test_cancel_queued_and_running);
  tcase_add_test(tc, test_recursive_tree_with_crashes);
  tcase_add_test(tc, test_spawns_must_fit_in_max_output);
  tcase_add_test(tc, test_min_max_workers);
  tcase_add_test(tc, test_min_max_config_checked);
  suite_add_tcase(s, tc);
  return s;
}
