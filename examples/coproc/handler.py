#!/usr/bin/env python3
"""A forkpool coprocess handler in Python (standard library only).

Use:  forkpool run --coproc examples/coproc/handler.py ...
      forkpool serve --coproc python3 examples/coproc/handler.py ...

Each forkpool worker starts this program once and sends it tasks one at a
time over its stdin; the program answers each on its stdout. Copy this
file and replace handle() with your own code: everything above handle() is
the protocol and can stay as it is.

THE PROTOCOL (forkpool coproc protocol, version 1)

  Request, forkpool -> us, on stdin:
      N "\n" then exactly N bytes (the task; any bytes at all)
  Reply, us -> forkpool, on stdout:
      S " " M "\n" then exactly M bytes (the output)
  N, S and M are ASCII decimal. S = 0 means the task is ok; S in 1..255
  means it failed with code S (the output is then, say, an error message).
  forkpool sends the next request only after it has read the whole reply.
  EOF on stdin (forkpool stopped or recycled the worker): exit 0.
  stderr goes to forkpool's log. stdout carries replies and nothing else:
  a stray print() would corrupt the stream, which is why main() moves the
  real stdout to a private file descriptor and points fd 1 and sys.stdout
  at stderr before any task code runs.

  Anything malformed (a header line over 32 bytes, a non-number, a status
  over 255, a short reply) makes forkpool fail the task and restart us.
  The other way round, a malformed request (forkpool never sends one) or a
  task over 1 GiB makes this program exit 2 without a reply.

THE DEMO TASKS handle() understands (what tests/coproc_proto.sh checks):
  abort        os.abort(): the process dies of SIGABRT
  exit N       sys.exit(N), N in 0..255, without replying
  fail N       reply status N (1..255), output "failed N"
  sleep S      sleep S seconds (e.g. 2 or 0.2), reply ok "slept S"
  garbage      write the malformed reply "hello world\\n" and carry on
  big N        reply ok, N bytes of "x" (N at most 9 digits)
  stderr TEXT  write TEXT and a newline to stderr, reply ok "logged"
  pid          reply ok with our pid in decimal
  anything else (empty and binary input too): reply ok with the input,
  bytes a-z made A-Z, every other byte unchanged.
Numbers are ASCII decimal without sign or leading zeros ("0" itself is
fine); a command whose argument is not such a number in range is "anything
else" (so "fail 0" replies ok "FAIL 0").
"""

import os
import re
import sys
import time

# A header line is at most this many bytes, not counting its "\n".
MAX_HEADER = 32

# Largest task accepted (1 GiB): read(n) allocates n bytes up front, so a
# length beyond what we would ever be sent is refused, not tried.
MAX_TASK = 1 << 30

# Exit status for a request that breaks the protocol (forkpool never sends
# one; this is for people typing at the program by hand).
EXIT_BAD_REQUEST = 2


# --- the protocol ---------------------------------------------------------

class BadRequest(Exception):
    """The request on stdin does not follow the protocol."""


def read_request(inp):
    """Read one request from the binary, buffered stream inp.

    Returns the task as bytes, or None at EOF before a request (the normal
    way for forkpool to tell us to stop). Raises BadRequest on a malformed
    header or when the stream ends inside a request.

    All reads go through the same buffered reader: readline() may fetch
    more than one line from the pipe into the reader's buffer, and read(n)
    then takes the task from that buffer first, so no byte is lost or read
    twice. (Mixing inp with os.read(0, ...) would lose buffered bytes.)
    """
    # One byte more than the limit, to tell "too long" from "just fits".
    line = inp.readline(MAX_HEADER + 2)
    if not line:
        return None
    if not line.endswith(b"\n") or len(line) > MAX_HEADER + 1:
        raise BadRequest("header line too long or cut short: %r" % line)
    digits = line[:-1]
    if not re.fullmatch(rb"0|[1-9][0-9]*", digits):
        raise BadRequest("task length is not a decimal number: %r" % digits)
    n = int(digits)
    if n > MAX_TASK:
        raise BadRequest("task length %d is too large" % n)
    # BufferedReader.read(n) returns fewer than n bytes only at EOF.
    data = inp.read(n)
    if len(data) != n:
        raise BadRequest("stream ended %d bytes into a %d-byte task"
                         % (len(data), n))
    return data


def write_all(fd, data):
    """Write all of data to fd. os.write may write less than asked (a pipe
    can take part of a large buffer) and Python retries EINTR itself
    (PEP 475), so a loop over the rest is all it takes."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_reply(fd, status, output):
    """Send one reply: status 0 (ok) or 1..255 (failed), then the output.

    The header and the output go out in a single buffer so that forkpool
    never sees a header without its bytes for longer than it must."""
    if not 0 <= status <= 255:
        raise ValueError("status %d is not in 0..255" % status)
    write_all(fd, b"%d %d\n" % (status, len(output)) + output)


# --- the task: replace this with your own code ----------------------------

NUMBER = rb"(0|[1-9][0-9]{0,8})"  # no sign, no leading zeros, 9 digits max
SECONDS = NUMBER + rb"(\.[0-9]{1,9})?"


def handle(data: bytes):
    """Run one task. Returns (status, output): status 0 for ok or 1..255
    for failed, output as bytes. An exception becomes status 1 with the
    traceback as output (see main()); sys.exit() really exits. The demo
    "garbage" task returns None, which sends no reply: your code should
    always return a (status, output) pair."""
    m = re.fullmatch(rb"exit " + NUMBER, data)
    if m and int(m.group(1)) <= 255:
        sys.exit(int(m.group(1)))
    m = re.fullmatch(rb"fail " + NUMBER, data)
    if m and 1 <= int(m.group(1)) <= 255:
        return int(m.group(1)), b"failed " + m.group(1)
    m = re.fullmatch(rb"sleep (" + SECONDS + rb")", data)
    if m:
        time.sleep(float(m.group(1)))
        return 0, b"slept " + m.group(1)
    m = re.fullmatch(rb"big " + NUMBER, data)
    if m:
        return 0, b"x" * int(m.group(1))
    if data == b"abort":
        os.abort()
    if data == b"garbage":
        # Not a reply: forkpool must see it as malformed. Written straight
        # to the reply fd on purpose, which real task code must never do.
        write_all(REPLY_FD, b"hello world\n")
        return None
    if data.startswith(b"stderr "):
        sys.stderr.buffer.write(data[len(b"stderr "):] + b"\n")
        sys.stderr.flush()
        return 0, b"logged"
    if data == b"pid":
        return 0, b"%d" % os.getpid()
    # bytes.upper() changes ASCII a-z only and leaves every other byte.
    return 0, data.upper()


# --- the loop -------------------------------------------------------------

REPLY_FD = -1


def main():
    global REPLY_FD
    # Keep the real stdout for replies on a private descriptor (os.dup
    # makes it non-inheritable, so programs the task runs do not get it),
    # then point fd 1 and sys.stdout at stderr: from here on print() and
    # child processes writing to "stdout" end up in the log, not in the
    # reply stream.
    REPLY_FD = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    inp = sys.stdin.buffer
    while True:
        try:
            data = read_request(inp)
        except BadRequest as e:
            print("handler.py: bad request: %s" % e, file=sys.stderr)
            return EXIT_BAD_REQUEST
        if data is None:
            return 0
        try:
            result = handle(data)
        except Exception:  # not SystemExit: sys.exit() in a task exits
            import traceback
            result = (1, traceback.format_exc().encode("utf-8", "replace"))
        if result is not None:  # None: handle() answered itself (garbage)
            write_reply(REPLY_FD, *result)


if __name__ == "__main__":
    sys.exit(main())
