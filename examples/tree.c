/*
 * A recursive pool: each task splits a range in two and spawns a task for
 * each half (fp_spawn), until a range holds one number. Leaves that are a
 * multiple of 101 crash their worker. The whole tree (19999 tasks for
 * 10000 leaves) runs through a queue of 32 slots: spawned tasks wait in
 * the producer, never in a blocked worker, so nothing deadlocks.
 *
 *   build/examples/tree [LEAVES]     (default 10000)
 */
#include <errno.h>
#include <forkpool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int split(void *arg, const void *in, size_t n, void *out, size_t cap,
                 size_t *out_len) {
  (void)arg;
  char buf[64];
  if (n >= sizeof(buf)) return 1;
  memcpy(buf, in, n);
  buf[n] = '\0';
  long lo, hi;
  if (sscanf(buf, "%ld %ld", &lo, &hi) != 2 || hi <= lo) return 2;
  if (hi - lo == 1) {
    if (lo % 101 == 0) {
      volatile int *volatile p = NULL;
      *p = 1; /* this leaf crashes its worker */
    }
    *out_len = (size_t)snprintf(out, cap, "leaf %ld", lo);
    return 0;
  }
  long mid = lo + (hi - lo) / 2;
  char child[64];
  int len = snprintf(child, sizeof(child), "%ld %ld", lo, mid);
  if (fp_spawn(child, (size_t)len) != 0) return 3;
  len = snprintf(child, sizeof(child), "%ld %ld", mid, hi);
  if (fp_spawn(child, (size_t)len) != 0) return 3;
  *out_len = (size_t)snprintf(out, cap, "node %ld-%ld", lo, hi);
  return 0;
}

int main(int argc, char **argv) {
  long leaves = argc > 1 ? atol(argv[1]) : 10000;
  if (leaves < 1) {
    fprintf(stderr, "usage: %s [LEAVES]\n", argv[0]);
    return 2;
  }
  fp_config cfg;
  fp_config_init(&cfg);
  cfg.handler = split;
  cfg.slots = 32;
  cfg.max_input = 64;
  cfg.max_output = 256;
  fp_pool *pool;
  int err = fp_pool_start(&pool, &cfg);
  if (err < 0) {
    fprintf(stderr, "start: %s\n", fp_strerror(err));
    return 1;
  }
  char root_in[64];
  int len = snprintf(root_in, sizeof(root_in), "0 %ld", leaves);
  uint64_t root;
  if ((err = fp_submit(pool, root_in, (size_t)len, FP_FOREVER, &root)) < 0) {
    fprintf(stderr, "submit: %s\n", fp_strerror(err));
    fp_pool_free(pool);
    return 1;
  }
  fp_result res;
  fp_result_init(&res);
  long nodes = 0, ok_leaves = 0, crashed = 0, other = 0;
  while ((err = fp_collect_tree(pool, root, &res, 60000)) == 0) {
    if (res.status == FP_CRASHED) crashed++;
    else if (res.status != FP_OK) other++;
    else if (strncmp((char *)res.output, "leaf", 4) == 0) ok_leaves++;
    else nodes++;
  }
  if (err != -ENOENT) fprintf(stderr, "collect: %s\n", fp_strerror(err));
  long want_crashed = (leaves - 1) / 101 + 1;
  printf("tree of %ld leaves: %ld tasks: %ld nodes, %ld leaves ok, %ld "
         "crashed, %ld other (expected %ld, %ld, %ld, 0)\n",
         leaves, nodes + ok_leaves + crashed + other, nodes, ok_leaves, crashed,
         other, leaves - 1, leaves - want_crashed, want_crashed);
  fp_result_release(&res);
  fp_pool_stop(pool, FP_STOP_DRAIN, 5000);
  fp_pool_free(pool);
  return err == -ENOENT && nodes == leaves - 1 && crashed == want_crashed &&
                 ok_leaves == leaves - want_crashed && other == 0
             ? 0
             : 1;
}
