/*
 * Signal names for results, shared by forkpool and forkpool-bridge
 * (through build/libfptool.a).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "signame.h"

/* "SIGSEGV" from glibc's own table (sigabbrev_np, glibc 2.32+), else
 * "SIGRTMIN+n" or "SIGn". */
const char *tool_signal_name(int sig, char *buf, size_t len) {
  const char *abbrev = sigabbrev_np(sig);

  if (abbrev != NULL) snprintf(buf, len, "SIG%s", abbrev);
#ifdef SIGRTMIN
  else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
    snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
#endif
  else snprintf(buf, len, "SIG%d", sig);
  return buf;
}

int tool_signal_set(int sig, void (*fn)(int)) {
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = fn;
  return sigaction(sig, &sa, NULL) == 0 ? 0 : -errno;
}
