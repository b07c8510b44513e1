/*
 * boost_mq_pool: baseline for `make bench`, a task pool over two
 * boost::interprocess::message_queue (issue 14): what a C++ user would
 * write instead of forkpool, and what forkpool's queue is measured against.
 *
 * What it measures: throughput (tasks/s) and per-task round-trip latency
 * (p50/p99/p99.9, microseconds) of one producer (this process) and N forked
 * workers, echo tasks of `--payload` bytes, up to `--inflight` K tasks
 * outstanding: the shape of `forkpool bench` and bench/mq_pool.c.
 *
 * How: two message_queues in shared memory, tasks and results, each of K
 * messages of `--payload` bytes (the first 8 bytes of a message are its
 * sequence number, the rest a fixed pattern: the same bytes `forkpool
 * bench` moves). Both are created and their names removed at once, before
 * any worker forks: the workers inherit the mappings, so nothing is left in
 * /dev/shm whatever happens later. Workers receive a task and send it back
 * unchanged; the sequence number STOP_SEQ makes them _exit(0).
 *
 * Each queue is a process-shared pthread mutex and two condition variables
 * (Boost's POSIX build): unlike forkpool, a process killed while holding
 * the mutex leaves the queue locked for good. Nothing here survives a crash.
 *
 * Since every queue holds K messages and at most K tasks are out, no send
 * ever blocks during the run (the task queue holds at most the tasks out,
 * the result queue at most the results not yet received): blocking sends
 * cannot deadlock. The producer fills its window, then waits for one
 * result (timed: a result this late means a worker is gone), and so on.
 * Round trip = from a task's send to the receipt of its result, for the
 * tasks whose sequence number is a multiple of --lat-every N (default 1:
 * all; two clock reads cost ~80 ns a task on this VM, a third of what one
 * task costs this pool, so the throughput runs of compare.sh time a sample,
 * as they do for `forkpool bench --lat-every`). Each result
 * is checked: known sequence, seen once, payload intact. CPU per task:
 * user + system time of producer and reaped workers / M.
 *
 * Usage: boost_mq_pool --workers N --tasks M --inflight K --payload BYTES
 *                      [--lat-every N] [--json]
 * Exit status: 0, 1 when the run failed, 2 on a usage error.
 */
#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/date_time/posix_time/posix_time_types.hpp>

#include <fcntl.h>

#include "bench_util.h" /* libc headers, helpers */

namespace bip = boost::interprocess;

#define RECV_TIMEOUT_S 10 /* a result this late means a worker is gone */
static const uint64_t STOP_SEQ = UINT64_MAX;

/*
 * Worker loop: echo tasks until STOP_SEQ. Never returns; only _exit (no
 * destructor of the parent's objects may run in a forked child).
 */
static void worker_main(bip::message_queue *tq, bip::message_queue *rq,
                        char *buf, size_t msgsize, int ready_fd)
{
  ssize_t w;
  do
    w = write(ready_fd, "r", 1);
  while (w < 0 && errno == EINTR);
  close(ready_fd);
  try {
    for (;;) {
      bip::message_queue::size_type n = 0;
      unsigned prio = 0;
      tq->receive(buf, msgsize, n, prio);
      uint64_t seq;
      if (n < sizeof seq)
        _exit(4);
      memcpy(&seq, buf, sizeof seq);
      if (seq == STOP_SEQ)
        _exit(0);
      rq->send(buf, n, 0);
    }
  } catch (...) {
    _exit(3);
  }
}

/*
 * Create the queue `name` (K messages of msgsize bytes) and remove its name
 * at once; the mapping lives on in this process and the workers it forks.
 * Returns the queue, or NULL with a message on stderr (nothing left behind).
 */
static bip::message_queue *make_queue(const char *name, size_t depth,
                                      size_t msgsize)
{
  bip::message_queue *q = NULL;
  try {
    bip::message_queue::remove(name); /* stale: only a dead pid of ours */
    q = new bip::message_queue(bip::create_only, name, depth, msgsize);
  } catch (const std::exception &e) {
    fprintf(stderr, "boost_mq_pool: message_queue %s (depth %zu, msgsize "
            "%zu): %s\n", name, depth, msgsize, e.what());
    q = NULL;
  }
  bip::message_queue::remove(name);
  return q;
}

int main(int argc, char **argv)
{
  uint64_t workers = 2, tasks = 100000, inflight = 64, payload = 16;
  uint64_t lat_every = 1;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (bench_opt_u64(argc, argv, &i, "--workers", 1, 1024, &workers) ||
        bench_opt_u64(argc, argv, &i, "--tasks", 1, 100000000, &tasks) ||
        bench_opt_u64(argc, argv, &i, "--inflight", 1, 65536, &inflight) ||
        bench_opt_u64(argc, argv, &i, "--payload", 8, 1 << 20, &payload) ||
        bench_opt_u64(argc, argv, &i, "--lat-every", 1, 1000000, &lat_every))
      continue;
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
      continue;
    }
    fprintf(stderr, "usage: %s --workers N --tasks M --inflight K "
                    "--payload BYTES [--lat-every N] [--json]\n", argv[0]);
    return 2;
  }

  int rc = 1;
  unsigned nw = (unsigned)workers, started = 0;
  size_t msgsize = (size_t)payload, depth = (size_t)inflight;
  pid_t *pids = (pid_t *)calloc(nw, sizeof *pids);
  uint64_t *sent_at = (uint64_t *)malloc(tasks * sizeof *sent_at);
  uint64_t *rtt = (uint64_t *)malloc(tasks * sizeof *rtt);
  unsigned char *seen = (unsigned char *)calloc(tasks, 1);
  char *sbuf = (char *)malloc(msgsize), *rbuf = (char *)malloc(msgsize);
  bip::message_queue *tq = NULL, *rq = NULL;
  int ready[2] = {-1, -1};
  char tname[64], rname[64];
  sigset_t all, old;
  uint64_t sent = 0, done = 0, nlat = 0, t0 = 0;
  double secs = 0;
  if (!pids || !sent_at || !rtt || !seen || !sbuf || !rbuf) {
    fprintf(stderr, "boost_mq_pool: out of memory\n");
    goto out;
  }

  /*
   * Create and remove with signals blocked, so that a SIGTERM/SIGINT cannot
   * land between the two and leave a name in /dev/shm.
   */
  snprintf(tname, sizeof tname, "fpbench-boost-%ld-tasks", (long)getpid());
  snprintf(rname, sizeof rname, "fpbench-boost-%ld-results", (long)getpid());
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  tq = make_queue(tname, depth, msgsize);
  if (tq != NULL)
    rq = make_queue(rname, depth, msgsize);
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (rq == NULL)
    goto out;

  if (pipe2(ready, O_CLOEXEC) != 0) {
    perror("boost_mq_pool: pipe2");
    goto out;
  }
  bench_reap_kids_on_term(pids, nw);
  for (; started < nw; started++) {
    pid_t pid = bench_fork_child();
    if (pid < 0) {
      perror("boost_mq_pool: fork");
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
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      fprintf(stderr, "boost_mq_pool: a worker failed to start\n");
      goto out;
    }
    got += (unsigned)n;
  }

  for (size_t b = 8; b < msgsize; b++)
    sbuf[b] = (char)(b * 7 + 1);
  try {
    t0 = bench_now_ns();
    while (done < tasks) {
      while (sent < tasks && sent - done < inflight) {
        memcpy(sbuf, &sent, sizeof sent);
        if (sent % lat_every == 0)
          sent_at[sent] = bench_now_ns();
        tq->send(sbuf, msgsize, 0); /* never blocks: see the top */
        sent++;
      }
      bip::message_queue::size_type n = 0;
      unsigned prio = 0;
      /*
       * try_receive first: building the deadline of timed_receive costs a
       * clock read and a date conversion, and a result is usually there.
       */
      if (!rq->try_receive(rbuf, msgsize, n, prio) &&
          !rq->timed_receive(rbuf, msgsize, n, prio,
                             boost::posix_time::microsec_clock::universal_time() +
                                 boost::posix_time::seconds(RECV_TIMEOUT_S))) {
        fprintf(stderr, "boost_mq_pool: no result %llu of %llu within %d s\n",
                (unsigned long long)done + 1, (unsigned long long)tasks,
                RECV_TIMEOUT_S);
        goto out;
      }
      uint64_t seq;
      memcpy(&seq, rbuf, sizeof seq);
      if (n != msgsize || seq >= sent || seen[seq] ||
          memcmp(rbuf + 8, sbuf + 8, msgsize - 8) != 0) {
        fprintf(stderr, "boost_mq_pool: bad result (seq %llu, %zu bytes)\n",
                (unsigned long long)seq, (size_t)n);
        goto out;
      }
      seen[seq] = 1;
      done++;
      if (seq % lat_every == 0)
        rtt[nlat++] = bench_now_ns() - sent_at[seq];
    }
    secs = (double)(bench_now_ns() - t0) / 1e9;

    /* Stop: the task queue is empty now; sends block while it is full. */
    memcpy(sbuf, &STOP_SEQ, sizeof STOP_SEQ);
    for (unsigned i = 0; i < nw; i++)
      tq->send(sbuf, msgsize, 0);
  } catch (const std::exception &e) {
    fprintf(stderr, "boost_mq_pool: %s\n", e.what());
    goto out;
  }
  rc = 0;
  for (unsigned i = 0; i < nw; i++) {
    int st = -1;
    pid_t w;
    do
      w = waitpid(pids[i], &st, 0);
    while (w < 0 && errno == EINTR);
    if (w < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "boost_mq_pool: worker %ld ended with status 0x%x\n",
              (long)pids[i], st);
      rc = 1;
    }
    pids[i] = 0;
  }

  {
    bench_sort(rtt, nlat);
    double tps = (double)tasks / secs;
    double p50 = bench_pct_us(rtt, nlat, 50);
    double p99 = bench_pct_us(rtt, nlat, 99);
    double p999 = bench_pct_us(rtt, nlat, 99.9);
    double cpu = bench_cpu_us() / (double)tasks;
    if (json)
      printf("{\"name\":\"boost_mq_pool\",\"workers\":%u,\"tasks\":%llu,"
             "\"inflight\":%llu,\"depth\":%zu,\"payload\":%llu,"
             "\"seconds\":%.6f,\"tasks_per_sec\":%.1f,\"p50_us\":%.2f,"
             "\"p99_us\":%.2f,\"p999_us\":%.2f,\"cpu_us_per_task\":%.3f,"
             "\"lat_every\":%llu,\"lat_samples\":%llu}\n",
             nw, (unsigned long long)tasks, (unsigned long long)inflight,
             depth, (unsigned long long)payload, secs, tps, p50, p99, p999,
             cpu, (unsigned long long)lat_every, (unsigned long long)nlat);
    else
      printf("boost_mq_pool: %u workers, %llu tasks of %llu B, inflight "
             "%llu, queue depth %zu: %.3f s, %.0f tasks/s, round trip p50 "
             "%.1f us, p99 %.1f us, p99.9 %.1f us (%llu tasks timed), CPU "
             "%.2f us/task\n",
             nw, (unsigned long long)tasks, (unsigned long long)payload,
             (unsigned long long)inflight, depth, secs, tps, p50, p99, p999,
             (unsigned long long)nlat, cpu);
  }

out:
  if (pids != NULL)
    bench_kill_reap(pids, started); /* skips workers already reaped (0) */
  close(ready[0]); /* close(-1) fails harmlessly with EBADF */
  close(ready[1]);
  delete tq;
  delete rq;
  free(pids);
  free(sent_at);
  free(rtt);
  free(seen);
  free(sbuf);
  free(rbuf);
  return rc;
}
