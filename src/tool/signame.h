/*
 * Signals for the two programs: names for results ("SIGSEGV",
 * "SIGRTMIN+3", or "SIG99"), and setting a disposition.
 */
#ifndef FORKPOOL_TOOL_SIGNAME_H
#define FORKPOOL_TOOL_SIGNAME_H

#include <stddef.h>

/* The name of sig, in buf (len bytes, 32 is plenty); returns buf. */
const char *tool_signal_name(int sig, char *buf, size_t len);

/*
 * Set sig's disposition to fn (a handler, SIG_IGN or SIG_DFL), with an
 * empty mask and no SA_RESTART: a caught signal cuts a blocking wait
 * short (EINTR), which the programs' loops rely on. Returns 0 or -errno.
 */
int tool_signal_set(int sig, void (*fn)(int));

#endif /* FORKPOOL_TOOL_SIGNAME_H */
