/*
 * Signal names for results: "SIGSEGV", "SIGRTMIN+3", or "SIG99".
 */
#ifndef FORKPOOL_TOOL_SIGNAME_H
#define FORKPOOL_TOOL_SIGNAME_H

#include <stddef.h>

/* The name of sig, in buf (len bytes, 32 is plenty); returns buf. */
const char *tool_signal_name(int sig, char *buf, size_t len);

#endif /* FORKPOOL_TOOL_SIGNAME_H */
