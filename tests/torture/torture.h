/*
 * Fault-injection torture runs (issue #4): one file per scenario, all on the
 * public API only. `torture NAME` runs one scenario, `torture all` runs each
 * in turn; every scenario prints one summary line ending in PASS or FAIL and
 * explains each failed check on the lines before it.
 *
 * main.c runs every scenario in a forked child that leads its own process
 * group, under a hang guard, and reports (then kills) any process or
 * segment a scenario leaves behind. Every scenario also cleans up after
 * itself, by pid, and bounds whatever it forks or allocates.
 *
 * Environment: TORTURE_SEED=N repeats a run's random choices (timing still
 * differs); TORTURE_DEBUG=1 prints the pool's state when results stall;
 * TORTURE_LOG=1 prints named pools' supervisor events; TORTURE_GUARD_S=N
 * overrides every scenario's hang guard. TORTURE_FASTPATH_TASKS=N and
 * TORTURE_FASTPATH_KILLS=N size fastpath-kill (defaults 1000000 and 5000;
 * its storm limit grows with them, the guard does not: raise it too).
 * TORTURE_SIGSTOP_MS=N (default 6000) and TORTURE_SIGSTOP_PROGRESS_MS=N
 * (default 5000) set how long sigstop stops and continues, and how long a
 * producer that is not stopped may go without progress.
 */
#ifndef FORKPOOL_TORTURE_H
#define FORKPOOL_TORTURE_H

#include <stdint.h>
#include <sys/types.h>

#include "forkpool.h"

/* A scenario: runs, prints its summary line, returns 0 when every check
 * passed. Runs in its own process (see main.c). */
typedef int (*tt_scenario_fn)(void);

int tt_worker_kill(void);
int tt_producer_kill(void);
int tt_supervisor_kill(void);
int tt_crash_loop(void);
int tt_memory(void);
int tt_stop_under_load(void);
int tt_scribble(void);
int tt_late_kill(void);
int tt_fastpath_kill(void);
int tt_sigstop(void);

/* ---- failure bookkeeping (util.c) ---------------------------------- */

/* Name of the running scenario, for messages. */
extern const char *tt_name;
/* Checks that failed so far in this process. */
extern int tt_failures;

/* Report a failed check (one line on stderr) and count it. */
void tt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Check `cond`; when false, report the message. Evaluates to cond. */
#define TT_CHECK(cond, ...) ((cond) ? 1 : (tt_fail(__VA_ARGS__), 0))

/* Print "torture NAME: <figures>: PASS|FAIL" and return 0 or 1. */
int tt_summary(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A scenario's size: the environment variable `name` when it holds a
 * positive number, else `dflt`. */
uint64_t tt_param(const char *name, uint64_t dflt);

/* ---- time and randomness ------------------------------------------- */

uint64_t tt_now_ns(void);
uint64_t tt_ms_since(uint64_t t0_ns);
void tt_sleep_us(uint64_t us);

/* Seed for this run (TORTURE_SEED, or from time and pid); printed on
 * failure so a run can be repeated. */
extern uint64_t tt_seed;
/* xorshift64*: *state must be nonzero. */
uint64_t tt_rand(uint64_t *state);
/* Uniform in [0, n). n > 0. */
uint64_t tt_rand_below(uint64_t *state, uint64_t n);

/* ---- tasks in flight ------------------------------------------------- */

/* Ids of tasks in flight and a value each (a sequence number): a result
 * must name one of them, once. Up to TT_FLIGHT_MAX. */
#define TT_FLIGHT_MAX 256
struct tt_flight {
  uint64_t id[TT_FLIGHT_MAX], val[TT_FLIGHT_MAX];
  unsigned n;
};
void tt_flight_put(struct tt_flight *f, uint64_t id, uint64_t val);
/* 1 and *val when id was in flight (it no longer is); 0 otherwise. */
int tt_flight_take(struct tt_flight *f, uint64_t id, uint64_t *val);

/* ---- processes ------------------------------------------------------ */

/*
 * Send sig to pid only if it is still a child of `parent` (a worker of
 * that supervisor): checked through a pidfd, so a pid reused by another
 * process is never signalled. Returns 0 when sent, -1 otherwise.
 */
int tt_kill_child_of(pid_t pid, pid_t parent, int sig);

/*
 * A pidfd of pid if it is a live child of `parent` (-1 otherwise), for
 * signals sent later (pidfd_send_signal): they reach that process or,
 * once it is gone, nobody; never a process that reused its pid. Close it.
 */
int tt_pidfd_child_of(pid_t pid, pid_t parent);

/* 1 when /proc says pid is stopped (T) or traced (t), else 0. */
int tt_proc_stopped(pid_t pid);

/* pidfd of pid, or -1 (no such process). */
int tt_pidfd(pid_t pid);

/* Wait until the process behind pidfd has exited (a zombie counts), for
 * at most ms. Returns 1 when it has, 0 if it still runs. */
int tt_pidfd_wait_exit(int pidfd, int ms);

/* SIGKILL the process behind pidfd (no pid reuse can misdirect it). */
void tt_pidfd_kill(int pidfd);

/* waitpid for our child for at most ms; SIGKILLs it past that (returning
 * -1 and reaping it). Returns the wait status otherwise. */
int tt_reap(pid_t pid, int ms);

/* Kill (SIGKILL) and reap our child if pid > 0; sets *pid to 0. */
void tt_kill_reap(pid_t *pid);

/* utime + stime of pid in ms, from /proc/PID/stat; -1 if unreadable. */
long tt_cpu_ms(pid_t pid);

/* A page shared with every process forked after this call. */
void *tt_shared(size_t bytes);

/* ---- named pools ---------------------------------------------------- */

/* "tort<pid>n<k>": unique per scenario process and call. */
void tt_pool_name(char *buf, size_t size);

/*
 * Fork a child that serves `name` with fp_serve(cfg, grace_ms) and exits 0
 * on a clean stop, 1 on an error; wait (up to 5 s) until producers can
 * attach. Returns its pid, or -1 (reported) when it never became ready.
 */
pid_t tt_serve(const char *name, const fp_config *cfg, int grace_ms);

/* fp_pool_open(name), reporting a failure; NULL on error. */
fp_pool *tt_attach(const char *name, unsigned flags);

/* With TORTURE_DEBUG set: one line on stderr with the message, the pool's
 * gauges and every scoreboard row (pid/state). */
void tt_debug_pool(const fp_pool *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Worker pids of a pool, rows 0..n-1 (0 where a row is empty). */
void tt_worker_pids(const fp_pool *p, pid_t *out, unsigned n);

/*
 * The tasks a producer process has in flight: task id -> task number
 * (open addressing with linear probing, ids != 0; TT_FLIGHT_CAP entries,
 * a power of two, more than twice what any scenario keeps in flight). One
 * map per process: each producer is a process of its own.
 */
#define TT_FLIGHT_CAP 2048u
void tt_fl_put(uint64_t id, uint64_t seq);
/* 1 and *seq when id was in flight (it no longer is); 0 otherwise. */
int tt_fl_take(uint64_t id, uint64_t *seq);
unsigned tt_fl_count(void);
/* Any id in flight (a random probe start), or 0. */
uint64_t tt_fl_any(uint64_t *rng);

/* What an echo handler of the fastpath-kill and sigstop scenarios returns
 * beside task number seq: a check that the result is its own. */
uint64_t tt_expect_of(uint64_t seq);

#endif /* FORKPOOL_TORTURE_H */
