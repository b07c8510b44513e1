/*
 * minimal: the smallest complete forkpool program.
 *
 * Starts a pool whose handler reverses its input, submits a few words,
 * waits for each result, prints it, then stops and frees the pool.
 *
 * Build: make build/examples/minimal
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "forkpool.h"

/* Runs in a worker process: writes the input reversed. */
static int reverse(void *arg, const void *in, size_t in_len, void *out,
                   size_t out_cap, size_t *out_len) {
  const unsigned char *src = in;
  unsigned char *dst = out;

  (void)arg;
  if (in_len > out_cap)
    return ENOBUFS; /* the task ends FP_FAILED with this code */
  for (size_t i = 0; i < in_len; i++) dst[i] = src[in_len - 1 - i];
  *out_len = in_len;
  return 0;
}

int main(void) {
  static const char *const words[] = {"hello", "forkpool", "racecar", "!"};
  enum { NWORDS = sizeof(words) / sizeof(words[0]) };
  uint64_t ids[NWORDS];
  fp_config cfg;
  fp_pool *pool;
  fp_result res;
  int rc;

  fp_config_init(&cfg);
  cfg.workers = 2;
  cfg.handler = reverse;
  /* Start before creating any thread: the supervisor is forked from here. */
  rc = fp_pool_start(&pool, &cfg);
  if (rc < 0) {
    fprintf(stderr, "fp_pool_start: %s\n", fp_strerror(rc));
    return 1;
  }

  for (int i = 0; i < NWORDS; i++) {
    rc = fp_submit(pool, words[i], strlen(words[i]), FP_FOREVER, &ids[i]);
    if (rc < 0) {
      fprintf(stderr, "fp_submit: %s\n", fp_strerror(rc));
      fp_pool_free(pool);
      return 1;
    }
  }

  fp_result_init(&res);
  for (int i = 0; i < NWORDS; i++) {
    rc = fp_wait(pool, ids[i], &res, FP_FOREVER);
    if (rc < 0) {
      fprintf(stderr, "fp_wait: %s\n", fp_strerror(rc));
      break;
    }
    printf("task %llu: %s %.*s\n", (unsigned long long)res.id,
           fp_status_name(res.status), (int)res.output_len,
           res.output_len > 0 ? (const char *)res.output : "");
  }
  fp_result_release(&res);

  /* Drain: let anything still queued finish, waiting at most 5 s. */
  if (fp_pool_stop(pool, FP_STOP_DRAIN, 5000) < 0)
    fprintf(stderr, "fp_pool_stop failed\n");
  fp_pool_free(pool);
  return rc < 0;
}
