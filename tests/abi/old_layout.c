/*
 * The ABI policy of forkpool.h, tried the way it matters: a program built
 * against an OLDER header, whose structs are shorter, run against this
 * library. It does not include forkpool.h: it declares what an older
 * header of this major declared, every public struct cut short by its
 * last field(s), as if those fields were added in a later release.
 *
 * Each struct the library fills or reads is followed by canary bytes: a
 * library that wrote (or trusted) its own sizeof would touch them. The
 * checks: canaries intact, fields right, fields the program does not have
 * at their defaults (a pool starts from the short fp_config), a size below
 * the required fields refused, and a newer (longer) struct accepted only
 * with its unknown tail at zero.
 *
 * Run by tests/abi_old.sh, linked with BUILD_DIR/libforkpool.so. Prints
 * "ok - NAME" / "not ok - NAME: WHY" and "N passed, M failed"; exit 1 on
 * a failure.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* ---- the "older header" ---------------------------------------------- */
typedef struct fp_pool fp_pool;
typedef int (*fp_handler_fn)(void *arg, const void *in, size_t in_len,
                             void *out, size_t out_cap, size_t *out_len);
typedef void (*fp_log_fn)(void *ctx, int level, const char *msg);

/* fp_config without max_rss_mb, its last field. */
typedef struct {
  size_t size;
  unsigned workers, slots;
  size_t max_input, max_output;
  unsigned timeout_ms, max_tasks;
  fp_handler_fn handler;
  void *arg;
  int (*worker_init)(void *);
  void (*worker_fini)(void *);
  unsigned flags, max_attempts, min_workers, max_workers, idle_ms;
  fp_log_fn log;
  void *log_ctx;
  unsigned max_memory_mb;
} old_config;

/* fp_result without parent. */
typedef struct {
  size_t size;
  uint64_t id;
  int status, code, signal, exit_code;
  unsigned attempts;
  pid_t worker;
  uint64_t run_us;
  unsigned char *output;
  size_t output_len;
  uint64_t root;
} old_result;

/* fp_stats without its histogram (duration_le, _count, _sum_us). */
typedef struct {
  uint64_t submitted, ok, failed, crashed, timeout, cancelled;
  uint64_t restarts, abandoned;
  unsigned workers, alive, queued, running, slots;
  pid_t supervisor;
  uint64_t uptime_us;
  unsigned rows, clients;
  int state;
  uint64_t repairs, segment_bytes, retried, quarantined;
  unsigned min_workers, max_workers;
  uint64_t last_resize_us;
  size_t max_input, max_output;
  unsigned timeout_ms;
  uint64_t corrupt;
} old_stats;

/* fp_worker_info without restarts. */
typedef struct {
  pid_t pid;
  int state;
  uint64_t task_id, running_us, done;
} old_worker;

/* fp_serve_config without on_reload and reload_ctx. */
typedef struct {
  size_t size;
  const char *name;
  unsigned mode;
  int grace_ms;
  unsigned max_workers, max_clients;
  fp_log_fn log;
  void *log_ctx;
  void (*on_ready)(void *);
  void *ready_ctx;
} old_serve_config;

void fp_config_init_sized(void *cfg, size_t size);
int fp_config_validate(const void *cfg);
void fp_serve_config_init_sized(void *sc, size_t size);
int fp_pool_start(fp_pool **out, const void *cfg);
int fp_pool_stop(fp_pool *pool, int mode, int grace_ms);
void fp_pool_free(fp_pool *pool);
int fp_submit(fp_pool *pool, const void *in, size_t len, int timeout_ms,
              uint64_t *id);
int fp_wait(fp_pool *pool, uint64_t id, void *res, int timeout_ms);
int fp_collect(fp_pool *pool, void *res, int timeout_ms);
void fp_result_init_sized(void *res, size_t size);
void fp_result_release(void *res);
int fp_pool_stats_sized(const fp_pool *pool, void *st, size_t size);
int fp_pool_worker_sized(const fp_pool *pool, unsigned row, void *wi,
                         size_t size);
/* ---- end of the older header -------------------------------------- */

#define CANARY 64
#define GUARD_MS 20000

static int pass, fail;

static void check(int cond, const char *name, const char *why) {
  if (cond) {
    pass++;
    printf("ok - %s\n", name);
  } else {
    fail++;
    printf("not ok - %s: %s\n", name, why);
  }
}

/* A struct followed by canary bytes. */
#define GUARDED(T, name)        \
  struct {                      \
    T v;                        \
    unsigned char tail[CANARY]; \
  } name;                       \
  memset(&name, 0xA5, sizeof name)

static int intact(const unsigned char *tail) {
  for (int k = 0; k < CANARY; k++)
    if (tail[k] != 0xA5) return 0;
  return 1;
}

static int echo(void *arg, const void *in, size_t n, void *out, size_t cap,
                size_t *out_len) {
  (void)arg;
  if (n > cap) return 1;
  memcpy(out, in, n);
  *out_len = n;
  return 0;
}

int main(void) {
  fp_pool *p = NULL;
  uint64_t id = 0;
  int r;

  /* fp_config: the library writes our size and no byte more. */
  GUARDED(old_config, cfg);
  fp_config_init_sized(&cfg.v, sizeof cfg.v);
  check(intact(cfg.tail), "fp_config_init writes only the old layout",
        "the canary after the struct was written");
  check(cfg.v.size == sizeof cfg.v && cfg.v.slots == 256 &&
            cfg.v.max_input == 65536 && cfg.v.workers > 0,
        "fp_config_init fills the old layout's defaults",
        "size, slots, max_input or workers not as documented");
  cfg.v.handler = echo;
  cfg.v.workers = 1;
  /* A byte set past the old layout must not be read as max_rss_mb. */
  memset(cfg.tail, 0xff, sizeof cfg.tail);
  check(fp_config_validate(&cfg.v) == 0,
        "an old fp_config validates (bytes after it ignored)",
        "fp_config_validate refused it");

  r = fp_pool_start(&p, &cfg.v);
  check(r == 0, "a pool starts from an old fp_config", "fp_pool_start failed");
  if (r != 0) goto out;
  r = fp_submit(p, "hello", 5, GUARD_MS, &id);
  check(r == 0, "submit", "fp_submit failed");

  /* fp_result: fp_wait writes the old layout only. */
  GUARDED(old_result, res);
  fp_result_init_sized(&res.v, sizeof res.v);
  check(intact(res.tail) && res.v.size == sizeof res.v &&
            res.v.exit_code == -1 && res.v.output == NULL,
        "fp_result_init writes only the old layout",
        "canary written, or size/exit_code/output not as documented");
  r = fp_wait(p, id, &res.v, GUARD_MS);
  check(r == 0 && res.v.status == 0 && res.v.output_len == 5 &&
            memcmp(res.v.output, "hello", 5) == 0 && res.v.root == id &&
            res.v.id == id,
        "fp_wait fills an old fp_result", "wrong status, output or root");
  check(intact(res.tail), "fp_wait writes no byte past an old fp_result",
        "the canary after the struct was written");
  /* A second result reuses the output buffer: still within the layout. */
  r = fp_submit(p, "again!", 6, GUARD_MS, &id);
  r = r == 0 ? fp_collect(p, &res.v, GUARD_MS) : r;
  check(r == 0 && res.v.output_len == 6 && intact(res.tail),
        "fp_collect into a reused old fp_result",
        "wrong output, or the canary was written");
  fp_result_release(&res.v);
  check(intact(res.tail) && res.v.output == NULL && res.v.size == sizeof res.v,
        "fp_result_release resets the old layout only",
        "canary written, or output/size not reset");

  /* fp_stats and fp_worker_info. */
  GUARDED(old_stats, st);
  r = fp_pool_stats_sized(p, &st.v, sizeof st.v);
  check(r == 0 && st.v.ok == 2 && st.v.submitted == 2 && st.v.state == 1 &&
            st.v.slots == 256 && st.v.corrupt == 0 && intact(st.tail),
        "fp_pool_stats fills an old fp_stats and no byte more",
        "wrong counters or state, or the canary was written");
  check(fp_pool_stats_sized(p, &st.v, 8) == -EINVAL,
        "fp_pool_stats refuses a size below the required fields",
        "a size of 8 was accepted");
  GUARDED(old_worker, wi);
  r = fp_pool_worker_sized(p, 0, &wi.v, sizeof wi.v);
  check(r == 0 && wi.v.pid > 0 && (wi.v.state == 2 || wi.v.state == 3) &&
            wi.v.done == 2 && intact(wi.tail),
        "fp_pool_worker fills an old fp_worker_info and no byte more",
        "wrong pid, state or done, or the canary was written");

  /* fp_serve_config. */
  GUARDED(old_serve_config, sc);
  fp_serve_config_init_sized(&sc.v, sizeof sc.v);
  check(intact(sc.tail) && sc.v.size == sizeof sc.v && sc.v.mode == 0600 &&
            sc.v.grace_ms == 10000 && sc.v.max_clients == 64,
        "fp_serve_config_init writes only the old layout",
        "canary written, or defaults wrong");

  /* A newer program's fp_config: longer than ours. Its unknown tail is
   * accepted only at zero (the newer fields at their defaults). */
  {
    struct {
      old_config v;
      unsigned char more[512];
    } big;

    memset(&big, 0, sizeof big);
    fp_config_init_sized(&big, sizeof big);
    big.v.handler = echo;
    check(fp_config_validate(&big) == 0,
          "a longer fp_config with a zero tail validates",
          "fp_config_validate refused it");
    big.more[sizeof big.more - 1] = 1;
    check(fp_config_validate(&big) == -EINVAL,
          "a longer fp_config with a field we do not know set is -EINVAL",
          "fp_config_validate accepted it");
  }
  fp_pool_stop(p, 1, 0);
out:
  fp_pool_free(p);
  printf("%d passed, %d failed\n", pass, fail);
  return fail ? 1 : 0;
}
