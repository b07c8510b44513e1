/*
 * Named pools through the library: fp_serve in a child process (as
 * `forkpool serve` runs it), producers attaching with fp_pool_open, attach
 * refusals, and what happens when the supervisor or a producer dies.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "segment.h" /* the hostile peer maps the header's queue lock */
#include "suites.h"
#include "testutil.h"

static char name[32];
static char path[64];
static pid_t server;

static void named_setup(void) {
  tu_setup();
  snprintf(name, sizeof(name), "fpt%d", (int)getpid());
  snprintf(path, sizeof(path), "/forkpool.%s", name);
  server = 0;
}

/* Kill our server (if any) and reap it before the leak checks run. */
static void named_teardown(void) {
  if (server > 0) {
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    server = 0;
  }
  shm_unlink(path); /* a test that SIGKILLed its server leaves it stale */
  tu_teardown();
}

static uint64_t ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)(t.tv_sec - t0->tv_sec) * 1000 +
         (uint64_t)((t.tv_nsec - t0->tv_nsec) / 1000000);
}

/* Fork a process that serves `name` with tu_handler; wait until ready. */
static pid_t serve(unsigned workers, unsigned slots, unsigned timeout_ms,
                   int grace_ms) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    fp_config cfg;
    tu_config(&cfg, workers, slots);
    cfg.timeout_ms = timeout_ms;
    fp_serve_config sc;
    fp_serve_config_init(&sc);
    sc.name = name;
    sc.grace_ms = grace_ms;
    sc.max_workers = 8;
    _exit(fp_serve(&cfg, &sc) == 0 ? 0 : 1);
  }
  /* Ready when a producer can attach. */
  for (int k = 0; k < TU_GUARD_MS / 10; k++) {
    fp_pool *p;
    if (fp_pool_open(&p, name, FP_OPEN_MONITOR) == 0) {
      fp_stats st;
      fp_pool_stats(p, &st);
      int running = st.state == FP_POOL_RUNNING;
      fp_pool_free(p);
      if (running) return pid;
    }
    tu_sleep_ms(10);
  }
  ck_abort_msg("pool %s never became ready", name);
  return -1;
}

static fp_pool *attach(void) {
  fp_pool *p = NULL;
  int err = fp_pool_open(&p, name, 0);
  ck_assert_msg(err == 0, "fp_pool_open: %s", fp_strerror(err));
  return p;
}

static int stop_server(int sig) {
  int ws;
  kill(server, sig);
  ck_assert_int_eq(waitpid(server, &ws, 0), server);
  server = 0;
  return ws;
}

START_TEST(test_open_missing_pool) {
  fp_pool *p = NULL;
  ck_assert_int_eq(fp_pool_open(&p, name, 0), -ENOENT);
  ck_assert_int_eq(fp_pool_open(&p, "bad/name", 0), -EINVAL);
  ck_assert_int_eq(fp_pool_open(&p, "", 0), -EINVAL);
  ck_assert_int_eq(fp_pool_open(&p, "-x", 0), -EINVAL);
  ck_assert_int_eq(fp_pool_open(&p, name, 0x80), -EINVAL);
  ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_name_rules) {
  ck_assert_int_eq(fp_name_validate("demo"), 0);
  ck_assert_int_eq(fp_name_validate("a_b-9"), 0);
  ck_assert_int_eq(fp_name_validate("a.b"), -EINVAL);
  ck_assert_int_eq(fp_name_validate("a b"), -EINVAL);
  char longname[FP_NAME_MAX + 2];
  memset(longname, 'a', sizeof(longname));
  longname[FP_NAME_MAX] = '\0';
  ck_assert_int_eq(fp_name_validate(longname), 0);
  longname[FP_NAME_MAX] = 'a';
  longname[FP_NAME_MAX + 1] = '\0';
  ck_assert_int_eq(fp_name_validate(longname), -EINVAL);
}
END_TEST

START_TEST(test_serve_submit_wait_and_stats) {
  server = serve(2, 16, 0, 5000);
  fp_pool *p = attach();
  fp_result res;
  fp_result_init(&res);
  uint64_t a = tu_submit(p, "hello"), b = tu_submit(p, "segv");
  tu_wait(p, a, &res);
  tu_assert_ok(&res, "hello");
  tu_wait(p, b, &res);
  ck_assert_int_eq(res.status, FP_CRASHED);
  ck_assert_int_eq(res.signal, SIGSEGV);
  fp_stats st;
  ck_assert_int_eq(fp_pool_stats(p, &st), 0);
  ck_assert_uint_eq(st.submitted, 2);
  ck_assert_uint_eq(st.ok, 1);
  ck_assert_uint_eq(st.crashed, 1);
  ck_assert_uint_eq(st.clients, 1);
  ck_assert_int_eq(st.supervisor, server);
  ck_assert_int_eq(fp_pool_stop(p, FP_STOP_NOW, 0), -EPERM);
  fp_worker_info wi;
  ck_assert_int_eq(fp_pool_worker(p, 0, &wi), 0);
  for (int k = 0; k < 500 && wi.pid == 0; k++) { /* a replacement forks */
    tu_sleep_ms(10);
    ck_assert_int_eq(fp_pool_worker(p, 0, &wi), 0);
  }
  ck_assert_int_gt(wi.pid, 0);
  ck_assert_int_eq(fp_pool_worker(p, st.rows, &wi), -ERANGE);
  fp_result_release(&res);
  fp_pool_free(p);
  int ws = stop_server(SIGTERM);
  ck_assert(WIFEXITED(ws));
  ck_assert_int_eq(WEXITSTATUS(ws), 0);
  ck_assert_int_eq(fp_pool_open(&p, name, 0), -ENOENT); /* segment removed */
}
END_TEST

START_TEST(test_second_serve_refused) {
  server = serve(1, 4, 0, 1000);
  fp_config cfg;
  tu_config(&cfg, 1, 4);
  fp_serve_config sc;
  fp_serve_config_init(&sc);
  sc.name = name;
  ck_assert_int_eq(fp_serve(&cfg, &sc), -EADDRINUSE);
  /* The first one is untouched and serves. */
  fp_pool *p = attach();
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "still"), &res);
  tu_assert_ok(&res, "still");
  fp_result_release(&res);
  fp_pool_free(p);
}
END_TEST

/* Write a fake segment file, optionally holding its liveness lock. */
static int fake_segment(const void *bytes, size_t len, int hold) {
  int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
  ck_assert_int_eq(pwrite(fd, bytes, len, 0), (ssize_t)len);
  if (hold) {
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
    ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
  }
  return fd;
}

START_TEST(test_attach_refuses_garbage_and_stale) {
  unsigned char junk[8192];
  for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (unsigned char)(i * 7);
  fp_pool *p = NULL;
  int fd = fake_segment(junk, sizeof(junk), 1);
  ck_assert_int_eq(fp_pool_open(&p, name, 0), -EBADMSG);
  ck_assert_int_eq(fp_pool_open(&p, name, FP_OPEN_MONITOR), -EBADMSG);
  close(fd); /* lock released: now it is a segment nobody serves */
  ck_assert_int_eq(fp_pool_open(&p, name, 0), -ECONNREFUSED);
  /* A new server replaces the stale object. */
  server = serve(1, 4, 0, 1000);
  p = attach();
  fp_pool_free(p);
}
END_TEST

START_TEST(test_attach_refuses_other_version_and_corrupt_sizes) {
  server = serve(1, 4, 0, 1000);
  /* Copy the live header into a fake pool under another name. */
  fp_pool *live = attach();
  fp_pool_free(live);
  int lfd = shm_open(path, O_RDONLY, 0);
  ck_assert_int_ge(lfd, 0);
  struct stat stt;
  ck_assert_int_eq(fstat(lfd, &stt), 0);
  unsigned char *copy = malloc((size_t)stt.st_size);
  ck_assert_ptr_nonnull(copy);
  ck_assert_int_eq(pread(lfd, copy, (size_t)stt.st_size, 0), stt.st_size);
  close(lfd);
  ck_assert_int_eq(stop_server(SIGTERM) & 0x7f, 0);

  uint32_t *version = (uint32_t *)(copy + 8);
  (*version)++;
  fp_pool *p = NULL;
  int fd = fake_segment(copy, (size_t)stt.st_size, 1);
  ck_assert_int_eq(fp_pool_open(&p, name, 0), -EPROTO);
  close(fd);
  shm_unlink(path);

  (*version)--;
  uint64_t *seg_bytes = (uint64_t *)(copy + 16);
  *seg_bytes *= 2; /* claims more than the mapping holds */
  fd = fake_segment(copy, (size_t)stt.st_size, 1);
  ck_assert_int_eq(fp_pool_open(&p, name, 0), -EBADMSG);
  /* Truncated below a header. */
  ck_assert_int_eq(ftruncate(fd, 100), 0);
  ck_assert_int_eq(fp_pool_open(&p, name, 0), -EBADMSG);
  close(fd);
  free(copy);
}
END_TEST

START_TEST(test_attach_refuses_foreign_owner) {
  if (geteuid() != 0) return; /* only root can make another user's object */
  unsigned char junk[4096] = {0};
  int fd = fake_segment(junk, sizeof(junk), 1);
  ck_assert_int_eq(fchown(fd, 12345, 12345), 0);
  fp_pool *p = NULL;
  ck_assert_int_eq(fp_pool_open(&p, name, 0), -EACCES);
  close(fd);
}
END_TEST

/* Producers blocked in wait learn of a SIGKILLed supervisor in time. */
START_TEST(test_supervisor_sigkill_releases_producers) {
  server = serve(2, 4, 0, 1000);
  fp_pool *p = attach();
  uint64_t a = tu_submit(p, "hang"), b = tu_submit(p, "hang");
  tu_submit(p, "hang"); /* our share: 3 of the 4 slots */
  tu_wait_started(2);
  pid_t workers[2];
  for (unsigned r = 0; r < 2; r++) {
    fp_worker_info wi;
    ck_assert_int_eq(fp_pool_worker(p, r, &wi), 0);
    workers[r] = wi.pid;
  }
  /* A blocked submitter, in another process. */
  pid_t sub = fork();
  ck_assert_int_ge(sub, 0);
  if (sub == 0) {
    fp_pool *q;
    uint64_t id;
    if (fp_pool_open(&q, name, 0) != 0) _exit(10);
    /* The last free slot, then the queue is full: it blocks. */
    if (fp_submit(q, "x", 1, FP_FOREVER, &id) != 0) _exit(12);
    int r = fp_submit(q, "x", 1, FP_FOREVER, &id);
    _exit(r == -EPIPE ? 0 : 11);
  }
  tu_sleep_ms(100);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  kill(server, SIGKILL);
  waitpid(server, NULL, 0);
  server = 0;
  fp_result res;
  fp_result_init(&res);
  ck_assert_int_eq(fp_wait(p, a, &res, TU_GUARD_MS), -EPIPE);
  uint64_t waited = ms_since(&t0);
  ck_assert_int_eq(fp_wait(p, b, &res, TU_GUARD_MS), -EPIPE);
  ck_assert_int_eq(fp_submit(p, "y", 1, FP_FOREVER, &a), -EPIPE);
  int ws;
  ck_assert_int_eq(waitpid(sub, &ws, 0), sub);
  ck_assert_int_eq(WEXITSTATUS(ws), 0);
  /* Workers die with the supervisor (parent-death signal). */
  for (int k = 0; k < 2; k++)
    for (int n = 0; n < 500 && kill(workers[k], 0) == 0; n++) tu_sleep_ms(10);
  ck_assert_int_ne(kill(workers[0], 0), 0);
  ck_assert_int_ne(kill(workers[1], 0), 0);
  printf("supervisor SIGKILL: blocked fp_wait returned -EPIPE after %llu ms\n",
         (unsigned long long)waited);
  fp_result_release(&res);
  fp_pool_free(p);
  /* The stale name can be served again. */
  server = serve(1, 4, 0, 1000);
}
END_TEST

/* A producer SIGKILLed with tasks queued, running and finished. */
START_TEST(test_producer_death_restores_capacity) {
  const unsigned slots = 8, share = slots - slots / 4; /* a lone producer's */
  server = serve(1, slots, 0, 1000);
  pid_t prod = fork();
  ck_assert_int_ge(prod, 0);
  if (prod == 0) {
    fp_pool *q;
    uint64_t id;
    if (fp_pool_open(&q, name, 0) != 0) _exit(10);
    fp_submit(q, "quick", 5, FP_FOREVER, &id); /* finishes, never collected */
    for (unsigned k = 1; k < share; k++)
      fp_submit(q, "sleep 50", 8, FP_FOREVER, &id);
    pause(); /* killed here, holding its whole share */
    _exit(0);
  }
  /* Watch without attaching: a second producer would halve its share. */
  fp_pool *mon = NULL;
  ck_assert_int_eq(fp_pool_open(&mon, name, FP_OPEN_MONITOR), 0);
  int r = -EAGAIN;
  for (int k = 0; k < 100 && r != 0; k++) {
    fp_stats st;
    fp_pool_stats(mon, &st);
    if (st.submitted == share) r = 0;
    else tu_sleep_ms(10);
  }
  fp_pool_free(mon);
  ck_assert_int_eq(r, 0);
  kill(prod, SIGKILL);
  waitpid(prod, NULL, 0);
  fp_pool *p = attach();
  /* The supervisor counts one producer again: its share is ours. */
  tu_sleep_ms(300);
  /* Its queued tasks still run; then every slot comes back to us. */
  uint64_t ids[8];
  for (unsigned k = 0; k < share; k++) {
    r = fp_submit(p, "mine", 4, TU_GUARD_MS, &ids[k]);
    ck_assert_msg(r == 0, "slot %u never came back: %s", k, fp_strerror(r));
  }
  fp_result res;
  fp_result_init(&res);
  for (unsigned k = 0; k < share; k++) {
    tu_wait(p, ids[k], &res);
    tu_assert_ok(&res, "mine");
  }
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.abandoned, share); /* 1 done early + 5 later */
  ck_assert_uint_eq(st.submitted, 2 * share);
  ck_assert_uint_eq(st.ok, 2 * share);
  fp_result_release(&res);
  fp_pool_free(p);
}
END_TEST

/* A new producer takes the row of one just killed: its leftovers still go. */
START_TEST(test_row_reuse_does_not_shield_leftovers) {
  const unsigned slots = 4, share = slots - slots / 4; /* a lone producer's */
  server = serve(1, slots, 0, 1000);
  pid_t prod = fork();
  ck_assert_int_ge(prod, 0);
  if (prod == 0) {
    fp_pool *q;
    uint64_t id;
    if (fp_pool_open(&q, name, 0) != 0) _exit(10);
    for (unsigned k = 0; k < share; k++)
      fp_submit(q, "sleep 30", 8, FP_FOREVER, &id);
    pause();
    _exit(0);
  }
  fp_pool *mon;
  ck_assert_int_eq(fp_pool_open(&mon, name, FP_OPEN_MONITOR), 0);
  fp_stats st;
  for (int k = 0; k < 500; k++) {
    fp_pool_stats(mon, &st);
    if (st.submitted == share) break;
    tu_sleep_ms(10);
  }
  ck_assert_uint_eq(st.submitted, share);
  kill(prod, SIGKILL);
  waitpid(prod, NULL, 0);
  /* At once, before the supervisor's next look: we get the dead row. */
  fp_pool *p = attach();
  uint64_t id;
  int r = fp_submit(p, "mine", 4, TU_GUARD_MS, &id);
  ck_assert_msg(r == 0, "submit: %s", fp_strerror(r));
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, id, &res);
  tu_assert_ok(&res, "mine");
  /* (A slot was free for us: the leftovers go at the supervisor's pace.) */
  for (int k = 0; k < TU_GUARD_MS / 10; k++) {
    fp_pool_stats(mon, &st);
    if (st.abandoned >= share) break;
    tu_sleep_ms(10);
  }
  ck_assert_uint_eq(st.abandoned, share);
  fp_result_release(&res);
  fp_pool_free(p);
  fp_pool_free(mon);
}
END_TEST

/* SIGTERM drains: queued tasks finish ok, the segment goes away. */
START_TEST(test_sigterm_drains_queued_work) {
  server = serve(2, 32, 0, 10000);
  fp_pool *p = attach();
  uint64_t ids[20];
  for (int k = 0; k < 20; k++) ids[k] = tu_submit(p, "sleep 20");
  kill(server, SIGTERM);
  uint64_t late;
  int r = 0;
  for (int k = 0; k < 200 && r == 0; k++) {
    r = fp_submit(p, "late", 4, FP_NOWAIT, &late);
    if (r == 0) {
      fp_result res;
      fp_result_init(&res);
      tu_wait(p, late, &res); /* accepted before the drain began: fine */
      fp_result_release(&res);
      tu_sleep_ms(5);
    }
  }
  ck_assert_int_eq(r, -ESHUTDOWN);
  fp_result res;
  fp_result_init(&res);
  for (int k = 0; k < 20; k++) {
    tu_wait(p, ids[k], &res);
    tu_assert_ok(&res, "slept 20");
  }
  fp_result_release(&res);
  int ws;
  ck_assert_int_eq(waitpid(server, &ws, 0), server);
  server = 0;
  ck_assert(WIFEXITED(ws));
  ck_assert_int_eq(WEXITSTATUS(ws), 0);
  fp_pool_free(p);
  ck_assert_int_eq(shm_open(path, O_RDONLY, 0), -1);
  ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* SIGTERM with a short grace: running tasks end cancelled, producers told. */
START_TEST(test_sigterm_grace_cancels_the_rest) {
  server = serve(1, 8, 0, 200);
  fp_pool *p = attach();
  uint64_t run = tu_submit(p, "hang"), queued = tu_submit(p, "hang");
  tu_wait_started(1);
  int ws = stop_server(SIGTERM);
  ck_assert_int_eq(WEXITSTATUS(ws), 0);
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, run, &res);
  ck_assert_int_eq(res.status, FP_CANCELLED);
  tu_wait(p, queued, &res);
  ck_assert_int_eq(res.status, FP_CANCELLED);
  fp_result_release(&res);
  fp_pool_free(p);
}
END_TEST

/* Run `n` tasks while `sig` is sent `times` times; all must end ok. */
static void load_with_signal(fp_pool *p, int sig, int times) {
  enum { N = 400 };
  uint64_t ids[N];
  fp_result res;
  fp_result_init(&res);
  int sent = 0;
  for (int k = 0; k < N; k++) {
    ids[k] = 0;
    ck_assert_int_eq(fp_submit(p, "sleep 2", 7, TU_GUARD_MS, &ids[k]), 0);
    if (k % (N / (times + 1)) == N / (times + 1) - 1 && sent < times) {
      kill(server, sig);
      sent++;
    }
    if (k >= 8) {
      tu_wait(p, ids[k - 8], &res);
      tu_assert_ok(&res, "slept 2");
    }
  }
  for (int k = N - 8; k < N; k++) {
    tu_wait(p, ids[k], &res);
    tu_assert_ok(&res, "slept 2");
  }
  fp_result_release(&res);
}

static void worker_pids(fp_pool *p, pid_t *out, unsigned n) {
  for (unsigned r = 0; r < n; r++) {
    fp_worker_info wi;
    ck_assert_int_eq(fp_pool_worker(p, r, &wi), 0);
    out[r] = wi.pid;
  }
}

START_TEST(test_sighup_replaces_workers_without_loss) {
  server = serve(2, 16, 0, 5000);
  fp_pool *p = attach();
  pid_t before[2], after[2];
  worker_pids(p, before, 2);
  load_with_signal(p, SIGHUP, 1);
  /* The reload finishes between tasks; give it the time it needs. */
  for (int k = 0; k < 500; k++) {
    worker_pids(p, after, 2);
    if (after[0] > 0 && after[1] > 0 && after[0] != before[0] &&
        after[1] != before[1])
      break;
    tu_sleep_ms(10);
  }
  ck_assert_int_ne(after[0], before[0]);
  ck_assert_int_ne(after[1], before[1]);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.failed + st.crashed + st.timeout + st.cancelled, 0);
  ck_assert_uint_eq(st.ok, st.submitted);
  fp_pool_free(p);
}
END_TEST

static unsigned wait_alive(fp_pool *p, unsigned want) {
  fp_stats st;
  for (int k = 0; k < 500; k++) {
    fp_pool_stats(p, &st);
    if (st.alive == want && st.workers == want) return want;
    tu_sleep_ms(10);
  }
  return st.alive;
}

START_TEST(test_sigttin_sigttou_resize_without_loss) {
  server = serve(2, 16, 0, 5000);
  fp_pool *p = attach();
  load_with_signal(p, SIGTTIN, 1);
  ck_assert_uint_eq(wait_alive(p, 3), 3);
  load_with_signal(p, SIGTTOU, 2);
  ck_assert_uint_eq(wait_alive(p, 1), 1);
  kill(server, SIGTTOU); /* never below one */
  tu_sleep_ms(100);
  ck_assert_uint_eq(wait_alive(p, 1), 1);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.ok, st.submitted);
  fp_pool_free(p);
}
END_TEST

/* Producer processes at once; each gets exactly its own results. */
START_TEST(test_concurrent_producers_get_their_own_results) {
  enum { PRODUCERS = 4, TASKS = 3000 };
  server = serve(2, 64, 0, 5000);
  pid_t kids[PRODUCERS];
  for (int c = 0; c < PRODUCERS; c++) {
    kids[c] = fork();
    ck_assert_int_ge(kids[c], 0);
    if (kids[c] == 0) {
      fp_pool *q;
      if (fp_pool_open(&q, name, 0) != 0) _exit(10);
      fp_result res;
      fp_result_init(&res);
      int sent = 0, got = 0;
      char buf[64];
      while (got < TASKS) {
        uint64_t id;
        while (sent < TASKS) {
          int n = snprintf(buf, sizeof(buf), "p%d-%d", c, sent);
          /* Others may hold every slot: with nothing of ours pending,
           * wait for space instead of spinning. */
          int r = fp_submit(q, buf, (size_t)n,
                            fp_pending(q) == 0 ? TU_GUARD_MS : FP_NOWAIT, &id);
          if (r == -EAGAIN) break;
          if (r != 0) _exit(11);
          sent++;
        }
        int r = fp_collect(q, &res, TU_GUARD_MS);
        if (r != 0 || res.status != FP_OK) {
          fprintf(stderr, "producer %d: collect %d (%s) status %s sig %d\n", c,
                  r, fp_strerror(r), fp_status_name(res.status), res.signal);
          _exit(12);
        }
        /* Our own marker, never another producer's. */
        if (res.output_len < 3 || res.output[0] != 'p' ||
            res.output[1] != '0' + c || res.output[2] != '-')
          _exit(13);
        got++;
      }
      fp_result_release(&res);
      fp_pool_free(q);
      _exit(0);
    }
  }
  for (int c = 0; c < PRODUCERS; c++) {
    int ws;
    ck_assert_int_eq(waitpid(kids[c], &ws, 0), kids[c]);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
                  "producer %d failed with status %d", c, ws);
  }
  fp_pool *p;
  ck_assert_int_eq(fp_pool_open(&p, name, FP_OPEN_MONITOR), 0);
  fp_stats st;
  fp_pool_stats(p, &st);
  ck_assert_uint_eq(st.submitted, PRODUCERS * TASKS);
  ck_assert_uint_eq(st.ok, PRODUCERS * TASKS);
  ck_assert_uint_eq(st.abandoned, 0);
  uint64_t id;
  ck_assert_int_eq(fp_submit(p, "x", 1, FP_NOWAIT, &id), -EPERM);
  fp_pool_free(p);
}
END_TEST

/* ---- Hostile peers: nobody may freeze the pool (issue 13, items 8-10) - */

/*
 * A peer producer (as a group member of a --mode 0660 pool could be) that
 * submits and collects as fast as it can, taking fresh slots too (it
 * collects only every other round, so its batch of collected slots runs
 * dry). The caller SIGSTOPs it at arbitrary instants: whatever it was in
 * the middle of, nobody else may have to wait for it (issue 14: no lock is
 * left on any path). SIGKILL it to end it.
 */
static pid_t busy_peer(void) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    fp_pool *q = NULL;
    if (fp_pool_open(&q, name, 0) != 0) _exit(10);
    fp_result r;
    fp_result_init(&r);
    for (unsigned k = 0;; k++) {
      uint64_t id;
      (void)fp_submit(q, "x", 1, 100, &id);
      (void)fp_submit(q, "y", 1, 100, &id);
      if (k & 1)
        while (fp_collect(q, &r, 0) == 0) {
        }
    }
  }
  tu_sleep_ms(50);
  return pid;
}

static void end_peer(pid_t pid) {
  kill(pid, SIGCONT);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/*
 * Item 8 (issue 14): a peer producer stopped at any instant delays no call
 * of another beyond its timeout; here none at all: fresh-slot submits,
 * waits, collects and cancels go on at once, in every one of 20 stops.
 */
START_TEST(test_stopped_peer_stalls_nobody) {
  server = serve(2, 64, 0, 1000);
  fp_pool *p = attach();
  fp_result res;
  fp_result_init(&res);
  pid_t peer = busy_peer();
  uint64_t worst = 0;
  int bad = 0;
  for (int round = 0; round < 20 && !bad; round++) {
    tu_sleep_ms(round % 7);
    kill(peer, SIGSTOP);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t ids[4];
    for (int k = 0; k < 4 && !bad; k++)
      bad = fp_submit(p, "z", 1, 2000, &ids[k]) != 0;
    int c = bad ? -1 : fp_cancel(p, ids[3]);
    for (int k = 0; k < 3 && !bad; k++)
      bad = fp_wait(p, ids[k], &res, 2000) != 0 || res.status != FP_OK;
    if (!bad && c != 0 && c != -EINPROGRESS && c != -EALREADY) bad = 1;
    if (!bad) bad = fp_wait(p, ids[3], &res, 2000) != 0;
    uint64_t ms = ms_since(&t0);
    if (ms > worst) worst = ms;
    kill(peer, SIGCONT);
  }
  end_peer(peer);
  ck_assert_msg(!bad, "a call failed with the peer stopped");
  /* Generous: each round is a few milliseconds of work. */
  ck_assert_msg(worst < 1500, "a round with the peer stopped took %llu ms",
                (unsigned long long)worst);
  fp_result_release(&res);
  fp_pool_free(p);
}
END_TEST

/* Item 8: serve stops on SIGTERM while a peer producer is stopped. */
START_TEST(test_sigterm_while_peer_stopped) {
  server = serve(2, 16, 0, 1000);
  fp_pool *p = attach();
  uint64_t id = tu_submit(p, "sleep 5000"); /* running */
  (void)id;
  for (int k = 0; k < 4; k++) tu_submit(p, "queued");
  tu_wait_started(1);
  pid_t peer = busy_peer();
  kill(peer, SIGSTOP);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  kill(server, SIGTERM);
  int ws = 0;
  pid_t w = 0;
  while (ms_since(&t0) < 10000 && (w = waitpid(server, &ws, WNOHANG)) == 0)
    tu_sleep_ms(10);
  uint64_t ms = ms_since(&t0);
  end_peer(peer);
  fp_pool_free(p);
  ck_assert_msg(w == server, "serve still runs %llu ms after SIGTERM",
                (unsigned long long)ms);
  server = 0;
  ck_assert(WIFEXITED(ws));
  ck_assert_int_eq(WEXITSTATUS(ws), 0);
  /* Grace 1000 ms, then a bounded stop. */
  ck_assert_msg(ms < 6000, "stopped after %llu ms", (unsigned long long)ms);
}
END_TEST

/* 1 if /proc says pid is stopped. */
static int is_stopped(pid_t pid) {
  char pth[64], buf[512];
  snprintf(pth, sizeof(pth), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(pth, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *q = strrchr(buf, ')');
  return q != NULL && q[1] == ' ' && q[2] == 'T';
}

/*
 * Item 8 (issue 14): workers take no lock, so a worker SIGSTOPped at any
 * instant holds nothing another process needs. With one of two workers
 * stopped while idle, every task submitted meanwhile runs on the other.
 */
START_TEST(test_stopped_worker_stalls_nobody) {
  server = serve(2, 16, 0, 1000);
  fp_pool *p = attach();
  fp_result res;
  fp_result_init(&res);
  tu_wait(p, tu_submit(p, "before"), &res);
  tu_assert_ok(&res, "before");
  fp_worker_info wi;
  ck_assert_int_eq(fp_pool_worker(p, 0, &wi), 0);
  pid_t w = wi.pid;
  ck_assert_int_gt(w, 0);
  ck_assert_int_eq(kill(w, SIGSTOP), 0);
  for (int k = 0; k < 2000 && !is_stopped(w); k++) usleep(50);
  uint64_t ids[10]; /* within the share of 16 slots: 12 */
  int r = 0, n = 0;
  for (; n < 10; n++)
    if ((r = fp_submit(p, "after", 5, 10000, &ids[n])) != 0) break;
  int got = 0;
  for (int k = 0; k < n; k++) {
    if (fp_wait(p, ids[k], &res, 5000) != 0) break;
    got += res.status == FP_OK;
  }
  kill(w, SIGCONT);
  ck_assert_msg(r == 0 && n == 10, "submit %d: %s", n, fp_strerror(r));
  ck_assert_int_eq(got, 10);
  fp_result_release(&res);
  fp_pool_free(p);
}
END_TEST

/*
 * Item 9: a producer that stops collecting cannot starve another. It holds
 * its share of the slots, never all of them; a newcomer's timed submit gets
 * a slot and its result.
 */
START_TEST(test_producer_that_stops_collecting_starves_nobody) {
  const unsigned slots = 16;
  server = serve(2, slots, 0, 1000);
  fp_pool *a = attach();
  uint64_t id;
  unsigned held = 0;
  while (held < slots && fp_submit(a, "x", 1, FP_NOWAIT, &id) == 0) held++;
  if (held < slots - slots / 4) {
    /* Only running tasks may have stood in the way: wait for a slot. */
    while (held < slots && fp_submit(a, "x", 1, 200, &id) == 0) held++;
  }
  ck_assert_uint_le(held, slots - slots / 4);
  ck_assert_uint_ge(held, 1);
  /* A second producer that stops collecting: it may not take the last
   * free slots either, only its part of them. */
  fp_pool *c = attach();
  unsigned held_c = 0;
  while (held_c < slots && fp_submit(c, "x", 1, FP_NOWAIT, &id) == 0) held_c++;
  ck_assert_uint_ge(held_c, 1);
  ck_assert_uint_lt(held + held_c, slots);
  fp_pool *b = attach();
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int r = fp_submit(b, "hello", 5, 2000, &id);
  ck_assert_msg(r == 0, "second producer: %s after %llu ms", fp_strerror(r),
                (unsigned long long)ms_since(&t0));
  fp_result res;
  fp_result_init(&res);
  ck_assert_int_eq(fp_wait(b, id, &res, 2000), 0);
  tu_assert_ok(&res, "hello");
  /* Once the supervisor counted both, the hog may not add more. */
  tu_sleep_ms(300);
  ck_assert_int_eq(fp_submit(a, "x", 1, FP_NOWAIT, &id), -EAGAIN);
  fp_result_release(&res);
  fp_pool_free(b);
  fp_pool_free(c);
  fp_pool_free(a);
}
END_TEST

/*
 * Item 10: more submits than the caller's share before collecting, with
 * FP_FOREVER: -EDEADLK once its own finished results fill its share,
 * never a hang. Collecting makes room again.
 */
START_TEST(test_submit_beyond_share_is_edeadlk) {
  server = serve(2, 4, 0, 1000);
  fp_pool *p = attach();
  uint64_t ids[10];
  int r = 0;
  unsigned n = 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (; n < 10; n++)
    if ((r = fp_submit(p, "x", 1, FP_FOREVER, &ids[n])) != 0) break;
  ck_assert_int_eq(r, -EDEADLK);
  ck_assert_uint_eq(n, 3); /* the share of a lone producer of 4 slots */
  ck_assert_msg(ms_since(&t0) < 5000, "took %llu ms",
                (unsigned long long)ms_since(&t0));
  fp_result res;
  fp_result_init(&res);
  ck_assert_int_eq(fp_collect(p, &res, TU_GUARD_MS), 0);
  ck_assert_int_eq(fp_submit(p, "y", 1, FP_FOREVER, &ids[0]), 0);
  while (fp_pending(p) > 0)
    ck_assert_int_eq(fp_collect(p, &res, TU_GUARD_MS), 0);
  fp_result_release(&res);
  fp_pool_free(p);
}
END_TEST

Suite *make_named_suite(void) {
  Suite *s = suite_create("named");
  TCase *tc = tcase_create("attach");
  tcase_add_checked_fixture(tc, named_setup, named_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_open_missing_pool);
  tcase_add_test(tc, test_name_rules);
  tcase_add_test(tc, test_serve_submit_wait_and_stats);
  tcase_add_test(tc, test_second_serve_refused);
  tcase_add_test(tc, test_attach_refuses_garbage_and_stale);
  tcase_add_test(tc, test_attach_refuses_other_version_and_corrupt_sizes);
  tcase_add_test(tc, test_attach_refuses_foreign_owner);
  suite_add_tcase(s, tc);

  tc = tcase_create("deaths");
  tcase_add_checked_fixture(tc, named_setup, named_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_supervisor_sigkill_releases_producers);
  tcase_add_test(tc, test_producer_death_restores_capacity);
  tcase_add_test(tc, test_row_reuse_does_not_shield_leftovers);
  suite_add_tcase(s, tc);

  tc = tcase_create("signals");
  tcase_add_checked_fixture(tc, named_setup, named_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT);
  tcase_add_test(tc, test_sigterm_drains_queued_work);
  tcase_add_test(tc, test_sigterm_grace_cancels_the_rest);
  tcase_add_test(tc, test_sighup_replaces_workers_without_loss);
  tcase_add_test(tc, test_sigttin_sigttou_resize_without_loss);
  tcase_add_test(tc, test_concurrent_producers_get_their_own_results);
  suite_add_tcase(s, tc);

  tc = tcase_create("hostile");
  tcase_add_checked_fixture(tc, named_setup, named_teardown);
  tcase_set_timeout(tc, TU_TCASE_TIMEOUT + 20);
  tcase_add_test(tc, test_stopped_peer_stalls_nobody);
  tcase_add_test(tc, test_sigterm_while_peer_stopped);
  tcase_add_test(tc, test_stopped_worker_stalls_nobody);
  tcase_add_test(tc, test_producer_that_stops_collecting_starves_nobody);
  tcase_add_test(tc, test_submit_beyond_share_is_edeadlk);
  suite_add_tcase(s, tc);
  return s;
}
