#!/usr/bin/env python3
"""mp_pool: baseline for `make bench`, Python's multiprocessing.Pool.

What it measures: tasks/s of multiprocessing.Pool(N).imap_unordered(echo,
tasks, chunksize=1) over M echo tasks of PAYLOAD bytes, the pool most people
reach for first. chunksize=1 makes every task a separate round trip through
the pool's pipes, as a task is in forkpool.

How: the pool is started with the "fork" start method (the pre-fork model
forkpool uses; Python 3.14 changes the default) and warmed up with one task
per worker before the clock starts; pool start-up is not timed. Each task is
an 8-byte sequence number plus the payload; every result is checked (known
sequence, seen once, payload intact). To bound the run time, the loop stops
after --max-seconds and reports the tasks done so far ("truncated":1).

Usage: mp_pool.py --workers N --tasks M --payload BYTES [--max-seconds S]
                  [--json]
"""
import argparse
import json
import multiprocessing as mp
import signal
import sys
import time


def echo(task):
    return task


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--payload", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.workers < 1 or a.tasks < 1 or a.payload < 0 or a.max_seconds <= 0:
        ap.error("--workers and --tasks must be >= 1, --payload >= 0, "
                 "--max-seconds > 0")

    payload = bytes((b * 7 + 1) & 0xFF for b in range(a.payload))
    tasks = (i.to_bytes(8, "little") + payload for i in range(a.tasks))
    seen = bytearray(a.tasks)
    done = 0
    truncated = False
    # SIGTERM (say from `timeout`) unwinds through the finally below, so the
    # workers are terminated and joined rather than left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ctx = mp.get_context("fork")
    pool = ctx.Pool(a.workers)
    try:
        pool.map(echo, [b""] * a.workers, chunksize=1)  # warm-up
        t0 = time.perf_counter()
        for r in pool.imap_unordered(echo, tasks, chunksize=1):
            seq = int.from_bytes(r[:8], "little")
            if seq >= a.tasks or seen[seq] or r[8:] != payload:
                print("mp_pool: bad result (seq %d)" % seq, file=sys.stderr)
                return 1
            seen[seq] = 1
            done += 1
            if done % 256 == 0 and time.perf_counter() - t0 > a.max_seconds:
                truncated = True
                break
        secs = time.perf_counter() - t0
    finally:
        # terminate() also stops the task feeder when we broke out early.
        pool.terminate()
        pool.join()

    tps = done / secs if secs > 0 else 0.0
    if a.json:
        print(json.dumps({"name": "mp_pool", "workers": a.workers,
                          "tasks": done, "requested": a.tasks,
                          "payload": a.payload, "seconds": round(secs, 6),
                          "tasks_per_sec": round(tps, 1),
                          "truncated": int(truncated)},
                         separators=(",", ":")))
    else:
        print("mp_pool: %d workers, %d tasks of %d B%s: %.3f s, %.0f tasks/s"
              % (a.workers, done, a.payload,
                 " (truncated at --max-seconds)" if truncated else "",
                 secs, tps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
