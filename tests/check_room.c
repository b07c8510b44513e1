/*
 * A worker is a sealed room (DESIGN.md, invariant 8): it shares no stdin or
 * stdout with the program that feeds the pool, its stdout and stderr go to
 * the pool's log (bounded, marked with the task id), a process it forks
 * never touches the queue, and exit() in a handler runs nothing of the host.
 *
 * The handler here is this file's own: room_handler. Tests that redirect
 * the test process's fd 0, 1 or 2 put them back before they return.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

/* Where the atexit marker goes; -1: nowhere (the test process's own exit). */
static int marker_fd = -1;

static void write_marker(void) {
  if (marker_fd >= 0 && write(marker_fd, "MARKER\n", 7) < 0) {
    /* the test then sees no marker: it checks for its absence anyway */
  }
}

static int put_text(void *out, size_t cap, size_t *len, const char *s) {
  size_t n = strlen(s);
  if (n > cap) return ENOBUFS;
  memcpy(out, s, n);
  *len = n;
  return 0;
}

/*
 * Commands: "readstdin" (read(0) of up to 64 bytes; outputs the count),
 * "exit N" (exit(N): atexit handlers, stdio flush), "forkreturn" (fork; the
 * child returns "child" as if it were the worker; the parent "parent"),
 * "say TEXT" (TEXT to fd 1, then "bad" to fd 2; outputs "said"), "flood N"
 * (N bytes of 'x' lines to fd 1; outputs "flooded"), anything else "ok".
 */
static int room_handler(void *arg, const void *in, size_t in_len, void *out,
                        size_t out_cap, size_t *out_len) {
  (void)arg;
  char cmd[128];
  if (in_len >= sizeof(cmd)) return EINVAL;
  memcpy(cmd, in, in_len);
  cmd[in_len] = '\0';
  *out_len = 0;
  if (strcmp(cmd, "readstdin") == 0) {
    char buf[64], txt[32];
    ssize_t n = read(0, buf, sizeof(buf));
    snprintf(txt, sizeof(txt), "%ld", (long)n);
    return put_text(out, out_cap, out_len, txt);
  }
  if (strncmp(cmd, "exit ", 5) == 0) exit(atoi(cmd + 5));
  if (strcmp(cmd, "forkreturn") == 0) {
    pid_t pid = fork();
    if (pid == 0) {
      tu_note_self();
      return put_text(out, out_cap, out_len, "child");
    }
    return put_text(out, out_cap, out_len, "parent");
  }
  if (strncmp(cmd, "say ", 4) == 0) {
    if (write(1, cmd + 4, strlen(cmd + 4)) < 0 || write(2, "bad\n", 4) < 0)
      return EIO;
    return put_text(out, out_cap, out_len, "said");
  }
  if (strncmp(cmd, "flood ", 6) == 0) {
    long left = atol(cmd + 6);
    char line[100];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    while (left > 0) {
      size_t n = left < (long)sizeof(line) ? (size_t)left : sizeof(line);
      ssize_t w = write(1, line, n);
      if (w < 0 && errno != EINTR) return EIO;
      if (w > 0) left -= w;
    }
    return put_text(out, out_cap, out_len, "flooded");
  }
  return put_text(out, out_cap, out_len, "ok");
}

/* The log function: runs in the supervisor; one line per message. */
static int log_fd = -1;

static void file_log(void *ctx, fp_log_level lvl, const char *msg) {
  (void)ctx;
  (void)lvl;
  char line[1200];
  int n = snprintf(line, sizeof(line), "%s\n", msg);
  if (n > 0 && write(log_fd, line, (size_t)n) < 0) {
    /* the test then misses the line and fails */
  }
}

static void room_config(fp_config *cfg, unsigned workers) {
  tu_config(cfg, workers, 16);
  cfg->handler = room_handler;
}

/* An unlinked temporary file, open read-write. */
static int temp_file(void) {
  char path[] = "/tmp/forkpool-room-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  return fd;
}

/* The whole of file fd, NUL-terminated, in a malloc'ed buffer. */
static char *slurp(int fd) {
  off_t len = lseek(fd, 0, SEEK_END);
  ck_assert_int_ge(len, 0);
  char *buf = malloc((size_t)len + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(pread(fd, buf, (size_t)len, 0), len);
  buf[len] = '\0';
  return buf;
}

static size_t count_of(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
  return n;
}

static void run_ok(fp_pool *p, const char *cmd, const char *want) {
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, cmd), &res);
  tu_assert_ok(&res, want);
  fp_result_release(&res);
}

START_TEST(test_stdin_is_dev_null) {
  int pfd[2];
  ck_assert_int_eq(pipe(pfd), 0);
  ck_assert_int_eq(write(pfd[1], "hello", 5), 5);
  int saved = dup(0);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_eq(dup2(pfd[0], 0), 0);
  fp_config cfg;
  room_config(&cfg, 1);
  fp_pool *p = tu_start(&cfg);
  dup2(saved, 0);
  close(saved);
  run_ok(p, "readstdin", "0"); /* EOF: /dev/null, not the host's pipe */
  /* The host's input is all still there. */
  char buf[8];
  ck_assert_int_eq(fcntl(pfd[0], F_SETFL, O_NONBLOCK), 0);
  ck_assert_int_eq(read(pfd[0], buf, sizeof(buf)), 5);
  close(pfd[0]);
  close(pfd[1]);
}
END_TEST

START_TEST(test_exit_runs_nothing_of_the_host) {
  int fd = temp_file();
  marker_fd = fd;
  ck_assert_int_eq(atexit(write_marker), 0);
  fflush(stdout);
  int saved = dup(1);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_eq(dup2(fd, 1), 1);
  /* Fully buffered (a file): the line waits in stdout's buffer. */
  setvbuf(stdout, NULL, _IOFBF, 4096);
  printf("host line\n");
  fp_config cfg;
  room_config(&cfg, 1);
  fp_pool *p = tu_start(&cfg);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "exit 3"), &res);
  ck_assert_int_eq(res.status, FP_CRASHED);
  ck_assert_int_eq(res.exit_code, 3);
  ck_assert_int_eq(res.signal, 0);
  fp_result_release(&res);
  run_ok(p, "after", "ok"); /* the pool goes on */
  fp_pool_free(p);
  tu_pool = NULL;
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  marker_fd = -1;
  char *text = slurp(fd);
  close(fd);
  ck_assert_str_eq(text, "host line\n"); /* once, and no marker */
  free(text);
}
END_TEST

/* Many tasks whose forked children return from the handler. */
static void forkreturn_round(unsigned seal) {
  fp_config cfg;
  room_config(&cfg, 2);
  cfg.flags = seal ? FP_CONFIG_SEAL : 0;
  fp_pool *p = tu_start(&cfg);
  enum { N = 300, W = 8 }; /* W in flight: fewer than the 16 slots */
  uint64_t ids[N];
  for (int k = 0; k < N + W; k++) {
    if (k < N) ids[k] = tu_submit(p, k % 3 == 0 ? "forkreturn" : "plain");
    if (k < W) continue;
    fp_result res;
    fp_result_init(&res);
    tu_wait(p, ids[k - W], &res);
    tu_assert_ok(&res, (k - W) % 3 == 0 ? "parent" : "ok");
    fp_result_release(&res);
  }
  fp_stats st;
  ck_assert_int_eq(fp_pool_stats(p, &st), 0);
  ck_assert_uint_eq(st.submitted, N);
  ck_assert_uint_eq(st.ok, N);
  ck_assert_uint_eq(st.corrupt, 0);
  ck_assert_uint_eq(st.crashed, 0);
}

START_TEST(test_forked_child_never_works) { forkreturn_round(0); }
END_TEST

START_TEST(test_forked_child_never_works_sealed) { forkreturn_round(1); }
END_TEST

START_TEST(test_output_goes_to_the_log_per_task) {
  log_fd = temp_file();
  fp_config cfg;
  room_config(&cfg, 2);
  cfg.log = file_log;
  fp_pool *p = tu_start(&cfg);
  enum { N = 40, W = 8 }; /* W in flight: fewer than the 16 slots */
  uint64_t ids[N];
  for (int k = 0; k < N + W; k++) {
    char cmd[32];
    if (k == 0) snprintf(cmd, sizeof(cmd), "say EVIL"); /* no newline */
    else snprintf(cmd, sizeof(cmd), "say line %d\n", k);
    if (k < N) ids[k] = tu_submit(p, cmd);
    if (k < W) continue;
    fp_result res;
    fp_result_init(&res);
    tu_wait(p, ids[k - W], &res);
    tu_assert_ok(&res, "said"); /* nothing the handler printed */
    fp_result_release(&res);
  }
  fp_pool_free(p);
  tu_pool = NULL;
  char *log = slurp(log_fd);
  for (int k = 0; k < N; k++) {
    char want[96];
    /* Each line under the task that printed it. */
    snprintf(want, sizeof(want), "task %llu (worker ",
             (unsigned long long)ids[k]);
    char text[32];
    if (k == 0) snprintf(text, sizeof(text), ") stdout: EVIL");
    else snprintf(text, sizeof(text), ") stdout: line %d", k);
    int seen = 0;
    for (const char *at = log; (at = strstr(at, want)) != NULL; at++) {
      const char *eol = strchr(at, '\n');
      char got[200];
      snprintf(got, sizeof(got), "%.*s", (int)(eol - at), at);
      if (strstr(got, ") stdout: ") == NULL) continue;
      seen++;
      ck_assert_msg(strlen(got) >= strlen(text) &&
                        strcmp(got + strlen(got) - strlen(text), text) == 0,
                    "task %d: line '%s', want '...%s'", k, got, text);
    }
    ck_assert_msg(seen == 1, "task %d: %d stdout lines in log:\n%s", k, seen,
                  log);
  }
  ck_assert_uint_eq(count_of(log, ") stderr: bad"), N);
  free(log);
  close(log_fd);
  log_fd = -1;
}
END_TEST

START_TEST(test_output_is_bounded_and_stalls_nobody) {
  log_fd = temp_file();
  fp_config cfg;
  room_config(&cfg, 2);
  cfg.log = file_log;
  fp_pool *p = tu_start(&cfg);
  uint64_t flood = tu_submit(p, "flood 2000000");
  /* The other worker keeps working while one floods its pipe. */
  for (int k = 0; k < 50; k++) run_ok(p, "plain", "ok");
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, flood, &res);
  tu_assert_ok(&res, "flooded");
  fp_result_release(&res);
  fp_pool_free(p);
  tu_pool = NULL;
  char *log = slurp(log_fd);
  char want[128];
  snprintf(want, sizeof(want), "task %llu (worker ", (unsigned long long)flood);
  /* 4096 bytes logged per task: 40 lines of 99 x, one of 96, and a note. */
  ck_assert_uint_eq(count_of(log, want), 42);
  snprintf(want, sizeof(want), "stdout: ... %d bytes dropped", 2000000 - 4096);
  ck_assert_msg(strstr(log, want) != NULL, "no '%s' in the log", want);
  free(log);
  close(log_fd);
  log_fd = -1;
}
END_TEST

START_TEST(test_output_without_log_goes_to_stderr) {
  int fd = temp_file();
  int saved = dup(2);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_eq(dup2(fd, 2), 2);
  fp_config cfg;
  room_config(&cfg, 1);
  fp_pool *p = tu_start(&cfg);
  uint64_t id = tu_submit(p, "say EVIL");
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, id, &res);
  tu_assert_ok(&res, "said");
  fp_result_release(&res);
  fp_pool_free(p);
  tu_pool = NULL;
  dup2(saved, 2);
  close(saved);
  char *text = slurp(fd);
  close(fd);
  char want[96];
  snprintf(want, sizeof(want), "forkpool: task %llu (worker ",
           (unsigned long long)id);
  ck_assert_msg(strstr(text, want) != NULL, "stderr got: '%s'", text);
  ck_assert_ptr_nonnull(strstr(text, ") stdout: EVIL\n"));
  ck_assert_ptr_nonnull(strstr(text, ") stderr: bad\n"));
  free(text);
}
END_TEST

Suite *make_room_suite(void) {
  Suite *s = suite_create("room");
  TCase *tc = tcase_create("room");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_stdin_is_dev_null);
  tcase_add_test(tc, test_exit_runs_nothing_of_the_host);
  tcase_add_test(tc, test_forked_child_never_works);
  tcase_add_test(tc, test_forked_child_never_works_sealed);
  tcase_add_test(tc, test_output_goes_to_the_log_per_task);
  tcase_add_test(tc, test_output_is_bounded_and_stalls_nobody);
  tcase_add_test(tc, test_output_without_log_goes_to_stderr);
  suite_add_tcase(s, tc);
  return s;
}
