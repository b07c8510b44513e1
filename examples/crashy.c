/*
 * crashy: a handler plugin that misbehaves on request, to show (and test)
 * that forkpool isolates every kind of worker failure.
 *
 * Build: make build/examples/crashy.so
 * Use:   forkpool run --handler build/examples/crashy.so ...
 *
 * The task input is a command (not NUL-terminated):
 *   segv        write through an invalid pointer: the worker dies of SIGSEGV
 *   abort       abort(): SIGABRT
 *   exit N      _exit(N), N in 0..255
 *   hang        spin forever (the pool's timeout_ms must end it)
 *   oom         allocate and touch memory until malloc fails, then abort();
 *               the address space is capped first at its current size plus
 *               $CRASHY_OOM_MB MiB (default 256, at most 4096)
 *   fail N      return N (1..255) so the task ends FP_FAILED with code N
 *   sleep MS    sleep MS milliseconds, then output "slept MS"
 *   arg         output the plugin's arg (forkpool run/serve --handler-arg
 *               STRING) and what forkpool_init saw: "arg=STRING init=STRING",
 *               "(none)" for a NULL arg
 *   anything else: output the input upper-cased (truncated to out_cap)
 * "exit ", "fail " or "sleep " followed by anything but a number in range
 * returns EINVAL.
 *
 * forkpool_init fails with the value of $CRASHY_INIT_FAIL when it is set,
 * which shows how fp_pool_start reports workers that cannot start.
 *
 * The crash functions are noinline and named after what they do so that
 * backtraces of dead workers read well.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "forkpool.h"

#define CRASHY_CMD_MAX 64 /* longest command we parse; longer input is echoed */
#define CRASHY_OOM_MB_DEFAULT 256
#define CRASHY_OOM_MB_MAX 4096
#define CRASHY_OOM_CHUNK (4ul * 1024u * 1024u)

#define CRASHY_NOINLINE __attribute__((noinline, noclone))

/* Keeps allocations observable so the compiler cannot drop them. */
static void *volatile crashy_sink;

/* Kills the worker with a genuine SIGSEGV. Both the pointer and the pointee
 * are volatile: a volatile pointer alone lets GCC drop the store, and a
 * visible NULL would let it replace the store with a trap (SIGILL). */
static CRASHY_NOINLINE void crashy_segv(void) {
  volatile int *volatile p = NULL;
  *p = 42;
}

static CRASHY_NOINLINE void crashy_abort(void) { abort(); }

/* _exit, not exit: a worker must never run the atexit handlers and stdio
 * flushes it inherited from its parent. */
static CRASHY_NOINLINE void crashy_exit(int code) { _exit(code); }

/* Busy loop on a volatile: an empty infinite loop without side effects may
 * be assumed to terminate in C11, a volatile read may not. */
static CRASHY_NOINLINE void crashy_hang(void) {
  volatile unsigned long spin = 0;
  for (;;) spin++;
}

/*
 * Writes garbage over random bytes of the worker's shared mappings (the
 * pool's segment is the mapping with "rw-s" permissions in /proc/self/maps),
 * then segfaults: the buggy C code forkpool has to survive. 64 bursts of
 * 1 to 8 random bytes at random offsets.
 */
static CRASHY_NOINLINE void crashy_scribble(void) {
  FILE *f = fopen("/proc/self/maps", "re");
  char line[512];
  unsigned long seed =
      (unsigned long)getpid() * 2654435761u ^ (unsigned long)time(NULL);
  struct {
    unsigned long lo, hi;
  } maps[16];
  int n = 0;
  while (f != NULL && n < 16 && fgets(line, sizeof(line), f) != NULL) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 &&
        strcmp(perms, "rw-s") == 0) {
      maps[n].lo = lo;
      maps[n].hi = hi;
      n++;
    }
  }
  if (f != NULL) fclose(f);
  for (int k = 0; n > 0 && k < 64; k++) {
    seed = seed * 6364136223846793005ul + 1442695040888963407ul;
    int m = (int)((seed >> 33) % (unsigned long)n);
    unsigned long span = maps[m].hi - maps[m].lo;
    seed = seed * 6364136223846793005ul + 1442695040888963407ul;
    unsigned long off = (seed >> 17) % span;
    int len = 1 + (int)((seed >> 7) & 7);
    volatile unsigned char *p = (volatile unsigned char *)(maps[m].lo + off);
    for (int b = 0; b < len && off + (unsigned long)b < span; b++)
      p[b] = (unsigned char)(seed >> (8 * (b & 7)));
  }
  crashy_segv();
}

/* Current address-space size in bytes from /proc/self/statm (first field,
 * in pages). Returns 0 when it cannot be read. */
static size_t crashy_vm_size(void) {
  FILE *f = fopen("/proc/self/statm", "re");
  unsigned long pages = 0;
  if (f == NULL) return 0;
  if (fscanf(f, "%lu", &pages) != 1) pages = 0;
  fclose(f);
  return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * Parses a decimal number in [lo, hi] that must fill all of s.
 * Returns 0 and stores it in *out, or -EINVAL.
 */
static int crashy_parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  long v;

  if (*s == '\0' || isspace((unsigned char)*s)) return -EINVAL;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return -EINVAL;
  *out = v;
  return 0;
}

/* Headroom for "oom" in bytes: $CRASHY_OOM_MB MiB, or 256 MiB when unset or
 * invalid. Touching fresh memory is slow in some VMs (up to 2 ms per MiB),
 * so a demo with a short task timeout may want less. */
static size_t crashy_oom_headroom(void) {
  const char *v = getenv("CRASHY_OOM_MB");
  long mb = CRASHY_OOM_MB_DEFAULT;

  if (v != NULL && crashy_parse_long(v, 1, CRASHY_OOM_MB_MAX, &mb) != 0)
    mb = CRASHY_OOM_MB_DEFAULT;
  return (size_t)mb * 1024u * 1024u;
}

/*
 * Eats memory until malloc fails. It first caps its own address space at the
 * current size + 256 MiB (RLIMIT_AS; see crashy_oom_headroom), so it can
 * never take the machine down with it, only itself. When malloc fails it
 * calls abort(): the task then ends FP_CRASHED with signal SIGABRT (a real
 * OOM kill would be SIGKILL; the cap makes the outcome the same on every
 * machine).
 */
static CRASHY_NOINLINE void crashy_oom(void) {
  struct rlimit rl;
  size_t vm = crashy_vm_size();
  rlim_t cap;

  if (vm == 0)
    abort(); /* cannot bound ourselves: refuse to eat memory unbounded */
  cap = (rlim_t)vm + crashy_oom_headroom();
  if (getrlimit(RLIMIT_AS, &rl) != 0) abort();
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < cap) cap = rl.rlim_max;
  rl.rlim_cur = cap;
  if (setrlimit(RLIMIT_AS, &rl) != 0) abort();

  for (;;) {
    unsigned char *p = malloc(CRASHY_OOM_CHUNK);
    if (p == NULL)
      abort(); /* deliberate: the task ends FP_CRASHED, signal SIGABRT */
    memset(p, 0xa5, CRASHY_OOM_CHUNK); /* touch every page */
    /* Chain the chunks so they stay reachable and are never freed. */
    *(void **)p = crashy_sink;
    crashy_sink = p;
  }
}

/* Sleeps ms milliseconds, restarting after signals with the time left. */
static CRASHY_NOINLINE void crashy_sleep(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

/* Writes the input upper-cased, truncated to out_cap. Returns 0. */
static int crashy_echo_upper(const unsigned char *in, size_t in_len,
                             unsigned char *out, size_t out_cap,
                             size_t *out_len) {
  size_t n = in_len < out_cap ? in_len : out_cap;
  for (size_t i = 0; i < n; i++) out[i] = (unsigned char)toupper(in[i]);
  *out_len = n;
  return 0;
}

/* If cmd starts with word followed by one space, returns what follows. */
static const char *crashy_arg(const char *cmd, const char *word) {
  size_t n = strlen(word);
  if (strncmp(cmd, word, n) == 0 && cmd[n] == ' ') return cmd + n + 1;
  return NULL;
}

/* The arg forkpool_init was given (the "arg" command shows it). */
static const char *crashy_init_arg;

FP_EXTERN int forkpool_handler(void *arg, const void *in, size_t in_len,
                               void *out, size_t out_cap, size_t *out_len);
FP_EXTERN int forkpool_init(void *arg);
FP_EXTERN void forkpool_fini(void *arg);

/* The loader calls forkpool_handler through fp_handler_fn: keep them equal. */
_Static_assert(__builtin_types_compatible_p(__typeof__(&forkpool_handler),
                                            fp_handler_fn),
               "forkpool_handler must match fp_handler_fn");
_Static_assert(__builtin_types_compatible_p(__typeof__(&forkpool_init),
                                            fp_init_fn),
               "forkpool_init must match fp_init_fn");
_Static_assert(__builtin_types_compatible_p(__typeof__(&forkpool_fini),
                                            fp_fini_fn),
               "forkpool_fini must match fp_fini_fn");

/*
 * Runs one command (see the top of the file). Returns 0 with output, a
 * positive error code, or does not return at all.
 */
int forkpool_handler(void *arg, const void *in, size_t in_len, void *out,
                     size_t out_cap, size_t *out_len) {
  char cmd[CRASHY_CMD_MAX + 1];
  const char *a;
  long n;

  *out_len = 0;
  if (in_len > CRASHY_CMD_MAX || (in_len > 0 && memchr(in, '\0', in_len)))
    return crashy_echo_upper(in, in_len, out, out_cap, out_len);
  /* The input is not NUL-terminated: terminate our own copy. */
  memcpy(cmd, in, in_len);
  cmd[in_len] = '\0';

  if (strcmp(cmd, "arg") == 0) {
    int w = snprintf(out, out_cap, "arg=%s init=%s",
                     arg != NULL ? (const char *)arg : "(none)",
                     crashy_init_arg != NULL ? crashy_init_arg : "(none)");
    *out_len = w < 0 ? 0 : (size_t)w < out_cap ? (size_t)w : out_cap;
    return 0;
  }
  if (strcmp(cmd, "segv") == 0) {
    crashy_segv();
    return EFAULT; /* not reached unless NULL is mapped */
  }
  if (strcmp(cmd, "scribble") == 0) crashy_scribble();
  if (strcmp(cmd, "abort") == 0) crashy_abort();
  if (strcmp(cmd, "hang") == 0) crashy_hang();
  if (strcmp(cmd, "oom") == 0) crashy_oom();
  if ((a = crashy_arg(cmd, "exit")) != NULL) {
    if (crashy_parse_long(a, 0, 255, &n) != 0) return EINVAL;
    crashy_exit((int)n);
  }
  if ((a = crashy_arg(cmd, "fail")) != NULL) {
    if (crashy_parse_long(a, 1, 255, &n) != 0) return EINVAL;
    return (int)n;
  }
  if ((a = crashy_arg(cmd, "sleep")) != NULL) {
    int len;
    if (crashy_parse_long(a, 0, 24L * 3600 * 1000, &n) != 0) return EINVAL;
    crashy_sleep(n);
    len = snprintf(out, out_cap, "slept %ld", n);
    if (len < 0) return EIO;
    *out_len = (size_t)len < out_cap ? (size_t)len : out_cap;
    return 0;
  }
  return crashy_echo_upper(in, in_len, out, out_cap, out_len);
}

/*
 * Runs once per worker. Returns 0, or the value of $CRASHY_INIT_FAIL when it
 * is set (EINVAL when that is not a number in 0..255), so that every worker
 * fails to start.
 */
int forkpool_init(void *arg) {
  const char *v = getenv("CRASHY_INIT_FAIL");
  long n;

  crashy_init_arg = arg; /* for the "arg" command */
  if (v == NULL) return 0;
  if (crashy_parse_long(v, 0, 255, &n) != 0) return EINVAL;
  return (int)n;
}

void forkpool_fini(void *arg) { (void)arg; }
