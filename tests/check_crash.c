/*
 * Crash isolation: every way a task can take its worker down ends that one
 * task with the right status, and the pool goes on. The in-process handler
 * (tu_handler) does what its input says, like examples/crashy.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

#define ANY (-99) /* this field is not checked */

struct crash_case {
  const char *cmd;
  unsigned timeout_ms;
  fp_status status;
  int signal;
  int exit_code;
  int code;
  int worker_survives; /* the next task runs in the same worker */
};

static const struct crash_case cases[] = {
    {"segv", 0, FP_CRASHED, SIGSEGV, -1, 0, 0},
    {"abort", 0, FP_CRASHED, SIGABRT, -1, 0, 0},
    {"exit 3", 0, FP_CRASHED, 0, 3, 0, 0},
    /* Exiting with 0 in the middle of a task is still a crash. */
    {"exit 0", 0, FP_CRASHED, 0, 0, 0, 0},
    {"kill", 0, FP_CRASHED, SIGKILL, -1, 0, 0},
    {"hang", 200, FP_TIMEOUT, ANY, ANY, 0, 0},
    {"fail 7", 0, FP_FAILED, 0, -1, 7, 1},
    /* Handler bugs: a negative return, or more output than out_cap. */
    {"neg", 0, FP_FAILED, 0, -1, EPROTO, 1},
    {"overflow", 0, FP_FAILED, 0, -1, EPROTO, 1},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* One task per case on a one-worker pool, then a normal task on the same
 * pool: it must succeed, in a new worker unless the old one survived. */
START_TEST(test_crash_kind) {
  const struct crash_case *c = &cases[_i];
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  pid_t crashed;

  tu_config(&cfg, 1, 4);
  cfg.timeout_ms = c->timeout_ms;
  pool = tu_start(&cfg);
  fp_result_init(&res);

  tu_wait(pool, tu_submit(pool, c->cmd), &res);
  ck_assert_msg(res.status == c->status, "%s: status %s, want %s", c->cmd,
                fp_status_name(res.status), fp_status_name(c->status));
  if (c->signal != ANY)
    ck_assert_msg(res.signal == c->signal, "%s: signal %d, want %d", c->cmd,
                  res.signal, c->signal);
  if (c->exit_code != ANY)
    ck_assert_msg(res.exit_code == c->exit_code, "%s: exit_code %d, want %d",
                  c->cmd, res.exit_code, c->exit_code);
  ck_assert_msg(res.code == c->code, "%s: code %d, want %d", c->cmd, res.code,
                c->code);
  ck_assert_uint_eq(res.attempts, 1);
  ck_assert_int_gt(res.worker, 0);
  if (c->status == FP_CRASHED && c->signal != ANY &&
      (c->signal == SIGSEGV || c->signal == SIGABRT)) {
    /* Its crash report: the signal first, then the stack. */
    const char *want = c->signal == SIGSEGV ? "SIGSEGV" : "SIGABRT";
    ck_assert_msg(res.output_len > strlen(want) &&
                      memcmp(res.output, want, strlen(want)) == 0,
                  "%s: report '%.*s'", c->cmd, (int)res.output_len, res.output);
    ck_assert_ptr_nonnull(strstr((char *)res.output, "tu_handler"));
  } else if (c->status == FP_CRASHED || c->status == FP_OK) {
    /* Killed or exited: no report; ok: echo. */
    if (c->status == FP_CRASHED) ck_assert_uint_eq(res.output_len, 0);
  }
  crashed = res.worker;

  /* The pool lives on. */
  tu_wait(pool, tu_submit(pool, "after"), &res);
  tu_assert_ok(&res, "after");
  if (c->worker_survives) ck_assert_int_eq(res.worker, crashed);
  else ck_assert_int_ne(res.worker, crashed);
  fp_result_release(&res);
}
END_TEST

/* A crash in the middle of 1000 tasks costs exactly that one task. */
START_TEST(test_crash_in_batch) {
  enum { N = 1000, BAD = 500 };
  uint64_t *ids = calloc(N, sizeof *ids);
  unsigned char *seen = calloc(N, 1);
  unsigned collected = 0, ok = 0, crashed = 0, submitted = 0;
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  fp_stats st;

  ck_assert_ptr_nonnull(ids);
  ck_assert_ptr_nonnull(seen);
  tu_config(&cfg, 2, 64);
  pool = tu_start(&cfg);
  fp_result_init(&res);

  while (collected < N) {
    int rc;
    if (submitted < N) {
      char cmd[32];
      if (submitted == BAD) snprintf(cmd, sizeof cmd, "segv");
      else snprintf(cmd, sizeof cmd, "task %u", submitted);
      rc = fp_submit(pool, cmd, strlen(cmd), FP_NOWAIT, &ids[submitted]);
      if (rc == 0) {
        submitted++;
        continue;
      }
      ck_assert_msg(rc == -EAGAIN, "fp_submit: %s", fp_strerror(rc));
    }
    rc = fp_collect(pool, &res, TU_GUARD_MS);
    ck_assert_msg(rc == 0, "fp_collect: %s", fp_strerror(rc));
    collected++;
    if (res.id == ids[BAD]) {
      ck_assert_int_eq(res.status, FP_CRASHED);
      ck_assert_int_eq(res.signal, SIGSEGV);
      ck_assert_int_eq(seen[BAD], 0);
      seen[BAD] = 1;
      crashed++;
    } else {
      char text[32];
      unsigned n;
      ck_assert_int_eq(res.status, FP_OK);
      ck_assert_uint_lt(res.output_len, sizeof text);
      memcpy(text, res.output, res.output_len);
      text[res.output_len] = '\0';
      ck_assert_int_eq(sscanf(text, "task %u", &n), 1);
      ck_assert_uint_lt(n, N);
      ck_assert_uint_eq(res.id, ids[n]);
      ck_assert_int_eq(seen[n], 0);
      seen[n] = 1;
      ok++;
    }
  }
  ck_assert_uint_eq(ok, N - 1);
  ck_assert_uint_eq(crashed, 1);
  ck_assert_int_eq(fp_collect(pool, &res, FP_NOWAIT), -ENOENT);
  ck_assert_int_eq(fp_pool_stats(pool, &st), 0);
  ck_assert_uint_eq(st.ok, N - 1);
  ck_assert_uint_eq(st.crashed, 1);
  ck_assert_uint_eq(st.failed + st.timeout + st.cancelled, 0);
  fp_result_release(&res);
  free(ids);
  free(seen);
}
END_TEST

/*
 * A task that forks a child and hangs: the timeout kills the whole process
 * group, grandchild included. The grandchild holds the only write end of a
 * pipe (opened through /proc by the worker, see tu_handler's "forkhang"),
 * so EOF on the read end proves it is dead, whoever reaps it.
 */
START_TEST(test_timeout_kills_grandchild) {
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  struct pollfd pfd;
  uint64_t id;
  char byte;
  int p[2];
  ssize_t n;
  int rc;

  tu_config(&cfg, 1, 4);
  /* Generous: the worker must open the pipe and fork before the kill, or
   * the gc_ready check below fails. The hang itself ends only by kill. */
  cfg.timeout_ms = 1000;
  pool = tu_start(&cfg);
  /* Made after the pool started, so no pool process inherited it. */
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  tu_sh->pipe_pid = getpid();
  tu_sh->pipe_wfd = p[1];

  fp_result_init(&res);
  id = tu_submit(pool, "forkhang");
  tu_wait(pool, id, &res);
  ck_assert_int_eq(res.status, FP_TIMEOUT);
  ck_assert_int_eq(atomic_load(&tu_sh->gc_ready), 1);
  ck_assert_int_gt(tu_sh->gc_pid, 0);

  /* Now only the grandchild can hold a write end. */
  close(p[1]);
  pfd.fd = p[0];
  pfd.events = POLLIN;
  do rc = poll(&pfd, 1, 10000); /* hang guard; the grandchild lives 60 s */
  while (rc < 0 && errno == EINTR);
  ck_assert_msg(rc == 1, "the grandchild outlived its worker's timeout");
  do n = read(p[0], &byte, 1);
  while (n < 0 && errno == EINTR);
  ck_assert_int_eq(n, 0); /* EOF: every write end is closed */
  close(p[0]);

  tu_wait(pool, tu_submit(pool, "after"), &res);
  tu_assert_ok(&res, "after");
  fp_result_release(&res);
}
END_TEST

/* A dead supervisor is reported, not waited for forever. */
START_TEST(test_supervisor_killed) {
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  fp_stats st;
  uint64_t id, id2 = 0;
  int rc;

  tu_config(&cfg, 1, 4);
  pool = tu_start(&cfg);
  id = tu_submit(pool, "block");
  tu_wait_started(1);
  ck_assert_int_eq(fp_pool_stats(pool, &st), 0);
  ck_assert_int_gt(st.supervisor, 0);
  ck_assert_int_eq(kill(st.supervisor, SIGKILL), 0);

  fp_result_init(&res);
  rc = fp_wait(pool, id, &res, TU_GUARD_MS);
  ck_assert_msg(rc == -EPIPE, "fp_wait after the supervisor died: %d (%s)", rc,
                fp_strerror(rc));
  rc = fp_submit(pool, "x", 1, TU_GUARD_MS, &id2);
  ck_assert_msg(rc == -EPIPE, "fp_submit after the supervisor died: %d (%s)",
                rc, fp_strerror(rc));
  fp_result_release(&res);
  /* Stop reaps what is left; the fixture then checks that the worker died
   * with its supervisor. */
  ck_assert_int_eq(fp_pool_stop(pool, FP_STOP_NOW, 0), 0);
}
END_TEST

Suite *make_crash_suite(void) {
  Suite *s = suite_create("crash");
  TCase *kinds = tcase_create("kinds");
  TCase *more = tcase_create("isolation");

  tcase_add_checked_fixture(kinds, tu_setup, tu_teardown);
  tcase_set_timeout(kinds, TU_TCASE_TIMEOUT);
  tcase_add_loop_test(kinds, test_crash_kind, 0, N_CASES);
  suite_add_tcase(s, kinds);

  tcase_add_checked_fixture(more, tu_setup, tu_teardown);
  tcase_set_timeout(more, TU_TCASE_TIMEOUT);
  tcase_add_test(more, test_crash_in_batch);
  tcase_add_test(more, test_timeout_kills_grandchild);
  tcase_add_test(more, test_supervisor_killed);
  suite_add_tcase(s, more);
  return s;
}
