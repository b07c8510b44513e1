/*
 * mq_pool: baseline for `make bench`, a task pool over POSIX message queues.
 *
 * What it measures: throughput (tasks/s) and per-task round-trip latency
 * (p50/p99/p99.9, microseconds) of the simplest kernel-mediated pre-fork
 * pool with forkpool's shape: one producer (this process), N forked workers,
 * echo tasks of `--payload` bytes, up to `--inflight` K tasks outstanding.
 *
 * How: two queues, /fpbench-<pid>-tasks and /fpbench-<pid>-results, created
 * and unlinked at once (the open descriptors keep them alive, so nothing is
 * left in /dev/mqueue whatever happens later). A message is a header
 * (sequence number, kind, length) plus the payload. Workers mq_receive a
 * task and mq_send it back unchanged; a STOP message makes them _exit(0).
 * Queue depth is min(K, /proc/sys/fs/mqueue/msg_max). The producer sends
 * without blocking while fewer than K tasks are out and the task queue has
 * room, else it blocks on a result: so K may exceed the depth without the
 * deadlock blocking sends risk (producer stuck on a full task queue, workers
 * on a full result queue); tasks really in flight are then at most
 * 2 * depth + N. Round trip = from a task's mq_send to the receipt of its
 * result. Each result is checked: known sequence, seen once, payload intact.
 * CPU per task: user + system time of producer and reaped workers / M.
 *
 * Usage: mq_pool --workers N --tasks M --inflight K --payload BYTES [--json]
 */
#include <fcntl.h>
#include <mqueue.h>

#include "bench_util.h" /* libc headers, helpers */

enum { KIND_TASK = 1, KIND_STOP = 2 };

struct msg_hdr {
  uint64_t seq;
  uint32_t kind;
  uint32_t len; /* payload bytes that follow */
};

#define RECV_TIMEOUT_S 10 /* a result this late means a worker is gone */

/* Read one unsigned number from a /proc file; `dflt` when unreadable. */
static long read_proc_long(const char *path, long dflt) {
  FILE *f = fopen(path, "re");
  long v = dflt;
  if (f != NULL) {
    if (fscanf(f, "%ld", &v) != 1 || v <= 0) v = dflt;
    fclose(f);
  }
  return v;
}

/* Worker loop: echo tasks until STOP. Never returns; only _exit. */
static void worker_main(mqd_t tq, mqd_t rq, char *buf, size_t msgsize,
                        int ready_fd) {
  ssize_t w;
  do w = write(ready_fd, "r", 1);
  while (w < 0 && errno == EINTR);
  close(ready_fd);
  for (;;) {
    ssize_t n = mq_receive(tq, buf, msgsize, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      _exit(3);
    }
    struct msg_hdr h;
    if ((size_t)n < sizeof h) _exit(4);
    memcpy(&h, buf, sizeof h);
    if (h.kind == KIND_STOP) _exit(0);
    while (mq_send(rq, buf, (size_t)n, 0) != 0)
      if (errno != EINTR) _exit(5);
  }
}

int main(int argc, char **argv) {
  uint64_t workers = 2, tasks = 100000, inflight = 64, payload = 64;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (bench_opt_u64(argc, argv, &i, "--workers", 1, 1024, &workers) ||
        bench_opt_u64(argc, argv, &i, "--tasks", 1, 100000000, &tasks) ||
        bench_opt_u64(argc, argv, &i, "--inflight", 1, 1000000, &inflight) ||
        bench_opt_u64(argc, argv, &i, "--payload", 0, 1 << 20, &payload))
      continue;
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
      continue;
    }
    fprintf(stderr,
            "usage: %s --workers N --tasks M --inflight K "
            "--payload BYTES [--json]\n",
            argv[0]);
    return 2;
  }

  long msg_max = read_proc_long("/proc/sys/fs/mqueue/msg_max", 10);
  long size_max = read_proc_long("/proc/sys/fs/mqueue/msgsize_max", 8192);
  size_t msgsize = sizeof(struct msg_hdr) + payload;
  if ((long)msgsize > size_max) {
    fprintf(stderr,
            "mq_pool: payload %llu too large: message of %zu bytes "
            "above /proc/sys/fs/mqueue/msgsize_max (%ld)\n",
            (unsigned long long)payload, msgsize, size_max);
    return 2;
  }
  long depth = inflight < (uint64_t)msg_max ? (long)inflight : msg_max;

  int rc = 1;
  unsigned nw = (unsigned)workers, started = 0;
  pid_t *pids = calloc(nw, sizeof *pids);
  uint64_t *sent_at = malloc(tasks * sizeof *sent_at);
  uint64_t *rtt = malloc(tasks * sizeof *rtt);
  unsigned char *seen = calloc(tasks, 1);
  char *sbuf = malloc(msgsize), *rbuf = malloc(msgsize);
  mqd_t tq = (mqd_t)-1, tq_send = (mqd_t)-1, rq = (mqd_t)-1;
  int ready[2] = {-1, -1};
  if (!pids || !sent_at || !rtt || !seen || !sbuf || !rbuf) {
    fprintf(stderr, "mq_pool: out of memory\n");
    goto out;
  }

  /*
   * Open and unlink with signals blocked, so that a SIGTERM/SIGINT cannot
   * land between the two and leave a name in /dev/mqueue. A stale name with
   * our pid can only come from a dead process, so removing it is safe.
   */
  char tname[64], rname[64];
  snprintf(tname, sizeof tname, "/fpbench-%ld-tasks", (long)getpid());
  snprintf(rname, sizeof rname, "/fpbench-%ld-results", (long)getpid());
  struct mq_attr attr = {.mq_maxmsg = depth, .mq_msgsize = (long)msgsize};
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  mq_unlink(tname);
  mq_unlink(rname);
  tq = mq_open(tname, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
  if (tq != (mqd_t)-1)
    /* A separate open file description: O_NONBLOCK only for the producer. */
    tq_send = mq_open(tname, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (tq_send != (mqd_t)-1)
    rq = mq_open(rname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
  int open_errno = errno;
  mq_unlink(tname);
  mq_unlink(rname);
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (rq == (mqd_t)-1) {
    fprintf(stderr, "mq_pool: mq_open (depth %ld, msgsize %zu): %s\n", depth,
            msgsize, strerror(open_errno));
    goto out;
  }

  if (pipe2(ready, O_CLOEXEC) != 0) {
    perror("mq_pool: pipe2");
    goto out;
  }
  bench_reap_kids_on_term(pids, nw);
  for (; started < nw; started++) {
    pid_t pid = bench_fork_child();
    if (pid < 0) {
      perror("mq_pool: fork");
      goto out;
    }
    if (pid == 0) {
      close(ready[0]);
      worker_main(tq, rq, rbuf, msgsize, ready[1]);
    }
    pids[started] = pid;
  }
  close(ready[1]);
  ready[1] = -1;
  /* Wait until every worker runs, so that fork time is not measured. */
  for (unsigned got = 0; got < nw;) {
    char c[64];
    ssize_t n = read(ready[0], c, sizeof c);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fprintf(stderr, "mq_pool: a worker failed to start\n");
      goto out;
    }
    got += (unsigned)n;
  }

  struct msg_hdr h = {.seq = 0, .kind = KIND_TASK, .len = (uint32_t)payload};
  for (size_t b = 0; b < payload; b++) sbuf[sizeof h + b] = (char)(b * 7 + 1);
  uint64_t sent = 0, done = 0, t0 = bench_now_ns();
  while (done < tasks) {
    while (sent < tasks && sent - done < inflight) {
      h.seq = sent;
      memcpy(sbuf, &h, sizeof h);
      sent_at[sent] = bench_now_ns();
      if (mq_send(tq_send, sbuf, msgsize, 0) == 0) {
        sent++;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) /* task queue full: collect a result first */
        break;
      perror("mq_pool: mq_send");
      goto out;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl); /* mq_timedreceive's clock */
    dl.tv_sec += RECV_TIMEOUT_S;
    ssize_t n = mq_timedreceive(rq, rbuf, msgsize, NULL, &dl);
    uint64_t t = bench_now_ns();
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "mq_pool: waiting for result %llu of %llu: %s\n",
              (unsigned long long)done + 1, (unsigned long long)tasks,
              strerror(errno));
      goto out;
    }
    struct msg_hdr rh;
    memcpy(&rh, rbuf, sizeof rh);
    if ((size_t)n != msgsize || rh.kind != KIND_TASK || rh.seq >= sent ||
        seen[rh.seq] || rh.len != payload ||
        memcmp(rbuf + sizeof rh, sbuf + sizeof h, payload) != 0) {
      fprintf(stderr, "mq_pool: bad result (seq %llu, %zd bytes)\n",
              (unsigned long long)rh.seq, n);
      goto out;
    }
    seen[rh.seq] = 1;
    rtt[done++] = t - sent_at[rh.seq];
  }
  double secs = (double)(bench_now_ns() - t0) / 1e9;

  /* Stop: blocking sends now, since N may exceed the queue depth. */
  struct mq_attr blocking = {.mq_flags = 0};
  mq_setattr(tq_send, &blocking, NULL);
  struct msg_hdr stop = {.seq = 0, .kind = KIND_STOP, .len = 0};
  memcpy(sbuf, &stop, sizeof stop);
  for (unsigned i = 0; i < nw; i++)
    while (mq_send(tq_send, sbuf, sizeof stop, 0) != 0)
      if (errno != EINTR) {
        perror("mq_pool: mq_send stop");
        goto out;
      }
  rc = 0;
  for (unsigned i = 0; i < nw; i++) {
    int st = -1;
    pid_t w;
    do w = waitpid(pids[i], &st, 0);
    while (w < 0 && errno == EINTR);
    if (w < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "mq_pool: worker %ld ended with status 0x%x\n",
              (long)pids[i], st);
      rc = 1;
    }
    pids[i] = 0;
  }

  bench_sort(rtt, tasks);
  double tps = (double)tasks / secs;
  double p50 = bench_pct_us(rtt, tasks, 50), p99 = bench_pct_us(rtt, tasks, 99);
  double p999 = bench_pct_us(rtt, tasks, 99.9);
  double cpu = bench_cpu_us() / (double)tasks;
  if (json)
    printf("{\"name\":\"mq_pool\",\"workers\":%u,\"tasks\":%llu,"
           "\"inflight\":%llu,\"depth\":%ld,\"payload\":%llu,"
           "\"seconds\":%.6f,\"tasks_per_sec\":%.1f,\"p50_us\":%.2f,"
           "\"p99_us\":%.2f,\"p999_us\":%.2f,\"cpu_us_per_task\":%.3f}\n",
           nw, (unsigned long long)tasks, (unsigned long long)inflight, depth,
           (unsigned long long)payload, secs, tps, p50, p99, p999, cpu);
  else
    printf("mq_pool: %u workers, %llu tasks of %llu B, inflight %llu, queue "
           "depth %ld: %.3f s, %.0f tasks/s, round trip p50 %.1f us, "
           "p99 %.1f us, p99.9 %.1f us, CPU %.2f us/task\n",
           nw, (unsigned long long)tasks, (unsigned long long)payload,
           (unsigned long long)inflight, depth, secs, tps, p50, p99, p999, cpu);

out:
  if (pids != NULL)
    bench_kill_reap(pids, started); /* skips workers already reaped (0) */
  /* close(-1) and mq_close(-1) fail harmlessly with EBADF. */
  close(ready[0]);
  close(ready[1]);
  mq_close(tq);
  mq_close(tq_send);
  mq_close(rq);
  free(pids);
  free(sent_at);
  free(rtt);
  free(seen);
  free(sbuf);
  free(rbuf);
  return rc;
}
