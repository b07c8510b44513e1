/*
 * Crash and hang reports, worker side.
 *
 * A worker killed by SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT first writes,
 * from its signal handler, the signal, the fault address and the raw stack
 * (return addresses with the file each one is mapped from) into its row's
 * report area; then the signal's default action kills it as before. On a
 * task timeout the supervisor first sends FP__SIG_DUMP, whose handler writes
 * the same for the stuck code, and kills the worker after a short grace.
 * A signal sent (kill, raise, abort: si_code <= 0) has no fault address: the
 * report names the sender's pid and uid instead. The stack ends at the
 * handler: frames from the worker's call into it down are forkpool's and
 * the host's, and are left out (fp__report_cut_at).
 *
 * Only async-signal-safe calls run in the handlers: backtrace() (warmed up
 * at start, so it does not load libgcc_s from inside a handler), open,
 * read, close and our own formatting. Modules are found by reading
 * /proc/self/maps, not with dladdr, which takes the loader's lock. Symbols
 * are resolved later, by the supervisor (symbolize.c).
 */
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "report.h"

#define MAX_FRAMES 40
#define ALTSTACK_BYTES (64 * 1024)

static struct fp__report *my_report;
static _Atomic uint64_t *my_task;
static const struct fp__seg *my_seg;
/* Set when the worker parks a task that overran (fp__report_late). */
static volatile sig_atomic_t parked;
/* The pc of the handler's caller's frame (fp__report_cut_at), or NULL. */
static const void *cut_pc;
static pid_t my_pid; /* the worker: a child it forked has no segment */

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (n > b->cap - b->len) n = b->cap - b->len;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_hex(struct buf *b, uintptr_t v) {
  char t[2 + 2 * sizeof(v)];
  int n = 0;
  do t[n++] = "0123456789abcdef"[v & 15];
  while ((v >>= 4) != 0);
  puts_(b, "0x");
  while (n > 0) put(b, &t[--n], 1);
}

static void put_dec(struct buf *b, long v) {
  char t[24];
  int n = 0;
  if (v < 0) {
    puts_(b, "-");
    v = -v;
  }
  do t[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  while (n > 0) put(b, &t[--n], 1);
}

static uintptr_t parse_hex(const char **s) {
  uintptr_t v = 0;
  for (;; (*s)++) {
    char c = **s;
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                   : -1;
    if (d < 0) return v;
    v = v * 16 + (uintptr_t)d;
  }
}

/*
 * For each frame, find the mapping holding it in /proc/self/maps and write
 * "F pc base path" lines, in stack order. A line of maps reads
 * "start-end perms offset dev inode   path".
 */
#define PATH_BYTES 200
static void put_frames(struct buf *b, void **pcs, int n) {
  if (n <= 0) return;
  uintptr_t base[MAX_FRAMES];
  char path[MAX_FRAMES][PATH_BYTES];
  int found[MAX_FRAMES] = {0};
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  char chunk[2048], line[512];
  size_t ll = 0;
  ssize_t got;
  while (fd >= 0 && (got = read(fd, chunk, sizeof(chunk))) > 0) {
    for (ssize_t k = 0; k < got; k++) {
      if (chunk[k] != '\n') {
        if (ll < sizeof(line) - 1) line[ll++] = chunk[k];
        continue;
      }
      line[ll] = '\0';
      ll = 0;
      const char *q = line;
      uintptr_t start = parse_hex(&q);
      if (*q++ != '-') continue;
      uintptr_t end = parse_hex(&q);
      while (*q == ' ') q++;
      while (*q && *q != ' ') q++; /* perms */
      while (*q == ' ') q++;
      uintptr_t off = parse_hex(&q);
      const char *p = strchr(q, '/');
      if (p == NULL) continue;
      for (int f = 0; f < n; f++) {
        uintptr_t pc = (uintptr_t)pcs[f];
        if (found[f] || pc < start || pc >= end) continue;
        found[f] = 1;
        base[f] = start - off;
        size_t pl = strlen(p);
        if (pl >= PATH_BYTES) pl = PATH_BYTES - 1;
        memcpy(path[f], p, pl);
        path[f][pl] = '\0';
      }
    }
  }
  if (fd >= 0) close(fd);
  for (int f = 0; f < n; f++) {
    puts_(b, "F ");
    put_hex(b, (uintptr_t)pcs[f]);
    puts_(b, " ");
    put_hex(b, found[f] ? base[f] : 0);
    puts_(b, " ");
    puts_(b, found[f] ? path[f] : "?");
    puts_(b, "\n");
  }
}

/*
 * Write a report for the current task: kind 'S' (signal), 'H' (hang) or
 * 'L' (late); kind 'T' (text given by the handler) is fp__report_text's. The first line is "KIND SIG ADDR", for a signal followed by
 * "SENT PID UID SELF" (SENT 1: si_code <= 0, PID and UID the sender's,
 * SELF our pid); then, when frames != 0, one "F" line per frame down to the
 * handler. si may be NULL. A hang dump that finds the worker outside the
 * handler (it returned already: fp__report_late will say so) writes
 * nothing. Returns 1 when it wrote the report, 0 when not.
 */
static int write_report(char kind, long sig, uintptr_t addr,
                        const siginfo_t *si, int frames) {
  struct fp__report *r = my_report;
  /* A process the handler forked inherits this handler but not the
   * segment (MADV_DONTFORK): it has nothing to report to. */
  if (r == NULL || getpid() != my_pid) return 0;
  void *pcs[MAX_FRAMES];
  int n = frames ? backtrace(pcs, MAX_FRAMES) : 0, cut = 0;
  /* Stop at the handler's caller: its frame and all below are ours. */
  for (int k = 0; cut_pc != NULL && k < n; k++) {
    if (pcs[k] == cut_pc) {
      n = k;
      cut = 1;
      break;
    }
  }
  if (kind == 'H' && cut_pc != NULL && !cut) return 0;
  /* Seal mode: reopen the segment first (mprotect is a system call, safe
   * in a handler) so the report can be written. */
  if (fp__sealed()) fp__seal(my_seg, 0);
  uint64_t task = atomic_load(my_task);
  atomic_store(&r->task_id, 0); /* invalid while we write */
  struct buf b = {r->text, 0, sizeof(r->text)};
  put(&b, &kind, 1);
  puts_(&b, " ");
  put_dec(&b, sig);
  puts_(&b, " ");
  put_hex(&b, addr);
  if (si != NULL) {
    puts_(&b, si->si_code <= 0 ? " 1 " : " 0 ");
    put_dec(&b, (long)si->si_pid);
    puts_(&b, " ");
    put_dec(&b, (long)si->si_uid);
    puts_(&b, " ");
    put_dec(&b, (long)getpid());
  }
  puts_(&b, "\n");
  put_frames(&b, pcs, n);
  atomic_store(&r->len, (uint32_t)b.len);
  atomic_store(&r->task_id, task);
  return 1;
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  int saved = errno;
  /* A sent signal's si_addr is no address (it overlays si_pid). */
  uintptr_t addr = si->si_code <= 0 ? 0 : (uintptr_t)si->si_addr;
  write_report('S', sig, addr, si, 1);
  errno = saved;
  /*
   * SA_RESETHAND restored the default action. A fault re-executes the
   * faulting instruction and dies of it; a sent signal (abort, kill) is
   * raised again.
   */
  if (si->si_code <= 0 || sig == SIGABRT) raise(sig);
}

/*
 * The hang dump. Written only for the task it is about (the supervisor's
 * sigqueue value; a plain kill carries none and is taken as meant for the
 * current task) and not when the worker parked a late task; either way the
 * report is flagged done, so the supervisor kills without waiting longer.
 */
static void on_dump(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  int saved = errno;
  if (getpid() != my_pid) return; /* a child of the handler: see above */
  if (my_report == NULL) return;
  if (fp__sealed()) fp__seal(my_seg, 0); /* the row is in the segment */
  int mine = si->si_code != SI_QUEUE || (uintptr_t)si->si_value.sival_ptr ==
                                            (uintptr_t)atomic_load(my_task);
  if (mine && !parked) write_report('H', 0, 0, NULL, 1);
  atomic_store(&my_report->done, 1);
  errno = saved;
}

void fp__report_late(uint64_t task, uint64_t ran_ns, unsigned limit_ms) {
  parked = 1; /* first: a dump from now on leaves the report alone */
  if (my_report == NULL || atomic_load(&my_report->task_id) == task) return;
  write_report('L', (long)(ran_ns / 1000u), limit_ms, NULL, 0);
}

void fp__report_text(const void *text, size_t len) {
  struct fp__report *r = my_report;
  if (r == NULL || getpid() != my_pid) return;
  if (fp__sealed()) fp__seal(my_seg, 0);
  uint64_t task = atomic_load(my_task);
  atomic_store(&r->task_id, 0); /* invalid while we write */
  struct buf b = {r->text, 0, sizeof(r->text)};
  puts_(&b, "T 0 0\n");
  put(&b, text, len);
  atomic_store(&r->len, (uint32_t)b.len);
  atomic_store(&r->task_id, task);
}

void fp__report_cut_at(const void *ret) { cut_pc = ret; }

int fp__report_arm(struct fp__seg *s, uint32_t row) {
  my_seg = s;
  my_pid = getpid();
  my_report = fp__report_at(s, row);
  my_task = &fp__row_at(s, row)->task_id;
  atomic_store(&my_report->len, 0);
  atomic_store(&my_report->task_id, 0);
  fp__report_warm(); /* done already in the supervisor: then free */

  /* An alternate stack, so a stack overflow can still be reported. */
  stack_t ss;
  ss.ss_sp = mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ss.ss_size = ALTSTACK_BYTES;
  ss.ss_flags = 0;
  if (ss.ss_sp == MAP_FAILED || sigaltstack(&ss, NULL) != 0) return -errno;

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sigfillset(&sa.sa_mask);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  for (size_t k = 0; k < sizeof(faults) / sizeof(faults[0]); k++)
    if (sigaction(faults[k], &sa, NULL) != 0) return -errno;
  sa.sa_sigaction = on_dump;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  if (sigaction(fp__dump_signal(), &sa, NULL) != 0) return -errno;
  return 0;
}

int fp__dump_signal(void) { return SIGRTMAX - 1; }

void fp__report_warm(void) {
  /*
   * backtrace() loads libgcc_s on first use. Done once in the supervisor,
   * every worker inherits it loaded: a replacement worker then costs a
   * fork, not a fork plus a dlopen.
   */
  static int warmed;
  if (warmed) return;
  void *pcs[2];
  backtrace(pcs, 2);
  warmed = 1;
}
