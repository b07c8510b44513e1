/*
 * The pool forkpool bench measures: private, or named and served by a child.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

int bench_start(struct bench_run *run, const fp_config *cfg, int named) {
  memset(run, 0, sizeof(*run));
  if (!named) return fp_pool_start(&run->pool, cfg);
  snprintf(run->name, sizeof(run->name), "fpbench%d", (int)getpid());
  pid_t pid = fork();
  if (pid < 0) return -errno;
  if (pid == 0) {
    fp_serve_config sc;
    fp_serve_config_init(&sc);
    sc.name = run->name;
    sc.max_clients = BENCH_MAX_PRODUCERS + 8;
    _exit(fp_serve(cfg, &sc) == 0 ? 0 : 1);
  }
  run->server = pid;
  /* Ready once it can be attached to and says "running". */
  for (int k = 0; k < 3000; k++) {
    fp_stats st;
    if (fp_pool_open(&run->pool, run->name, FP_OPEN_MONITOR) == 0) {
      if (fp_pool_stats(run->pool, &st) == 0 && st.state == FP_POOL_RUNNING)
        return 0;
      fp_pool_free(run->pool);
      run->pool = NULL;
    }
    int ws;
    if (waitpid(pid, &ws, WNOHANG) == pid) return -ECHILD;
    usleep(1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -ETIMEDOUT;
}

void bench_stop(struct bench_run *run) {
  if (run->server == 0) {
    fp_pool_stop(run->pool, FP_STOP_DRAIN, 10000);
    fp_pool_free(run->pool);
    return;
  }
  fp_pool_free(run->pool);
  kill(run->server, SIGTERM);
  while (waitpid(run->server, NULL, 0) < 0 && errno == EINTR) {
  }
}
