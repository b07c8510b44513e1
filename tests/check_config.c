/*
 * Config defaults and validation, and the small helpers (names, errors,
 * version). Every rejected config must leave nothing behind: the fixture
 * checks for children and /dev/shm entries.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

START_TEST(test_defaults) {
  fp_config cfg;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);

  memset(&cfg, 0xa5, sizeof cfg); /* init must set every field */
  fp_config_init(&cfg);
  ck_assert_uint_ge(cfg.workers, 1);
  ck_assert_uint_le(cfg.workers, FP_MAX_WORKERS);
  if (cpus >= 1 && cpus <= (long)FP_MAX_WORKERS)
    ck_assert_uint_eq(cfg.workers, (unsigned)cpus);
  ck_assert_uint_eq(cfg.slots, 256);
  ck_assert_uint_eq(cfg.max_input, 64 * 1024);
  ck_assert_uint_eq(cfg.max_output, 64 * 1024);
  ck_assert_uint_eq(cfg.timeout_ms, 0);
  ck_assert_uint_eq(cfg.max_tasks, 0);
  ck_assert_ptr_null(cfg.handler);
  ck_assert_ptr_null(cfg.arg);
  ck_assert_ptr_null(cfg.worker_init);
  ck_assert_ptr_null(cfg.worker_fini);
  ck_assert_uint_eq(cfg.flags, 0);

  /* Defaults plus a handler are valid as they are. */
  cfg.handler = tu_handler;
  ck_assert_int_eq(fp_config_validate(&cfg), 0);
}
END_TEST

/* Values at the limits are accepted (validation only: nothing starts). */
START_TEST(test_limits_accepted) {
  fp_config cfg;

  tu_config(&cfg, FP_MAX_WORKERS, 1);
  ck_assert_int_eq(fp_config_validate(&cfg), 0);

  tu_config(&cfg, 1, FP_MAX_SLOTS);
  cfg.max_input = 1024;
  cfg.max_output = 1024;
  ck_assert_int_eq(fp_config_validate(&cfg), 0);

  tu_config(&cfg, 1, 1);
  cfg.max_input = FP_MAX_IO_BYTES;
  cfg.max_output = FP_MAX_IO_BYTES;
  ck_assert_int_eq(fp_config_validate(&cfg), 0);

  tu_config(&cfg, 1, 1);
  cfg.max_input = 1;
  cfg.max_output = 1;
  cfg.timeout_ms = 1;
  cfg.max_tasks = 1;
  cfg.worker_init = tu_init;
  cfg.worker_fini = tu_fini;
  ck_assert_int_eq(fp_config_validate(&cfg), 0);
}
END_TEST

/* One bad value per loop index; see bad_config(). */
static const char *const bad_names[] = {
    "zero workers",
    "workers above FP_MAX_WORKERS",
    "zero slots",
    "slots above FP_MAX_SLOTS",
    "zero max_input",
    "max_input above FP_MAX_IO_BYTES",
    "zero max_output",
    "max_output above FP_MAX_IO_BYTES",
    "segment too big",
    "no handler",
    "flags bit 1 (unknown)",
    "flags bit 31",
    "size 0 (no fp_config_init)",
    "size below the required fields",
};
#define N_BAD ((int)(sizeof bad_names / sizeof bad_names[0]))

static void bad_config(fp_config *cfg, int i) {
  tu_config(cfg, 2, 8);
  switch (i) {
  case 0: cfg->workers = 0; break;
  case 1: cfg->workers = FP_MAX_WORKERS + 1; break;
  case 2: cfg->slots = 0; break;
  case 3: cfg->slots = FP_MAX_SLOTS + 1; break;
  case 4: cfg->max_input = 0; break;
  case 5: cfg->max_input = (size_t)FP_MAX_IO_BYTES + 1; break;
  case 6: cfg->max_output = 0; break;
  case 7: cfg->max_output = (size_t)FP_MAX_IO_BYTES + 1; break;
  case 8:
    /* Each value is within its own limit; together they need
     * 65536 * 128 MiB, far above FP_MAX_SEGMENT_BYTES. */
    cfg->slots = FP_MAX_SLOTS;
    cfg->max_input = FP_MAX_IO_BYTES;
    cfg->max_output = FP_MAX_IO_BYTES;
    break;
  case 9: cfg->handler = NULL; break;
  case 10: cfg->flags = 2u; break; /* FP_CONFIG_SEAL is bit 0 */
  case 11: cfg->flags = 1u << 31; break;
  case 12: cfg->size = 0; break;
  case 13: cfg->size = sizeof(size_t); break;
  default: ck_abort_msg("no bad config %d", i);
  }
}

START_TEST(test_rejected) {
  fp_config cfg;
  int sentinel;
  fp_pool *pool = (fp_pool *)&sentinel;
  int rc;

  bad_config(&cfg, _i);
  rc = fp_config_validate(&cfg);
  ck_assert_msg(rc == -EINVAL, "%s: fp_config_validate returned %d, want %d",
                bad_names[_i], rc, -EINVAL);
  rc = fp_pool_start(&pool, &cfg);
  ck_assert_msg(rc == -EINVAL, "%s: fp_pool_start returned %d, want %d",
                bad_names[_i], rc, -EINVAL);
  ck_assert_msg(pool == (fp_pool *)&sentinel,
                "%s: fp_pool_start changed *out on error", bad_names[_i]);
  /* The fixture's teardown checks that no process or segment was left. */
}
END_TEST

START_TEST(test_status_names) {
  ck_assert_str_eq(fp_status_name(FP_OK), "ok");
  ck_assert_str_eq(fp_status_name(FP_FAILED), "failed");
  ck_assert_str_eq(fp_status_name(FP_CRASHED), "crashed");
  ck_assert_str_eq(fp_status_name(FP_TIMEOUT), "timeout");
  ck_assert_str_eq(fp_status_name(FP_CANCELLED), "cancelled");
  ck_assert_str_eq(fp_status_name((fp_status)99), "unknown");
  ck_assert_str_eq(fp_status_name((fp_status)-1), "unknown");
}
END_TEST

START_TEST(test_strerror) {
  static const int errs[] = {EINVAL, EAGAIN, ETIMEDOUT, EMSGSIZE, ESHUTDOWN,
                             EPIPE,  ENOENT, ECHILD,    ENOMEM,   EPROTO};
  for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
    const char *neg = fp_strerror(-errs[i]);
    const char *pos = fp_strerror(errs[i]);
    ck_assert_ptr_nonnull(neg);
    ck_assert_ptr_nonnull(pos);
    ck_assert_uint_gt(strlen(neg), 0);
    ck_assert_str_eq(neg, pos);
  }
  /* Distinct errors read differently. */
  ck_assert_str_ne(fp_strerror(-EINVAL), fp_strerror(-EAGAIN));
  ck_assert_ptr_nonnull(fp_strerror(0));
  ck_assert_ptr_nonnull(fp_strerror(-999999));
  ck_assert_ptr_nonnull(fp_strerror(999999));
}
END_TEST

START_TEST(test_version) {
  ck_assert_str_eq(fp_version(), FP_VERSION_STRING);
  ck_assert_int_eq(FP_VERSION_HEX, (FP_VERSION_MAJOR << 16) |
                                       (FP_VERSION_MINOR << 8) |
                                       FP_VERSION_PATCH);
}
END_TEST

Suite *make_config_suite(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("validate");
  TCase *misc = tcase_create("misc");

  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_defaults);
  tcase_add_test(tc, test_limits_accepted);
  tcase_add_loop_test(tc, test_rejected, 0, N_BAD);
  suite_add_tcase(s, tc);

  tcase_add_test(misc, test_status_names);
  tcase_add_test(misc, test_strerror);
  tcase_add_test(misc, test_version);
  suite_add_tcase(s, misc);
  return s;
}
