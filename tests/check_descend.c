/*
 * A task's descendants end with the task (issue 13, item 6), whatever
 * group or session they moved to, and none is left a zombie; a worker
 * whose resident set grew past max_rss_mb is replaced after its task
 * (item 7).
 *
 * The handler here forks on purpose. Every process it forks records its
 * pid and start time in `ds`, a shared page mapped before the pool starts,
 * and the handler returns only once they did, so a test can check that
 * each of them is gone when the task's result arrives. The teardown
 * SIGKILLs any recorded process still alive (a failed test must not leave
 * them for the next), and fork bombs are bounded by a counter in `ds`.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

#define DS_MAX 512
#define BOMB_MAX 120 /* processes a "bomb" task may make in all */

struct ds_shared {
  atomic_int n;        /* records used */
  atomic_int bomb;     /* processes the bomb made */
  atomic_int recycled; /* log lines about a recycling */
  char last_log[256];
  struct {
    pid_t pid;
    unsigned long long start;
  } p[DS_MAX];
  atomic_int init_n; /* records of worker_init's children, kept apart */
  struct {
    pid_t pid;
    unsigned long long start;
  } init[8];
};

static struct ds_shared *ds;
void *volatile ds_keep; /* rss32's memory: extern, so it is kept */

/* Start time of pid (/proc/PID/stat field 22), 0 if no such process; the
 * state letter in *st. */
static unsigned long long proc_start(pid_t pid, char *st) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (p == NULL) return 0;
  char state = 0;
  unsigned long long start = 0;
  /* After "pid (comm)": state, then fields 4..21, then starttime (22). */
  if (sscanf(p + 1,
             " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
             "%*s %*s %*s %*s %*s %*s %llu",
             &state, &start) != 2)
    return 0;
  if (st != NULL) *st = state;
  return start;
}

static void record(pid_t pid) {
  int k = atomic_fetch_add(&ds->n, 1);
  if (k >= DS_MAX) return;
  ds->p[k].start = proc_start(pid, NULL);
  ds->p[k].pid = pid; /* last: a record with a pid is complete */
}

/* A recorded process is gone: no such pid, or another process now. A
 * zombie is not gone: nobody reaped it. */
static int gone(pid_t pid, unsigned long long start) {
  char st = 0;
  unsigned long long now = proc_start(pid, &st);
  return now == 0 || now != start;
}

/* Asserts every process recorded so far is gone; names the first not. */
static void assert_all_gone(const char *when) {
  int n = atomic_load(&ds->n);
  ck_assert_int_le(n, DS_MAX);
  for (int k = 0; k < n; k++) {
    char st = '?';
    /* A record left without a pid: its process was killed between taking
     * the record and filling it in (the bomb's are killed at any point). */
    if (ds->p[k].pid == 0) continue;
    proc_start(ds->p[k].pid, &st);
    ck_assert_msg(gone(ds->p[k].pid, ds->p[k].start),
                  "%s: process %d (record %d of %d) still there, state %c",
                  when, (int)ds->p[k].pid, k, n, st);
  }
}

/* Waits until n records are complete (5 s at most: the caller asserts). */
static int wait_records(int n) {
  for (int i = 0; i < 5000; i++) {
    int have = atomic_load(&ds->n);
    int done = 0;
    for (int k = 0; k < have && k < DS_MAX; k++) done += ds->p[k].pid > 0;
    if (done >= n) return 1;
    tu_sleep_ms(1);
  }
  return 0;
}

static void sleep_s(long sec) {
  struct timespec ts = {sec, 0};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Child bodies: record ourselves, then live on as asked. */
enum kind {
  PLAIN,
  SETSID,
  SETPGID,
  IGNTERM,
  STOPPED,
  ZOMBIE,
  DOUBLE,
  GRANDZOMBIE,
  BOMB
};

static void bomb_loop(void) {
  while (atomic_fetch_add(&ds->bomb, 1) < BOMB_MAX) {
    pid_t c = fork();
    if (c == 0) {
      record(getpid());
      continue; /* the child bombs on too */
    }
    if (c < 0) break;
  }
  sleep_s(30);
  _exit(0);
}

static void child_body(enum kind k, int base) {
  record(getpid());
  switch (k) {
  case SETSID: setsid(); break;
  case SETPGID: setpgid(0, 0); break;
  case IGNTERM:
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    break;
  case STOPPED: raise(SIGSTOP); break;
  case ZOMBIE: _exit(0);
  case DOUBLE:
  case GRANDZOMBIE:
    if (fork() == 0) {
      setsid();
      record(getpid());
      if (k == GRANDZOMBIE) _exit(0);
      sleep_s(30);
      _exit(0);
    }
    /* Exit once the grandchild recorded itself: it is an orphan then. */
    for (int i = 0; i < 5000 && atomic_load(&ds->n) < base + 2; i++)
      tu_sleep_ms(1);
    _exit(0);
  case BOMB: bomb_loop(); break;
  case PLAIN: break;
  }
  sleep_s(30);
  _exit(0);
}

static int fork_kind(enum kind k, int expect) {
  int before = atomic_load(&ds->n);
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) child_body(k, before);
  return wait_records(before + expect) ? 0 : ETIMEDOUT;
}

static int put(void *out, size_t cap, size_t *len, const char *s) {
  size_t n = strlen(s);
  if (n > cap) return ENOBUFS;
  memcpy(out, s, n);
  *len = n;
  return 0;
}

/* The handler: input is one of the commands below. */
static int ds_handler(void *arg, const void *in, size_t in_len, void *out,
                      size_t out_cap, size_t *out_len) {
  (void)arg;
  char cmd[64];
  if (in_len >= sizeof(cmd)) return EINVAL;
  memcpy(cmd, in, in_len);
  cmd[in_len] = '\0';
  *out_len = 0;
  static const struct {
    const char *name;
    enum kind kind;
    int records;
  } kinds[] = {
      {"plain", PLAIN, 1},     {"setsid", SETSID, 1},
      {"setpgid", SETPGID, 1}, {"ignterm", IGNTERM, 1},
      {"stopped", STOPPED, 1}, {"zombie", ZOMBIE, 1},
      {"double", DOUBLE, 2},   {"grandzombie", GRANDZOMBIE, 2},
  };
  for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
    if (strcmp(cmd, kinds[k].name) == 0) {
      int rc = fork_kind(kinds[k].kind, kinds[k].records);
      return rc ? rc : put(out, out_cap, out_len, "forked");
    }
  if (strcmp(cmd, "sigign") == 0) {
    /* Children reaped by the kernel: a listed pid could be reused. */
    signal(SIGCHLD, SIG_IGN);
    int rc = fork_kind(SETSID, 1);
    if (rc == 0) rc = fork_kind(ZOMBIE, 1);
    return rc ? rc : put(out, out_cap, out_len, "forked");
  }
  if (strcmp(cmd, "setsidhang") == 0) {
    int rc = fork_kind(SETSID, 1);
    if (rc) return rc;
    sleep_s(30);
    return put(out, out_cap, out_len, "woke");
  }
  if (strcmp(cmd, "bomb") == 0) {
    /* Return while it still forks: the worker's loop must keep up. */
    int rc = fork_kind(BOMB, 20);
    return rc ? rc : put(out, out_cap, out_len, "bombed");
  }
  if (strcmp(cmd, "rss32") == 0) {
    size_t bytes = 32u << 20;
    char *p = malloc(bytes);
    if (p == NULL) return ENOMEM;
    memset(p, 1, bytes);
    ds_keep = p; /* a leak, on purpose: the RSS stays */
    return put(out, out_cap, out_len, "grew");
  }
  if (strcmp(cmd, "rsskb") == 0) { /* this worker's resident set, KiB */
    unsigned long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f == NULL) return errno;
    int n = fscanf(f, "%lu %lu", &size, &res);
    fclose(f);
    if (n != 2) return EIO;
    char b[32];
    snprintf(b, sizeof(b), "%lu",
             res * (unsigned long)(sysconf(_SC_PAGESIZE) / 1024));
    return put(out, out_cap, out_len, b);
  }
  if (strcmp(cmd, "pid") == 0) {
    char b[32];
    snprintf(b, sizeof(b), "%d", (int)getpid());
    return put(out, out_cap, out_len, b);
  }
  if (strcmp(cmd, "ok") == 0) return put(out, out_cap, out_len, "ok");
  return EINVAL;
}

/* worker_init: fork a helper the hook keeps for the worker's life. */
static int ds_init(void *arg) {
  (void)arg;
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    int k = atomic_fetch_add(&ds->init_n, 1);
    if (k < 8) {
      ds->init[k].start = proc_start(getpid(), NULL);
      ds->init[k].pid = getpid();
    }
    sleep_s(30);
    _exit(0);
  }
  for (int i = 0; i < 5000 && ds->init[0].pid == 0; i++) tu_sleep_ms(1);
  return 0;
}

/* The supervisor's log: count the recycling lines, keep the last. */
static void ds_log(void *ctx, fp_log_level lvl, const char *msg) {
  (void)ctx;
  if (lvl >= FP_LOG_WARN && strstr(msg, "recycled") != NULL) {
    snprintf(ds->last_log, sizeof(ds->last_log), "%s", msg);
    atomic_fetch_add(&ds->recycled, 1);
  }
}

static void ds_setup(void) {
  tu_setup();
  ds = mmap(NULL, sizeof(*ds), PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(ds, MAP_FAILED);
  memset(ds, 0, sizeof(*ds));
}

static void kill_recorded(pid_t pid, unsigned long long start) {
  /* Only the very process we recorded (start time), never a reused pid. */
  if (pid > 0 && !gone(pid, start)) kill(pid, SIGKILL);
}

static void ds_teardown(void) {
  /* Stop the pool first: a bomb must not fork while we kill. */
  if (tu_pool != NULL) fp_pool_stop(tu_pool, FP_STOP_NOW, 0);
  for (int pass = 0; pass < 3; pass++) {
    int n = atomic_load(&ds->n);
    for (int k = 0; k < n && k < DS_MAX; k++)
      kill_recorded(ds->p[k].pid, ds->p[k].start);
    for (int k = 0; k < atomic_load(&ds->init_n) && k < 8; k++)
      kill_recorded(ds->init[k].pid, ds->init[k].start);
  }
  munmap(ds, sizeof(*ds));
  ds = NULL;
  tu_teardown();
}

static fp_pool *start(unsigned workers, unsigned timeout_ms) {
  fp_config cfg;
  tu_config(&cfg, workers, 8);
  cfg.handler = ds_handler;
  cfg.timeout_ms = timeout_ms;
  return tu_start(&cfg);
}

static void run_ok(fp_pool *p, const char *cmd, const char *want) {
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, cmd), &res);
  ck_assert_msg(res.status == FP_OK, "%s: status %d code %d", cmd,
                (int)res.status, res.code);
  tu_assert_ok(&res, want);
  fp_result_release(&res);
}

/* An ok task's children are gone when its result arrives, wherever they
 * went: own session, own group, orphaned, stopped, ignoring SIGTERM. */
START_TEST(test_ok_task_children_gone) {
  static const char *const cmds[] = {"plain",  "setsid",  "setpgid",
                                     "double", "ignterm", "stopped"};
  fp_pool *p = start(1, 0);
  for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
    run_ok(p, cmds[k], "forked");
    assert_all_gone(cmds[k]);
  }
  run_ok(p, "ok", "ok"); /* the same worker goes on */
}
END_TEST

/* Exited children and grandchildren are reaped, not left zombies. */
START_TEST(test_zombies_reaped) {
  fp_pool *p = start(1, 0);
  run_ok(p, "zombie", "forked");
  assert_all_gone("zombie");
  run_ok(p, "grandzombie", "forked");
  assert_all_gone("grandzombie");
}
END_TEST

/* A handler that set SIGCHLD to SIG_IGN: its children still end. */
START_TEST(test_sigchld_ignored) {
  fp_pool *p = start(1, 0);
  run_ok(p, "sigign", "forked");
  assert_all_gone("sigign");
  run_ok(p, "setsid", "forked");
  assert_all_gone("setsid after sigign");
}
END_TEST

/* The timeout kill reaches a child in its own session. */
START_TEST(test_timeout_kills_setsid_child) {
  fp_pool *p = start(1, 200);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "setsidhang"), &res);
  ck_assert_int_eq(res.status, FP_TIMEOUT);
  assert_all_gone("timeout result");
  fp_result_release(&res);
  run_ok(p, "ok", "ok");
}
END_TEST

/* fp_pool_stop ends a running task's child in its own session. */
START_TEST(test_stop_kills_setsid_child) {
  fp_pool *p = start(1, 0);
  uint64_t id = tu_submit(p, "setsidhang");
  ck_assert_int_eq(wait_records(1), 1);
  ck_assert_int_eq(fp_pool_stop(p, FP_STOP_NOW, 0), 0);
  assert_all_gone("after fp_pool_stop");
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, id, &res);
  ck_assert_int_eq(res.status, FP_CANCELLED);
  fp_result_release(&res);
}
END_TEST

/* A fork bomb (bounded to BOMB_MAX) still forking when its task returns. */
START_TEST(test_fork_bomb_ended) {
  fp_pool *p = start(1, 0);
  run_ok(p, "bomb", "bombed");
  assert_all_gone("bomb");
  run_ok(p, "ok", "ok");
}
END_TEST

/* worker_init's own child lives on across tasks, and ends with the pool. */
START_TEST(test_init_children_kept) {
  fp_config cfg;
  tu_config(&cfg, 1, 8);
  cfg.handler = ds_handler;
  cfg.worker_init = ds_init;
  fp_pool *p = tu_start(&cfg);
  ck_assert_int_gt(ds->init[0].pid, 0);
  run_ok(p, "setsid", "forked");
  assert_all_gone("task child");
  ck_assert_msg(!gone(ds->init[0].pid, ds->init[0].start),
                "worker_init's child was ended by a task's end");
  ck_assert_int_eq(fp_pool_stop(p, FP_STOP_NOW, 0), 0);
  ck_assert_msg(gone(ds->init[0].pid, ds->init[0].start),
                "worker_init's child outlived the pool");
}
END_TEST

/* The host's own child is not the pool's to end. */
START_TEST(test_host_child_untouched) {
  pid_t host_kid = fork();
  ck_assert_int_ge(host_kid, 0);
  if (host_kid == 0) {
    sleep_s(30);
    _exit(0);
  }
  fp_pool *p = start(1, 0);
  run_ok(p, "setsid", "forked");
  ck_assert_int_eq(fp_pool_stop(p, FP_STOP_NOW, 0), 0);
  assert_all_gone("after stop");
  int ws;
  ck_assert_int_eq(waitpid(host_kid, &ws, WNOHANG), 0); /* still alive */
  kill(host_kid, SIGKILL);
  ck_assert_int_eq(waitpid(host_kid, &ws, 0), host_kid);
  ck_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
}
END_TEST

/* The number a task outputs ("pid", "rsskb"). */
static long run_num(fp_pool *p, const char *cmd) {
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, cmd), &res);
  ck_assert_int_eq(res.status, FP_OK);
  char b[32];
  ck_assert_uint_lt(res.output_len, sizeof(b));
  memcpy(b, res.output, res.output_len);
  b[res.output_len] = '\0';
  fp_result_release(&res);
  return atol(b);
}

static pid_t run_pid(fp_pool *p) { return (pid_t)run_num(p, "pid"); }

/* max_rss_mb: the task that grew the worker ends ok, the next task runs
 * in a fresh worker, one log line, one restart. */
START_TEST(test_max_rss_recycles) {
  /*
   * A fresh worker's own size first (a sanitizer build's is far larger):
   * the limit is 16 MiB above it, and rss32 grows the worker by 32 MiB.
   */
  fp_config cfg;
  tu_config(&cfg, 1, 8);
  cfg.handler = ds_handler;
  long base_kb = run_num(tu_start(&cfg), "rsskb");
  ck_assert_int_gt(base_kb, 0);
  fp_pool_free(tu_pool);
  tu_pool = NULL;
  unsigned limit = (unsigned)(base_kb / 1024) + 16;
  cfg.max_rss_mb = limit;
  cfg.log = ds_log;
  fp_pool *p = tu_start(&cfg);
  pid_t first = run_pid(p);
  ck_assert_int_eq(run_pid(p), first); /* small: no recycling */
  run_ok(p, "rss32", "grew");
  pid_t second = run_pid(p);
  ck_assert_int_ne(second, first);
  ck_assert_int_eq(run_pid(p), second);
  fp_stats st;
  ck_assert_int_eq(fp_pool_stats(p, &st), 0);
  ck_assert_uint_eq(st.restarts, 1);
  ck_assert_uint_eq(st.ok, 5);
  ck_assert_int_eq(atomic_load(&ds->recycled), 1);
  char want[64], lim[32];
  snprintf(want, sizeof(want), "worker %d recycled", (int)first);
  snprintf(lim, sizeof(lim), "limit of %u MiB", limit);
  ck_assert_msg(
      strstr(ds->last_log, want) != NULL && strstr(ds->last_log, lim) != NULL,
      "log line: %s", ds->last_log);
}
END_TEST

/* Without max_rss_mb nothing is recycled, however big the worker grows. */
START_TEST(test_max_rss_unset) {
  fp_pool *p = start(1, 0);
  pid_t first = run_pid(p);
  run_ok(p, "rss32", "grew");
  ck_assert_int_eq(run_pid(p), first);
}
END_TEST

START_TEST(test_max_rss_validated) {
  fp_config cfg;
  tu_config(&cfg, 1, 8);
  cfg.max_rss_mb = 1024u * 1024u + 1;
  ck_assert_int_eq(fp_config_validate(&cfg), -EINVAL);
  cfg.max_rss_mb = 1024u * 1024u;
  ck_assert_int_eq(fp_config_validate(&cfg), 0);
}
END_TEST

Suite *make_descend_suite(void) {
  Suite *s = suite_create("descend");
  TCase *tc = tcase_create("descendants");
  tcase_add_checked_fixture(tc, ds_setup, ds_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_ok_task_children_gone);
  tcase_add_test(tc, test_zombies_reaped);
  tcase_add_test(tc, test_sigchld_ignored);
  tcase_add_test(tc, test_timeout_kills_setsid_child);
  tcase_add_test(tc, test_stop_kills_setsid_child);
  tcase_add_test(tc, test_fork_bomb_ended);
  tcase_add_test(tc, test_init_children_kept);
  tcase_add_test(tc, test_host_child_untouched);
  suite_add_tcase(s, tc);
  TCase *rss = tcase_create("max_rss");
  tcase_add_checked_fixture(rss, ds_setup, ds_teardown);
  tcase_set_timeout(rss, TU_TCASE_TIMEOUT);
  tcase_add_test(rss, test_max_rss_recycles);
  tcase_add_test(rss, test_max_rss_unset);
  tcase_add_test(rss, test_max_rss_validated);
  suite_add_tcase(s, rss);
  return s;
}
