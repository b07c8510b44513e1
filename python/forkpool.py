"""forkpool: a Python client for named forkpool pools.

Attach to a pool that ``forkpool serve`` runs, submit tasks to its workers
and get one result per task, whatever the handler did (returned, failed,
crashed, hung past the pool's timeout)::

    import forkpool

    with forkpool.Pool.open("demo") as pool:
        tid = pool.submit(b"hello")
        res = pool.wait(tid, timeout=5)
        print(res.status, res.output)          # ok b'HELLO'
        for r in pool.map(["segv", "exit 3", "fail 7", "world"], timeout=10):
            print(r.status, r.signal_name, r.exit_code, r.code, r.output[:20])

with, in another shell, ``build/bin/forkpool serve --name demo --handler
build/examples/crashy.so --workers 2``.

What it needs: Python 3.7 or later, its standard library only (``ctypes``),
and the shared library ``libforkpool.so`` built from this tree (``make``).
No compiled extension. The library is found, in this order:

1. the ``lib`` argument of :meth:`Pool.open` / :func:`load_library` (a path);
2. else the environment variable ``FORKPOOL_LIB`` (a path);
3. else ``../build/libforkpool.so`` relative to this file (the source tree);
4. else ``ctypes.util.find_library("forkpool")`` (an installed library).

A path given by 1 or 2 is binding: when it does not load, that is the error
(no other library is tried behind the caller's back). Otherwise 3 and 4 are
tried in turn, and when neither loads, :class:`LibraryError` names every
place tried and why each failed.

Errors: a call the C library fails with ``-errno`` raises :class:`Error` (an
``OSError``) with that ``errno`` and a message naming the call, the pool and
the library's text, e.g. ``fp_pool_open('x'): no such pending task, or no
such pool (ENOENT)``. A wait past its timeout raises :class:`Timeout` (also a
``TimeoutError``; errno ``ETIMEDOUT``). A task that failed, crashed or timed
out is no exception: it is a :class:`Result` with that ``status``.

Timeouts are in seconds (floats allowed): ``None`` waits for ever, ``0``
does not wait. Long waits are made of slices of at most 200 ms, so a signal
(Ctrl-C: ``KeyboardInterrupt``) is handled within one slice, and ``EINTR``
never ends a wait early. (An interrupt that lands in the instant after a
wait took its result loses that result: the task counts as collected.)

Threads: one :class:`Pool` may be used by several threads at once (the C
library is thread-safe, and ctypes releases the GIL during each call).
``close()`` waits for the calls other threads have in progress (each ends
within a slice) and makes their waits raise :class:`Error` (``EBADF``).
A handle belongs to the process that opened it: in a forked child it
refuses every call, and closing it there leaves the parent's attachment
alone.

ABI: the ctypes mirrors of ``fp_result`` and ``fp_stats`` below follow
``include/forkpool.h`` of forkpool 0.2.0 and are the one place to update
when that header changes. Each is passed with its own size (the header's
ABI policy: the library reads and writes only that many bytes, so a
library newer than this module never writes past the mirror). At load,
the size of ``fp_result`` is measured too (``fp_result_init_sized`` on a
guarded buffer) and compared with the mirror's, and every ``stats()``
call checks that the library wrote neither past nor short of the mirror
of ``fp_stats``: a mismatch is a :class:`LibraryError` or :class:`Error`
(``EPROTO``), never memory corruption passed off as a result.
"""

import collections
import ctypes
import ctypes.util
import dataclasses
import errno as _errno
import math
import os
import signal as _signal
import threading
import time

__all__ = [
    "Pool", "Result", "Error", "Timeout", "LibraryError", "load_library",
    "STATUSES", "OK", "FAILED", "CRASHED", "TIMEOUT", "CANCELLED", "CORRUPT",
]

# ---- The C ABI mirror: keep in step with include/forkpool.h --------------

FP_FOREVER = -1
FP_NOWAIT = 0
FP_OPEN_MONITOR = 1
FP_PRIO_NORMAL = 0
FP_PRIO_HIGH = 1
FP_DURATION_BUCKETS = 8

_u64 = ctypes.c_uint64
_uint = ctypes.c_uint
_int = ctypes.c_int
_pid_t = ctypes.c_int     # pid_t is int on Linux
_status_t = ctypes.c_int  # enum fp_status: 0..5, int-sized


class _FpResult(ctypes.Structure):
    """struct fp_result (forkpool.h, 0.2.0). The library reads and writes
    only its ``size`` bytes (forkpool.h, ABI policy), set by
    fp_result_init_sized(ctypes.sizeof(_FpResult))."""
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("id", _u64),
        ("status", _status_t),
        ("code", _int),
        ("signal", _int),
        ("exit_code", _int),
        ("attempts", _uint),
        ("worker", _pid_t),
        ("run_us", _u64),
        ("output", ctypes.c_void_p),
        ("output_len", ctypes.c_size_t),
        ("root", _u64),
        ("parent", _u64),
    ]


class _FpStats(ctypes.Structure):
    """struct fp_stats (forkpool.h, 0.2.0); passed with its size to
    fp_pool_stats_sized."""
    _fields_ = (
        [(n, _u64) for n in ("submitted", "ok", "failed", "crashed",
                             "timeout", "cancelled", "restarts",
                             "abandoned")] +
        [(n, _uint) for n in ("workers", "alive", "queued", "running",
                              "slots")] +
        [("supervisor", _pid_t),
         ("uptime_us", _u64),
         ("rows", _uint),
         ("clients", _uint),
         ("state", _int),  # enum fp_pool_state
         ("repairs", _u64),
         ("segment_bytes", _u64),
         ("retried", _u64),
         ("quarantined", _u64),
         ("min_workers", _uint),
         ("max_workers", _uint),
         ("last_resize_us", _u64),
         ("max_input", ctypes.c_size_t),
         ("max_output", ctypes.c_size_t),
         ("timeout_ms", _uint),
         ("corrupt", _u64),
         ("duration_le", _u64 * FP_DURATION_BUCKETS),
         ("duration_count", _u64),
         ("duration_sum_us", _u64)]
    )


# sizeof(fp_result), sizeof(fp_stats) for this layout, by (pointer size,
# alignment of uint64_t): LP64 (x86_64, aarch64), i386, 32-bit ARM.
# Only LP64 is tested.
_EXPECTED_SIZES = {
    (8, 8): (80, 272),
    (4, 4): (68, 256),
    (4, 8): (72, 264),
}

# Bytes kept after a struct the library fills, to see it write past it.
_GUARD = 64
_FILL = 0xA5

# The C functions used, with their signatures.
_vp = ctypes.c_void_p
_SIGNATURES = {
    "fp_pool_open": (_int, [ctypes.POINTER(_vp), ctypes.c_char_p, _uint]),
    "fp_pool_free": (None, [_vp]),
    "fp_submit_prio": (_int, [_vp, _vp, ctypes.c_size_t, _int, _int,
                              ctypes.POINTER(_u64)]),
    "fp_wait": (_int, [_vp, _u64, ctypes.POINTER(_FpResult), _int]),
    "fp_collect": (_int, [_vp, ctypes.POINTER(_FpResult), _int]),
    "fp_cancel": (_int, [_vp, _u64]),
    "fp_pending": (_uint, [_vp]),
    "fp_pool_stats_sized": (_int, [_vp, _vp, ctypes.c_size_t]),
    "fp_result_init_sized": (None, [_vp, ctypes.c_size_t]),
    "fp_pool_state_name": (ctypes.c_char_p, [_int]),
    "fp_result_release": (None, [ctypes.POINTER(_FpResult)]),
    "fp_status_name": (ctypes.c_char_p, [_status_t]),
    "fp_strerror": (ctypes.c_char_p, [_int]),
    "fp_version": (ctypes.c_char_p, []),
}

# ---- Statuses, errors ----------------------------------------------------

OK, FAILED, CRASHED, TIMEOUT, CANCELLED, CORRUPT = (
    "ok", "failed", "crashed", "timeout", "cancelled", "corrupt")
STATUSES = (OK, FAILED, CRASHED, TIMEOUT, CANCELLED, CORRUPT)

# One wait slice, in milliseconds: a signal is handled within this long.
# Longer than the C library's -EDEADLK recheck (about 110 ms), so that a
# sliced submit still gets that verdict.
SLICE_MS = 200


class Error(OSError):
    """A forkpool call failed. ``errno`` is the error number; ``call`` the
    C call (with its arguments), ``pool`` the pool name (or None),
    ``reason`` the library's text for the error."""

    def __init__(self, err, message, call=None, pool=None, reason=None):
        super().__init__(err, message)
        self.call = call
        self.pool = pool
        self.reason = reason

    def __str__(self):
        return str(self.strerror)


class Timeout(Error, TimeoutError):
    """A wait, or a submit's wait for room, lasted its timeout
    (errno ETIMEDOUT). The task, if any, is still pending."""


class LibraryError(Error):
    """libforkpool.so could not be loaded, or does not match this module."""


def _errname(err):
    return _errno.errorcode.get(err, "E%d" % err)


# ---- Loading the library -------------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))
_libs = {}                # resolved key -> _Lib
_libs_lock = threading.Lock()


class _Lib:
    """A loaded libforkpool: the CDLL, where it came from, its version."""

    def __init__(self, cdll, path):
        self.cdll = cdll
        self.path = path
        for fname, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(cdll, fname)   # AttributeError: not libforkpool
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, fname, fn)
        self.version = cdll.fp_version().decode()
        self._status = {}
        _check_layout(self)

    def strerror(self, err):
        return self.fp_strerror(-abs(err)).decode("utf-8", "replace")

    def status_name(self, st):
        name = self._status.get(st)
        if name is None:
            name = self.fp_status_name(st).decode()
            if name == "unknown":
                name = "unknown(%d)" % st
            self._status[st] = name
        return name

    def __repr__(self):
        return "<forkpool library %s (%s)>" % (self.path, self.version)


def _result_size_probe(lib):
    """(bytes fp_result_init_sized writes, offset of the -1 it stores): the
    size of fp_result and the offset of exit_code as the library sees them.
    It zeroes the struct (our size of it), stores the size and sets
    exit_code to -1: the written bytes are the size, 0x00 or 0xff, and the
    guard bytes keep their fill."""
    n = ctypes.sizeof(_FpResult) + _GUARD
    buf = (ctypes.c_ubyte * n)(*([_FILL] * n))
    lib.fp_result_init_sized(buf, ctypes.sizeof(_FpResult))
    written = max((i + 1 for i in range(n) if buf[i] != _FILL), default=0)
    ff = [i for i in range(written) if buf[i] == 0xFF]
    return written, (ff[0] if ff else -1)


def _check_layout(lib):
    key = (ctypes.sizeof(ctypes.c_void_p), ctypes.alignment(_u64))
    want = _EXPECTED_SIZES.get(key)
    have = (ctypes.sizeof(_FpResult), ctypes.sizeof(_FpStats))
    where = "%s (forkpool %s)" % (lib.path, lib.version)
    if want is None:
        raise LibraryError(_errno.ENOSYS, "%s: no known fp_result layout "
                           "for this ABI (pointer %d, uint64_t alignment %d)"
                           % (where, key[0], key[1]))
    if have != want:
        raise LibraryError(_errno.EPROTO, "%s: ctypes lays fp_result and "
                           "fp_stats out in %d and %d bytes, this module "
                           "expects %d and %d" % ((where,) + have + want))
    size, exit_off = _result_size_probe(lib)
    if size != have[0] or exit_off != _FpResult.exit_code.offset:
        raise LibraryError(_errno.EPROTO, "%s: its fp_result is %d bytes with "
                           "exit_code at %d; this module mirrors forkpool.h "
                           "0.2.0 (%d bytes, exit_code at %d): update "
                           "_FpResult" % (where, size, exit_off, have[0],
                                          _FpResult.exit_code.offset))


def _load_one(path):
    """CDLL at path, or raise OSError/AttributeError/LibraryError."""
    return _Lib(ctypes.CDLL(path), path)


def _candidates(lib):
    """Yield (where it came from, path or None) in the order of the module
    docstring; a lib argument or $FORKPOOL_LIB is the only candidate.
    find_library (which may run ldconfig) is asked only when needed."""
    if lib is not None:
        yield "the lib argument", os.fspath(lib)
        return
    env = os.environ.get("FORKPOOL_LIB")
    if env:
        yield "$FORKPOOL_LIB", env
        return
    yield "next to the module", os.path.normpath(
        os.path.join(_HERE, os.pardir, "build", "libforkpool.so"))
    yield ('ctypes.util.find_library("forkpool")',
           ctypes.util.find_library("forkpool"))


def load_library(lib=None):
    """Load (once per process and path) and return libforkpool, found as
    the module docstring says. Raises LibraryError naming every place
    tried when none loads or the one found does not match this module."""
    key = (None if lib is None else os.fspath(lib),
           os.environ.get("FORKPOOL_LIB"))
    with _libs_lock:
        if key in _libs:
            return _libs[key]
        tried = []
        layout_err = None
        for source, path in _candidates(lib):
            if path is None:
                tried.append("%s: no library found" % source)
                continue
            if os.sep in path and not os.path.exists(path):
                tried.append("%s: %s: no such file" % (source, path))
                continue
            try:
                loaded = _load_one(path)
            except LibraryError as e:
                layout_err = layout_err or e
                tried.append("%s: %s" % (source, e))
                continue
            except (OSError, AttributeError) as e:
                tried.append("%s: %s: %s" % (source, path, e))
                continue
            _libs[key] = loaded
            return loaded
        if layout_err is not None and len(tried) == 1:
            raise layout_err
        raise LibraryError(_errno.ENOENT,
                           "cannot load libforkpool (build it with make, or "
                           "set FORKPOOL_LIB); tried: " + "; ".join(tried))


# ---- Results -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Result:
    """How one task ended (fp_result).

    status: one of STATUSES. code: the handler's error code (failed), else
    0. signal: the signal that killed the worker, else 0 (signal_name:
    "SIGSEGV", or None). exit_code: the worker's exit status when it exited
    (crashed by exit(N)), else -1. attempts: times the task was started (0
    if never). worker: pid of the worker that ran it last, else 0. run_us:
    run time in microseconds. output: the handler's output (ok, failed), or
    the crash or hang report (crashed, timeout) when one was written.
    root, parent: the task tree (the task's own id and 0 for a root).
    """
    id: int
    status: str
    code: int
    signal: int
    exit_code: int
    attempts: int
    worker: int
    run_us: int
    output: bytes
    root: int
    parent: int

    @property
    def ok(self):
        """True when the handler returned 0."""
        return self.status == OK

    @property
    def signal_name(self):
        """Name of the signal that killed the worker ("SIGSEGV"), or None."""
        if not self.signal:
            return None
        try:
            return _signal.Signals(self.signal).name
        except ValueError:
            return "SIG%d" % self.signal

    def __repr__(self):
        out = self.output if len(self.output) <= 40 else (
            self.output[:40] + b"...")
        extra = ""
        if self.code:
            extra += " code=%d" % self.code
        if self.signal:
            extra += " signal=%s" % self.signal_name
        if self.exit_code >= 0:
            extra += " exit_code=%d" % self.exit_code
        return "<Result id=%d %s%s attempts=%d output=%r (%d bytes)>" % (
            self.id, self.status, extra, self.attempts, out,
            len(self.output))


def _to_result(lib, r):
    n = r.output_len
    output = ctypes.string_at(r.output, n) if n and r.output else b""
    return Result(id=r.id, status=lib.status_name(r.status), code=r.code,
                  signal=r.signal, exit_code=r.exit_code,
                  attempts=r.attempts, worker=r.worker, run_us=r.run_us,
                  output=output, root=r.root, parent=r.parent)


# ---- Argument checks -----------------------------------------------------

def _as_bytes(data):
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError("task data must be bytes, bytearray, memoryview or str, "
                    "not %s" % type(data).__name__)


def _priority(priority):
    if priority in ("normal", FP_PRIO_NORMAL):
        return FP_PRIO_NORMAL
    if priority in ("high", FP_PRIO_HIGH):
        return FP_PRIO_HIGH
    raise ValueError("priority must be 'normal' or 'high', not %r"
                     % (priority,))


def _task_id(tid):
    if isinstance(tid, bool) or not isinstance(tid, int):
        raise TypeError("task id must be an int, not %s" % type(tid).__name__)
    if not 0 <= tid < 1 << 64:
        raise ValueError("task id out of range: %d" % tid)
    return tid


def _deadline(timeout):
    """monotonic deadline for a timeout in seconds; None: none."""
    if timeout is None:
        return None
    timeout = float(timeout)
    if math.isnan(timeout) or timeout < 0:
        raise ValueError("timeout must be None or >= 0 seconds, not %r"
                         % (timeout,))
    if math.isinf(timeout):
        return None
    return time.monotonic() + timeout


def _slice_ms(deadline):
    """Milliseconds for the next C call: at most SLICE_MS, 0 once past the
    deadline (only a timeout of 0 gets there on a first call)."""
    if deadline is None:
        return SLICE_MS
    left = deadline - time.monotonic()
    if left <= 0:
        return 0
    return min(SLICE_MS, max(1, int(math.ceil(left * 1000))))


class _Nothing:
    pass


_NOTHING = _Nothing()


# ---- The pool handle -----------------------------------------------------

class Pool:
    """A producer (or monitor) handle on a named pool (fp_pool_open).

    Use Pool.open(name) (or Pool(name)) as a context manager, or call
    close(). monitor=True opens a read-only view (stats only, no producer
    row): submit then raises Error EPERM. lib: path of libforkpool.so (see
    the module docstring). Raises Error: ENOENT (no such pool),
    ECONNREFUSED (its supervisor died), EACCES, EPROTO (another layout
    version), ESHUTDOWN (stopping), EUSERS (too many producers), EINVAL
    (bad name); LibraryError when the library cannot be loaded.
    """

    def __init__(self, name, monitor=False, lib=None):
        self._handle = None
        self._name = str(name)
        self._monitor = bool(monitor)
        self._lib = load_library(lib)
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._closing = False
        self._pid = os.getpid()
        call = "fp_pool_open(%r%s)" % (self._name,
                                       ", monitor" if monitor else "")
        if "\0" in self._name:
            raise self._error(-_errno.EINVAL, call)
        h = ctypes.c_void_p()
        rc = self._lib.fp_pool_open(
            ctypes.byref(h), self._name.encode("utf-8", "surrogateescape"),
            FP_OPEN_MONITOR if monitor else 0)
        if rc < 0:
            raise self._error(rc, call)
        self._handle = h

    @classmethod
    def open(cls, name, monitor=False, lib=None):
        """Attach to the named pool NAME; see Pool."""
        return cls(name, monitor=monitor, lib=lib)

    # -- properties, lifetime

    @property
    def name(self):
        return self._name

    @property
    def monitor(self):
        return self._monitor

    @property
    def closed(self):
        return self._handle is None

    @property
    def library(self):
        """The loaded library: .path, .version."""
        return self._lib

    def __repr__(self):
        return "<forkpool.Pool %r%s%s>" % (
            self._name, " monitor" if self._monitor else "",
            " closed" if self._handle is None else "")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Detach (fp_pool_free). Waits for calls in progress in other
        threads to end (within one slice: their waits raise Error EBADF).
        Idempotent. In a forked child it only forgets the handle: the
        attachment is the parent's."""
        cond = getattr(self, "_cond", None)
        if cond is None or self._handle is None:
            return  # __init__ failed, or closed already
        if os.getpid() != self._pid:
            # A forked child: the attachment (and maybe the lock, held by a
            # thread that does not exist here) is the parent's.
            self._handle = None
            return
        with cond:
            self._closing = True
            while self._active:
                cond.wait()
            h, self._handle = self._handle, None
        if h is not None:  # None: another thread closed it meanwhile
            self._lib.fp_pool_free(h)

    def __reduce__(self):
        raise TypeError("a forkpool.Pool cannot be pickled: open the pool "
                        "by name in the other process")

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the process exits anyway
            pass

    # -- internals

    def _error(self, rc, call, after=None):
        err = -rc
        reason = self._lib.strerror(err)
        msg = "%s: %s (%s)" % (call, reason, _errname(err))
        if after is not None:
            msg += " after %g s" % after
        cls = Timeout if err == _errno.ETIMEDOUT else Error
        return cls(err, msg, call=call, pool=self._name, reason=reason)

    def _enter(self, call):
        """Count a call in progress and return the handle, or raise."""
        if os.getpid() != self._pid:  # before the lock: see close()
            raise Error(_errno.EBADF, "%s: handle of process %d used in "
                        "process %d (after fork)" % (call, self._pid,
                                                     os.getpid()),
                        call=call, pool=self._name, reason="forked")
        with self._cond:
            if self._handle is None or self._closing:
                raise Error(_errno.EBADF, "%s: pool handle is closed" % call,
                            call=call, pool=self._name, reason="closed")
            self._active += 1
            return self._handle

    def _leave(self):
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def _sliced(self, call, fn, deadline, timeout):
        """Run fn(handle, ms) in slices until it returns something other
        than -ETIMEDOUT/-EINTR, or the deadline passes (Timeout). Returns
        fn's return code (>= 0, or a negative errno other than those)."""
        first = True
        while True:
            ms = _slice_ms(deadline)
            if ms == 0 and not first:
                ms = 1  # the deadline passed since the last check
            first = False
            h = self._enter(call)
            try:
                rc = fn(h, ms)
            finally:
                self._leave()
            if rc == -_errno.EINTR:
                continue
            if rc != -_errno.ETIMEDOUT:
                return rc
            if deadline is not None and time.monotonic() >= deadline:
                raise self._error(rc, call, after=timeout)

    def _submit(self, data, deadline, timeout, prio):
        """Submit bytes with a deadline; returns the id or raises."""
        tid = _u64()
        call = "fp_submit(pool %r)" % self._name
        lib = self._lib

        def attempt(h, ms):
            return lib.fp_submit_prio(h, data, len(data), ms, prio,
                                      ctypes.byref(tid))

        rc = self._sliced(call, attempt, deadline, timeout)
        if rc == -_errno.EAGAIN and timeout != 0 and deadline is not None:
            # A deadline (of map) that had passed: a timeout, not "full".
            raise self._error(-_errno.ETIMEDOUT, call, after=timeout)
        if rc < 0:
            raise self._error(rc, call)
        return tid.value

    def _try_submit(self, data, prio):
        """Submit without waiting: the id, or None when there is no room
        (-EAGAIN, -EDEADLK); raises other errors."""
        tid = _u64()
        call = "fp_submit(pool %r)" % self._name
        h = self._enter(call)
        try:
            rc = self._lib.fp_submit_prio(h, data, len(data), FP_NOWAIT,
                                          prio, ctypes.byref(tid))
        finally:
            self._leave()
        if rc in (-_errno.EAGAIN, -_errno.EDEADLK, -_errno.EINTR):
            return None
        if rc < 0:
            raise self._error(rc, call)
        return tid.value

    def _take(self, call, fn, deadline, timeout):
        """fn(handle, res, ms) in slices into a fresh fp_result; the
        Result. The output buffer is released whatever happens."""
        res = _FpResult()
        lib = self._lib
        lib.fp_result_init_sized(ctypes.byref(res), ctypes.sizeof(res))
        try:
            rc = self._sliced(call, lambda h, ms: fn(h, res, ms), deadline,
                              timeout)
            if rc < 0:
                raise self._error(rc, call)
            return _to_result(lib, res)
        finally:
            lib.fp_result_release(ctypes.byref(res))

    def _wait(self, tid, deadline, timeout):
        lib = self._lib
        return self._take("fp_wait(pool %r, id %d)" % (self._name, tid),
                          lambda h, res, ms: lib.fp_wait(
                              h, tid, ctypes.byref(res), ms),
                          deadline, timeout)

    # -- the API

    def submit(self, data, timeout=None, priority="normal"):
        """Queue one task; returns its id (an int, never 0).

        data: bytes, bytearray, memoryview or str (encoded as UTF-8), at
        most the pool's max_input bytes (else Error EMSGSIZE). timeout:
        seconds to wait for room in the queue (None: as long as it takes;
        0: not at all: Error EAGAIN when full); past it, Timeout.
        priority: "normal" or "high". Also raises Error EDEADLK when every
        slot this handle may use holds its own uncollected results (collect
        first), ESHUTDOWN (the pool is stopping), EPIPE (its supervisor
        died), EPERM (a monitor handle). On error nothing was queued.
        """
        data = _as_bytes(data)
        prio = _priority(priority)
        return self._submit(data, _deadline(timeout), timeout, prio)

    def wait(self, id, timeout=None):
        """Wait for task `id` of this handle to end and return its Result
        (a result is delivered once). Raises Timeout past timeout seconds
        (the task is still pending: wait again, or cancel it), Error
        ENOENT for an id that is not pending on this handle, EPIPE when the
        supervisor died."""
        tid = _task_id(id)
        return self._wait(tid, _deadline(timeout), timeout)

    def collect(self, timeout=None):
        """Return the Result of any finished task of this handle (the
        oldest submitted among those finished). Raises Timeout when none
        ends within timeout seconds, Error ENOENT when none is pending."""
        lib = self._lib
        return self._take("fp_collect(pool %r)" % self._name,
                          lambda h, res, ms: lib.fp_collect(
                              h, ctypes.byref(res), ms),
                          _deadline(timeout), timeout)

    def cancel(self, id):
        """Cancel task `id` (any producer's). Returns True when the cancel
        took: a queued task ended cancelled and never runs, or a running
        one's worker is being killed (it ends cancelled unless it finished
        first); False when the task had finished already. Its result is
        still delivered by wait/collect. Raises Error ENOENT (no such
        task), EPERM (monitor), EPIPE (supervisor died)."""
        tid = _task_id(id)
        call = "fp_cancel(pool %r, id %d)" % (self._name, tid)
        h = self._enter(call)
        try:
            rc = self._lib.fp_cancel(h, tid)
        finally:
            self._leave()
        if rc == 0 or rc == -_errno.EINPROGRESS:
            return True
        if rc == -_errno.EALREADY:
            return False
        raise self._error(rc, call)

    def pending(self):
        """Number of tasks submitted on this handle and not yet collected."""
        h = self._enter("fp_pending(pool %r)" % self._name)
        try:
            return int(self._lib.fp_pending(h))
        finally:
            self._leave()

    def stats(self):
        """The pool's counters and gauges (fp_pool_stats) as a dict keyed
        by the C field names: ints, "state" a str, "duration_le" a list of
        FP_DURATION_BUCKETS cumulative counts."""
        call = "fp_pool_stats(pool %r)" % self._name
        size = ctypes.sizeof(_FpStats)
        buf = (ctypes.c_ubyte * (size + _GUARD))()
        ctypes.memset(buf, _FILL, len(buf))
        h = self._enter(call)
        try:
            rc = self._lib.fp_pool_stats_sized(h, buf, size)
            if rc < 0:
                raise self._error(rc, call)
            st = _FpStats.from_buffer(buf)
            # fp_pool_stats_sized writes all of its struct: a guard byte
            # changed means the library ignored the size we passed, a last
            # field still all fill bytes that it is older than the mirror.
            last = _FpStats._fields_[-1][0]
            if (any(b != _FILL for b in buf[size:]) or
                    getattr(st, last) == int.from_bytes(
                        bytes([_FILL]) * 8, "little")):
                raise Error(_errno.EPROTO, "%s: the library's fp_stats is "
                            "not this module's mirror of forkpool.h 0.2.0 "
                            "(library %s)" % (call, self._lib.version),
                            call=call, pool=self._name)
            out = {}
            for fname, _ in _FpStats._fields_:
                v = getattr(st, fname)
                if fname == "state":
                    v = self._lib.fp_pool_state_name(v)
                    v = v.decode("utf-8", "replace") if v else ""
                elif fname == "duration_le":
                    v = list(v)
                out[fname] = v
            return out
        finally:
            self._leave()

    def imap(self, iterable, timeout=None, priority="normal", window=None):
        """Like map(), as a generator: yields each Result in input order as
        soon as it and those before it are done. Leaving it early (break,
        close, an exception) cancels the tasks it still has in flight and
        discards their results."""
        prio = _priority(priority)
        if window is not None and (isinstance(window, bool) or
                                   not isinstance(window, int) or
                                   window < 1):
            raise ValueError("window must be None or an int >= 1")
        return self._imap(iter(iterable), timeout, prio, window)

    def _imap(self, it, timeout, prio, window):
        deadline = _deadline(timeout)
        inflight = collections.deque()  # ids, in input order
        held = _NOTHING                 # next input, not submitted yet
        exhausted = False
        try:
            while True:
                while not exhausted and (window is None or
                                         len(inflight) < window):
                    if held is _NOTHING:
                        try:
                            held = _as_bytes(next(it))
                        except StopIteration:
                            exhausted = True
                            break
                    if inflight:
                        tid = self._try_submit(held, prio)
                        if tid is None:
                            break  # no room: collect our oldest first
                    else:
                        tid = self._submit(held, deadline, timeout, prio)
                    inflight.append(tid)
                    held = _NOTHING
                if not inflight:
                    return
                res = self._wait(inflight[0], deadline, timeout)
                inflight.popleft()
                yield res
        finally:
            if inflight:
                self._discard(inflight)

    def _discard(self, ids):
        """Cancel tasks and drop their results, within about 2 s; errors
        (a closed handle included) are ignored."""
        for tid in ids:
            try:
                self.cancel(tid)
            except Error:
                pass
        end = time.monotonic() + 2.0
        for tid in ids:
            try:
                self._wait(tid, end, 2.0)
            except Error:
                pass

    def map(self, iterable, timeout=None, priority="normal", window=None):
        """Run one task per item of iterable (each as submit() takes it)
        and return their Results in input order.

        At most `window` tasks are in flight at once (None: as many as the
        pool gives this handle: it submits until the queue has no room for
        it, then waits for its oldest task), so an iterable of any length
        works. timeout bounds the whole call (seconds, None: no limit):
        Timeout past it. On any exception (Timeout, Error,
        KeyboardInterrupt) the tasks still in flight are cancelled and
        their results discarded.
        """
        return list(self.imap(iterable, timeout=timeout, priority=priority,
                              window=window))
