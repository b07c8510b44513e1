/*
 * One result line of `forkpool run` and `forkpool submit`, plain or JSON.
 *
 * Plain:  <status> TAB <detail> LF
 *   ok        the output, escaped by cli_plain_escape()
 *   failed    code=N     (too long input: code=90 input is N bytes, over
 *                         --max-input M / over the pool's max input)
 *   crashed   SIGNAME, or exit=N when the worker exited
 *   timeout   SIGNAME of the kill (or "timeout")
 *   cancelled cancelled
 *   corrupt   code=N     (the library's code, EBADMSG)
 *   error     no result within MS ms   (submit --timeout: we stopped
 *                                       waiting; the task was not ended)
 * With --backtrace, a crashed or timeout result that carries a report gets
 * a third field: TAB, then the report's lines joined with " | " (each
 * escaped by cli_plain_escape()), so one result is still one line:
 *   crashed TAB SIGSEGV TAB SIGSEGV at address 0x0 | #0 crashy_segv+0xd ...
 * JSON (one object per line, keys in this order, optional ones omitted):
 *   {"seq":0,"id":17,"status":"ok","output":"HELLO","signal":"SIGSEGV",
 *    "exit":3,"code":7,"error":"...","backtrace":"SIGSEGV at ...\n#0 ...",
 *    "attempts":1,"worker":1234,"ms":0.012}
 * "id" (the task id) only with show_id, for a task that was submitted;
 * "backtrace" (the report as it is) only with --backtrace, for a crashed or
 * timeout result that carries one.
 */
#ifndef FORKPOOL_CLI_FORMAT_H
#define FORKPOOL_CLI_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "output.h"
#include "reorder.h"

/* The error code reported for a record over --max-input. */
#define CLI_CODE_OVERSIZE 90 /* EMSGSIZE on Linux */

#include "tool/signame.h" /* tool_signal_name() */

/* How to print results. */
struct cli_format {
  int json;         /* JSON lines instead of tab-separated text */
  size_t max_input; /* quoted for an oversize entry; 0: not known */
  unsigned wait_ms; /* quoted for an expired entry */
  int backtrace;    /* --backtrace: print crash and hang reports */
  int show_id;      /* JSON: the task id (submit) */
};

/*
 * Append the line for the finished entry e at position seq. Returns 1 when
 * the task ended FP_OK, 0 otherwise.
 */
int cli_format_result(struct cli_out *o, const struct cli_format *f,
                      uint64_t seq, const struct cli_entry *e);

/* The --help lines of --backtrace (run and submit). */
/* clang-format off */
#define CLI_BACKTRACE_USAGE \
"  --backtrace        add the crash or hang report (signal, address, stack)\n" \
"                     of a crashed or timeout task: a third TAB-separated\n" \
"                     field, its lines joined with ' | ', or in JSON a\n" \
"                     \"backtrace\" string\n"
/* clang-format on */

#endif /* FORKPOOL_CLI_FORMAT_H */
