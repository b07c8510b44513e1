/*
 * Suite builders of the Check tests; tests/check_main.c runs them all.
 * One area per file: tests/check_<area>.c exports make_<area>_suite().
 */
#ifndef FORKPOOL_SUITES_H
#define FORKPOOL_SUITES_H

#include <check.h>

Suite *make_config_suite(void);
Suite *make_pool_suite(void);
Suite *make_crash_suite(void);
Suite *make_queue_suite(void);
Suite *make_named_suite(void);
Suite *make_isolation_suite(void);
Suite *make_sched_suite(void);
Suite *make_host_suite(void);
Suite *make_descend_suite(void);
Suite *make_room_suite(void);
Suite *make_view_suite(void);

#endif /* FORKPOOL_SUITES_H */
