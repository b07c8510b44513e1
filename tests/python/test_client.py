"""Tests of python/forkpool.py against real served pools.

Run from the repository root after `make`:

    python3 -m unittest discover -s tests/python -v

(or `sh tests/python.sh build`, which `make check` runs). BUILD_DIR is
$FORKPOOL_BUILD (default: build); the library $FORKPOOL_LIB, else the
module's own default. setUpModule starts three servers of
BUILD_DIR/bin/forkpool with the crashy plugin, named fpy<pid>_<letter>,
and tearDownModule stops them (SIGTERM, then SIGKILL after 10 s) and
removes their /dev/shm entries. Every wait in a test is bounded, so a bug
fails a test instead of hanging it.
"""

import base64
import ctypes
import errno
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
import forkpool  # noqa: E402

BUILD = os.path.abspath(os.environ.get("FORKPOOL_BUILD",
                                       os.path.join(ROOT, "build")))
FP = os.path.join(BUILD, "bin", "forkpool")
CRASHY = os.path.join(BUILD, "examples", "crashy.so")
PREFIX = "fpy%d_" % os.getpid()
T = 10  # seconds: the bound of every wait that should succeed at once

servers = {}   # letter -> (name, Popen)
tmpdir = None


def _pdeathsig():
    # The server dies with this process, even if it is killed hard.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def start_server(letter, *opts):
    name = PREFIX + letter
    pidfile = os.path.join(tmpdir, name + ".pid")
    log = open(os.path.join(tmpdir, name + ".log"), "wb")
    proc = subprocess.Popen(
        [FP, "serve", "--name", name, "--handler", CRASHY, "--grace", "1000",
         "--pidfile", pidfile] + list(opts),
        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        preexec_fn=_pdeathsig)
    log.close()
    servers[letter] = (name, proc, pidfile)
    return name


def wait_ready(letter):
    name, proc, pidfile = servers[letter]
    end = time.monotonic() + T
    while time.monotonic() < end:
        if proc.poll() is not None:
            break
        if os.path.exists(pidfile) and os.path.getsize(pidfile) > 0:
            return
        time.sleep(0.02)
    with open(os.path.join(tmpdir, name + ".log"), "rb") as f:
        log = f.read().decode("utf-8", "replace")
    raise RuntimeError("server %s not ready (exit %s): %s"
                       % (name, proc.poll(), log[-500:]))


def stop_server(letter):
    name, proc, _ = servers.pop(letter)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    try:
        os.unlink("/dev/shm/forkpool." + name)
    except FileNotFoundError:
        pass


def setUpModule():
    global tmpdir, A, TMO, Q
    for f in (FP, CRASHY):
        if not os.path.exists(f):
            raise unittest.SkipTest("need %s (run make first)" % f)
    tmpdir = tempfile.mkdtemp(prefix="forkpool-py.")
    try:
        A = start_server("a", "--workers", "2")
        TMO = start_server("t", "--workers", "2", "--timeout", "800")
        Q = start_server("q", "--workers", "2", "--queue", "8",
                         "--max-input", "1024")
        for letter in list(servers):
            wait_ready(letter)
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for letter in list(servers):
        stop_server(letter)
    if tmpdir is not None:
        for f in os.listdir(tmpdir):
            os.unlink(os.path.join(tmpdir, f))
        os.rmdir(tmpdir)


def drain(pool):
    """Collect whatever the handle still has pending (bounded)."""
    end = time.monotonic() + T
    while pool.pending() and time.monotonic() < end:
        try:
            pool.collect(timeout=max(0.0, end - time.monotonic()))
        except forkpool.Error:
            break


class PoolCase(unittest.TestCase):
    pool_letter = "a"

    def setUp(self):
        self.pool = forkpool.Pool.open(servers[self.pool_letter][0])

    def tearDown(self):
        if not self.pool.closed:
            drain(self.pool)
            self.assertEqual(self.pool.pending(), 0)
        self.pool.close()

    def run1(self, data, timeout=T, pool=None):
        pool = pool or self.pool
        return pool.wait(pool.submit(data, timeout=timeout), timeout=timeout)


class TestResults(PoolCase):
    def test_ok(self):
        r = self.run1(b"hello")
        self.assertIsInstance(r, forkpool.Result)
        self.assertEqual(r.status, "ok")
        self.assertTrue(r.ok)
        self.assertEqual(r.output, b"HELLO")
        self.assertEqual((r.code, r.signal, r.exit_code), (0, 0, -1))
        self.assertIsNone(r.signal_name)
        self.assertEqual(r.attempts, 1)
        self.assertGreater(r.worker, 0)
        self.assertGreaterEqual(r.run_us, 0)
        self.assertEqual((r.root, r.parent), (r.id, 0))

    def test_failed(self):
        r = self.run1("fail 7")
        self.assertEqual((r.status, r.code, r.signal), ("failed", 7, 0))
        self.assertFalse(r.ok)

    def test_segv(self):
        r = self.run1("segv")
        self.assertEqual(r.status, "crashed")
        self.assertEqual(r.signal, signal.SIGSEGV)
        self.assertEqual(r.signal, 11)
        self.assertEqual(r.signal_name, "SIGSEGV")
        self.assertEqual(r.exit_code, -1)
        self.assertTrue(r.output.startswith(b"SIGSEGV"), r.output)

    def test_abort(self):
        r = self.run1("abort")
        self.assertEqual((r.status, r.signal_name), ("crashed", "SIGABRT"))

    def test_exit(self):
        r = self.run1("exit 3")
        self.assertEqual((r.status, r.exit_code, r.signal), ("crashed", 3, 0))

    def test_str_is_utf8(self):
        r = self.run1("h\u00e9llo")
        self.assertEqual(r.output, "H\u00e9LLO".encode("utf-8"))

    def test_binary_round_trip(self):
        data = bytes(range(256)) * 3   # NUL, 0xff and every byte between
        for kind in (bytes, bytearray, memoryview):
            r = self.run1(kind(data))
            self.assertEqual(r.status, "ok")
            # crashy upper-cases a-z only (toupper in the C locale).
            self.assertEqual(r.output, data.upper())
        self.assertEqual(self.run1(b"\x00\xff").output, b"\x00\xff")

    def test_empty_input(self):
        r = self.run1(b"")
        self.assertEqual((r.status, r.output), ("ok", b""))

    def test_large_output(self):
        data = bytes((97 + i % 26) for i in range(10000))
        r = self.run1(data)
        self.assertEqual(len(r.output), 10000)
        self.assertEqual(r.output, data.upper())

    def test_output_buffers_are_released(self):
        def rss():
            # Private resident memory: resident minus shared pages. The
            # pool's segment is shared memory that this process maps and
            # touches slot by slot; counting it would measure which slots
            # the pool handed out, not our heap.
            with open("/proc/self/statm") as f:
                v = f.read().split()
            return (int(v[1]) - int(v[2])) * os.sysconf("SC_PAGESIZE")
        data = b"r" * 60000
        self.pool.map([data] * 20, timeout=30)   # warm up the heap
        before = rss()
        for r in self.pool.imap([data] * 400, timeout=60):
            self.assertEqual(len(r.output), 60000)
        # 400 leaked 60 kB buffers would be 24 MB.
        self.assertLess(rss() - before, 8 << 20)

    def test_collect(self):
        ids = {self.pool.submit("c%d" % i, timeout=T): i for i in range(5)}
        got = {}
        for _ in range(5):
            r = self.pool.collect(timeout=T)
            got[r.id] = r.output
        self.assertEqual(got, {k: b"C%d" % v for k, v in ids.items()})
        with self.assertRaises(forkpool.Error) as cm:
            self.pool.collect(timeout=1)
        self.assertEqual(cm.exception.errno, errno.ENOENT)

    def test_priority(self):
        r = self.run1(b"x")
        tid = self.pool.submit(b"hi", priority="high", timeout=T)
        self.assertEqual(self.pool.wait(tid, timeout=T).output, b"HI")
        self.assertEqual(r.output, b"X")
        with self.assertRaises(ValueError):
            self.pool.submit(b"x", priority="urgent")

    def test_bad_arguments(self):
        with self.assertRaises(TypeError):
            self.pool.submit(42)
        with self.assertRaises(TypeError):
            self.pool.wait("1")
        with self.assertRaises(ValueError):
            self.pool.wait(-1)
        with self.assertRaises(ValueError):
            self.pool.wait(1, timeout=-1)

    def test_result_is_immutable(self):
        r = self.run1(b"a")
        with self.assertRaises(Exception):
            r.status = "failed"
        self.assertIn("ok", repr(r))

    def test_stats(self):
        st = self.pool.stats()
        c_fields = [f for f, _ in forkpool._FpStats._fields_]
        self.assertEqual(list(st), c_fields)
        self.assertEqual(st["state"], "running")
        self.assertEqual(st["supervisor"], servers["a"][1].pid)
        self.assertEqual((st["workers"], st["slots"]), (2, 256))
        self.assertEqual((st["max_input"], st["max_output"]), (65536, 65536))
        self.assertEqual(st["timeout_ms"], 0)
        self.assertGreaterEqual(st["clients"], 1)
        self.assertEqual(len(st["duration_le"]), 8)
        before = st["submitted"]
        self.run1(b"s")
        self.assertEqual(self.pool.stats()["submitted"], before + 1)


class TestCli(PoolCase):
    INPUTS = [b"hello", b"segv", b"abort", b"exit 3", b"fail 7", b"",
              b"a\tb\x01", b"fail x", b"\xff\xfeabc", b"sleep 1"]

    def test_same_as_forkpool_submit(self):
        out = subprocess.run(
            [FP, "submit", "--json", "--name", servers["a"][0], "--"] +
            self.INPUTS, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=30).stdout
        lines = [json.loads(x) for x in out.decode().splitlines()]
        self.assertEqual(len(lines), len(self.INPUTS))
        results = self.pool.map(self.INPUTS, timeout=30)
        for data, cli, r in zip(self.INPUTS, lines, results):
            with self.subTest(data=data):
                self.assertEqual(r.status, cli["status"])
                self.assertEqual(r.code, cli.get("code", 0))
                self.assertEqual(r.signal_name, cli.get("signal"))
                self.assertEqual(r.exit_code, cli.get("exit", -1))
                self.assertEqual(r.attempts, cli["attempts"])
                if r.status in ("ok", "failed"):
                    if "output_base64" in cli:
                        want = base64.b64decode(cli["output_base64"])
                    else:
                        want = cli.get("output", "").encode("utf-8")
                    self.assertEqual(r.output, want)


class TestTimeouts(PoolCase):
    pool_letter = "t"   # --timeout 800

    def test_task_timeout(self):
        r = self.run1("hang")
        self.assertEqual(r.status, "timeout")
        self.assertEqual(r.signal_name, "SIGKILL")
        self.assertGreaterEqual(r.run_us, 800000)

    def wait_running(self, n):
        end = time.monotonic() + T
        while self.pool.stats()["running"] < n:
            self.assertLess(time.monotonic(), end, "tasks never started")
            time.sleep(0.01)

    def test_cancel_running(self):
        tid = self.pool.submit("hang", timeout=T)
        self.wait_running(1)
        self.assertIs(self.pool.cancel(tid), True)
        r = self.pool.wait(tid, timeout=T)
        self.assertEqual(r.status, "cancelled")  # not the 800 ms timeout

    def test_cancel_queued_and_finished(self):
        busy = [self.pool.submit("sleep 300", timeout=T) for _ in range(2)]
        self.wait_running(2)
        queued = self.pool.submit("never", timeout=T)
        self.assertIs(self.pool.cancel(queued), True)
        r = self.pool.wait(queued, timeout=T)
        self.assertEqual((r.status, r.attempts), ("cancelled", 0))
        for tid in busy:
            self.assertEqual(self.pool.wait(tid, timeout=T).output,
                             b"slept 300")
        done = self.pool.submit("x", timeout=T)
        end = time.monotonic() + T
        while self.pool.stats()["running"] or self.pool.stats()["queued"]:
            self.assertLess(time.monotonic(), end)
            time.sleep(0.01)
        time.sleep(0.05)
        self.assertIs(self.pool.cancel(done), False)  # finished already
        self.assertEqual(self.pool.wait(done, timeout=T).output, b"X")
        with self.assertRaises(forkpool.Error) as cm:
            self.pool.cancel(done)     # collected: no such task
        self.assertEqual(cm.exception.errno, errno.ENOENT)

    def test_wait_timeout(self):
        tid = self.pool.submit("sleep 500", timeout=T)
        t0 = time.monotonic()
        with self.assertRaises(forkpool.Timeout) as cm:
            self.pool.wait(tid, timeout=0.2)
        took = time.monotonic() - t0
        e = cm.exception
        self.assertEqual(e.errno, errno.ETIMEDOUT)
        self.assertIsInstance(e, TimeoutError)
        self.assertIsInstance(e, forkpool.Error)
        self.assertIn("fp_wait", str(e))
        self.assertGreaterEqual(took, 0.19)
        self.assertLess(took, 0.8)
        with self.assertRaises(forkpool.Timeout):
            self.pool.wait(tid, timeout=0)
        self.assertEqual(self.pool.pending(), 1)   # still ours
        self.assertEqual(self.pool.wait(tid, timeout=T).output, b"slept 500")

class TestSignals(PoolCase):
    """Signals during waits, on the pool without a task timeout (a task
    that ends early would hide a wait that is not sliced)."""

    def test_keyboard_interrupt(self):
        tid = self.pool.submit("sleep 1500", timeout=T)
        old = signal.signal(signal.SIGINT, signal.default_int_handler)
        timer = threading.Timer(0.25, os.kill, (os.getpid(), signal.SIGINT))
        t0 = time.monotonic()
        try:
            timer.start()
            with self.assertRaises(KeyboardInterrupt):
                self.pool.wait(tid, timeout=5)
        finally:
            timer.cancel()
            signal.signal(signal.SIGINT, old)
        # Within a slice (200 ms), not when the task ends (1.5 s).
        self.assertLess(time.monotonic() - t0, 0.25 + 0.6)
        self.assertIs(self.pool.cancel(tid), True)
        self.assertEqual(self.pool.wait(tid, timeout=T).status, "cancelled")

    def test_eintr_does_not_end_a_wait(self):
        got = []
        sent = []
        old = signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
        stop = threading.Event()

        def pester():
            while not stop.wait(0.03):
                os.kill(os.getpid(), signal.SIGUSR1)
                sent.append(1)

        th = threading.Thread(target=pester)
        try:
            tid = self.pool.submit("sleep 400", timeout=T)
            th.start()
            r = self.pool.wait(tid, timeout=T)
            # No timeout at all: many slices, none may end the wait.
            tid = self.pool.submit("sleep 500")
            r2 = self.pool.wait(tid)
        finally:
            stop.set()
            th.join(T)
            signal.signal(signal.SIGUSR1, old)
        self.assertEqual(r.output, b"slept 400")
        self.assertEqual(r2.output, b"slept 500")
        # Python runs its handler between slices: fewer calls than signals.
        self.assertGreater(len(sent), 5)
        self.assertGreaterEqual(len(got), 1)


class TestQueue(PoolCase):
    pool_letter = "q"   # --queue 8 --max-input 1024

    def test_map_more_than_the_queue(self):
        self.assertEqual(self.pool.stats()["slots"], 8)
        items = ["m%d" % i for i in range(40)] + ["segv", "exit 4", "fail 9"]
        rs = self.pool.map(items, timeout=30)
        self.assertEqual(len(rs), len(items))
        self.assertEqual([r.output for r in rs[:40]],
                         [b"M%d" % i for i in range(40)])
        self.assertEqual([r.status for r in rs[40:]],
                         ["crashed", "crashed", "failed"])
        self.assertEqual((rs[40].signal, rs[41].exit_code, rs[42].code),
                         (11, 4, 9))
        self.assertEqual(len({r.id for r in rs}), len(items))
        self.assertEqual(self.pool.pending(), 0)

    def test_map_window_and_generator(self):
        rs = self.pool.map((b"w%d" % i for i in range(12)), window=3,
                           timeout=30)
        self.assertEqual([r.output for r in rs], [b"W%d" % i for i in range(12)])
        gen = self.pool.imap(["sleep 50"] * 20, timeout=30)
        first = next(gen)
        self.assertEqual(first.output, b"slept 50")
        gen.close()                    # the rest in flight: cancelled
        self.assertEqual(self.pool.pending(), 0)

    def test_map_timeout(self):
        t0 = time.monotonic()
        with self.assertRaises(forkpool.Timeout):
            self.pool.map(["sleep 2000"] * 4, timeout=0.3)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(self.pool.pending(), 0)   # in flight: cancelled

    def test_max_input(self):
        self.assertEqual(self.run1(b"a" * 1024).output, b"A" * 1024)
        with self.assertRaises(forkpool.Error) as cm:
            self.pool.submit(b"a" * 1025)
        self.assertEqual(cm.exception.errno, errno.EMSGSIZE)
        self.assertIn("EMSGSIZE", str(cm.exception))
        self.assertEqual(self.pool.pending(), 0)

    def test_full_queue(self):
        # A lone producer may hold 3/4 of the 8 slots.
        ids = [self.pool.submit("sleep 3000", timeout=T) for _ in range(6)]
        try:
            with self.assertRaises(forkpool.Error) as cm:
                self.pool.submit("x", timeout=0)
            self.assertEqual(cm.exception.errno, errno.EAGAIN)
            t0 = time.monotonic()
            with self.assertRaises(forkpool.Timeout):
                self.pool.submit("x", timeout=0.3)
            self.assertLess(time.monotonic() - t0, 1.2)
        finally:
            for tid in ids:
                self.pool.cancel(tid)
        for tid in ids:
            self.assertEqual(self.pool.wait(tid, timeout=T).status,
                             "cancelled")

    def test_deadlock_is_reported(self):
        ids = [self.pool.submit("d", timeout=T) for _ in range(6)]
        end = time.monotonic() + T
        while self.pool.stats()["running"] or self.pool.stats()["queued"]:
            self.assertLess(time.monotonic(), end)
            time.sleep(0.01)
        with self.assertRaises(forkpool.Error) as cm:
            self.pool.submit("one too many", timeout=5)
        self.assertEqual(cm.exception.errno, errno.EDEADLK)
        for tid in ids:
            self.assertEqual(self.pool.wait(tid, timeout=T).output, b"D")


class TestErrors(unittest.TestCase):
    def test_open_missing_pool(self):
        with self.assertRaises(forkpool.Error) as cm:
            forkpool.Pool.open(PREFIX + "missing")
        e = cm.exception
        self.assertEqual(e.errno, errno.ENOENT)
        self.assertIsInstance(e, OSError)
        self.assertEqual(str(e), "fp_pool_open('%smissing'): no such pending "
                         "task, or no such pool (ENOENT)" % PREFIX)
        self.assertEqual(e.pool, PREFIX + "missing")
        gc.collect()   # the half-made Pool's __del__ is harmless

    def test_open_bad_name(self):
        for bad in ("bad/name", "a\0b", "", "-x"):
            with self.assertRaises(forkpool.Error) as cm:
                forkpool.Pool.open(bad)
            self.assertEqual(cm.exception.errno, errno.EINVAL, bad)

    def test_wait_unknown_id(self):
        with forkpool.Pool.open(servers["a"][0]) as p:
            with self.assertRaises(forkpool.Error) as cm:
                p.wait(12345, timeout=1)
            self.assertEqual(cm.exception.errno, errno.ENOENT)
            self.assertIn("fp_wait", str(cm.exception))

    def test_monitor_refuses_submit(self):
        with forkpool.Pool.open(servers["a"][0], monitor=True) as m:
            self.assertTrue(m.monitor)
            with self.assertRaises(forkpool.Error) as cm:
                m.submit(b"x")
            self.assertEqual(cm.exception.errno, errno.EPERM)
            self.assertEqual(m.stats()["state"], "running")
            self.assertEqual(m.pending(), 0)

    def test_close_is_idempotent(self):
        p = forkpool.Pool.open(servers["a"][0])
        with p:
            self.assertFalse(p.closed)
        self.assertTrue(p.closed)
        p.close()
        with self.assertRaises(forkpool.Error) as cm:
            p.submit(b"x")
        self.assertEqual(cm.exception.errno, errno.EBADF)
        q = forkpool.Pool.open(servers["a"][0])
        q.submit(b"left pending")
        del q
        gc.collect()    # __del__ frees it

    def test_close_while_another_thread_waits(self):
        p = forkpool.Pool.open(servers["a"][0])
        tid = p.submit("sleep 1500", timeout=T)
        errs = []

        def waiter():
            try:
                p.wait(tid, timeout=T)
            except forkpool.Error as e:
                errs.append(e)

        th = threading.Thread(target=waiter)
        th.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        p.close()
        th.join(T)
        self.assertLess(time.monotonic() - t0, 0.9)  # a slice, not 1.2 s
        self.assertFalse(th.is_alive())
        self.assertEqual([e.errno for e in errs], [errno.EBADF])

    def test_forked_child_leaves_the_handle_alone(self):
        with forkpool.Pool.open(servers["a"][0]) as p:
            tid = p.submit(b"before", timeout=T)
            # Another thread is inside a wait while we fork: the child
            # inherits a call in progress that nobody there will end.
            slow = p.submit(b"sleep 600", timeout=T)
            got = []
            th = threading.Thread(target=lambda: got.append(
                p.wait(slow, timeout=T)))
            th.start()
            time.sleep(0.1)
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    try:
                        p.submit(b"child")
                        code = 3
                    except forkpool.Error as e:
                        code = 0 if e.errno == errno.EBADF else 4
                    p.close()
                finally:
                    os._exit(code)
            end = time.monotonic() + T
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > end:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    self.fail("child hung")
                time.sleep(0.01)
            self.assertTrue(os.WIFEXITED(status), status)
            self.assertEqual(os.WEXITSTATUS(status), 0)
            time.sleep(0.3)   # a supervisor tick: it would notice a detach
            th.join(T)
            self.assertEqual([r.output for r in got], [b"slept 600"])
            self.assertEqual(p.wait(tid, timeout=T).output, b"BEFORE")
            self.assertEqual(p.wait(p.submit(b"after", timeout=T),
                                    timeout=T).output, b"AFTER")

    def test_library_not_found_names_every_place(self):
        env = {k: v for k, v in os.environ.items() if k != "FORKPOOL_LIB"}
        with mock.patch.dict(os.environ, env, clear=True), \
                mock.patch.dict(forkpool._libs, {}, clear=True), \
                mock.patch.object(forkpool, "_HERE", "/nonexistent/py"), \
                mock.patch.object(forkpool.ctypes.util, "find_library",
                                  return_value=None):
            with self.assertRaises(forkpool.LibraryError) as cm:
                forkpool.load_library()
        msg = str(cm.exception)
        self.assertIn("next to the module: /nonexistent/build/libforkpool.so: "
                      "no such file", msg)
        self.assertIn('find_library("forkpool")', msg)
        with self.assertRaises(forkpool.LibraryError) as cm:
            forkpool.Pool.open(servers["a"][0], lib="/nonexistent/libfp.so")
        self.assertIn("the lib argument: /nonexistent/libfp.so", str(cm.exception))
        with mock.patch.dict(os.environ, {"FORKPOOL_LIB": "/no/lib.so"}):
            with self.assertRaises(forkpool.LibraryError) as cm:
                forkpool.load_library()
        self.assertIn("$FORKPOOL_LIB: /no/lib.so", str(cm.exception))

    def test_layout(self):
        lib = forkpool.load_library()
        size, exit_off = forkpool._result_size_probe(lib)
        self.assertEqual(size, ctypes.sizeof(forkpool._FpResult))
        self.assertEqual(exit_off, forkpool._FpResult.exit_code.offset)
        if ctypes.sizeof(ctypes.c_void_p) == 8:
            self.assertEqual(size, 80)
            self.assertEqual(ctypes.sizeof(forkpool._FpStats), 272)
        # A mirror one field short (a client older than the library) is
        # what the ABI policy is for: the library writes only its size.
        class Short(ctypes.Structure):
            _fields_ = forkpool._FpResult._fields_[:-1]
        with mock.patch.object(forkpool, "_FpResult", Short), \
                mock.patch.dict(forkpool._EXPECTED_SIZES,
                                {k: (72, v[1]) for k, v in
                                 forkpool._EXPECTED_SIZES.items()}):
            forkpool._check_layout(lib)
            self.assertEqual(forkpool._result_size_probe(lib)[0], 72)
        # The same for fp_stats: a shorter mirror gets its fields, and the
        # bytes after it are never written (stats() checks its guard).
        class ShortStats(ctypes.Structure):
            _fields_ = forkpool._FpStats._fields_[:-1]
        with forkpool.Pool.open(servers["a"][0], monitor=True) as m:
            with mock.patch.object(forkpool, "_FpStats", ShortStats):
                st = m.stats()
            self.assertNotIn("duration_sum_us", st)
            self.assertEqual(st["state"], "running")
            self.assertEqual(m.stats()["state"], "running")

    def test_supervisor_death(self):
        name = start_server("k", "--workers", "1")
        try:
            wait_ready("k")
            with forkpool.Pool.open(name) as p:
                tid = p.submit("sleep 5000", timeout=T)
                servers["k"][1].kill()
                servers["k"][1].wait(T)
                t0 = time.monotonic()
                with self.assertRaises(forkpool.Error) as cm:
                    p.wait(tid, timeout=T)
                self.assertEqual(cm.exception.errno, errno.EPIPE)
                self.assertLess(time.monotonic() - t0, 3)
                with self.assertRaises(forkpool.Error) as cm:
                    p.submit(b"x", timeout=T)
                self.assertEqual(cm.exception.errno, errno.EPIPE)
        finally:
            stop_server("k")


class TestConcurrency(unittest.TestCase):
    def test_threads_share_a_handle(self):
        bad = []
        with forkpool.Pool.open(servers["a"][0]) as p:
            def worker(k):
                try:
                    for i in range(50):
                        data = b"t%d-%d" % (k, i)
                        r = p.wait(p.submit(data, timeout=T), timeout=T)
                        if r.output != data.upper():
                            bad.append((data, r))
                except Exception as e:  # reported below
                    bad.append(e)

            ths = [threading.Thread(target=worker, args=(k,))
                   for k in range(4)]
            for th in ths:
                th.start()
            for th in ths:
                th.join(30)
            self.assertFalse(any(th.is_alive() for th in ths))
            self.assertEqual(bad, [])
            self.assertEqual(p.pending(), 0)

    PRODUCER = r"""
import json, sys
import forkpool
name, k, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bad = []
with forkpool.Pool.open(name) as p:
    half = n // 2
    items = [b"p%d-%d" % (k, i) for i in range(n)]
    for data, r in zip(items[:half], p.map(items[:half], timeout=60)):
        if r.status != "ok" or r.output != data.upper():
            bad.append(repr((data, r)))
    ids = {}
    for data in items[half:]:
        ids[p.submit(data, timeout=60)] = data
        if len(ids) % 16 == 0:
            for _ in range(8):
                r = p.collect(timeout=60)
                want = ids.pop(r.id, None)
                if want is None or r.output != want.upper():
                    bad.append(repr((want, r)))
    while ids:
        r = p.collect(timeout=60)
        want = ids.pop(r.id, None)
        if want is None or r.output != want.upper():
            bad.append(repr((want, r)))
    print(json.dumps({"n": n, "bad": bad, "pending": p.pending()}))
"""

    def test_four_producer_processes(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.path.join(ROOT, "python")
        procs = [subprocess.Popen(
            [sys.executable, "-c", self.PRODUCER, servers["a"][0], str(k),
             "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            for k in range(4)]
        outs = []
        try:
            for pr in procs:
                out, err = pr.communicate(timeout=60)
                self.assertEqual(pr.returncode, 0, err.decode()[-1000:])
                outs.append(json.loads(out))
        finally:
            for pr in procs:
                if pr.poll() is None:
                    pr.kill()
                    pr.wait()
        for o in outs:
            self.assertEqual(o, {"n": 200, "bad": [], "pending": 0})


if __name__ == "__main__":
    unittest.main()
