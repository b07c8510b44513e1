/*
 * Minimal reproduction, without forkpool, of the hang `torture worker-kill`
 * found: a process-shared robust mutex loses a wake-up when a waiter that
 * was just woken is SIGKILLed before it takes the lock while a third
 * process takes the free lock by the fast path. The remaining waiter then
 * sleeps in pthread_mutex_lock() forever although the mutex is free.
 *
 *   1. O holds the mutex. W, then V, block in pthread_mutex_lock() (each
 *      sets FUTEX_WAITERS and sleeps in FUTEX_WAIT; W is first in line).
 *   2. O unlocks: the word goes to 0 and FUTEX_WAKE wakes one: W.
 *   3. Before W runs, N (spinning on trylock) takes the lock: the word is
 *      N's tid, without FUTEX_WAITERS (N never waited).
 *   4. O SIGKILLs W. The kernel sees W's list_op_pending, but the owner
 *      field is N, not 0, so it wakes nobody (kernel/futex/core.c,
 *      handle_futex_death). W was the one who would have put
 *      FUTEX_WAITERS back.
 *   5. N unlocks: the old word has no FUTEX_WAITERS, so no FUTEX_WAKE.
 *      V sleeps on a free mutex until someone else contends for it.
 *
 * Build: gcc -std=gnu11 -O2 -Wall -o robust_wakeup robust_wakeup.c -lpthread
 * Run:   ./robust_wakeup  -> "V stranded" (10 of 10 trials here: glibc
 *        2.36, Linux 6.18), exit 1.
 * With pthread_mutex_clocklock(100 ms) in a loop instead of
 * pthread_mutex_lock (./robust_wakeup timed) V always gets the lock.
 */
#define _GNU_SOURCE /* pthread_mutex_clocklock */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
  pthread_mutex_t mu;
  atomic_int o_locked, n_go, v_got, n_got;
  pid_t w;
};

static struct shared *sh;
static int timed;

static void ms_sleep(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int lock(void) {
  int r;
  if (!timed) {
    r = pthread_mutex_lock(&sh->mu);
  } else {
    do {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_nsec += 100000000L;
      if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
      r = pthread_mutex_clocklock(&sh->mu, CLOCK_MONOTONIC, &ts);
    } while (r == ETIMEDOUT);
  }
  if (r == EOWNERDEAD) pthread_mutex_consistent(&sh->mu), r = 0;
  return r;
}

static pid_t child(void (*fn)(void)) {
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    _exit(0);
  }
  return pid;
}

static void waiter(void) { /* W and V */
  lock();
  pthread_mutex_unlock(&sh->mu);
}
static void v_body(void) {
  lock();
  atomic_store(&sh->v_got, 1);
  pthread_mutex_unlock(&sh->mu);
}
static void n_body(void) { /* spins on trylock: never sets FUTEX_WAITERS */
  while (!atomic_load(&sh->n_go)) {
  }
  while (pthread_mutex_trylock(&sh->mu) != 0) {
  }
  atomic_store(&sh->n_got, 1);
  ms_sleep(50);
  pthread_mutex_unlock(&sh->mu);
}

/* One trial: 1 when V was stranded on a free mutex. */
static int trial(void) {
  memset(sh, 0, sizeof(*sh));
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&sh->mu, &a);

  pthread_mutex_lock(&sh->mu); /* we are O */
  pid_t w = child(waiter);
  ms_sleep(20); /* W asleep in FUTEX_WAIT, first in line */
  pid_t v = child(v_body);
  ms_sleep(20); /* V asleep behind it */
  pid_t n = child(n_body);
  atomic_store(&sh->n_go, 1);
  ms_sleep(5);                   /* N spinning on trylock */
  pthread_mutex_unlock(&sh->mu); /* wakes W */
  kill(w, SIGKILL);              /* before W got the CPU back */
  waitpid(w, NULL, 0);
  waitpid(n, NULL, 0);
  int stranded = 0;
  for (int k = 0; k < 100 && !atomic_load(&sh->v_got); k++) ms_sleep(10);
  if (!atomic_load(&sh->v_got)) {
    unsigned word;
    memcpy(&word, &sh->mu, sizeof(word)); /* glibc: __data.__lock first */
    printf("V stranded: 1 s in pthread_mutex_lock, mutex word %#x (free)\n",
           word);
    stranded = 1;
    kill(v, SIGKILL);
  }
  waitpid(v, NULL, 0);
  return stranded;
}

int main(int argc, char **argv) {
  timed = argc > 1 && strcmp(argv[1], "timed") == 0;
  sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int bad = 0, n = 10;
  for (int t = 0; t < n; t++) bad += trial();
  printf("%s lock: V stranded in %d of %d trials\n", timed ? "timed" : "plain",
         bad, n);
  return bad ? 1 : 0;
}
