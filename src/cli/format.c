/*
 * Formatting results (signal names: signame.c).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "json.h"

/* The worker's exit code is meaningful only when it died without a signal
 * while running the task. */
static int has_exit(const fp_result *r) {
  return (r->status == FP_CRASHED || r->status == FP_TIMEOUT) &&
         r->signal == 0 && r->exit_code >= 0;
}

/* A crash or hang report rides in the output of these statuses only. */
static int has_report(const struct cli_format *f, const fp_result *r) {
  return f->backtrace && r->output_len > 0 &&
         (r->status == FP_CRASHED || r->status == FP_TIMEOUT);
}

/* The report's lines, escaped, joined with " | " (empty lines dropped). */
static void plain_report(struct cli_out *o, const fp_result *r) {
  const unsigned char *p = r->output, *end = p + r->output_len;
  int first = 1;

  while (p < end) {
    const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
    const unsigned char *stop = nl ? nl : end;

    if (stop > p) {
      if (!first) cli_out_write(o, " | ", 3);
      cli_plain_escape(o, p, (size_t)(stop - p));
      first = 0;
    }
    p = nl ? nl + 1 : end;
  }
}

/* The text of an entry that has no fp_result: oversize or expired. */
static void entry_error(char *buf, size_t len, const struct cli_format *f,
                        const struct cli_entry *e) {
  if (e->state == CLI_ENTRY_EXPIRED)
    snprintf(buf, len, "no result within %u ms", f->wait_ms);
  else if (f->max_input)
    snprintf(buf, len, "input is %llu bytes, over --max-input %zu",
             (unsigned long long)e->input_len, f->max_input);
  else
    snprintf(buf, len, "input is %llu bytes, over the pool's max input",
             (unsigned long long)e->input_len);
}

static void format_plain(struct cli_out *o, const struct cli_format *f,
                         const struct cli_entry *e) {
  const fp_result *r = &e->res;
  char sb[32], eb[96];

  if (e->state == CLI_ENTRY_OVERSIZE || e->state == CLI_ENTRY_EXPIRED) {
    entry_error(eb, sizeof eb, f, e);
    if (e->state == CLI_ENTRY_EXPIRED) cli_out_printf(o, "error\t%s\n", eb);
    else cli_out_printf(o, "failed\tcode=%d %s\n", CLI_CODE_OVERSIZE, eb);
    return;
  }
  cli_out_puts(o, fp_status_name(r->status));
  cli_out_putc(o, '\t');
  switch (r->status) {
  case FP_OK: cli_plain_escape(o, r->output, r->output_len); break;
  case FP_FAILED:
  case FP_CORRUPT: cli_out_printf(o, "code=%d", r->code); break;
  case FP_CRASHED:
    if (r->signal) cli_out_puts(o, tool_signal_name(r->signal, sb, sizeof sb));
    else if (has_exit(r)) cli_out_printf(o, "exit=%d", r->exit_code);
    else cli_out_puts(o, "crashed");
    break;
  case FP_TIMEOUT:
    /* The signal the supervisor killed it with, as for crashed. */
    if (r->signal) cli_out_puts(o, tool_signal_name(r->signal, sb, sizeof sb));
    else cli_out_puts(o, "timeout");
    break;
  default: cli_out_puts(o, fp_status_name(r->status)); break;
  }
  if (has_report(f, r)) {
    cli_out_putc(o, '\t');
    plain_report(o, r);
  }
  cli_out_putc(o, '\n');
}

static void format_json(struct cli_out *o, const struct cli_format *f,
                        uint64_t seq, const struct cli_entry *e) {
  const fp_result *r = &e->res;
  char sb[32], eb[96];

  cli_out_printf(o, "{\"seq\":%llu,", (unsigned long long)seq);
  if (f->show_id && e->id != 0)
    cli_out_printf(o, "\"id\":%llu,", (unsigned long long)e->id);
  cli_out_puts(o, "\"status\":");
  if (e->state == CLI_ENTRY_OVERSIZE || e->state == CLI_ENTRY_EXPIRED) {
    /* The texts are plain ASCII without quotes: no escaping needed. */
    entry_error(eb, sizeof eb, f, e);
    if (e->state == CLI_ENTRY_EXPIRED) cli_out_puts(o, "\"error\"");
    else cli_out_printf(o, "\"failed\",\"code\":%d", CLI_CODE_OVERSIZE);
    cli_out_printf(o,
                   ",\"error\":\"%s\",\"attempts\":0,\"worker\":0,"
                   "\"ms\":0.000}\n",
                   eb);
    return;
  }
  cli_json_string(o, fp_status_name(r->status));
  if (r->status == FP_OK || (r->status == FP_FAILED && r->output_len > 0)) {
    /*
     * Lossless: valid UTF-8 decodes back to the same bytes from a JSON
     * string; anything else (ff and c3 bf would both read as U+00FF) goes
     * as base64 in a field of its own, and "output" is then left out.
     */
    if (cli_utf8_valid(r->output, r->output_len)) {
      cli_out_puts(o, ",\"output\":\"");
      cli_json_escape(o, r->output, r->output_len);
    } else {
      cli_out_puts(o, ",\"output_base64\":\"");
      cli_base64(o, r->output, r->output_len);
    }
    cli_out_putc(o, '"');
  }
  if (r->signal) {
    cli_out_puts(o, ",\"signal\":");
    cli_json_string(o, tool_signal_name(r->signal, sb, sizeof sb));
  }
  if (has_exit(r)) cli_out_printf(o, ",\"exit\":%d", r->exit_code);
  if (r->status == FP_FAILED || r->status == FP_CORRUPT)
    cli_out_printf(o, ",\"code\":%d", r->code);
  if (has_report(f, r)) {
    cli_out_puts(o, ",\"backtrace\":\"");
    cli_json_escape(o, r->output, r->output_len);
    cli_out_putc(o, '"');
  }
  cli_out_printf(o, ",\"attempts\":%u,\"worker\":%ld,\"ms\":%.3f}\n",
                 r->attempts, (long)r->worker, (double)r->run_us / 1000.0);
}

int cli_format_result(struct cli_out *o, const struct cli_format *f,
                      uint64_t seq, const struct cli_entry *e) {
  if (f->json) format_json(o, f, seq, e);
  else format_plain(o, f, e);
  return e->state == CLI_ENTRY_DONE && e->res.status == FP_OK;
}
