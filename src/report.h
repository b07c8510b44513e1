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

/* The signal the supervisor sends for a hang dump (a real-time signal). */
FP__HIDDEN int fp__dump_signal(void);

/*
 * Render the raw report `rep` (if it is about task `task_id`) as text:
 *   "SIGSEGV at 0x0\n#0 crashy_segv+0x12 (crashy.so)\n..." or
 *   "stuck in:\n#0 ...". Frames of the signal handler itself are left out.
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
