/*
 * forkpool: a crash-isolating pre-fork worker pool.
 *
 * A supervisor process owns a shared-memory segment holding a ring queue of
 * task slots and forks a fixed number of worker processes. Workers take tasks,
 * run a handler, and write results back into shared memory. When a worker
 * dies (SIGSEGV, abort, _exit, OOM kill, or a task timeout), the one task it
 * was running ends FP_CRASHED (or FP_TIMEOUT) and a replacement is forked.
 *
 * Conventions:
 *   - Every function that can fail returns 0 (or a count) on success and a
 *     negative errno value on failure; fp_strerror() turns it into text.
 *   - Handles are opaque.
 *   - "Caller" below means the process that called fp_pool_start(): the pool
 *     handle may only be used in that process, never in a forked child
 *     (workers included). A handle may be shared by several threads of the
 *     caller; each call is thread-safe unless stated otherwise.
 *
 * Contents, by topic: version and limits; handlers (the plugin ABI, the
 * calls a handler may make); configuration (fp_config); starting and
 * stopping a private pool; submitting; results (fp_status, fp_result,
 * waiting and collecting); zero copy; recursive pools; cancelling; stats
 * and the scoreboard; named pools (serving, attaching); text of codes.
 *
 * ABI policy. The soname carries the major version (libforkpool.so.0):
 * a program built against this header runs against any later library of
 * the same major. Before 1.0, a minor release may still change the ABI;
 * it says so, and removes or renames a symbol rather than change what an
 * old one means, so an old binary fails to load instead of misbehaving.
 * Within a major:
 *   - functions are never removed, and never change their parameters or
 *     meaning; status, state and flag values and FP_CODE_* are never
 *     renumbered or reused;
 *   - every public struct may grow, at its end only. The library learns
 *     the caller's size of each: fp_config_init(), fp_serve_config_init()
 *     and fp_result_init() (inline, over their *_sized entry points)
 *     store sizeof as the caller's header has it in the struct's `size`
 *     field; fp_pool_stats() and fp_pool_worker() pass it. The library
 *     reads and writes only that many bytes: a field past the caller's
 *     size takes its default when read and is never written, so an older
 *     binary's struct is never overrun. A size below the struct's
 *     required fields is -EINVAL; one above the library's own (a newer
 *     header) is accepted when the bytes past the library's fields are
 *     zero (the newer fields at their defaults), -EINVAL otherwise;
 *   - fields are never removed, reordered or retyped; a field's 0 means
 *     its default; yes/no options are bits of a flags field.
 * tests/abi/old_layout.c (run by tests/abi_old.sh) checks this with a
 * program built against an older, shorter layout of every struct.
 */
#ifndef FORKPOOL_H
#define FORKPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The version: these three lines are the one place it is written. The
 * Makefile reads them (the soname and installed file names, forkpool.pc,
 * the man pages' title lines), FP_VERSION_HEX and FP_VERSION_STRING are
 * made from them here, and `forkpool --version` prints fp_version(), that
 * is FP_VERSION_STRING. Keep each a plain "#define FP_VERSION_X <decimal>"
 * line: the Makefile stops with an error otherwise, and `make
 * version-check` checks that everything agrees.
 */
#define FP_VERSION_MAJOR 0
#define FP_VERSION_MINOR 2
#define FP_VERSION_PATCH 0
#define FP_VERSION_HEX \
  ((FP_VERSION_MAJOR << 16) | (FP_VERSION_MINOR << 8) | FP_VERSION_PATCH)
#define FP__VERSION_STR(x) #x
#define FP__VERSION_XSTR(x) FP__VERSION_STR(x)
/* "MAJOR.MINOR.PATCH", a string literal made from the three numbers. */
/* clang-format off */
#define FP_VERSION_STRING \
  FP__VERSION_XSTR(FP_VERSION_MAJOR) "." FP__VERSION_XSTR(FP_VERSION_MINOR) \
  "." FP__VERSION_XSTR(FP_VERSION_PATCH)
/* clang-format on */

#if defined(__GNUC__)
#define FP_EXTERN __attribute__((visibility("default")))
#else
#define FP_EXTERN
#endif

/* Limits enforced by fp_config_validate(); larger values get -EINVAL. */
#define FP_MAX_WORKERS 1024u
#define FP_MAX_SLOTS 65536u
#define FP_MAX_IO_BYTES (64u * 1024u * 1024u) /* per task, input or output */
#define FP_MAX_SEGMENT_BYTES (4ull * 1024u * 1024u * 1024u)

/* Timeouts in milliseconds passed to submit, wait and collect. */
#define FP_NOWAIT 0     /* do not block: -EAGAIN (submit) or -ETIMEDOUT */
#define FP_FOREVER (-1) /* block until done, or until the pool stops */

/* Opaque pool handle, owned by the process that started it. */
typedef struct fp_pool fp_pool;

/* ---- Handlers: the function, the plugin ABI, a handler's calls ------ */

/*
 * The handler, the same for an in-process function and a plugin.
 *
 * Runs in a worker process. Reads `in_len` bytes at `in`, writes at most
 * `out_cap` bytes at `out` and stores how many in `*out_len` (0 when it
 * writes nothing). Returns 0 for success, or a positive error code, which the
 * task's result reports as FP_FAILED with that code. A negative return or an
 * `*out_len` above `out_cap` is a handler bug and is reported as FP_FAILED
 * with code EPROTO (71). `arg` is fp_config.arg.
 *
 * The handler may crash, hang or exit: that costs the worker, never the pool.
 *
 * Processes the handler starts end with its task: when the task ends (any
 * status), every process it started, whatever process group or session it
 * moved to (setsid, setpgid, double fork), is SIGKILLed and reaped before
 * the result is published, and none is left a zombie. A worker is a child
 * subreaper (PR_SET_CHILD_SUBREAPER) for that, and so is a supervisor that
 * had no child of its own when it started (see fp_serve). Children that
 * worker_init started live on until their worker exits. Not covered: a
 * thread or signal handler the handler leaves running, which may fork
 * after its task ended; its processes end after a later task, or when the
 * worker exits.
 * exit(N) ends the task FP_CRASHED with exit_code N and runs none of the
 * host program's atexit handlers, nor flushes what the host's stdio buffers
 * held when the pool started (the handler's own stdout and stderr lines are
 * flushed).
 *
 * The worker is a sealed room. Its stdin is /dev/null. What it writes to
 * stdout or stderr (fd 1 and 2, pipes to the supervisor) never reaches the
 * host's streams: it is logged through fp_config.log at FP_LOG_WARN, one
 * event per line, as "task N (worker PID) stdout: TEXT" (control bytes as
 * \xNN; lines over 256 bytes in pieces), at most 4096 bytes per task and
 * stream, then one "task N (worker PID) stdout: ... M bytes dropped". With
 * no log function, the same lines go, prefixed "forkpool: ", to the
 * supervisor's stderr (a private pool's is the caller's stderr at
 * fp_pool_start). stdout is line-buffered in the worker. When the output
 * pipe cannot be made (RLIMIT_NOFILE), that worker's output goes to
 * /dev/null, logged once. A process the handler forks gets no mapping of
 * the pool's shared memory; if it returns from the handler (a failed exec)
 * it _exits at once (status 127) and never touches the queue.
 */
typedef int (*fp_handler_fn)(void *arg, const void *in, size_t in_len,
                             void *out, size_t out_cap, size_t *out_len);

/*
 * Per-worker hooks, run once in each worker right after it is forked
 * (init) and before it exits cleanly when recycled or stopped (fini).
 * init returns 0, or a positive error code: the worker then exits, and when
 * no worker of the pool ever got past init, fp_pool_start() fails with
 * -ECHILD. fini is not run when the worker crashes or is killed.
 */
typedef int (*fp_init_fn)(void *arg);
typedef void (*fp_fini_fn)(void *arg);

/*
 * The plugin ABI of `forkpool run` and `forkpool serve --handler LIB`: a
 * shared object that defines forkpool_handler (an fp_handler_fn) and, if
 * it wants, forkpool_init and forkpool_fini (fp_init_fn, fp_fini_fn),
 * found with dlsym. Declared here so that a plugin that includes this
 * header gets them checked: a definition with another signature is a
 * compile error ("conflicting types"), and one in a plugin built with
 * -fvisibility=hidden is exported all the same (the visibility of these
 * declarations carries to the definitions). Mark a handler of another
 * name (LIB:SYMBOL) FP_PLUGIN_EXPORT. The library itself defines none of
 * them; a program that links it may ignore these declarations.
 */
#define FP_PLUGIN_EXPORT __attribute__((visibility("default")))
FP_PLUGIN_EXPORT int forkpool_handler(void *arg, const void *in, size_t in_len,
                                      void *out, size_t out_cap,
                                      size_t *out_len);
FP_PLUGIN_EXPORT int forkpool_init(void *arg);
FP_PLUGIN_EXPORT void forkpool_fini(void *arg);

/*
 * Recursive pools. Called by a handler (in a worker), fp_spawn() queues a
 * follow-up task of the task it runs, for the same producer. Spawned tasks
 * are not submitted while the handler runs: they travel back with its
 * result (after its output: together they must fit in max_output, else
 * the task ends FP_FAILED with ENOSPC) and the producer's library submits
 * them as slots free up. So submitting from a worker never blocks and can
 * never deadlock the pool, however full the queue or busy the workers; a
 * task that crashes or times out spawns nothing (a retry may spawn).
 * Returns 0, -EPERM outside a handler, -EMSGSIZE above max_input, -ENOMEM.
 */
FP_EXTERN int fp_spawn(const void *in, size_t len);

/*
 * For a handler whose real work runs in a process of its own (as `forkpool
 * run --exec` and `--coproc` do), so the task can end as that process did.
 *
 * fp_task_crashed() ends the running task FP_CRASHED exactly as if its
 * worker had died of `signal` (1..64, a signal whose default action ends
 * a process) or, with signal 0, exited with status `exit_code` (0..255):
 * result.signal / result.exit_code say so, `report` (len bytes, at most
 * about 4000 are kept; may be NULL with len 0) is the result's output in
 * place of a crash report, max_attempts retries the task, and the worker
 * really exits that way (no core dump) and is replaced as after any crash,
 * the crash-loop backoff included. Does not return. Returns -EPERM when
 * called outside a handler (or in a process it forked) and -EINVAL for a
 * bad signal or exit code, and then changes nothing.
 *
 * fp_task_decline() gives the running task back unrun, for a handler that
 * finds, before doing anything, that it cannot run tasks any more (a
 * coprocess it keeps died between tasks): the task goes back to the queue
 * as if never taken (its attempts unchanged; another worker runs it), and
 * this worker exits (status FP_EXIT_DECLINED) and is replaced; a worker
 * that declines before finishing any task counts toward the crash-loop
 * backoff, so a handler that always declines cannot spin the pool. Does
 * not return. Returns -EPERM outside a handler. A task must not be
 * declined once work on it may have had an effect: end it instead.
 */
FP_EXTERN int fp_task_crashed(int signal, int exit_code, const void *report,
                              size_t len);
FP_EXTERN int fp_task_decline(void);
#define FP_EXIT_DECLINED 122

/*
 * FP_FAILED codes of forkpool's command handlers (`forkpool run|serve
 * --exec` and `--coproc`), above every exit status (0..255) a command can
 * give, so the two never mix; the task's output says more.
 */
/* clang-format off */
#define FP_CODE_EXEC 256      /* the command could not be started (not
                                 found, E2BIG, a NUL byte for {}...) */
#define FP_CODE_OUTPUT 257    /* more than max_output bytes of output */
#define FP_CODE_BAD_REPLY 258 /* a coprocess broke the reply framing; it
                                 is killed and started again */
/* clang-format on */

/* ---- Configuration ----------------------------------------------- */

typedef enum fp_log_level {
  FP_LOG_DEBUG = 0,
  FP_LOG_INFO = 1,
  FP_LOG_WARN = 2,
  FP_LOG_ERROR = 3
} fp_log_level;

/* Receives one event line (no newline, no timestamp). */
typedef void (*fp_log_fn)(void *ctx, fp_log_level level, const char *msg);

typedef struct fp_config {
  /* clang-format off */
  size_t size;          /* sizeof(fp_config) as the caller compiled it:
                           set by fp_config_init(), do not change (see the
                           ABI policy at the top) */
  unsigned workers;     /* worker processes; default: online CPUs */
  unsigned slots;       /* task slots in the queue; default 256 */
  size_t max_input;     /* bytes per task input; default 64 KiB */
  size_t max_output;    /* bytes per task output; default 64 KiB */
  unsigned timeout_ms;  /* per-task run time limit; 0 (default) = none.
                           A task past it ends FP_TIMEOUT, also when its
                           handler returns late (its result is dropped);
                           the kill never reaches another task */
  unsigned max_tasks;   /* recycle a worker after this many; 0 = never */
  fp_handler_fn handler; /* required */
  void *arg;            /* passed to handler and hooks */
  fp_init_fn worker_init; /* optional */
  fp_fini_fn worker_fini; /* optional */
  unsigned flags;       /* FP_CONFIG_* bits; others: -EINVAL */
  unsigned max_attempts; /* runs of a task whose worker crashed or timed
                           out, before it ends so; 0 or 1 (default): no
                           retry. At-least-once: a retried task may have
                           run partly before. At most 100 */
  unsigned min_workers; /* with max_workers: the pool grows while tasks
                           wait and every worker is busy, and shrinks
                           after idle_ms with a worker idle, between these
                           bounds; workers is the starting size. 0 and 0
                           (default): a fixed size. min 0 means 1 */
  /* clang-format on */
  unsigned max_workers;
  /* clang-format off */
  unsigned idle_ms;     /* shrink after this long idle; 0: 5000 */
  fp_log_fn log;        /* optional: the supervisor's events (a worker
                           died, backoff, repairs) and what handlers
                           write to stdout and stderr (see
                           fp_handler_fn), called in the supervisor
                           process: a private pool's is a fork of the
                           caller, so the function may write to the
                           caller's stderr but not touch its state */
  /* clang-format on */
  void *log_ctx;
  /* clang-format off */
  unsigned max_memory_mb; /* per worker: address space it may add after
                             fork (RLIMIT_AS); 0 = no limit. A task that
                             needs more gets allocation failures, and ends
                             failed or crashed as its handler copes */
  unsigned max_rss_mb;  /* per worker: after a task, a worker whose
                           resident set is above this many MiB exits and
                           is replaced before the next task (the task
                           itself ends as its handler said); the
                           supervisor logs one warning per recycling,
                           with the pid, the size and the limit, and
                           fp_stats.restarts counts it. 0 (default): no
                           limit, and no cost. At most 1048576 (1 TiB) */
  /* clang-format on */
} fp_config;

/* fp_config.flags. */
/* clang-format off */
#define FP_CONFIG_SEAL 1u /* make the shared segment inaccessible to the
                             worker while the handler runs (input and
                             output go through private copies), so a stray
                             write faults instead of landing; costs two
                             mprotect calls per task */
/* clang-format on */

/*
 * Fill *cfg with defaults, `size` bytes of it, and record that size in
 * cfg->size (the inline fp_config_init() passes sizeof). Always succeeds.
 * Set at least cfg->handler after.
 */
FP_EXTERN void fp_config_init_sized(fp_config *cfg, size_t size);
static inline void fp_config_init(fp_config *cfg) {
  fp_config_init_sized(cfg, sizeof(*cfg));
}

/*
 * Check a config without starting anything. Returns 0, or -EINVAL when a
 * value is out of range (zero workers or slots, limits above FP_MAX_*, a
 * segment over FP_MAX_SEGMENT_BYTES, no handler, unknown flags) or its
 * size is not one this library can read (see the ABI policy).
 */
FP_EXTERN int fp_config_validate(const fp_config *cfg);

/* ---- A private pool: start and stop ------------------------------ */

/* Stop modes for fp_pool_stop(). */
#define FP_STOP_DRAIN 0 /* finish queued and running tasks (within grace) */
#define FP_STOP_NOW 1   /* cancel queued tasks, kill running ones */

/*
 * Start a private pool: map the shared segment, fork the supervisor, which
 * forks cfg->workers workers and runs worker_init in each. Returns once every
 * worker is ready. The caller becomes the pool's only producer.
 *
 * Returns 0 and stores the handle in *out; -EINVAL for a bad config; -ENOMEM,
 * -EAGAIN (a fork failed: process limit; not a full queue), -EMFILE... from
 * the system; -ECHILD when the workers could
 * not start (worker_init failed in every attempt). On error nothing is left
 * behind: no process, no mapping, *out untouched.
 *
 * Call before creating threads where you can: the supervisor is forked from
 * the caller (it never runs user code; glibc keeps malloc usable after fork).
 */
FP_EXTERN int fp_pool_start(fp_pool **out, const fp_config *cfg);

/*
 * Stop the pool (only the process that started it: -EPERM for a handle from
 * fp_pool_open). FP_STOP_DRAIN stops accepting tasks, lets queued and running
 * tasks finish for up to grace_ms (negative: no limit), then kills what is
 * left; FP_STOP_NOW cancels queued tasks and kills running ones at once.
 * Tasks that could not finish end FP_CANCELLED. Returns when the supervisor
 * and every worker are gone; idempotent (later calls return 0 at once).
 *
 * Submitters blocked on a full queue return -ESHUTDOWN. Results of finished
 * tasks stay collectable until fp_pool_free(). Returns 0, or -EINVAL for a
 * bad mode.
 */
FP_EXTERN int fp_pool_stop(fp_pool *pool, int mode, int grace_ms);

/*
 * Stop the pool at once if it runs (FP_STOP_NOW), then release the handle and
 * its mapping. The handle must not be in use by another thread. NULL is a
 * no-op. Safe after the supervisor died: no SIGPIPE, whatever the caller's
 * disposition.
 *
 * If the caller dies without calling it, the supervisor notices within a
 * second (even while children the caller forked keep its descriptors open),
 * stops the pool and kills its workers.
 */
FP_EXTERN void fp_pool_free(fp_pool *pool);

/* ---- Submitting -------------------------------------------------- */

/*
 * Submit one task: copy `len` bytes of `in` into a free slot and queue it.
 * timeout_ms: FP_NOWAIT, a positive number of milliseconds, or FP_FOREVER.
 * Stores the task id in *id (never 0).
 *
 * Fair shares (named pools): a producer may hold at most
 *   max(1, (slots - slots / 4) / producers)
 * uncollected tasks (fp_pending()), where producers is the number of
 * producer handles attached (counted as one attaches, and recounted by the
 * supervisor every 100 ms); and it takes one of the last quarter of the
 * free slots only while it holds fewer than max(1, (slots / 4) /
 * producers). So producers that stop collecting cannot starve the others:
 * a newcomer finds a free slot. A share shrinks as producers attach, but
 * no slot already held is taken back. A private pool (fp_pool_start) has
 * one producer and no share: every slot.
 *
 * Bounded waits: a submit takes no lock shared with another process (a
 * slot this producer collected before is taken back, a free one claimed,
 * the task queued, each by compare-and-swap), so no process, stopped or
 * hostile, can make it wait for that process. It waits only for room: a
 * free slot within its share, or (rarely: a full ring of tasks not yet
 * taken) for the workers to take some; FP_NOWAIT never sleeps (a full
 * ring is retried for 1 ms at most, yielding the CPU), and a positive
 * timeout_ms bounds the whole call.
 *
 * Returns 0; -EAGAIN when no slot could be had at once and timeout_ms is
 * FP_NOWAIT (queue full, this producer's share used up, or the free-slot
 * lock busy); -ETIMEDOUT when that lasted timeout_ms; -EDEADLK when waiting could
 * never succeed: every slot this producer may use (its share, or in a
 * private pool every slot) holds its own finished, uncollected results, and
 * still did after a short recheck (another thread collecting in time is not
 * refused): collect first (fp_collect), then submit again; -EMSGSIZE when
 * len is above max_input; -ESHUTDOWN when the pool is stopping or stopped
 * (also for a submitter blocked when stop began); -EPIPE when the
 * supervisor died. Tasks submitted to a named pool whose workers are still
 * starting wait in the queue.
 * On error no task was queued and nothing is held.
 */
FP_EXTERN int fp_submit(fp_pool *pool, const void *in, size_t len,
                        int timeout_ms, uint64_t *id);

/* Task priorities for fp_submit_prio(). */
#define FP_PRIO_NORMAL 0
#define FP_PRIO_HIGH 1

/*
 * fp_submit() with a priority. High-priority tasks start before normal
 * ones, except that after 4 high tasks in a row a waiting normal task goes
 * next, so normal tasks are delayed, never starved. Between producers of a
 * named pool, workers take tasks in turn (one producer's backlog does not
 * hold another's tasks back). Returns as fp_submit(), and -EINVAL for an
 * unknown priority.
 */
FP_EXTERN int fp_submit_prio(fp_pool *pool, const void *in, size_t len,
                             int timeout_ms, int priority, uint64_t *id);

/* ---- Results: waiting and collecting ----------------------------- */

/* How a task ended. Exactly one per accepted task. */
typedef enum fp_status {
  /* clang-format off */
  FP_OK = 0,        /* handler returned 0; output is valid */
  FP_FAILED = 1,    /* handler returned an error code (result.code) */
  FP_CRASHED = 2,   /* worker died running it: result.signal or .exit_code */
  FP_TIMEOUT = 3,   /* ran past timeout_ms; its worker was killed */
  FP_CANCELLED = 4, /* never finished because the pool stopped */
  FP_CORRUPT = 5    /* its slot in shared memory was damaged (a stray write
                       by some other task): its input or result failed its
                       check value, so it did not run, or its result is not
                       delivered. Never retried automatically */
  /* clang-format on */
} fp_status;

typedef struct fp_result {
  /* clang-format off */
  size_t size;           /* sizeof(fp_result) as the caller compiled it:
                            set by fp_result_init(); 0 (a zeroed result)
                            is taken as this header's size */
  uint64_t id;           /* the task id fp_submit() returned */
  fp_status status;      /* FP_CRASHED / FP_TIMEOUT: output holds the
                            crash or hang report when one was written:
                            "SIGSEGV at address 0x0\n#0 func+0x1f (lib.so)
                            \n..." (truncated to max_output), frames down
                            to the handler; a signal sent rather than a
                            fault: "SIGFPE sent by pid N (uid U)"; a late
                            return: "returned after N ms, past its L ms
                            limit" */
  int code;              /* FP_FAILED: the handler's error code, else 0 */
  int signal;            /* signal that killed the worker, else 0 */
  int exit_code;         /* worker's exit status when it exited, else -1 */
  unsigned attempts;     /* times the task was started (0 if never) */
  pid_t worker;          /* pid of the worker that ran it last, else 0 */
  uint64_t run_us;       /* time it ran, in microseconds */
  unsigned char *output; /* FP_OK/FP_FAILED: handler output; owned here
                            (a copy, which the library reuses and frees:
                            never free() it yourself), or in the task's
                            slot until released (a view: fp_collect_view) */
  /* clang-format on */
  size_t output_len;
  uint64_t root;   /* the tree it belongs to (its own id if none) */
  uint64_t parent; /* the task that spawned it, 0 for a root */
} fp_result;

/*
 * Set up a result before its first use (its size, no output), and reset
 * it after: fp_result_release() frees a copied output or gives a view's
 * slot back (as fp_view_release), then resets. A zeroed fp_result works
 * too, as this header's layout.
 */
FP_EXTERN void fp_result_init_sized(fp_result *res, size_t size);
static inline void fp_result_init(fp_result *res) {
  fp_result_init_sized(res, sizeof(*res));
}
FP_EXTERN void fp_result_release(fp_result *res);

/* "ok", "failed", "crashed", "timeout", "cancelled", "corrupt", or
 * "unknown". */
FP_EXTERN const char *fp_status_name(fp_status st);

/*
 * Wait for the task `id` to end and move its result into *res (output bytes
 * are copied into res->output, which is reused and grown as needed). The
 * task's slot is freed; a task's result is delivered once.
 *
 * *res must be zeroed or set up by fp_result_init() before first use.
 * Returns 0; -ETIMEDOUT when it did not end within timeout_ms (the task is
 * still yours to wait for); -ENOENT when id is not a pending task of this
 * handle (unknown, or already collected); -EPIPE when the supervisor died
 * and the task cannot end; -ENOMEM when the output could not be copied (the
 * result stays pending). Takes no lock: timeout_ms holds whatever another
 * process does.
 */
FP_EXTERN int fp_wait(fp_pool *pool, uint64_t id, fp_result *res,
                      int timeout_ms);

/*
 * Collect the result of any finished task of this handle, oldest submission
 * first among those finished. Same result handling as fp_wait(). Returns 0;
 * -ETIMEDOUT when none finished within timeout_ms; -ENOENT when no task is
 * pending at all; -EPIPE when the supervisor died.
 */
FP_EXTERN int fp_collect(fp_pool *pool, fp_result *res, int timeout_ms);

/* Number of submitted tasks of this handle not yet collected. */
FP_EXTERN unsigned fp_pending(const fp_pool *pool);

/* ---- Zero copy: write inputs and read results in the slot ---------- */

/*
 * For large tasks: the input is written straight into a slot of the
 * shared segment, and the result read where the worker wrote it, with no
 * copy and no allocation per task in the producer (fp_submit copies the
 * input, fp_collect the output). The handler runs on the slot's bytes
 * either way. Example, 1 MiB in and out:
 *
 *   void *buf;
 *   uint64_t id;
 *   int r = fp_submit_begin(pool, 1 << 20, FP_FOREVER, FP_PRIO_NORMAL, &buf);
 *   if (r < 0) return r;
 *   size_t n = produce_into(buf, 1 << 20);     (write at most max_input)
 *   r = fp_submit_commit(pool, buf, n, FP_FOREVER, &id);
 *   if (r < 0) { if (r == -EAGAIN || r == -ETIMEDOUT)
 *                  fp_submit_abort(pool, buf);
 *                return r; }
 *   fp_result res;
 *   fp_result_init(&res);
 *   r = fp_wait_view(pool, id, &res, FP_FOREVER);
 *   if (r == 0 && res.status == FP_OK)
 *     consume(res.output, res.output_len);      (bytes in the slot)
 *   fp_view_release(pool, &res);                (the slot goes back)
 *
 * Both halves mix freely with fp_submit and fp_collect on one handle.
 * Not for monitor handles (-EPERM); thread-safe like the rest.
 */

/*
 * Reserve a slot for a task of up to `len` bytes (len <= max_input) and
 * store in *buf the address of its input buffer in shared memory:
 * max_input bytes (fp_stats.max_input), writable until the task is
 * committed or aborted, aligned to 64 bytes. Waits for a slot exactly as
 * fp_submit_prio() does (timeout_ms, fair shares, bounded lock waits; a
 * begun slot counts against this producer's share as a pending task
 * does), and returns as it: 0; -EAGAIN, -ETIMEDOUT, -EDEADLK, -EMSGSIZE
 * (len above max_input), -ESHUTDOWN, -EPIPE, -EINVAL (bad priority, NULL
 * buf), -EPERM (monitor), -ENOMEM. On error nothing is reserved.
 *
 * Several submissions may be begun at once (by one thread or several),
 * each its own slot, committed or aborted in any order. Begun slots are
 * not tasks yet: fp_pending() does not count them, fp_wait() and
 * fp_cancel() do not know them, and a stop refuses their commit.
 * If the producer dies (or calls fp_pool_free()) before committing, the
 * task never existed: a named pool's supervisor frees the slot once the
 * producer's row is released, as for a producer killed inside fp_submit;
 * a private pool stops with its owner.
 */
FP_EXTERN int fp_submit_begin(fp_pool *pool, size_t len, int timeout_ms,
                              int priority, void **buf);

/*
 * Queue the begun task whose input buffer is `buf`, with its first `len`
 * bytes as input (len <= max_input: it need not be the len given to
 * fp_submit_begin), and store its id in *id; from then on it is a task
 * like any fp_submit()ted one. The bytes are read in place (sealed with
 * their check value here) and must not be written after this call.
 * timeout_ms bounds the wait for room on this producer's ready ring (full
 * only while that many of its tasks wait for workers), as for fp_submit().
 * Returns 0; -EAGAIN (FP_NOWAIT) or -ETIMEDOUT: the ring stayed full,
 * nothing was queued and the submission is still begun: commit again or
 * abort; -EMSGSIZE (len above max_input: still begun, too);
 * -ENOENT when buf is not a submission this handle began (committed or
 * aborted already, or not a slot's buffer); -ESHUTDOWN (a stop began),
 * -EPIPE (supervisor gone) or -EBADMSG (the slot's shared header was
 * damaged by a stray write meanwhile, counted in fp_stats.corrupt): these
 * end the submission, nothing is queued and buf is not ours any more.
 */
FP_EXTERN int fp_submit_commit(fp_pool *pool, void *buf, size_t len,
                               int timeout_ms, uint64_t *id);

/*
 * Give back the begun submission whose input buffer is `buf`, without
 * queueing anything. Returns 0, or -ENOENT when buf is not a submission
 * this handle began (a second abort, or after a commit: nothing changed).
 */
FP_EXTERN int fp_submit_abort(fp_pool *pool, void *buf);

/*
 * fp_wait() and fp_collect() with the output read in place: res->output
 * points into the task's slot in shared memory (res->output_len bytes,
 * not NUL-terminated, read-only) instead of a copy, and stays valid until
 * the view is released with fp_view_release() (or fp_result_release(),
 * or by passing res to another wait or collect call), and never after
 * fp_pool_free(). Same returns as fp_wait() and fp_collect(), -ENOMEM
 * (first use) and -EINVAL when *res holds a view of another pool. Every
 * status is viewed this way, a crash or hang report included.
 *
 * The result's check value is verified over the slot's bytes before the
 * view is handed out, as fp_collect() verifies its copy: a damaged result
 * is FP_CORRUPT with no output (and no view to release). Nobody writes a
 * viewed slot but by accident (a stray write from another process), and
 * fp_view_check() verifies again after reading, if that matters.
 *
 * A view holds its slot: until released, it counts against this
 * producer's share (and, in a private pool, against the slots) as an
 * uncollected task does, though fp_pending() no longer counts it. A
 * producer that never releases its views ends with -EDEADLK or -EAGAIN
 * from submit, never stalls other producers beyond its share; when it
 * exits, a named pool's supervisor frees the slots (counted abandoned).
 * What *res held before is released first: a view of this pool, or a
 * copied output buffer (freed).
 */
FP_EXTERN int fp_wait_view(fp_pool *pool, uint64_t id, fp_result *res,
                           int timeout_ms);
FP_EXTERN int fp_collect_view(fp_pool *pool, fp_result *res, int timeout_ms);

/*
 * Give back the slot a view in *res holds and reset *res (as
 * fp_result_init). Returns 0; also 0, doing nothing but the reset, when
 * *res holds no view (released already: releasing twice is harmless);
 * -ENOENT for a stale copy of a released view's fp_result (no slot is
 * touched, *res is reset); -EINVAL when *res holds a copied output
 * (fp_result_release() frees that) or a view of another pool (nothing
 * changed). fp_result_release() on a view does the same as this.
 */
FP_EXTERN int fp_view_release(fp_pool *pool, fp_result *res);

/*
 * Verify a view's bytes again against their check value (after reading
 * them, say). Returns 0 when they still match; -EBADMSG when the slot was
 * written meanwhile (a stray write: do not trust what was read); -ENOENT
 * for a view this handle no longer holds; -EINVAL when *res is no view.
 * Reads the whole output: costs about what a copy would.
 */
FP_EXTERN int fp_view_check(fp_pool *pool, const fp_result *res);

/* ---- Recursive pools and cancelling ------------------------------ */

/*
 * Collect the next result of the tree rooted at task `root`: the root, or
 * any task it spawned, transitively; the producer submits spawned tasks as
 * slots allow meanwhile. res->root and res->parent say where a result
 * belongs. Returns 0; -ENOENT once every task of the tree was collected (or
 * for an unknown root); -ETIMEDOUT; -EPIPE. Results of other tasks of this
 * handle stay pending: collect them too, or they hold slots.
 */
FP_EXTERN int fp_collect_tree(fp_pool *pool, uint64_t root, fp_result *res,
                              int timeout_ms);

/*
 * Cancel task `id` of this pool (any producer's, in a named pool). A queued
 * task ends FP_CANCELLED at once and never runs: returns 0. A running one:
 * its worker is killed (with its process group) and replaced, and the task
 * ends FP_CANCELLED unless it finished first: returns -EINPROGRESS. Returns
 * -EALREADY when it had finished already, -ENOENT for no such task, -EPERM
 * on a monitor handle, -EPIPE when the supervisor died (nothing is left to
 * kill the worker; fp_wait() reports how the task ended). Takes no lock:
 * the task's state word decides, so it returns at once whatever another
 * process does (a queued task that another call is cancelling at the same
 * moment: 0). Never raises SIGPIPE, whatever the caller's disposition.
 */
FP_EXTERN int fp_cancel(fp_pool *pool, uint64_t id);

/* ---- Stats and the scoreboard ------------------------------------ */

/* A pool's state (fp_stats.state). */
typedef enum fp_pool_state {
  FP_POOL_STARTING = 0, /* workers are starting; tasks wait in the queue */
  FP_POOL_RUNNING = 1,
  FP_POOL_DRAINING = 2, /* stopping: no new tasks, queued ones finish */
  FP_POOL_STOPPING = 3, /* killing what is left */
  FP_POOL_STOPPED = 4,  /* every task ended; the supervisor is gone */
  FP_POOL_FAILED = 5    /* it could not start */
} fp_pool_state;

/* A scoreboard row's state (fp_worker_info.state). */
typedef enum fp_worker_state {
  FP_WORKER_EMPTY = 0,    /* no process in the row */
  FP_WORKER_STARTING = 1, /* forked, running its init hook */
  FP_WORKER_IDLE = 2,
  FP_WORKER_BUSY = 3,   /* running a task */
  FP_WORKER_BACKOFF = 4 /* waiting to be forked again (crash loop) */
} fp_worker_state;

/* Counters, as seen at one instant (fp_pool_stats). */
typedef struct fp_stats {
  uint64_t submitted, ok, failed, crashed, timeout, cancelled;
  /* clang-format off */
  uint64_t restarts;    /* workers forked to replace one that exited */
  uint64_t abandoned;   /* results nobody collected (producer gone) */
  unsigned workers;     /* configured */
  unsigned alive;       /* worker processes currently alive */
  unsigned queued;      /* tasks waiting for a worker */
  unsigned running;     /* tasks in a worker right now */
  unsigned slots;       /* capacity */
  pid_t supervisor;     /* 0 when it is gone */
  uint64_t uptime_us;   /* since the supervisor started */
  unsigned rows;        /* scoreboard rows (upper bound on workers) */
  unsigned clients;     /* producer processes attached (named pools) */
  fp_pool_state state;  /* fp_pool_state_name() names it */
  uint64_t repairs;     /* free stack rebuilt after a process died holding
                           its lock, or a damaged ready ring swept */
  uint64_t segment_bytes; /* size of the shared segment */
  uint64_t retried;     /* runs repeated after a crash or timeout */
  uint64_t quarantined; /* tasks that used up max_attempts (> 1): poison */
  unsigned min_workers, max_workers; /* resizing bounds (0, 0: fixed) */
  uint64_t last_resize_us; /* time since the last resize; 0 if none */
  size_t max_input;     /* the pool's limits */
  /* clang-format on */
  size_t max_output;
  unsigned timeout_ms;
  /* clang-format off */
  uint64_t corrupt;     /* damaged slots found: a task that did not run
                           (counted in failed) or a result not delivered
                           (counted where its worker counted it) */
  /* clang-format on */
  /*
   * Run time of finished tasks (every terminal status but cancelled), as a
   * histogram: duration_le[k] counts tasks that ran at most
   * FP_DURATION_BOUNDS_US[k] microseconds (cumulative, like Prometheus'
   * "le" buckets); the last bucket is +Inf (every task).
   */
  uint64_t duration_le[8];
  uint64_t duration_count, duration_sum_us;
} fp_stats;

/* Upper bounds of fp_stats.duration_le buckets, in microseconds. */
#define FP_DURATION_BUCKETS 8
#define FP_DURATION_BOUNDS_US \
  { 100, 1000, 10000, 100000, 1000000, 10000000, 60000000, UINT64_MAX }

/* One scoreboard row, for `forkpool stat`. */
typedef struct fp_worker_info {
  pid_t pid;             /* 0: no process in this row */
  fp_worker_state state; /* fp_worker_state_name() names it */
  uint64_t task_id;      /* current task, 0 when idle */
  uint64_t running_us;   /* how long the current task has run */
  uint64_t done;         /* tasks finished in this row, all processes */
  unsigned restarts;     /* processes forked into this row after the first */
} fp_worker_info;

/*
 * Read the pool's counters and gauges into *st, `size` bytes of it (the
 * inline fp_pool_stats() passes sizeof). Returns 0, or -EINVAL (no pool,
 * or a size below the fields up to `supervisor`). Reads shared memory
 * only; any handle, a monitor's too.
 */
FP_EXTERN int fp_pool_stats_sized(const fp_pool *pool, fp_stats *st,
                                  size_t size);
static inline int fp_pool_stats(const fp_pool *pool, fp_stats *st) {
  return fp_pool_stats_sized(pool, st, sizeof(*st));
}

/*
 * Scoreboard row `row` (0 <= row < fp_stats.rows) into *wi, `size` bytes
 * of it (the inline fp_pool_worker() passes sizeof). Returns 0, -EINVAL
 * (a size below the fields up to `state`), or -ERANGE past the last row.
 * Reads shared memory only.
 */
FP_EXTERN int fp_pool_worker_sized(const fp_pool *pool, unsigned row,
                                   fp_worker_info *wi, size_t size);
static inline int fp_pool_worker(const fp_pool *pool, unsigned row,
                                 fp_worker_info *wi) {
  return fp_pool_worker_sized(pool, row, wi, sizeof(*wi));
}

/* "starting", "running", "draining", "stopping", "stopped", "failed";
 * and "empty",
 * "starting", "idle", "busy", "backoff"; "unknown" for another value. */
FP_EXTERN const char *fp_pool_state_name(fp_pool_state st);
FP_EXTERN const char *fp_worker_state_name(fp_worker_state st);

/* ---- Named pools: a supervisor process others attach to ------------- */

/*
 * A named pool NAME lives in the POSIX shared-memory object
 * "/forkpool.NAME" (on Linux: /dev/shm/forkpool.NAME). NAME is 1 to
 * FP_NAME_MAX characters of [A-Za-z0-9_-], not starting with '-'.
 */
#define FP_NAME_MAX 64

typedef struct fp_serve_config {
  /* clang-format off */
  size_t size;          /* sizeof as the caller compiled it: set by
                           fp_serve_config_init() */
  const char *name;     /* required */
  unsigned mode;        /* segment permissions; default 0600; see below */
  int grace_ms;         /* SIGTERM/SIGINT drain limit; default 10000; <0: none */
  unsigned max_workers; /* SIGTTIN ceiling; default max(64, workers) */
  unsigned max_clients; /* producer processes attached at once; default 64 */
  fp_log_fn log;        /* optional */
  /* clang-format on */
  void *log_ctx;
  void (*on_ready)(void *ctx); /* optional: once producers can submit */
  void *ready_ctx;
  /* optional: called in the serving process on SIGHUP, before any worker
     is replaced. It may change the handler, arg, worker_init and
     worker_fini of the fp_config given to fp_serve() (nothing else:
     workers forked from then on run them). Returns 0 to replace the
     workers, one at a time, between tasks; a negative errno keeps the
     running workers and their code (it is logged; the hook should log
     why, and must leave the fp_config as it was) */
  int (*on_reload)(void *ctx);
  void *reload_ctx;
} fp_serve_config;

/*
 * fp_serve_config.mode: the segment's permission bits. The owner (the
 * serving process's effective uid) always has read and write; the "other"
 * bits must be 0 (-EINVAL otherwise). The segment's group is the serving
 * process's effective gid (start it with `sg GROUP` or `setpriv --regid`).
 *   0600  only the owner attaches.
 *   0640  members of the group may attach with FP_OPEN_MONITOR (stats).
 *   0660  members of the group are producers like the owner.
 *
 * Trust model of a shared (0640/0660) pool. A member of the group is
 * trusted with the data: it can read, with code of its own, every input
 * and output in the segment, and (0660) write into any slot, so it may
 * damage or forge other producers' tasks and results, and it can deny the
 * others service (hold client rows, fill the queue, hold the free-slot
 * lock).
 * It is not trusted with the supervisor: every index, length and state read
 * from the segment is bounds-checked, the supervisor signals only the pids
 * it forked itself (never one read from the segment) and no lock wait has
 * no deadline, so a member cannot make the supervisor signal or kill a
 * process of its choice, run code, or read a file or another user's pool.
 * fp_pool_open() attaches only to a segment whose file is owned by the
 * creator uid its header records, so a member cannot pass a segment of its
 * own off as the owner's pool. One power remains that file permissions
 * cannot take away: a process that can open the segment for writing can
 * ftruncate() it. The supervisor survives that (it catches the SIGBUS on
 * its mapping, stops the pool, kills and reaps its workers, removes the
 * name and fp_serve() returns -EIO), but the workers and every producer
 * that touches the cut pages die of SIGBUS. Share a pool (0660) only with
 * a group whose members you would let stop it.
 */

/* Fill *sc with defaults (name NULL), `size` bytes of it, and record the
 * size (the inline fp_serve_config_init() passes sizeof). */
FP_EXTERN void fp_serve_config_init_sized(fp_serve_config *sc, size_t size);
static inline void fp_serve_config_init(fp_serve_config *sc) {
  fp_serve_config_init_sized(sc, sizeof(*sc));
}

/* 0 when name is a valid pool name, else -EINVAL. */
FP_EXTERN int fp_name_validate(const char *name);

/*
 * Serve a named pool: the calling process becomes its supervisor, creates
 * the segment, forks the workers and supervises them until SIGTERM or SIGINT,
 * then drains (refusing new tasks, finishing queued and running ones within
 * grace_ms, cancelling or killing what is left), removes the segment and
 * returns 0. SIGHUP replaces every worker, one at a time, between tasks
 * (after sc->on_reload, when set, loaded new code);
 * SIGTTIN / SIGTTOU add / remove one worker (never below one). Those signals
 * are blocked in the calling thread while it runs, and restored after.
 *
 * Every page of the segment is allocated when it is created
 * (posix_fallocate), so a /dev/shm that is too small, or filled later by
 * anyone, is -ENOSPC here and never a SIGBUS in the supervisor, a worker or
 * a producer; the size is logged through the log function.
 *
 * The signals above are blocked from before the segment is created until
 * after it is unlinked; those that arrive after the pool stopped are
 * drained (SIGCHLD excepted) before the caller's mask comes back, so no
 * number of SIGTERMs leaves the segment behind. A caller that must clean
 * up after fp_serve() returns (a pidfile) blocks SIGTERM, SIGINT and SIGHUP
 * itself before calling it and keeps them blocked until it is done.
 * While it runs, fp_serve() also handles SIGBUS (a fault on the segment's
 * mapping stops the pool; any other SIGBUS keeps its default action); the
 * caller's disposition comes back before it returns.
 *
 * Returns 0 after a clean stop; -EINVAL (bad name, config or mode);
 * -EADDRINUSE (a live supervisor of ours serves NAME: nothing was changed);
 * -EACCES (the object exists and is another user's: it is left alone,
 * stale or not); -ELOOP (a symbolic link is at the path: left alone);
 * -ENOSPC (no room in /dev/shm for the segment); -EAGAIN (a worker could
 * not be forked at start: process limit); -ECHILD (workers could not
 * start); -EIO (the pool ran, but its segment was truncated by another
 * process and the pool was stopped: see fp_serve_config.mode); -errno. A segment of ours left by a dead supervisor is replaced.
 * On error nothing is left behind. Call from a single-threaded process.
 *
 * When the calling process has no child at the call, it is a child
 * subreaper while it serves (as a private pool's supervisor is), so that
 * processes a dead worker's task left become its children, and it kills
 * and reaps every child that is not a worker (after each worker death and
 * at stop). A caller with children of its own keeps them untouched; its
 * pool's tasks' processes are then still ended when a task finishes, but
 * those of a worker that died (crash, timeout, stop) may escape.
 */
FP_EXTERN int fp_serve(const fp_config *cfg, const fp_serve_config *sc);

/* fp_pool_open() flags. */
#define FP_OPEN_MONITOR 1u /* read-only view for stats: no submit */

/*
 * Attach to the named pool NAME as a producer: the handle then supports
 * fp_submit, fp_wait, fp_collect, fp_pending and the stats calls, exactly as
 * a started pool does, and sees only its own tasks. fp_pool_stop() on it
 * returns -EPERM; fp_pool_free() detaches. With FP_OPEN_MONITOR the view is
 * read-only (stats and scoreboard only) and takes no producer row.
 *
 * Who may attach: the segment file's owner; and a member of the file's
 * group (effective or supplementary) when its mode gives the group read
 * and write (as a producer) or read (FP_OPEN_MONITOR); in both cases the
 * file's owner must be the creator uid recorded in the segment's header.
 * See fp_serve_config.mode for what a group member can and cannot do.
 *
 * The segment is validated first (magic, layout version, every size against
 * the mapping, owner uid): nothing in it is trusted. Returns 0; -ENOENT (no
 * pool of that name); -ECONNREFUSED (only a segment left by a dead
 * supervisor); -EACCES (another user's segment we are not allowed, a mode
 * that denies us, or a header whose creator is not the file's owner);
 * -ELOOP (a symbolic link at the path: never followed); -EBADMSG (not a
 * forkpool segment, or corrupt); -EPROTO (another layout version);
 * -ESHUTDOWN (the pool is stopping); -EUSERS (max_clients producers
 * attached); -EINVAL (bad name or flags). On error nothing is left mapped.
 *
 * If this process dies, its queued tasks still run and its uncollected
 * results are freed (counted as abandoned): the pool loses no capacity.
 */
FP_EXTERN int fp_pool_open(fp_pool **out, const char *name, unsigned flags);

/* ---- Text -------------------------------------------------------- */

/*
 * Text for a negative errno returned by this library (positive values are
 * accepted too). Never NULL; thread-safe (static strings only).
 */
FP_EXTERN const char *fp_strerror(int err);

/* FP_VERSION_STRING of the library actually linked. */
FP_EXTERN const char *fp_version(void);

#ifdef __cplusplus
}
#endif

#endif /* FORKPOOL_H */
