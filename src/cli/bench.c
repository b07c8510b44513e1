/*
 * forkpool bench: measure the pool with a built-in trivial handler.
 *
 * Each task's payload starts with its 8-byte sequence number; byte 8 is 'S'
 * for a task that must segfault (--crash-every). The handler echoes the
 * payload. Producers keep --inflight tasks submitted and time each task from
 * fp_submit to the fp_collect that returns it; with --lat-every N only the
 * tasks whose sequence number is a multiple of N (two clock reads cost
 * ~80 ns a task on this VM, a tenth of a 16-byte task at deep windows), and
 * the percentiles are those of that sample.
 *
 * With one producer the pool is a private one (fp_pool_start); with
 * --producers P > 1 a child process serves a named pool (fp_serve) and P
 * producer processes attach to it. Latencies travel back in a shared
 * anonymous mapping.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "forkpool.h"
#include "handler.h"
#include "tool/args.h"
#include "tool/clock.h"
#include "tool/hmap.h"

#define CMD "forkpool bench"
#define GUARD_MS 30000

struct bench_opts {
  unsigned workers, producers, inflight, payload, queue;
  unsigned long long tasks, crash_every, idle_ms, lat_every;
  int json, seal, zero_copy;
  struct cli_handler handler; /* --handler, --exec, --coproc: else ours */
};

/* What producers report back, in shared memory. */
struct shared_out {
  _Atomic int go;
  _Atomic int ready;
  struct {
    unsigned long long ok, crashed, other;
    unsigned long long out_bytes; /* output bytes of the FP_OK results */
    int err;
  } prod[BENCH_MAX_PRODUCERS];
  /* clang-format off */
  uint32_t lat_ns[]; /* one per task, capped at UINT32_MAX, at least 1;
                        0 for a task not timed (--lat-every) */
  /* clang-format on */
};

static int bench_handler(void *arg, const void *in, size_t n, void *out,
                         size_t cap, size_t *out_len) {
  (void)arg;
  if (n > 8 && ((const unsigned char *)in)[8] == 'S') {
    volatile int *volatile p = NULL;
    *p = 1; /* the segfault --crash-every asks for */
  }
  if (n > cap) return 1;
  memcpy(out, in, n);
  *out_len = n;
  return 0;
}

/*
 * Run `n` tasks (global sequence numbers from `first`) through `pool`,
 * writing the latency of each timed task (seq a multiple of o->lat_every)
 * to lat[seq - first], leaving the others' 0, and adding the results to the
 * counters (out_bytes: output bytes of the FP_OK results collected).
 * Returns 0 or a negative errno (the counters then hold what was collected).
 */
static int produce(fp_pool *pool, const struct bench_opts *o,
                   unsigned long long first, unsigned long long n,
                   uint32_t *lat, unsigned long long every,
                   unsigned long long *ok, unsigned long long *crashed,
                   unsigned long long *other, unsigned long long *out_bytes) {
  struct tool_hmap map;
  unsigned char *buf = calloc(1, o->payload);
  uint64_t *t0 = calloc(n ? n : 1, sizeof(*t0));
  int err = tool_hmap_init(&map, o->inflight);
  if (buf == NULL || t0 == NULL || err < 0) {
    free(buf);
    free(t0);
    tool_hmap_free(&map);
    return -ENOMEM;
  }
  fp_result res;
  fp_result_init(&res);
  unsigned long long sent = 0, got = 0;
  unsigned inflight = 0;
  while (got < n) {
    while (sent < n && inflight < o->inflight) {
      uint64_t seq = first + sent;
      memcpy(buf, &seq, sizeof(seq));
      buf[8] = every && (seq % every) == every - 1 ? 'S' : '.';
      uint64_t id = 0;
      t0[sent] = seq % o->lat_every == 0 ? tool_now_ns() : 0;
      /*
       * Without a task out, collecting could only fail (-ENOENT): then wait
       * for the slot. FP_NOWAIT's -EAGAIN need not mean "window full": it
       * also comes when the workers were stopped (SIGSTOP) with every slot
       * queued.
       */
      int tmo = inflight == 0 ? GUARD_MS : FP_NOWAIT;
      if (o->zero_copy) {
        /* The input written straight into the slot: no copy of ours. */
        void *in;
        err = fp_submit_begin(pool, o->payload, tmo, FP_PRIO_NORMAL, &in);
        if (err == 0) {
          /* Written once, where it is used (copying mode: into buf, then
           * fp_submit's copy into the slot). */
          memcpy(in, buf, o->payload);
          err = fp_submit_commit(pool, in, o->payload, tmo, &id);
          if (err < 0) (void)fp_submit_abort(pool, in);
        }
      } else {
        err = fp_submit(pool, buf, o->payload, tmo, &id);
      }
      if (err == -EAGAIN) break;
      if (err < 0) goto out;
      tool_hmap_put(&map, id, sent);
      sent++;
      inflight++;
    }
    /* --zero-copy: the result read in place, released below. */
    err = o->zero_copy ? fp_collect_view(pool, &res, GUARD_MS)
                       : fp_collect(pool, &res, GUARD_MS);
    if (err < 0) goto out;
    uint64_t k;
    if (!tool_hmap_take(&map, res.id, &k)) {
      err = -EPROTO;
      goto out;
    }
    if ((first + k) % o->lat_every == 0) {
      uint64_t d = tool_now_ns() - t0[k];
      lat[k] = d > UINT32_MAX ? UINT32_MAX : d < 1 ? 1 : (uint32_t)d;
    }
    if (res.status == FP_OK) {
      (*ok)++;
      *out_bytes += res.output_len;
    } else if (res.status == FP_CRASHED) (*crashed)++;
    else (*other)++;
    if (o->zero_copy) (void)fp_view_release(pool, &res);
    got++;
    inflight--;
  }
  err = 0;
out:
  fp_result_release(&res);
  tool_hmap_free(&map);
  free(buf);
  free(t0);
  return err;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(const uint32_t *sorted, unsigned long long n, double p) {
  if (n == 0) return 0;
  unsigned long long i = (unsigned long long)(p * (double)(n - 1));
  return sorted[i] / 1000.0;
}

/* VmRSS of process pid, in KiB; 0 when it is gone. */
static unsigned long long proc_rss_kb(pid_t pid) {
  char path[64], line[256];
  unsigned long long kb = 0;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

/* utime + stime of process pid, in clock ticks; 0 when it is gone. */
static unsigned long long proc_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields after the command name, which may hold spaces: from the last ')'. */
  const char *p = strrchr(buf, ')');
  unsigned long long ut = 0, st = 0;
  if (p == NULL || sscanf(p + 2,
                          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                          "%*u %llu %llu",
                          &ut, &st) != 2)
    return 0;
  return ut + st;
}

/* The sum of f(pid) over the pool's live workers (and its supervisor). */
static unsigned long long sum_pool(fp_pool *pool, int with_supervisor,
                                   unsigned long long (*f)(pid_t)) {
  fp_stats st;
  if (fp_pool_stats(pool, &st) < 0) return 0;
  unsigned long long sum =
      with_supervisor && st.supervisor > 0 ? f(st.supervisor) : 0;
  for (unsigned r = 0; r < st.rows; r++) {
    fp_worker_info wi;
    if (fp_pool_worker(pool, r, &wi) == 0 && wi.pid > 0) sum += f(wi.pid);
  }
  return sum;
}

/*
 * After the run, leave the pool idle for ms milliseconds and return the
 * share of one CPU (percent) its processes used meanwhile: an idle pool
 * must sleep, spinning only briefly after events.
 */
static double idle_cpu_pct(fp_pool *pool, unsigned long long ms) {
  long hz = sysconf(_SC_CLK_TCK);
  unsigned long long t0 = sum_pool(pool, 1, proc_ticks);
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
  unsigned long long t1 = sum_pool(pool, 1, proc_ticks);
  if (hz <= 0 || ms == 0) return 0;
  return 100.0 * (double)(t1 > t0 ? t1 - t0 : 0) / (double)hz /
         ((double)ms / 1000.0);
}

/* 0, or -1 after a message: a --exec or --coproc command not found. */
static int config_for(fp_config *cfg, struct bench_opts *o) {
  char err[1024];
  fp_config_init(cfg);
  cfg->handler = bench_handler;
  if ((o->handler.plugin || o->handler.cmd.argv) &&
      cli_handler_open(&o->handler, cfg, err, sizeof(err)) < 0) {
    fprintf(stderr, CMD ": %s\n", err);
    return -1;
  }
  cfg->workers = o->workers;
  cfg->slots = o->queue;
  cfg->max_input = o->payload;
  cfg->max_output = o->payload;
  if (o->seal) cfg->flags |= FP_CONFIG_SEAL;
  return 0;
}

static int parse(int argc, char **argv, struct bench_opts *o) {
  enum {
    WORKERS,
    PRODUCERS,
    INFLIGHT,
    PAYLOAD,
    QUEUE,
    TASKS,
    CRASH,
    IDLE,
    LAT_EVERY,
    NOPT
  };
  struct tool_num_opt opts[NOPT] = {
      [WORKERS] = {"--workers", 1, FP_MAX_WORKERS, 2, 0},
      [PRODUCERS] = {"--producers", 1, BENCH_MAX_PRODUCERS, 1, 0},
      [INFLIGHT] = {"--inflight", 1, FP_MAX_SLOTS, 256, 0},
      [PAYLOAD] = {"--payload", 9, 1u << 20, 16, 0},
      [QUEUE] = {"--queue", 1, FP_MAX_SLOTS, 0, 0},
      [TASKS] = {"--tasks", 1, 100000000ull, 200000, 0},
      [CRASH] = {"--crash-every", 0, 1000000000ull, 0, 0},
      [IDLE] = {"--idle", 0, 600000, 0, 0},
      [LAT_EVERY] = {"--lat-every", 1, 1000000, 1, 0},
  };
  memset(o, 0, sizeof(*o));
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    int r = tool_arg_num(CMD, argc, argv, &i, opts, NOPT);
    if (r < 0) return -1;
    if (r > 0) continue;
    if ((r = tool_arg_flag(CMD, argv, i, "--json")) < 0) return -1;
    if (r > 0) {
      o->json = 1;
      continue;
    }
    if ((r = tool_arg_flag(CMD, argv, i, "--seal")) < 0) return -1;
    if (r > 0) {
      o->seal = 1;
      continue;
    }
    if ((r = cli_handler_arg(CMD, argc, argv, &i, &o->handler)) < 0) return -1;
    if (r > 0) continue;
    if ((r = tool_arg_flag(CMD, argv, i, "--zero-copy")) < 0) return -1;
    if (r > 0) {
      o->zero_copy = 1;
      continue;
    }
    fprintf(stderr, CMD ": unknown option '%s'\n", argv[i]);
    return -1;
  }
  o->workers = (unsigned)opts[WORKERS].value;
  o->producers = (unsigned)opts[PRODUCERS].value;
  o->inflight = (unsigned)opts[INFLIGHT].value;
  o->payload = (unsigned)opts[PAYLOAD].value;
  o->queue = (unsigned)opts[QUEUE].value;
  o->tasks = opts[TASKS].value;
  o->crash_every = opts[CRASH].value;
  o->idle_ms = opts[IDLE].value;
  o->lat_every = opts[LAT_EVERY].value;
  if (o->tasks < o->producers) o->tasks = o->producers;
  if (o->queue == 0) {
    /* Room for every producer's window, so --inflight is what it says. */
    uint64_t q = (uint64_t)o->inflight * o->producers;
    o->queue = q < 256 ? 256 : q > FP_MAX_SLOTS ? FP_MAX_SLOTS : (unsigned)q;
  }
  return 0;
}

void cli_bench_usage(int to_stderr) {
  fprintf(to_stderr ? stderr : stdout,
          "usage: forkpool bench [--workers N] [--tasks M] [--inflight K]\n"
          "                      [--payload BYTES] [--crash-every N]\n"
          "                      [--producers P] [--queue SLOTS] [--seal]\n"
          "                      [--idle MS] [--lat-every N] [--zero-copy]\n"
          "                      [--json] [--exec CMD [ARG...] |\n"
          "                      --coproc CMD [ARG...] | --handler LIB.so]\n"
          "Runs M echo tasks through a pool with a built-in handler (or\n"
          "the plugin or command given, last, as to 'forkpool run') and\n"
          "reports throughput, bytes per second each way (input submitted,\n"
          "output collected), round-trip latency percentiles, CPU per task,\n"
          "crashes and restarts. Defaults: 2 workers, 200000 tasks, 256 in\n"
          "flight per producer, 16-byte payload, 1 producer. --idle MS then\n"
          "leaves the pool idle for MS ms and reports the CPU its processes\n"
          "used meanwhile (percent of one CPU). --lat-every N times only\n"
          "every Nth task (latency percentiles of that sample; default 1).\n"
          "A task is 8 bytes of sequence number, then '.' ('S' for every\n"
          "--crash-every Nth: the handler must then die of SIGSEGV), then\n"
          "zeros; the handler echoes it. bench/echo_cmd.c is such a command\n"
          "for --exec, and with --coproc as its argument, for --coproc.\n");
}

int cli_bench_main(int argc, char **argv) {
  struct bench_opts o;
  int pr = parse(argc, argv, &o);
  if (pr > 0) {
    cli_bench_usage(0);
    return 0;
  }
  if (pr < 0) {
    fprintf(stderr, "Try 'forkpool bench --help'.\n");
    return 2;
  }
  size_t shared_len = sizeof(struct shared_out) + o.tasks * sizeof(uint32_t);
  struct shared_out *sh = mmap(NULL, shared_len, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) {
    fprintf(stderr, CMD ": mmap: %s\n", strerror(errno));
    return 1;
  }
  fp_config cfg;
  if (config_for(&cfg, &o) < 0) {
    munmap(sh, shared_len);
    return 2;
  }
  struct bench_run run;
  int err = bench_start(&run, &cfg, o.producers > 1);
  if (err < 0) {
    fprintf(stderr, CMD ": cannot start the pool: %s\n", fp_strerror(err));
    munmap(sh, shared_len);
    return 2;
  }

  uint64_t t_start = 0, t_end;
  unsigned long long per = o.tasks / o.producers;
  if (o.producers == 1) {
    t_start = tool_now_ns();
    err = produce(run.pool, &o, 0, o.tasks, sh->lat_ns, o.crash_every,
                  &sh->prod[0].ok, &sh->prod[0].crashed, &sh->prod[0].other,
                  &sh->prod[0].out_bytes);
    sh->prod[0].err = err;
  } else {
    pid_t kids[BENCH_MAX_PRODUCERS];
    for (unsigned p = 0; p < o.producers; p++) {
      unsigned long long first = p * per;
      unsigned long long n = p + 1 == o.producers ? o.tasks - first : per;
      kids[p] = fork();
      if (kids[p] == 0) {
        fp_pool *q;
        int e = fp_pool_open(&q, run.name, 0);
        atomic_fetch_add(&sh->ready, 1);
        while (!atomic_load(&sh->go)) usleep(100);
        if (e == 0) {
          e = produce(q, &o, first, n, sh->lat_ns + first, o.crash_every,
                      &sh->prod[p].ok, &sh->prod[p].crashed, &sh->prod[p].other,
                      &sh->prod[p].out_bytes);
          fp_pool_free(q);
        }
        sh->prod[p].err = e;
        _exit(0);
      }
    }
    while (atomic_load(&sh->ready) < (int)o.producers) usleep(100);
    t_start = tool_now_ns();
    atomic_store(&sh->go, 1);
    for (unsigned p = 0; p < o.producers; p++)
      while (waitpid(kids[p], NULL, 0) < 0 && errno == EINTR) {
      }
  }
  t_end = tool_now_ns();

  unsigned long long rss = sum_pool(run.pool, 0, proc_rss_kb);
  double idle_pct = o.idle_ms ? idle_cpu_pct(run.pool, o.idle_ms) : 0;
  fp_stats st;
  fp_pool_stats(run.pool, &st);
  bench_stop(&run);

  unsigned long long ok = 0, crashed = 0, other = 0, out_bytes = 0;
  err = 0;
  for (unsigned p = 0; p < o.producers; p++) {
    out_bytes += sh->prod[p].out_bytes;
    ok += sh->prod[p].ok;
    crashed += sh->prod[p].crashed;
    other += sh->prod[p].other;
    if (sh->prod[p].err < 0) err = sh->prod[p].err;
  }
  if (err < 0) {
    fprintf(stderr, CMD ": producer failed: %s\n", fp_strerror(err));
    munmap(sh, shared_len);
    return 1;
  }
  struct rusage self, kids;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  double cpu_s = self.ru_utime.tv_sec + self.ru_stime.tv_sec +
                 kids.ru_utime.tv_sec + kids.ru_stime.tv_sec +
                 (self.ru_utime.tv_usec + self.ru_stime.tv_usec +
                  kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) /
                     1e6;
  qsort(sh->lat_ns, o.tasks, sizeof(uint32_t), cmp_u32);
  /* The tasks not timed (--lat-every) sort first, as 0: skip them. */
  unsigned long long untimed = 0;
  while (untimed < o.tasks && sh->lat_ns[untimed] == 0) untimed++;
  const uint32_t *lat = sh->lat_ns + untimed;
  unsigned long long nlat = o.tasks - untimed;
  double secs = (t_end - t_start) / 1e9;
  double tps = o.tasks / secs;
  double p50 = pct_us(lat, nlat, 0.50);
  double p99 = pct_us(lat, nlat, 0.99);
  double p999 = pct_us(lat, nlat, 0.999);
  double cpu_us = cpu_s * 1e6 / o.tasks;
  /* Each way: input bytes submitted, output bytes collected, per second. */
  double in_bps = (double)o.tasks * o.payload / secs;
  double out_bps = (double)out_bytes / secs;
  if (o.json) {
    printf("{\"tasks\":%llu,\"seconds\":%.6f,\"tasks_per_sec\":%.0f,"
           "\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,"
           "\"cpu_us_per_task\":%.3f,\"ok\":%llu,\"crashes\":%llu,"
           "\"other\":%llu,\"restarts\":%llu,\"workers\":%u,"
           "\"producers\":%u,\"inflight\":%u,\"payload\":%u,\"slots\":%u,"
           "\"segment_bytes\":%llu,\"workers_rss_kb\":%llu,\"seal\":%d,"
           "\"idle_ms\":%llu,\"idle_cpu_pct\":%.2f,"
           "\"in_bytes_per_sec\":%.0f,\"out_bytes_per_sec\":%.0f,"
           "\"lat_every\":%llu,\"lat_samples\":%llu,\"zero_copy\":%d}\n",
           o.tasks, secs, tps, p50, p99, p999, cpu_us, ok, crashed, other,
           (unsigned long long)st.restarts, o.workers, o.producers, o.inflight,
           o.payload, o.queue, (unsigned long long)st.segment_bytes, rss,
           o.seal, o.idle_ms, idle_pct, in_bps, out_bps, o.lat_every, nlat,
           o.zero_copy);
  } else {
    printf("tasks        %llu (%llu ok, %llu crashed, %llu other)\n", o.tasks,
           ok, crashed, other);
    printf(
        "workers      %u, producers %u, in flight %u each, payload %u B%s%s\n",
        o.workers, o.producers, o.inflight, o.payload, o.seal ? ", sealed" : "",
        o.zero_copy ? ", zero-copy" : "");
    printf("throughput   %.0f tasks/s (%.3f s)\n", tps, secs);
    printf("bytes        %.1f MB/s in (submitted), %.1f MB/s out "
           "(collected)\n",
           in_bps / 1e6, out_bps / 1e6);
    printf("round trip   p50 %.1f us, p99 %.1f us, p99.9 %.1f us (%llu tasks "
           "timed)\n",
           p50, p99, p999, nlat);
    printf("cpu          %.2f us per task (all processes)\n", cpu_us);
    printf("restarts     %llu\n", (unsigned long long)st.restarts);
    printf("segment      %llu bytes (%u slots); workers' RSS %llu KiB\n",
           (unsigned long long)st.segment_bytes, o.queue, rss);
    if (o.idle_ms)
      printf("idle         %.2f%% of one CPU over %llu ms after the run\n",
             idle_pct, o.idle_ms);
  }
  munmap(sh, shared_len);
  return 0;
}
