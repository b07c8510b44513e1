#!/bin/sh
# Tests of the coprocess handlers in examples/coproc (forkpool coproc
# protocol, version 1), driven through the protocol directly: no forkpool
# involved, so the handlers are known good before forkpool uses them.
#
# Usage: sh tests/coproc_proto.sh [BUILD_DIR]   (from the repository root;
# default BUILD_DIR is build). Needs BUILD_DIR/examples/coproc-handler;
# the Python handler is tested when python3 is installed ("# SKIP"
# otherwise).
#
# The driver is this shell script itself: each handler runs with its stdin
# and stdout on two FIFOs; requests are written with printf and cat,
# replies read with `read -r` (the shell reads a pipe one byte at a time, so
# it takes the header line and nothing more) and `head -c M` (GNU head
# never reads past M bytes), and compared byte for byte with cmp.
#
# Prints one line per test, "ok - NAME" or "not ok - NAME: WHY", lines
# starting with "#" for information, then "N passed, M failed". Exit
# status 0 only when nothing failed. Every handler runs under `timeout`, so
# a hung handler fails its tests instead of hanging the script.

set -u

B=${1:-build}
TMO=${COPROC_PROTO_TIMEOUT:-30}
HTMO=""

pass=0
fail=0
why=""

ok() { pass=$((pass + 1)); printf 'ok - %s\n' "$1"; }
nok() { fail=$((fail + 1)); printf 'not ok - %s: %s\n' "$1" "$2"; }
info() { echo "# $*"; }
# check NAME: ok when the last test step left $why empty.
check() { if [ -z "$why" ]; then ok "$1"; else nok "$1" "$why"; fi; why=""; }

LC_ALL=C # byte semantics for tr, wc and ${#var}
export LC_ALL

T=$(mktemp -d "${TMPDIR:-/tmp}/coproc-proto.XXXXXX") || exit 1
pid=""
# stop_handler: end a handler still running (by its pid) and reap it.
stop_handler() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
  fi
}
trap 'stop_handler; rm -rf "$T"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# A handler that dies turns our writes into EPIPE errors, not a SIGPIPE
# that would kill this script.
trap '' PIPE
# abort must not leave core files around. (-c is not POSIX, but dash,
# bash and busybox sh have it; where it fails, nothing worse than a core.)
# shellcheck disable=SC3045
ulimit -c 0 2>/dev/null

# The handlers' own temporary files (handler.sh) go here, so that the end
# of the script can check that they cleaned up.
HT=$T/handler-tmp
mkdir "$HT" || exit 1

# --- the driver ------------------------------------------------------------

# start CMD...: run a handler with stdin on $T/in and stdout on $T/out, its
# stderr in $T/err, for at most $HTMO seconds (default $TMO); sets $pid to
# the pid of `timeout`, whose exit status is the handler's (128+N when a
# signal N killed it). Opens fd 4 to write requests and fd 5 to read
# replies.
start() {
  rm -f "$T/in" "$T/out" "$T/err"
  mkfifo "$T/in" "$T/out" || exit 1
  TMPDIR=$HT timeout "${HTMO:-$TMO}" "$@" <"$T/in" >"$T/out" 2>"$T/err" &
  pid=$!
  # Opening a FIFO blocks until the other end is open too: the handler's
  # shell opens in, then out, in this order, as we do.
  exec 4>"$T/in" 5<"$T/out"
}

# finish: close our ends (EOF on the handler's stdin), wait for the handler
# and set $status to its exit status and $rest to the number of bytes it
# wrote after the last reply we read. When $pid is empty (the caller waited
# already), $status stays as it is.
finish() {
  exec 4>&-
  rest=$(timeout "$TMO" cat <&5 | wc -c)
  rest=$((rest + 0))
  exec 5<&-
  if [ -n "$pid" ]; then
    wait "$pid"
    status=$?
    pid=""
  fi
}

# send FILE: send FILE's bytes as one request.
send() {
  _n=$(wc -c <"$1")
  # A handler that died already makes these fail (EPIPE): say so once, in
  # the test's line, not as a shell error.
  { printf '%d\n' "$_n" && cat "$1"; } >&4 2>/dev/null || why="${why:-cannot write the request}"
}

# send_str STRING: send STRING as one request.
send_str() {
  printf '%s' "$1" >"$T/req" && send "$T/req"
}

# recv: read one reply: sets $rstatus, and the output goes to $T/got. Sets
# $why (and $rstatus to "") when the reply breaks the protocol.
recv() {
  rstatus=""
  : >"$T/got"
  if ! IFS= read -r _hdr <&5; then
    why="${why:-no reply header (handler gone? stderr: $(head -c 200 "$T/err"))}"
    return
  fi
  if [ ${#_hdr} -gt 32 ]; then why="${why:-header longer than 32 bytes: $_hdr}"; return; fi
  _s=${_hdr%% *}
  _m=${_hdr#* }
  case $_s in 0 | [1-9] | [1-9][0-9] | [1-9][0-9][0-9]) ;; *) _s=bad ;; esac
  case $_m in 0) ;; '' | 0* | *[!0-9]*) _s=bad ;; esac
  if [ "$_s" = bad ] || [ "$_s" -gt 255 ] || [ "$_hdr" != "$_s $_m" ]; then
    why="${why:-malformed reply header \"$(printf '%s' "$_hdr" | head -c 60 | tr -c '[:print:]' '?')\"}"
    return
  fi
  timeout "$TMO" head -c "$_m" <&5 >"$T/got"
  _got=$(wc -c <"$T/got")
  if [ "$_got" -ne "$_m" ]; then
    why="${why:-short reply: $_got of $_m bytes}"
    return
  fi
  rstatus=$_s
}

# expect STATUS FILE: the last reply had status STATUS and FILE's bytes.
expect() {
  [ -z "$why" ] || return
  if [ "$rstatus" != "$1" ]; then
    why="status $rstatus, expected $1"
  elif ! cmp -s "$T/got" "$2"; then
    why="output differs from expected ($(wc -c <"$T/got") bytes, expected $(wc -c <"$2")): $(head -c 60 "$T/got" | od -An -c | head -n 2 | tr -s ' \n' ' ')"
  fi
}

# expect_str STATUS STRING: the last reply had status STATUS and STRING.
expect_str() {
  printf '%s' "$2" >"$T/exp" && expect "$1" "$T/exp"
}

# roundtrip_str STRING STATUS EXPECTED: one request and its reply.
roundtrip_str() {
  send_str "$1"
  recv
  expect_str "$2" "$3"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# --- test data ---------------------------------------------------------------

# Every byte value once: NUL, 0xff, newlines, a-z and all.
i=0
while [ $i -lt 256 ]; do
  # shellcheck disable=SC2059
  printf "\\$(printf '%03o' $i)"
  i=$((i + 1))
done >"$T/bytes256"
# Exactly 100 KiB: the 256 byte values, doubled 9 times, cut to 102400.
cp "$T/bytes256" "$T/big.in"
i=0
while [ $i -lt 9 ]; do
  cat "$T/big.in" "$T/big.in" >"$T/big.tmp" && mv "$T/big.tmp" "$T/big.in"
  i=$((i + 1))
done
head -c 102400 "$T/big.in" >"$T/100k.in" && rm -f "$T/big.in"
# shellcheck disable=SC2018,SC2019
tr 'a-z' 'A-Z' <"$T/100k.in" >"$T/100k.exp"
# A short binary task: NUL, 0xff, newlines, lower and upper case.
printf '\000ab\377\nZz\000\n' >"$T/bin.in"
printf '\000AB\377\nZZ\000\n' >"$T/bin.exp"
# "big 200000": 200000 bytes of x.
head -c 200000 /dev/zero | tr '\000' x >"$T/200k.exp"

if [ "$(wc -c <"$T/bytes256")" -ne 256 ] || [ "$(wc -c <"$T/100k.in")" -ne 102400 ]; then
  nok "setup" "could not build the binary test data"
  echo "$pass passed, $fail failed"
  exit 1
fi

# --- the tests -----------------------------------------------------------------

# test_handler NAME CMD...: all the tests against one handler.
test_handler() {
  name=$1
  shift

  # One running coprocess takes many requests in a row.
  start "$@"
  roundtrip_str "hello, world" 0 "HELLO, WORLD"
  check "$name: ok task echoed upper-cased"
  roundtrip_str "" 0 ""
  check "$name: empty task, empty output"
  send "$T/bin.in"
  recv
  expect 0 "$T/bin.exp"
  check "$name: binary task with NUL, 0xff and newlines"
  send "$T/100k.in"
  recv
  expect 0 "$T/100k.exp"
  check "$name: 100 KiB task of all byte values"
  send_str "big 200000"
  recv
  expect 0 "$T/200k.exp"
  check "$name: big 200000"
  roundtrip_str "fail 7" 7 "failed 7"
  check "$name: fail 7"
  roundtrip_str "fail 255" 255 "failed 255"
  check "$name: fail 255"
  roundtrip_str "stderr hi" 0 "logged"
  # Nothing else was written to stderr so far: it ends in exactly "hi\n".
  printf 'hi\n' >"$T/exp"
  [ -n "$why" ] || tail -c 3 "$T/err" | cmp -s - "$T/exp" ||
    why="stderr does not end in 'hi\\n': $(tail -c 20 "$T/err" | od -An -c | tr -s ' \n' ' ')"
  check "$name: stderr hi"
  t0=$(now_ms)
  roundtrip_str "sleep 0.2" 0 "slept 0.2"
  t1=$(now_ms)
  [ -n "$why" ] || [ $((t1 - t0)) -ge 190 ] || why="replied after $((t1 - t0)) ms"
  check "$name: sleep 0.2"
  send_str pid
  recv
  p1=$(cat "$T/got")
  send_str pid
  recv
  p2=$(cat "$T/got")
  if [ -z "$why" ]; then
    case $p1 in '' | *[!0-9]*) why="pid reply '$p1' is not a number" ;; esac
  fi
  [ -n "$why" ] || [ "$p1" = "$p2" ] || why="pid changed: $p1 then $p2"
  # The handler is the child of our `timeout`, so field 4 of its stat,
  # read after the ")" that ends the command name, is $pid.
  if [ -z "$why" ] && [ -r "/proc/$p1/stat" ]; then
    ppid=$(sed 's/.*) //' "/proc/$p1/stat" | cut -d' ' -f2)
    [ "$ppid" = "$pid" ] || why="pid $p1 is not the handler (its parent is $ppid, not $pid)"
  fi
  check "$name: pid twice gives the same pid"
  send_str garbage
  timeout "$TMO" head -c 12 <&5 >"$T/got"
  printf 'hello world\n' >"$T/exp"
  cmp -s "$T/got" "$T/exp" || why="wrote '$(od -An -c "$T/got" | tr -s ' \n' ' ')'"
  # The process carries on, and wrote nothing more than those 12 bytes.
  [ -n "$why" ] || roundtrip_str "after" 0 "AFTER"
  check "$name: garbage writes exactly 'hello world\\n' and carries on"
  # Near misses of commands are ordinary tasks: arguments out of range or
  # not in the number syntax, and commands with a byte more, a NUL inside
  # or a trailing newline (which a shell handler must not lose). Each item
  # is a printf format.
  for f in 'fail 0' 'fail 256' 'exit 300' 'exit 04' 'sleep 1.' \
    'sleep 0.0000000001' 'big 01' 'big -1' 'stderr' 'garbage ' 'abortx' \
    'pid\n' 'p\000id' 'exit 4\n' 'abort\000'; do
    # shellcheck disable=SC2059
    printf "$f" >"$T/near.in"
    # shellcheck disable=SC2018,SC2019
    tr 'a-z' 'A-Z' <"$T/near.in" >"$T/near.exp"
    send "$T/near.in"
    recv
    expect 0 "$T/near.exp"
    [ -z "$why" ] || { why="'$f': $why"; break; }
  done
  check "$name: near misses of commands are echoed upper-cased"
  finish
  [ "$status" -eq 0 ] || why="exit status $status after EOF, expected 0"
  [ -n "$why" ] || [ "$rest" -eq 0 ] || why="$rest stray bytes on stdout"
  check "$name: EOF on stdin, exit 0"

  start "$@"
  roundtrip_str "first" 0 "FIRST"
  send_str "exit 4"
  finish
  [ "$status" -eq 4 ] || why="${why:-exit status $status, expected 4}"
  [ -n "$why" ] || [ "$rest" -eq 0 ] || why="$rest bytes of reply to exit 4"
  check "$name: exit 4 exits 4 without a reply"

  start "$@"
  send_str abort
  finish
  [ "$status" -eq 134 ] || why="exit status $status, expected 134 (SIGABRT)"
  [ -n "$why" ] || [ "$rest" -eq 0 ] || why="$rest bytes of reply to abort"
  check "$name: abort dies of SIGABRT"

  # Headers forkpool never sends: not a number, empty, a leading zero, a
  # sign, a trailing blank, over 32 bytes, over 1 GiB. The handler must
  # exit on the header alone, with its stdin still open (so a handler that
  # takes "01" for 1 and waits for the task fails: a shorter timeout ends
  # it).
  HTMO=5
  for h in x1 "" 01 +1 "1 " 123456789012345678901234567890123 1073741825; do
    start "$@"
    printf '%s\n' "$h" >&4
    wait "$pid"
    status=$?
    pid=""
    finish
    [ "$status" -eq 2 ] || why="${why:-header \"$h\": exit status $status, expected 2}"
    [ -n "$why" ] || [ "$rest" -eq 0 ] || why="header \"$h\": $rest bytes of reply"
  done
  HTMO=""
  check "$name: bad request headers exit 2"

  start "$@"
  printf '10\nabc' >&4
  finish
  [ "$status" -eq 2 ] || why="exit status $status, expected 2"
  check "$name: stream ending inside a task exits 2"

  # Nothing was left in the handlers' temporary directory.
  left=$(ls -A "$HT")
  [ -z "$left" ] || why="left behind in TMPDIR: $left"
  rm -rf "${HT:?}"/*
  check "$name: no temporary files left"
}

C_HANDLER=$B/examples/coproc-handler
if [ -x "$C_HANDLER" ]; then
  test_handler c "$C_HANDLER"
else
  nok "c: setup" "need $C_HANDLER (run make first)"
fi
test_handler sh sh examples/coproc/handler.sh
if command -v python3 >/dev/null 2>&1; then
  # Run as the executable users will run, through its #! line.
  test_handler python examples/coproc/handler.py
else
  info "SKIP python: no python3"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
