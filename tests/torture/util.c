/*
 * Helpers shared by the torture scenarios; see torture.h.
 */
#include "torture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *tt_name = "?";
int tt_failures;
uint64_t tt_seed;

void tt_fail(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  fflush(stdout);
  fprintf(stderr, "torture %s: FAILED CHECK: %s\n", tt_name, buf);
  tt_failures++;
}

int tt_summary(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (tt_failures > 0)
    fprintf(stderr, "torture %s: %d check(s) failed (TORTURE_SEED=%llu)\n",
            tt_name, tt_failures, (unsigned long long)tt_seed);
  printf("torture %s: %s: %s\n", tt_name, buf, tt_failures ? "FAIL" : "PASS");
  fflush(stdout);
  return tt_failures ? 1 : 0;
}

uint64_t tt_param(const char *name, uint64_t dflt) {
  const char *v = getenv(name);
  if (v == NULL || *v == '\0') return dflt;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 0);
  return errno == 0 && *end == '\0' && n > 0 ? (uint64_t)n : dflt;
}

uint64_t tt_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t tt_ms_since(uint64_t t0_ns) {
  uint64_t now = tt_now_ns();
  return now > t0_ns ? (now - t0_ns) / 1000000u : 0;
}

void tt_sleep_us(uint64_t us) {
  struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                        .tv_nsec = (long)(us % 1000000u) * 1000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

uint64_t tt_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * UINT64_C(0x2545f4914f6cdd1d);
}

uint64_t tt_rand_below(uint64_t *state, uint64_t n) {
  return tt_rand(state) % n;
}

void tt_flight_put(struct tt_flight *f, uint64_t id, uint64_t val) {
  if (f->n < TT_FLIGHT_MAX) {
    f->id[f->n] = id;
    f->val[f->n++] = val;
  }
}

int tt_flight_take(struct tt_flight *f, uint64_t id, uint64_t *val) {
  for (unsigned k = 0; k < f->n; k++)
    if (f->id[k] == id) {
      *val = f->val[k];
      f->n--;
      f->id[k] = f->id[f->n];
      f->val[k] = f->val[f->n];
      return 1;
    }
  return 0;
}

/* State letter and parent of pid, from /proc/PID/stat. 0, or -1. */
static int proc_state(pid_t pid, char *state, pid_t *ppid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do n = read(fd, buf, sizeof(buf) - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  /* comm may hold spaces and ')': the fields restart after the last ')'. */
  char *p = strrchr(buf, ')');
  int pp;
  if (p == NULL || sscanf(p + 1, " %c %d", state, &pp) != 2) return -1;
  *ppid = pp;
  return 0;
}

int tt_pidfd(pid_t pid) { return pid > 0 ? pidfd_open(pid, 0) : -1; }

int tt_pidfd_child_of(pid_t pid, pid_t parent) {
  int fd = tt_pidfd(pid);
  if (fd < 0) return -1;
  /*
   * The pidfd names one process. If /proc then shows pid as parent's live
   * child, either that is the process of the pidfd, or it was reaped and
   * its pid reused in between: then the pidfd names a dead process and
   * every signal sent through it fails (ESRCH). Either way a reused pid is
   * never signalled.
   */
  char st;
  pid_t pp;
  if (proc_state(pid, &st, &pp) == 0 && pp == parent && st != 'Z') return fd;
  close(fd);
  return -1;
}

int tt_kill_child_of(pid_t pid, pid_t parent, int sig) {
  int fd = tt_pidfd_child_of(pid, parent);
  if (fd < 0) return -1;
  int r = pidfd_send_signal(fd, sig, NULL, 0) == 0 ? 0 : -1;
  close(fd);
  return r;
}

int tt_proc_stopped(pid_t pid) {
  char st;
  pid_t pp;
  return proc_state(pid, &st, &pp) == 0 && (st == 'T' || st == 't');
}

int tt_pidfd_wait_exit(int pidfd, int ms) {
  if (pidfd < 0) return 1;
  uint64_t deadline = tt_now_ns() + (uint64_t)ms * 1000000u;
  for (;;) {
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};
    uint64_t now = tt_now_ns();
    int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000u) + 1;
    int n = poll(&pf, 1, left);
    if (n > 0) return 1;
    if (n == 0) return 0;
    if (errno != EINTR) return 0;
  }
}

void tt_pidfd_kill(int pidfd) {
  if (pidfd >= 0) pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
}

int tt_reap(pid_t pid, int ms) {
  uint64_t deadline = tt_now_ns() + (uint64_t)ms * 1000000u;
  int ws;
  for (;;) {
    pid_t r = waitpid(pid, &ws, WNOHANG);
    if (r == pid) return ws;
    if (r < 0 && errno != EINTR) return -1;
    if (tt_now_ns() >= deadline) break;
    tt_sleep_us(1000);
  }
  kill(pid, SIGKILL); /* our child, not reaped yet: the pid is still its */
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  return -1;
}

void tt_kill_reap(pid_t *pid) {
  if (*pid <= 0) return;
  kill(*pid, SIGKILL);
  while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR) {
  }
  *pid = 0;
}

long tt_cpu_ms(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut, stt;
  /* After ')': state(3) ... utime(14) stime(15). */
  if (p == NULL || sscanf(p + 1,
                          " %*c %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                          "%*s %lu %lu",
                          &ut, &stt) != 2)
    return -1;
  long hz = sysconf(_SC_CLK_TCK);
  return (long)((ut + stt) * 1000u / (unsigned long)(hz > 0 ? hz : 100));
}

void *tt_shared(size_t bytes) {
  void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("torture: mmap");
    _exit(2);
  }
  return m;
}

void tt_pool_name(char *buf, size_t size) {
  static int k;
  snprintf(buf, size, "tort%dn%d", (int)getpid(), k++);
}

static void serve_log(void *ctx, fp_log_level level, const char *msg) {
  (void)ctx;
  fprintf(stderr, "  [serve %d %d] %s\n", (int)getpid(), (int)level, msg);
}

pid_t tt_serve(const char *name, const fp_config *cfg, int grace_ms) {
  fflush(NULL); /* the child must not print our buffered output again */
  pid_t pid = fork();
  if (pid < 0) {
    tt_fail("fork for the server: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    fp_serve_config sc;
    fp_serve_config_init(&sc);
    sc.name = name;
    sc.grace_ms = grace_ms;
    sc.max_workers = cfg->workers < 8 ? 8 : cfg->workers;
    if (getenv("TORTURE_LOG") != NULL) sc.log = serve_log;
    int r = fp_serve(cfg, &sc);
    if (r != 0)
      fprintf(stderr, "torture: fp_serve(%s): %s\n", name, fp_strerror(r));
    _exit(r == 0 ? 0 : 1);
  }
  uint64_t t0 = tt_now_ns();
  while (tt_ms_since(t0) < 5000) {
    fp_pool *p;
    if (fp_pool_open(&p, name, FP_OPEN_MONITOR) == 0) {
      fp_stats st;
      fp_pool_stats(p, &st);
      int running = st.state == FP_POOL_RUNNING;
      fp_pool_free(p);
      if (running) return pid;
    }
    int ws;
    if (waitpid(pid, &ws, WNOHANG) == pid) {
      tt_fail("server for %s exited during start-up (status %#x)", name, ws);
      return -1;
    }
    tt_sleep_us(2000);
  }
  tt_fail("server for %s not ready within 5 s", name);
  tt_kill_reap(&pid);
  return -1;
}

fp_pool *tt_attach(const char *name, unsigned flags) {
  fp_pool *p = NULL;
  int r = fp_pool_open(&p, name, flags);
  if (r != 0) {
    tt_fail("fp_pool_open(%s): %s", name, fp_strerror(r));
    return NULL;
  }
  return p;
}

void tt_worker_pids(const fp_pool *p, pid_t *out, unsigned n) {
  for (unsigned r = 0; r < n; r++) {
    fp_worker_info wi;
    out[r] = fp_pool_worker(p, r, &wi) == 0 ? wi.pid : 0;
  }
}

void tt_debug_pool(const fp_pool *p, const char *fmt, ...) {
  if (getenv("TORTURE_DEBUG") == NULL) return;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fp_stats st;
  fp_pool_stats(p, &st);
  fprintf(stderr,
          "  [%s] %s: alive %u queued %u running %u restarts %llu "
          "rows:",
          tt_name, msg, st.alive, st.queued, st.running,
          (unsigned long long)st.restarts);
  for (unsigned r = 0; r < st.rows && r < 16; r++) {
    fp_worker_info wi;
    if (fp_pool_worker(p, r, &wi) == 0 && (wi.pid != 0 || r < st.workers))
      fprintf(stderr, " %d/%s", (int)wi.pid, fp_worker_state_name(wi.state));
  }
  fprintf(stderr, "\n");
}

static struct {
  uint64_t id[TT_FLIGHT_CAP], seq[TT_FLIGHT_CAP];
  unsigned n;
} fl;

static unsigned fl_home(uint64_t id) {
  return (unsigned)((id * UINT64_C(0x9e3779b97f4a7c15)) >> 40) &
         (TT_FLIGHT_CAP - 1);
}

void tt_fl_put(uint64_t id, uint64_t seq) {
  unsigned k = fl_home(id);
  while (fl.id[k] != 0) k = (k + 1) & (TT_FLIGHT_CAP - 1);
  fl.id[k] = id;
  fl.seq[k] = seq;
  fl.n++;
}

int tt_fl_take(uint64_t id, uint64_t *seq) {
  unsigned k = fl_home(id);
  while (fl.id[k] != id) {
    if (fl.id[k] == 0) return 0;
    k = (k + 1) & (TT_FLIGHT_CAP - 1);
  }
  *seq = fl.seq[k];
  fl.n--;
  /* Backward-shift deletion: no tombstones, probes stay short. */
  for (unsigned j = (k + 1) & (TT_FLIGHT_CAP - 1); fl.id[j] != 0;
       j = (j + 1) & (TT_FLIGHT_CAP - 1)) {
    unsigned h = fl_home(fl.id[j]);
    /* Move j into the hole k unless its home lies cyclically in (k, j]. */
    if (((j - h) & (TT_FLIGHT_CAP - 1)) >= ((j - k) & (TT_FLIGHT_CAP - 1))) {
      fl.id[k] = fl.id[j];
      fl.seq[k] = fl.seq[j];
      k = j;
    }
  }
  fl.id[k] = 0;
  return 1;
}

unsigned tt_fl_count(void) { return fl.n; }

uint64_t tt_fl_any(uint64_t *rng) {
  if (fl.n == 0) return 0;
  unsigned k = (unsigned)tt_rand_below(rng, TT_FLIGHT_CAP);
  while (fl.id[k] == 0) k = (k + 1) & (TT_FLIGHT_CAP - 1);
  return fl.id[k];
}

uint64_t tt_expect_of(uint64_t seq) {
  return seq * UINT64_C(0x9e3779b97f4a7c15) ^ UINT64_C(0x5bd1e995);
}
