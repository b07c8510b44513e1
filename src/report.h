/*
 * Crash and hang reports: written by a dying or stuck worker from a signal
 * handler (report.c), turned into text with symbol names by the supervisor
 * (symbolize.c).
 */
#ifndef FP_REPORT_H
#define FP_REPORT_H

#include <stddef.h>

#include "segment.h"

/*
 * In a worker, after its signal dispositions were reset: install the fault
 * handlers (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) and the hang-dump
 * handler on an alternate stack, writing to row `row`'s report. 0 or -errno.
 */
FP__HIDDEN int fp__report_arm(struct fp__seg *s, uint32_t row);

/* Load what backtrace() needs (libgcc_s) now, before forking workers. */
FP__HIDDEN void fp__report_warm(void);

/*
 * The signal the supervisor sends for a hang dump (a real-time signal). The
 * supervisor sends it with sigqueue(), the task id it is about as the
 * value's pointer; the worker ignores a dump about another task.
 */
FP__HIDDEN int fp__dump_signal(void);

/*
 * Worker: task `task` returned ran_ns after it started, past its limit of
 * limit_ms; the worker is about to park until the supervisor kills it.
 * Unless a hang dump for this task was written already (it keeps the stack
 * the task was stuck in), write a report saying so; from now on dumps only
 * flag the report done. Async-signal-safe; cannot fail.
 */
FP__HIDDEN void fp__report_late(uint64_t task, uint64_t ran_ns,
                                unsigned limit_ms);

/*
 * Worker, in a handler: make the current task's report the text `text`
 * (len bytes, truncated to what the report area holds), for
 * fp_task_crashed(). Rendered verbatim. Cannot fail.
 */
FP__HIDDEN void fp__report_text(const void *text, size_t len);

/*
 * Worker: `ret` is the return address of the worker's one call into the
 * handler (worker.c finds it by calling a probe through the same call).
 * A report's backtrace ends at the frame with that pc: the handler's
 * caller, below which are forkpool and the host. NULL: no cut.
 */
FP__HIDDEN void fp__report_cut_at(const void *ret);

/*
 * Render the raw report `rep` (if it is about task `task_id`) as text:
 *   "SIGSEGV at address 0x0\n#0 crashy_segv+0x12 (crashy.so)\n...",
 *   "SIGFPE sent by pid 12 (uid 0, the worker itself)\n#0 ...",
 *   "stuck in:\n#0 ..." or "returned after 201.312 ms, past its 200 ms
 *   limit".
 * Frames of the signal handler itself are left out; frames end with the
 * handler (the worker cut them at its caller).
 * Returns the length written to out (at most cap - 1, NUL-terminated), or 0
 * when there is no report for that task.
 */
FP__HIDDEN size_t fp__report_render(const struct fp__report *rep,
                                    uint64_t task_id, char *out, size_t cap);

/*
 * Name the function holding vaddr `pc` in ELF file `path` (loaded at
 * `base`). Writes "name+0xoff" to out and returns 0, or -ENOENT (no symbol)
 * or -errno. Results are cached per file.
 */
FP__HIDDEN int fp__symbolize(const char *path, uintptr_t base, uintptr_t pc,
                             char *out, size_t cap);

#endif /* FP_REPORT_H */
