/*
 * UTF-8 well-formedness, for the escapers of the forkpool CLI (json.c) and
 * the JSON log lines of the tool layer (log.c).
 */
#ifndef FORKPOOL_TOOL_UTF8_H
#define FORKPOOL_TOOL_UTF8_H

#include <stddef.h>

/*
 * Length of the valid UTF-8 sequence starting at s[0] (1 to 4; s has n > 0
 * bytes), or 0 when s[0] does not start one. Exposed for tests.
 */
size_t tool_utf8_seq_len(const unsigned char *s, size_t n);

#endif /* FORKPOOL_TOOL_UTF8_H */
