/*
 * The library must not kill or fool its host: calls that talk to a
 * supervisor that died return an error instead of raising SIGPIPE, and the
 * supervisor notices its owner's death even when a child the owner forked
 * keeps the owner's descriptors open.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

/* The supervisor of pool p, killed with SIGKILL; its workers follow. */
static void kill_supervisor(fp_pool *p) {
  fp_stats st;
  ck_assert_int_eq(fp_pool_stats(p, &st), 0);
  ck_assert_int_gt(st.supervisor, 0);
  ck_assert_int_eq(kill(st.supervisor, SIGKILL), 0);
  /* Not reaped here: the handle does that, as for any supervisor death. */
}

START_TEST(test_free_after_supervisor_death_no_sigpipe) {
  signal(SIGPIPE, SIG_DFL); /* the host's disposition: the default kills */
  fp_config cfg;
  tu_config(&cfg, 1, 4);
  fp_pool *p = tu_start(&cfg);
  kill_supervisor(p);
  tu_sleep_ms(50);
  ck_assert_int_eq(fp_pool_stop(p, FP_STOP_NOW, 0), 0);
  fp_pool_free(p);
  tu_pool = NULL;
}
END_TEST

START_TEST(test_cancel_after_supervisor_death_is_epipe) {
  signal(SIGPIPE, SIG_DFL);
  fp_config cfg;
  tu_config(&cfg, 1, 4);
  fp_pool *p = tu_start(&cfg);
  uint64_t id = tu_submit(p, "hang");
  tu_wait_started(1);
  kill_supervisor(p);
  tu_sleep_ms(50);
  int r = fp_cancel(p, id);
  ck_assert_msg(r == -EPIPE, "fp_cancel after the supervisor died: %d (%s)", r,
                fp_strerror(r));
  fp_pool_free(p);
  tu_pool = NULL;
}
END_TEST

/*
 * The owner (a child of the test) starts a pool, forks a plain child that
 * lives on with every descriptor the owner had, and dies. The supervisor
 * must end the pool by itself, within a generous bound.
 */
START_TEST(test_owner_death_noticed_despite_its_child) {
  /* Orphans (the supervisor, its workers, the owner's child) come to us. */
  ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t owner = fork();
  ck_assert_int_ge(owner, 0);
  if (owner == 0) {
    close(fds[0]);
    fp_config cfg;
    tu_config(&cfg, 2, 4);
    fp_pool *p = NULL;
    if (fp_pool_start(&p, &cfg) != 0) _exit(3);
    fp_stats st;
    fp_pool_stats(p, &st);
    pid_t daemon = fork();
    if (daemon == 0) {
      /* A daemon child of the host: keeps every inherited fd open. */
      for (int k = 0; k < 300; k++) usleep(100000);
      _exit(0);
    }
    pid_t msg[2] = {st.supervisor, daemon};
    if (write(fds[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg)) _exit(4);
    _exit(0); /* the owner dies without stopping its pool */
  }
  close(fds[1]);
  pid_t msg[2] = {0, 0};
  ck_assert_int_eq(read(fds[0], msg, sizeof(msg)), (ssize_t)sizeof(msg));
  close(fds[0]);
  int ws;
  ck_assert_int_eq(waitpid(owner, &ws, 0), owner);
  ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "owner failed: %d", ws);
  pid_t sup = msg[0], daemon = msg[1];
  ck_assert_int_gt(sup, 0);
  ck_assert_int_gt(daemon, 0);
  /* The supervisor should be gone within a second; allow ten. */
  int gone = 0;
  for (int waited = 0; waited < 10000 && !gone; waited += 10) {
    pid_t r = waitpid(sup, &ws, WNOHANG);
    if (r == sup) gone = 1;
    else tu_sleep_ms(10);
  }
  kill(daemon, SIGKILL);
  while (waitpid(daemon, NULL, 0) < 0 && errno == EINTR) {
  }
  if (!gone) kill(sup, SIGKILL);
  /* Reap whatever else came to us (its workers), for the fixture. */
  for (int waited = 0; waited < 5000; waited += 10) {
    pid_t r = waitpid(-1, NULL, WNOHANG);
    if (r < 0 && errno == ECHILD) break;
    if (r == 0) tu_sleep_ms(10);
  }
  ck_assert_msg(gone, "the supervisor outlived its owner by 10 s");
}
END_TEST

Suite *make_host_suite(void) {
  Suite *s = suite_create("host");
  TCase *tc = tcase_create("host");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_free_after_supervisor_death_no_sigpipe);
  tcase_add_test(tc, test_cancel_after_supervisor_death_is_epipe);
  tcase_add_test(tc, test_owner_death_noticed_despite_its_child);
  suite_add_tcase(s, tc);
  return s;
}
