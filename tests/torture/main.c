/*
 * torture NAME | all | list: run fault-injection scenarios (issue #4).
 *
 * Each scenario runs in a forked child that leads its own process group,
 * under a hang guard. This process is a child subreaper, so whatever a
 * scenario leaves behind (a worker that outlived its supervisor, a server
 * nobody reaped) is re-parented here, where it is reported as a failure and
 * then killed by pid. Names of segments the scenario made start with
 * "forkpool.tort<scenario pid>n": any left in /dev/shm is reported and
 * unlinked.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "torture.h"

static const struct {
  const char *name;
  tt_scenario_fn fn;
  int guard_s; /* hang guard: the scenario is killed past this */
} scenarios[] = {
    /* Guards add up to 380 s: `torture all` ends within that, hung or
     * not. Typical run times are an eighth of them (about 50 s). */
    {"worker-kill", tt_worker_kill, 40},
    {"producer-kill", tt_producer_kill, 20},
    {"supervisor-kill", tt_supervisor_kill, 20},
    {"crash-loop", tt_crash_loop, 30},
    {"memory", tt_memory, 20},
    {"stop-under-load", tt_stop_under_load, 20},
    {"scribble", tt_scribble, 30},
    {"late-kill", tt_late_kill, 20},
    {"fastpath-kill", tt_fastpath_kill, 120},
    {"sigstop", tt_sigstop, 60},
};
#define NSCEN (sizeof(scenarios) / sizeof(scenarios[0]))

/* Our children other than `except`, from /proc: up to max pids. */
static int list_children(pid_t except, pid_t *out, int max) {
  DIR *d = opendir("/proc");
  if (d == NULL) return 0;
  int n = 0;
  pid_t self = getpid();
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < max) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == except) continue;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) continue;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *p = strrchr(buf, ')');
    char st;
    int ppid;
    if (p != NULL && sscanf(p + 1, " %c %d", &st, &ppid) == 2 && ppid == self)
      out[n++] = (pid_t)pid;
  }
  closedir(d);
  return n;
}

/* Reap every dead child; report and kill live leftovers. 0 if none. */
static int check_leftovers(const char *name, pid_t scen) {
  pid_t left[64];
  int n = 0;
  uint64_t t0 = tt_now_ns();
  /* Orphans die with their supervisor (PR_SET_PDEATHSIG): allow 1 s. */
  do {
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    n = list_children(0, left, 64);
    if (n == 0) break;
    tt_sleep_us(5000);
  } while (tt_ms_since(t0) < 1000);
  if (kill(-scen, 0) == 0) {
    fprintf(stderr, "torture %s: processes left in its group: killed\n", name);
    kill(-scen, SIGKILL);
    n += 1;
  }
  for (int k = 0; k < n && k < 64; k++) {
    char path[64], comm[64] = "?";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)left[k]);
    FILE *f = fopen(path, "re");
    if (f != NULL) {
      if (fgets(comm, sizeof(comm), f) != NULL) comm[strcspn(comm, "\n")] = 0;
      fclose(f);
    }
    fprintf(stderr, "torture %s: process %d (%s) left behind: killed\n", name,
            (int)left[k], comm);
    kill(left[k], SIGKILL); /* our child until we reap it */
  }
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  return n;
}

static int check_shm(const char *name, pid_t scen) {
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "forkpool.tort%dn", (int)scen);
  DIR *d = opendir("/dev/shm");
  if (d == NULL) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    fprintf(stderr, "torture %s: /dev/shm/%s left behind: unlinked\n", name,
            e->d_name);
    char path[300];
    snprintf(path, sizeof(path), "/%s", e->d_name);
    shm_unlink(path);
    n++;
  }
  closedir(d);
  return n;
}

static int run_one(size_t k) {
  const char *name = scenarios[k].name;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("torture: fork");
    return 1;
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    tt_name = name;
    int r = scenarios[k].fn();
    fflush(NULL);
    _exit(r == 0 ? 0 : 1);
  }
  setpgid(pid, pid);
  const char *g = getenv("TORTURE_GUARD_S"); /* debugging: shorter, longer */
  int guard_s = g != NULL ? atoi(g) : scenarios[k].guard_s;
  uint64_t t0 = tt_now_ns();
  int ws = 0, hung = 0;
  for (;;) {
    pid_t r = waitpid(pid, &ws, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (tt_ms_since(t0) > (uint64_t)guard_s * 1000) {
      kill(-pid, SIGKILL);
      while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
      }
      hung = 1;
      break;
    }
    tt_sleep_us(10000);
  }
  int bad = 0;
  if (hung) {
    printf("torture %s: hung past the %d s guard, killed: FAIL\n", name,
           guard_s);
    bad = 1;
  } else if (WIFSIGNALED(ws)) {
    printf("torture %s: the scenario process died of signal %d: FAIL\n", name,
           WTERMSIG(ws));
    bad = 1;
  } else if (WEXITSTATUS(ws) != 0) {
    bad = 1; /* it printed its FAIL line */
  }
  int leaks = check_leftovers(name, pid) + check_shm(name, pid);
  if (leaks > 0) {
    printf("torture %s: left %d process(es) or segment(s) behind: FAIL\n", name,
           leaks);
    bad = 1;
  }
  fflush(stdout);
  return bad;
}

static void usage(void) {
  fprintf(stderr, "usage: torture [--seed N] NAME|all|list\nscenarios:");
  for (size_t k = 0; k < NSCEN; k++) fprintf(stderr, " %s", scenarios[k].name);
  fprintf(stderr, "\n");
}

int main(int argc, char **argv) {
  int a = 1;
  const char *seed = getenv("TORTURE_SEED");
  if (a + 1 < argc && strcmp(argv[a], "--seed") == 0) {
    seed = argv[a + 1];
    a += 2;
  }
  if (a + 1 != argc) {
    usage();
    return 2;
  }
  tt_seed = seed != NULL ? strtoull(seed, NULL, 0)
                         : (tt_now_ns() ^ ((uint64_t)getpid() << 32));
  if (tt_seed == 0) tt_seed = 1;
  const char *what = argv[a];
  if (strcmp(what, "list") == 0) {
    for (size_t k = 0; k < NSCEN; k++) printf("%s\n", scenarios[k].name);
    return 0;
  }
  /* Orphans of our scenarios come to us, so none escapes unnoticed. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int all = strcmp(what, "all") == 0;
  int ran = 0, failed = 0;
  uint64_t t0 = tt_now_ns();
  for (size_t k = 0; k < NSCEN; k++) {
    if (!all && strcmp(what, scenarios[k].name) != 0) continue;
    ran++;
    failed += run_one(k);
  }
  if (ran == 0) {
    usage();
    return 2;
  }
  if (all)
    printf("torture all: %d scenario(s), %d failed, %.1f s (seed %llu): %s\n",
           ran, failed, (double)(tt_now_ns() - t0) / 1e9,
           (unsigned long long)tt_seed, failed ? "FAIL" : "PASS");
  return failed ? 1 : 0;
}
