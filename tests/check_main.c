/*
 * Runs every suite. CK_FORK stays on (the default; CK_FORK=no in the
 * environment turns it off for valgrind runs): each test then runs in its
 * own process, so crashes, timeouts and leftovers stay with the test.
 * CK_RUN_SUITE / CK_RUN_CASE pick a suite or tcase to run.
 * Exit status: 0 when every test passed, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "suites.h"

int main(void) {
  SRunner *sr = srunner_create(make_config_suite());
  int failed;

  srunner_add_suite(sr, make_pool_suite());
  srunner_add_suite(sr, make_crash_suite());
  srunner_add_suite(sr, make_queue_suite());
  srunner_add_suite(sr, make_named_suite());
  srunner_add_suite(sr, make_isolation_suite());
  srunner_add_suite(sr, make_sched_suite());
  srunner_add_suite(sr, make_host_suite());
  srunner_add_suite(sr, make_descend_suite());
  srunner_add_suite(sr, make_room_suite());
  srunner_add_suite(sr, make_view_suite());
  srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY=verbose lists each test */
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  printf("check_forkpool: %d test%s failed\n", failed, failed == 1 ? "" : "s");
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
