/*
 * Escapers that turn arbitrary bytes into text that is safe to print.
 *
 * Both pass valid UTF-8 through unchanged, so ordinary text stays readable,
 * and both always produce valid UTF-8 without a newline, so one result is
 * one line.
 */
#ifndef FORKPOOL_CLI_JSON_H
#define FORKPOOL_CLI_JSON_H

#include <stddef.h>

#include "output.h"
#include "tool/utf8.h" /* tool_utf8_seq_len() */

/*
 * Append the body of a JSON string (without the quotes) for bytes s[0..n).
 * '"' and '\\' are escaped, control characters become \n \t \r \b \f or
 * \u00XX, DEL becomes \u007f, and each byte that is not part of a valid
 * UTF-8 sequence (overlong forms, surrogates and code points above U+10FFFF
 * are invalid) becomes \u00XX: the result is valid JSON for any input.
 */
void cli_json_escape(struct cli_out *o, const void *s, size_t n);

/*
 * 1 when s[0..n) is well-formed UTF-8 (as tool_utf8_seq_len() judges it),
 * else 0. Such bytes survive cli_json_escape() exactly: a JSON decoder gives
 * them back; any other bytes need cli_base64().
 */
int cli_utf8_valid(const void *s, size_t n);

/* Append s[0..n) in base64 (RFC 4648, with padding, no line breaks). */
void cli_base64(struct cli_out *o, const void *s, size_t n);

/* Append "s" as a quoted JSON string (s is NUL-terminated). */
void cli_json_string(struct cli_out *o, const char *s);

/*
 * Append bytes for the tab-separated plain output: '\n' '\t' '\r' '\\'
 * become \n \t \r \\, other control bytes, DEL and bytes of invalid UTF-8
 * become \xHH.
 */
void cli_plain_escape(struct cli_out *o, const void *s, size_t n);

#endif /* FORKPOOL_CLI_JSON_H */
