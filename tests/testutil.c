/*
 * Helpers shared by the Check suites; see testutil.h.
 */
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct tu_shared *tu_sh;
fp_pool *tu_pool;

/* /dev/shm entries seen at setup. */
static char **shm_names;
static size_t shm_count;

/* tu_init calls in this process: each worker starts from 0, as forked from
 * a supervisor that never runs hooks. */
static int proc_inits;

void tu_sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

/*
 * Reads the state letter and starttime of pid from /proc/PID/stat.
 * Returns 0, or -1 when there is no such process (or it is unreadable).
 */
static int proc_stat(pid_t pid, char *state, unsigned long long *start) {
  char path[64], buf[1024], *p;
  ssize_t n;
  int fd;

  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  do n = read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  /* comm may hold spaces and parentheses: fields restart after the last ')'.
   * Then: state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt
   * cmajflt utime stime cutime cstime priority nice threads itrealvalue
   * starttime(22). */
  p = strrchr(buf, ')');
  if (p == NULL ||
      sscanf(p + 1,
             " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
             "%*s %*s %*s %*s %*s %llu",
             state, start) != 2)
    return -1;
  return 0;
}

void tu_note_self(void) {
  static pid_t noted; /* inherited through fork, hence the pid compare */
  pid_t me = getpid();
  char state;
  unsigned long long start;
  int i;

  if (noted == me || tu_sh == NULL) return;
  noted = me;
  if (proc_stat(me, &state, &start) != 0) return;
  i = atomic_fetch_add(&tu_sh->nprocs, 1);
  if (i < TU_MAX_PROCS) {
    tu_sh->procs[i].pid = me;
    tu_sh->procs[i].start = start;
  }
}

/* Returns 1 when the recorded process still exists and is not a zombie. */
static int proc_alive(pid_t pid, unsigned long long start) {
  char state;
  unsigned long long now_start;

  if (proc_stat(pid, &state, &now_start) != 0 || now_start != start)
    return 0; /* gone, or the pid was reused */
  return state != 'Z' && state != 'X';
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists /dev/shm into a sorted array; asserts on failure. */
static char **list_shm(size_t *count) {
  DIR *d = opendir("/dev/shm");
  struct dirent *e;
  char **v = NULL;
  size_t n = 0, cap = 0;

  ck_assert_msg(d != NULL, "opendir /dev/shm: %s", strerror(errno));
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      v = realloc(v, cap * sizeof *v);
      ck_assert_ptr_nonnull(v);
    }
    v[n] = strdup(e->d_name);
    ck_assert_ptr_nonnull(v[n]);
    n++;
  }
  closedir(d);
  if (n > 1) qsort(v, n, sizeof *v, cmp_str);
  *count = n;
  return v;
}

static void free_names(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Asserts that the calling process has no child, live or zombie. */
static void assert_no_children(void) {
  int st;
  pid_t r = waitpid(-1, &st, WNOHANG);
  int err = errno;

  ck_assert_msg(r == -1 && err == ECHILD,
                "a child process is left behind (waitpid: %d, %s)", (int)r,
                r == -1  ? strerror(err)
                : r == 0 ? "still running"
                         : "zombie");
}

void tu_setup(void) {
  tu_pool = NULL;
  tu_sh = mmap(NULL, sizeof *tu_sh, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ck_assert_msg(tu_sh != MAP_FAILED, "mmap: %s", strerror(errno));
  /* An anonymous mapping starts zeroed: every counter is 0, gate closed. */
  tu_sh->pipe_wfd = -1;
  shm_names = list_shm(&shm_count);
  assert_no_children();
}

void tu_teardown(void) {
  char **now;
  size_t n_now;
  int nprocs;

  fp_pool_free(tu_pool);
  tu_pool = NULL;
  assert_no_children();

  /* Workers are the supervisor's children and grandchildren of a forking
   * handler are killed with their worker's process group: none may
   * outlive the pool. The 5 s poll only absorbs the last instants of a
   * process that is already exiting. */
  nprocs = atomic_load(&tu_sh->nprocs);
  if (nprocs > TU_MAX_PROCS) nprocs = TU_MAX_PROCS;
  for (int i = 0; i < nprocs; i++) {
    pid_t pid = tu_sh->procs[i].pid;
    unsigned long long start = tu_sh->procs[i].start;
    int waited = 0;
    while (proc_alive(pid, start) && waited < 5000) {
      tu_sleep_ms(10);
      waited += 10;
    }
    if (proc_alive(pid, start)) {
      kill(pid, SIGKILL); /* tidy up before reporting */
      ck_abort_msg("process %d that ran test code outlived the pool", (int)pid);
    }
  }

  /* Only this test's pool (named fpt<our pid>; private pools make no
   * entry): other programs on the machine, and other runs of these tests
   * at the same time, create and remove their own. */
  char own[32];
  snprintf(own, sizeof own, "forkpool.fpt%d", (int)getpid());
  now = list_shm(&n_now);
  for (size_t i = 0; i < n_now; i++) {
    /* bsearch on an empty snapshot (NULL) is undefined: UBSan says so. */
    int known = shm_count > 0 && bsearch(&now[i], shm_names, shm_count,
                                         sizeof *shm_names, cmp_str) != NULL;
    int ours = strcmp(now[i], own) == 0;
    ck_assert_msg(known || !ours, "/dev/shm/%s is left behind", now[i]);
  }
  free_names(now, n_now);
  free_names(shm_names, shm_count);
  shm_names = NULL;
  munmap(tu_sh, sizeof *tu_sh);
  tu_sh = NULL;
}

/* Parses a whole decimal number. Returns 0, or -1. */
static int parse_long(const char *s, long *out) {
  char *end;
  if (*s == '\0') return -1;
  errno = 0;
  *out = strtol(s, &end, 10);
  return errno != 0 || *end != '\0' ? -1 : 0;
}

/* Writes text into the task output. Returns 0, or ENOBUFS. */
static int put_text(void *out, size_t out_cap, size_t *out_len,
                    const char *text) {
  size_t n = strlen(text);
  if (n > out_cap) return ENOBUFS;
  memcpy(out, text, n);
  *out_len = n;
  return 0;
}

static void sleep_forever(void) {
  for (;;) tu_sleep_ms(1000);
}

/*
 * "forkhang": opens the test's pipe through /proc (the pipe was made after
 * the pool started, so no pool process inherited it), forks a grandchild
 * that keeps the write end open while it sleeps, then hangs. Only the
 * timeout's kill of the whole process group can close that write end before
 * the grandchild's own 60 s limit (which only bounds a leak on failure).
 */
static int fork_and_hang(void) {
  char path[64];
  pid_t pid;
  int fd;

  snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)tu_sh->pipe_pid,
           tu_sh->pipe_wfd);
  fd = open(path, O_WRONLY);
  if (fd < 0) return errno;
  pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    tu_note_self();
    for (int i = 0; i < 600; i++) tu_sleep_ms(100);
    _exit(0);
  }
  tu_sh->gc_pid = pid;
  atomic_store(&tu_sh->gc_ready, 1);
  sleep_forever();
  return 0;
}

int tu_handler(void *arg, const void *in, size_t in_len, void *out,
               size_t out_cap, size_t *out_len) {
  char cmd[128], text[64];
  long n;

  if (arg != tu_sh) return EBADR;
  tu_note_self();
  atomic_fetch_add(&tu_sh->started, 1);
  *out_len = 0;
  if (in_len >= sizeof cmd) {
    if (in_len > out_cap) return ENOBUFS;
    memcpy(out, in, in_len);
    *out_len = in_len;
    return 0;
  }
  /* The input is not NUL-terminated: terminate a copy. */
  memcpy(cmd, in, in_len);
  cmd[in_len] = '\0';

  if (strcmp(cmd, "segv") == 0) {
    volatile int *volatile p = NULL;
    *p = 1;
  } else if (strcmp(cmd, "abort") == 0) {
    abort();
  } else if (strcmp(cmd, "kill") == 0) {
    raise(SIGKILL);
  } else if (strncmp(cmd, "exit ", 5) == 0 && parse_long(cmd + 5, &n) == 0) {
    _exit((int)n);
  } else if (strncmp(cmd, "fail ", 5) == 0 && parse_long(cmd + 5, &n) == 0) {
    return (int)n;
  } else if (strcmp(cmd, "hang") == 0) {
    sleep_forever();
  } else if (strncmp(cmd, "sleep ", 6) == 0 && parse_long(cmd + 6, &n) == 0) {
    tu_sleep_ms(n);
    snprintf(text, sizeof text, "slept %ld", n);
    return put_text(out, out_cap, out_len, text);
  } else if (strcmp(cmd, "block") == 0) {
    while (!atomic_load(&tu_sh->gate)) tu_sleep_ms(1);
    return put_text(out, out_cap, out_len, "open");
  } else if (strncmp(cmd, "tree ", 5) == 0 && parse_long(cmd + 5, &n) == 0) {
    /* A node of depth n spawns two of depth n - 1; depth 1 also a "segv". */
    if (n > 0) {
      char child[32];
      int l = snprintf(child, sizeof child, "tree %ld", n - 1);
      if (fp_spawn(child, (size_t)l) != 0 || fp_spawn(child, (size_t)l) != 0)
        return EIO;
      if (n == 1 && fp_spawn("segv", 4) != 0) return EIO;
    }
    return put_text(out, out_cap, out_len, n > 0 ? "node" : "leaf");
  } else if (strncmp(cmd, "spawnmany ", 10) == 0 &&
             parse_long(cmd + 10, &n) == 0) {
    for (long k = 0; k < n; k++)
      if (fp_spawn("x", 1) != 0) return EIO;
    return put_text(out, out_cap, out_len, "spawned");
  } else if (strcmp(cmd, "order") == 0) {
    /* Its place in the order tasks started in (1 = first of the test). */
    snprintf(text, sizeof text, "%d", atomic_load(&tu_sh->started));
    return put_text(out, out_cap, out_len, text);
  } else if (strcmp(cmd, "crashonce") == 0) {
    /* Crashes the first time any worker runs it, succeeds after. */
    if (atomic_exchange(&tu_sh->once, 1) == 0) raise(SIGSEGV);
    return put_text(out, out_cap, out_len, "survived");
  } else if (strcmp(cmd, "pid") == 0) {
    snprintf(text, sizeof text, "%d", (int)getpid());
    return put_text(out, out_cap, out_len, text);
  } else if (strcmp(cmd, "inits") == 0) {
    snprintf(text, sizeof text, "%d %d", proc_inits, (int)getpid());
    return put_text(out, out_cap, out_len, text);
  } else if (strcmp(cmd, "neg") == 0) {
    return -1;
  } else if (strcmp(cmd, "overflow") == 0) {
    *out_len = out_cap + 1;
    return 0;
  } else if (strcmp(cmd, "forkhang") == 0) {
    return fork_and_hang();
  }
  return put_text(out, out_cap, out_len, cmd);
}

uint64_t tu_square_of(uint64_t n) {
  return (n * n) ^ UINT64_C(0x9e3779b97f4a7c15);
}

int tu_square(void *arg, const void *in, size_t in_len, void *out,
              size_t out_cap, size_t *out_len) {
  uint64_t v[2];

  (void)arg;
  tu_note_self();
  if (in_len != sizeof v[0]) return EINVAL;
  if (out_cap < sizeof v) return ENOBUFS;
  memcpy(&v[0], in, sizeof v[0]);
  v[1] = tu_square_of(v[0]);
  memcpy(out, v, sizeof v);
  *out_len = sizeof v;
  return 0;
}

int tu_init(void *arg) {
  int fail;

  tu_note_self();
  atomic_fetch_add(&tu_sh->inits, 1);
  proc_inits++;
  if (arg != tu_sh) return EBADR;
  fail = atomic_load(&tu_sh->init_fail);
  return fail;
}

void tu_fini(void *arg) {
  (void)arg;
  atomic_fetch_add(&tu_sh->finis, 1);
}

void tu_config(fp_config *cfg, unsigned workers, unsigned slots) {
  fp_config_init(cfg);
  cfg->workers = workers;
  cfg->slots = slots;
  cfg->max_input = TU_IO_BYTES;
  cfg->max_output = TU_IO_BYTES;
  cfg->handler = tu_handler;
  cfg->arg = tu_sh;
}

fp_pool *tu_start(const fp_config *cfg) {
  fp_pool *pool = NULL;
  int rc = fp_pool_start(&pool, cfg);

  ck_assert_msg(rc == 0, "fp_pool_start: %s", fp_strerror(rc));
  ck_assert_ptr_nonnull(pool);
  tu_pool = pool;
  return pool;
}

uint64_t tu_submit(fp_pool *pool, const char *cmd) {
  uint64_t id = 0;
  int rc = fp_submit(pool, cmd, strlen(cmd), TU_GUARD_MS, &id);

  ck_assert_msg(rc == 0, "fp_submit(\"%s\"): %s", cmd, fp_strerror(rc));
  ck_assert_uint_ne(id, 0);
  return id;
}

void tu_wait(fp_pool *pool, uint64_t id, fp_result *res) {
  int rc = fp_wait(pool, id, res, TU_GUARD_MS);

  ck_assert_msg(rc == 0, "fp_wait(%llu): %s", (unsigned long long)id,
                fp_strerror(rc));
  ck_assert_uint_eq(res->id, id);
}

void tu_assert_ok(const fp_result *res, const char *want) {
  size_t n = strlen(want);

  ck_assert_msg(res->status == FP_OK,
                "task %llu: status %s (code %d, signal %d, exit %d), want ok",
                (unsigned long long)res->id, fp_status_name(res->status),
                res->code, res->signal, res->exit_code);
  ck_assert_uint_eq(res->output_len, n);
  if (n > 0) ck_assert_mem_eq(res->output, want, n);
}

void tu_wait_started(int n) {
  int waited = 0;

  while (atomic_load(&tu_sh->started) < n && waited < TU_GUARD_MS) {
    tu_sleep_ms(2);
    waited += 2;
  }
  ck_assert_int_ge(atomic_load(&tu_sh->started), n);
}
