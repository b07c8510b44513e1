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
 *   error     no result within MS ms   (submit --timeout: we stopped
 *                                       waiting; the task was not ended)
 * JSON (one object per line, keys in this order, optional ones omitted):
 *   {"seq":0,"status":"ok","output":"HELLO","signal":"SIGSEGV","exit":3,
 *    "code":7,"error":"...","attempts":1,"worker":1234,"ms":0.012}
 */
#ifndef FORKPOOL_CLI_FORMAT_H
#define FORKPOOL_CLI_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "output.h"
#include "reorder.h"

/* The error code reported for a record over --max-input. */
#define CLI_CODE_OVERSIZE 90 /* EMSGSIZE on Linux */

/*
 * "SIGSEGV" for a signal number, "SIGRTMIN+3" for real-time signals,
 * "SIG<n>" for anything else. Returns buf or a static string.
 */
const char *cli_signal_name(int sig, char *buf, size_t len);

/* How to print results. */
struct cli_format {
  int json;           /* JSON lines instead of tab-separated text */
  size_t max_input;   /* quoted for an oversize entry; 0: not known */
  unsigned wait_ms;   /* quoted for an expired entry */
};

/*
 * Append the line for the finished entry e at position seq. Returns 1 when
 * the task ended FP_OK, 0 otherwise.
 */
int cli_format_result(struct cli_out *o, const struct cli_format *f,
                      uint64_t seq, const struct cli_entry *e);

#endif /* FORKPOOL_CLI_FORMAT_H */
