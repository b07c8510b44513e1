/*
 * Helpers shared by the Check suites: the leak-checking fixture, a handler
 * that does what its input says, and assertion wrappers around the API.
 *
 * Everything here runs in the test process (a child of the Check runner in
 * CK_FORK mode) except tu_handler, tu_square and the hooks, which run in
 * workers. They talk through tu_sh, a MAP_SHARED anonymous page mapped by
 * the fixture before any pool starts, so every worker inherits it.
 */
#ifndef FORKPOOL_TESTUTIL_H
#define FORKPOOL_TESTUTIL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "forkpool.h"

/* Upper bound for every wait that should end: a hang guard, not a speed
 * requirement. Keep it below the tcase timeouts so a hang reports a clear
 * assertion rather than a killed test. */
#define TU_GUARD_MS 20000

/* Bytes of input and output per task in pools made by tu_config(). */
#define TU_IO_BYTES 4096

/* Tcase timeout, in seconds, for tcases that fork pools. */
#define TU_TCASE_TIMEOUT 30

#define TU_MAX_PROCS 1024

/* State shared between the test process and every worker. */
struct tu_shared {
  atomic_int gate;      /* "block" tasks wait until this is nonzero */
  atomic_int started;   /* tu_handler calls begun, all workers together */
  atomic_int inits;     /* tu_init calls */
  atomic_int finis;     /* tu_fini calls */
  atomic_int init_fail; /* nonzero: tu_init returns it */
  atomic_int once;      /* "crashonce" crashed already */
  /* "forkhang": where the write end of the test's pipe can be opened. */
  pid_t pipe_pid;
  int pipe_wfd;
  atomic_int gc_ready; /* the grandchild holds the write end */
  pid_t gc_pid;
  /* Every process that ran test code (workers, grandchildren), so the
   * fixture can check that none outlives the pool. */
  atomic_int nprocs;
  struct {
    pid_t pid;
    unsigned long long start; /* /proc/PID/stat starttime: beats pid reuse */
  } procs[TU_MAX_PROCS];
};

extern struct tu_shared *tu_sh;

/* The pool the current test runs; tu_teardown frees it when non-NULL. */
extern fp_pool *tu_pool;

/*
 * Checked fixture. Setup maps tu_sh, lists /dev/shm and asserts that the test
 * process has no child. Teardown frees tu_pool, then asserts that no child,
 * no process recorded in tu_sh and no new /dev/shm entry is left.
 */
void tu_setup(void);
void tu_teardown(void);

/*
 * The test handler. Its input (not NUL-terminated) is a command:
 *   segv | abort | kill (raise SIGKILL) | exit N | fail N | hang (sleeps
 *   forever) | sleep MS (outputs "slept MS") | block (waits for tu_sh->gate,
 *   outputs "open") | pid (outputs the worker pid) | inits (outputs
 *   "<tu_init calls in this process> <pid>") | tree N (spawns two "tree
 *   N-1", and a "segv" when N is 1; outputs node or leaf) | spawnmany N
 *   (spawns N "x") | order (outputs how many
 *   tasks had started, itself included) | crashonce (SIGSEGV the
 *   first time, then outputs "survived") | neg (returns -1) | overflow
 *   (claims out_cap + 1 bytes) | forkhang (see check_crash.c)
 * Anything else is echoed (ENOBUFS when it does not fit). Returns EBADR when
 * arg is not tu_sh.
 */
int tu_handler(void *arg, const void *in, size_t in_len, void *out,
               size_t out_cap, size_t *out_len);

/* Handler for bulk tests: input is a uint64_t n, output is n then
 * tu_square_of(n), 16 bytes. EINVAL on another input size. */
int tu_square(void *arg, const void *in, size_t in_len, void *out,
              size_t out_cap, size_t *out_len);
uint64_t tu_square_of(uint64_t n);

/* Hooks: count calls in tu_sh; tu_init fails with tu_sh->init_fail when set,
 * and with EBADR when arg is not tu_sh. */
int tu_init(void *arg);
void tu_fini(void *arg);

/* fp_config_init, then tu_handler with arg tu_sh, the given sizes, and
 * TU_IO_BYTES of input and output. */
void tu_config(fp_config *cfg, unsigned workers, unsigned slots);

/* Starts tu_pool from cfg, asserting success. */
fp_pool *tu_start(const fp_config *cfg);

/* Submits a text command, asserting success; returns its id. */
uint64_t tu_submit(fp_pool *pool, const char *cmd);

/* fp_wait within TU_GUARD_MS, asserting success and the id. */
void tu_wait(fp_pool *pool, uint64_t id, fp_result *res);

/* Asserts res ended FP_OK with exactly the text want as output. */
void tu_assert_ok(const fp_result *res, const char *want);

/* Waits (TU_GUARD_MS at most) until tu_sh->started reaches n. */
void tu_wait_started(int n);

/* Sleeps ms milliseconds (restarting on EINTR). */
void tu_sleep_ms(long ms);

/* Records the calling process in tu_sh->procs (once per process). */
void tu_note_self(void);

#endif /* FORKPOOL_TESTUTIL_H */
