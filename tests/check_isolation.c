/*
 * Deeper isolation: retries after a crash or timeout, poison quarantine,
 * crash reports and hang reports naming the function where it happened.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

static fp_pool *start(unsigned attempts, unsigned timeout_ms) {
  fp_config cfg;
  tu_config(&cfg, 1, 8);
  cfg.max_attempts = attempts;
  cfg.timeout_ms = timeout_ms;
  return tu_start(&cfg);
}

START_TEST(test_retry_rescues_unlucky_task) {
  fp_pool *p = start(3, 0);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "crashonce"), &res);
  tu_assert_ok(&res, "survived");
  ck_assert_uint_eq(res.attempts, 2);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.retried, 1);
  ck_assert_uint_eq(st.quarantined, 0);
  ck_assert_uint_eq(st.crashed, 0);
  ck_assert_uint_eq(st.ok, 1);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_poison_is_quarantined) {
  fp_pool *p = start(3, 0);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "segv"), &res);
  ck_assert_int_eq(res.status, FP_CRASHED);
  ck_assert_int_eq(res.signal, SIGSEGV);
  ck_assert_uint_eq(res.attempts, 3);
  tu_wait(p, tu_submit(p, "after"), &res); /* the pool lives on */
  tu_assert_ok(&res, "after");
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.retried, 2);
  ck_assert_uint_eq(st.quarantined, 1);
  ck_assert_uint_eq(st.crashed, 1); /* one terminal result, not three */
  ck_assert_uint_eq(st.submitted, 2);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_no_retry_by_default) {
  fp_pool *p = start(0, 0);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "crashonce"), &res);
  ck_assert_int_eq(res.status, FP_CRASHED);
  ck_assert_uint_eq(res.attempts, 1);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.retried, 0);
  ck_assert_uint_eq(st.quarantined, 0);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_timeouts_retry_too) {
  fp_pool *p = start(2, 200);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "hang"), &res);
  ck_assert_int_eq(res.status, FP_TIMEOUT);
  ck_assert_uint_eq(res.attempts, 2);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_crash_report_names_the_function) {
  fp_pool *p = start(1, 0);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "segv"), &res);
  ck_assert_int_eq(res.status, FP_CRASHED);
  const char *out = (const char *)res.output;
  ck_assert_msg(strncmp(out, "SIGSEGV at address 0x0\n#0 ", 26) == 0,
                "report: %s", out);
  /* The faulting frame is the handler itself (gcc may split it into
   * tu_handler.part.0), not the signal machinery. */
  ck_assert_msg(strncmp(out + 26, "tu_handler", 10) == 0, "report: %s", out);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_hang_report_shows_where_it_is_stuck) {
  fp_pool *p = start(1, 200);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "hang"), &res);
  ck_assert_int_eq(res.status, FP_TIMEOUT);
  ck_assert_int_eq(res.signal, SIGKILL);
  const char *out = (const char *)res.output;
  ck_assert_msg(strncmp(out, "stuck in:\n#0 ", 13) == 0, "report: %s", out);
  /* tu_handler's "hang" sleeps in sleep_forever(), in nanosleep. */
  ck_assert_msg(strstr(out, "sleep_forever+") != NULL, "report: %s", out);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_report_truncated_to_max_output) {
  fp_config cfg;
  tu_config(&cfg, 1, 4);
  cfg.max_output = 16;
  fp_pool *p = tu_start(&cfg);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "segv"), &res);
  ck_assert_int_eq(res.status, FP_CRASHED);
  ck_assert_uint_eq(res.output_len, 16);
  ck_assert_int_eq(memcmp(res.output, "SIGSEGV at addre", 16), 0);
  fp_result_release(&res);
}
END_TEST

/* The supervisor's events reach fp_config.log (in the supervisor). */
static int log_fd = -1;
static void to_pipe(void *ctx, fp_log_level lvl, const char *msg) {
  (void)ctx;
  if (lvl >= FP_LOG_WARN) {
    ssize_t n = write(log_fd, msg, strlen(msg));
    n = write(log_fd, "\n", 1);
    (void)n;
  }
}

START_TEST(test_log_hook_and_duration_histogram) {
  int pfd[2];
  ck_assert_int_eq(pipe(pfd), 0);
  log_fd = pfd[1];
  fp_config cfg;
  tu_config(&cfg, 1, 8);
  cfg.log = to_pipe;
  fp_pool *p = tu_start(&cfg);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "segv"), &res);
  tu_wait(p, tu_submit(p, "sleep 2"), &res);
  tu_wait(p, tu_submit(p, "x"), &res);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.duration_count, 3);
  ck_assert_uint_eq(st.duration_le[FP_DURATION_BUCKETS - 1], 3);
  ck_assert_uint_ge(st.duration_sum_us, 2000);
  ck_assert_uint_le(st.duration_le[0], 2); /* "sleep 2" took > 100 us */
  fp_pool_stop(p, FP_STOP_DRAIN, 1000);
  close(pfd[1]);
  char buf[4096];
  ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
  close(pfd[0]);
  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  ck_assert_msg(strstr(buf, "died running task") != NULL, "log: %s", buf);
  ck_assert_msg(strstr(buf, "SIGSEGV") != NULL, "log: %s", buf);
  fp_result_release(&res);
}
END_TEST

START_TEST(test_config_rejects_too_many_attempts) {
  fp_config cfg;
  tu_config(&cfg, 1, 4);
  cfg.max_attempts = 101;
  ck_assert_int_eq(fp_config_validate(&cfg), -EINVAL);
}
END_TEST

Suite *make_isolation_suite(void) {
  Suite *s = suite_create("isolation");
  TCase *tc = tcase_create("retries");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_retry_rescues_unlucky_task);
  tcase_add_test(tc, test_poison_is_quarantined);
  tcase_add_test(tc, test_no_retry_by_default);
  tcase_add_test(tc, test_timeouts_retry_too);
  tcase_add_test(tc, test_config_rejects_too_many_attempts);
  suite_add_tcase(s, tc);
  tc = tcase_create("reports");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_crash_report_names_the_function);
  tcase_add_test(tc, test_hang_report_shows_where_it_is_stuck);
  tcase_add_test(tc, test_report_truncated_to_max_output);
  tcase_add_test(tc, test_log_hook_and_duration_histogram);
  suite_add_tcase(s, tc);
  return s;
}
