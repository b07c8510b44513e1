/*
 * shm_floor: baseline for `make bench`, what the hardware allows between
 * two processes that share memory and never sleep, with no bookkeeping.
 * Not a pool: nothing here survives a crash. It shows how far forkpool's
 * fast path is from the machine, and what the remaining cost is made of.
 *
 * --mode pingpong: one 64-byte line each way. The parent writes a sequence
 *   number on its line, the child spins until it sees it and writes it on
 *   its own line, the parent spins until it sees that. Reports round trips
 *   per second and the round trip p50/p99/p99.9 (the floor for a spinning
 *   hand-off: forkpool's inflight-1 round trip needs at least this).
 *
 * --mode ring: tasks of --payload bytes through two single-producer
 *   single-consumer rings of 64-byte-aligned entries in shared memory, the
 *   child echoing each task from the request ring into the reply ring; the
 *   parent keeps --inflight tasks out. Reports tasks/s (the "bare
 *   lock-free ring" of issue #5: the ceiling for small tasks between two
 *   processes on this machine).
 *
 * Both sides spin with a pause instruction; nothing ever sleeps. Runs of
 * --rounds (pingpong) or --tasks (ring), after a warm-up of a tenth.
 *
 * Usage: shm_floor --mode pingpong|ring [--rounds M] [--tasks M]
 *                  [--inflight K] [--payload B] [--json]
 */
#include <stdatomic.h>
#include <sys/mman.h>

#include "bench_util.h" /* libc headers, helpers */

#define LINE 64
#define RING 1024 /* entries per ring; a power of two */

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* A ring: head and tail on their own lines, entries after. */
struct ring {
  _Alignas(LINE) _Atomic uint64_t head; /* written by the consumer */
  _Alignas(LINE) _Atomic uint64_t tail; /* written by the producer */
  _Alignas(LINE) unsigned char e[RING][LINE];
};

struct shared {
  _Alignas(LINE) _Atomic uint64_t ping;
  _Alignas(LINE) _Atomic uint64_t pong;
  struct ring req, rep;
};

static void ring_put(struct ring *r, uint64_t *tail, const void *p, size_t n) {
  while (*tail - atomic_load_explicit(&r->head, memory_order_acquire) >= RING)
    relax();
  memcpy(r->e[*tail % RING], p, n);
  atomic_store_explicit(&r->tail, ++*tail, memory_order_release);
}

static void ring_get(struct ring *r, uint64_t *head, void *p, size_t n) {
  while (atomic_load_explicit(&r->tail, memory_order_acquire) == *head) relax();
  memcpy(p, r->e[*head % RING], n);
  atomic_store_explicit(&r->head, ++*head, memory_order_release);
}

int main(int argc, char **argv) {
  uint64_t rounds = 200000, tasks = 2000000, inflight = 256, payload = 64;
  int json = 0, ring = -1;
  for (int i = 1; i < argc; i++) {
    if (bench_opt_u64(argc, argv, &i, "--rounds", 1, 100000000, &rounds) ||
        bench_opt_u64(argc, argv, &i, "--tasks", 1, 1000000000, &tasks) ||
        bench_opt_u64(argc, argv, &i, "--inflight", 1, RING, &inflight) ||
        bench_opt_u64(argc, argv, &i, "--payload", 8, LINE, &payload))
      continue;
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
      i++;
      if (strcmp(argv[i], "pingpong") == 0) ring = 0;
      else if (strcmp(argv[i], "ring") == 0) ring = 1;
      else {
        fprintf(stderr, "%s: --mode wants pingpong or ring, got '%s'\n",
                argv[0], argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr,
              "usage: %s --mode pingpong|ring [--rounds M] [--tasks M] "
              "[--inflight K] [--payload B] [--json]\n",
              argv[0]);
      return 2;
    }
  }
  if (ring < 0) {
    fprintf(stderr, "%s: --mode pingpong|ring is required\n", argv[0]);
    return 2;
  }
  struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  uint64_t n = ring ? tasks : rounds, warm = n / 10;
  uint64_t total = n + warm;
  uint64_t *lat = ring ? NULL : malloc(n * sizeof *lat);
  if (!ring && lat == NULL) {
    perror("malloc");
    return 1;
  }
  pid_t kid = bench_fork_child();
  if (kid < 0) {
    perror("fork");
    return 1;
  }
  if (kid == 0) {
    if (!ring) {
      for (uint64_t k = 1; k <= total; k++) {
        while (atomic_load_explicit(&sh->ping, memory_order_acquire) != k)
          relax();
        atomic_store_explicit(&sh->pong, k, memory_order_release);
      }
    } else {
      unsigned char t[LINE];
      uint64_t h = 0, tl = 0;
      for (uint64_t k = 0; k < total; k++) {
        ring_get(&sh->req, &h, t, payload);
        ring_put(&sh->rep, &tl, t, payload); /* the echo "handler" */
      }
    }
    _exit(0);
  }
  pid_t kids[1] = {kid};
  bench_reap_kids_on_term(kids, 1);

  uint64_t t0 = 0, t1;
  if (!ring) {
    for (uint64_t k = 1; k <= total; k++) {
      if (k == warm + 1) t0 = bench_now_ns();
      uint64_t a = bench_now_ns();
      atomic_store_explicit(&sh->ping, k, memory_order_release);
      while (atomic_load_explicit(&sh->pong, memory_order_acquire) != k)
        relax();
      if (k > warm) lat[k - warm - 1] = bench_now_ns() - a;
    }
  } else {
    unsigned char t[LINE] = {0}, r[LINE];
    uint64_t sent = 0, got = 0, h = 0, tl = 0;
    while (got < total) {
      while (sent < total && sent - got < inflight) {
        memcpy(t, &sent, sizeof sent);
        ring_put(&sh->req, &tl, t, payload);
        sent++;
      }
      ring_get(&sh->rep, &h, r, payload);
      uint64_t seq;
      memcpy(&seq, r, sizeof seq);
      if (seq != got) {
        fprintf(stderr, "%s: reply %llu out of order (want %llu)\n", argv[0],
                (unsigned long long)seq, (unsigned long long)got);
        bench_kill_reap(kids, 1);
        return 1;
      }
      if (++got == warm) t0 = bench_now_ns();
    }
    if (warm == 0)
      t0 = 0; /* no warm-up for tiny runs: time from the fork (rough) */
  }
  t1 = bench_now_ns();
  while (waitpid(kid, NULL, 0) < 0 && errno == EINTR)
    ;
  double secs = (double)(t1 - t0) / 1e9;
  if (!ring) {
    bench_sort(lat, n);
    double p50 = bench_pct_us(lat, n, 50), p99 = bench_pct_us(lat, n, 99),
           p999 = bench_pct_us(lat, n, 99.9);
    if (json)
      printf("{\"mode\":\"pingpong\",\"rounds\":%llu,\"seconds\":%.6f,"
             "\"round_trips_per_sec\":%.0f,\"p50_us\":%.3f,\"p99_us\":%.3f,"
             "\"p999_us\":%.3f}\n",
             (unsigned long long)n, secs, n / secs, p50, p99, p999);
    else
      printf("shm spin ping-pong: %llu round trips, %.0f/s, p50 %.3f us, "
             "p99 %.3f us, p99.9 %.3f us\n",
             (unsigned long long)n, n / secs, p50, p99, p999);
    free(lat);
  } else {
    if (json)
      printf("{\"mode\":\"ring\",\"tasks\":%llu,\"seconds\":%.6f,"
             "\"tasks_per_sec\":%.0f,\"inflight\":%llu,\"payload\":%llu}\n",
             (unsigned long long)n, secs, n / secs,
             (unsigned long long)inflight, (unsigned long long)payload);
    else
      printf("shm SPSC rings: %llu tasks of %llu B, inflight %llu: %.0f "
             "tasks/s\n",
             (unsigned long long)n, (unsigned long long)payload,
             (unsigned long long)inflight, n / secs);
  }
  munmap(sh, sizeof *sh);
  return 0;
}
