#!/bin/sh
# Tests of the forkpool command-line tool, driven the way a user's shell
# script would drive it.
#
# Usage: sh tests/cli.sh [BUILD_DIR]   (from the repository root; default
# BUILD_DIR is build). Needs BUILD_DIR/bin/forkpool and the plugins
# BUILD_DIR/examples/crashy.so and hostile.so. python3, when present, checks that every
# --json line is valid JSON in valid UTF-8.
#
# Prints one line per test, "ok - NAME" or "not ok - NAME: WHY", lines
# starting with "#" for information, then "N passed, M failed". Exit
# status 0 only when nothing failed. Every forkpool run is wrapped in
# `timeout 120`, so a bug fails a test instead of hanging the script.
#
# FORKPOOL_CLI_BULK (default 100000) sets the size of the bulk test.
# The progress line is tested in a real terminal with tmux (installed with
# apt-get when missing and running as root; otherwise "# SKIP").

set -u

B=${1:-build}
FP=$B/bin/forkpool
CRASHY=$B/examples/crashy.so
HOSTILE=$B/examples/hostile.so
BULK=${FORKPOOL_CLI_BULK:-100000}
TMO="timeout 120"
TAB=$(printf '\t')

pass=0
fail=0
why=""

ok() { pass=$((pass + 1)); echo "ok - $1"; }
nok() { fail=$((fail + 1)); echo "not ok - $1: $2"; }
info() { echo "# $*"; }
# check NAME: ok when the last test step left $why empty.
check() { if [ -z "$why" ]; then ok "$1"; else nok "$1" "$why"; fi; why=""; }
have() { command -v "$1" >/dev/null 2>&1; }
now() { date +%s.%N; }

if [ ! -x "$FP" ] || [ ! -f "$CRASHY" ] || [ ! -f "$HOSTILE" ]; then
  nok "setup" "need $FP, $CRASHY and $HOSTILE (run make first)"
  echo "$pass passed, $fail failed"
  exit 1
fi
case $FP in /*) FPABS=$FP ;; *) FPABS=$(pwd)/$FP ;; esac

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-cli.XXXXXX") || exit 1
# tmux, for the progress line, runs a server of our own on its own socket;
# tm_stop ends it (a no-op when none runs).
TMUX_SOCK="forkpool-cli-$$"
tm() { env -u TMUX tmux -L "$TMUX_SOCK" -f "$T/tmux.conf" "$@"; }
tm_stop() { have tmux && tm kill-server >/dev/null 2>&1; }
trap 'tm_stop; rm -rf "$T"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every process this script starts inherits this variable, workers and
# supervisors of forkpool included, so one that outlives its test can be
# found at the end even after it was reparented away from this shell.
FORKPOOL_CLI_TEST_TAG="forkpool-cli-test-$$-$(date +%s%N)"
export FORKPOOL_CLI_TEST_TAG
# shm_list FILE: the names in /dev/shm, sorted. (Names are compared as
# lines only, so ls is good enough here.)
# shellcheck disable=SC2012
shm_list() { ls -A /dev/shm 2>/dev/null | sort >"$1"; }
shm_list "$T/shm.before"

# expect_lines FILE PATTERN...: FILE has exactly one line per PATTERN, each
# matching its shell glob pattern. Sets $why on mismatch.
expect_lines() {
  _f=$1
  shift
  _n=0
  exec 3<"$_f"
  while IFS= read -r _line <&3; do
    _n=$((_n + 1))
    if [ $# -eq 0 ]; then
      why="unexpected line $_n: '$_line'"
      exec 3<&-
      return 1
    fi
    # shellcheck disable=SC2254 # the pattern is a glob on purpose
    case $_line in
      $1) ;;
      *) why="line $_n is '$_line', want '$1'"; exec 3<&-; return 1 ;;
    esac
    shift
  done
  exec 3<&-
  if [ $# -gt 0 ]; then
    why="only $_n lines; missing one like '$1'"
    return 1
  fi
  return 0
}

# tagged: pids of live processes (other than this shell) that carry our
# tag. grep runs without the tag and writes to a file, so neither it nor a
# pipeline stage finds itself.
tagged() {
  env -u FORKPOOL_CLI_TEST_TAG grep -laF "$FORKPOOL_CLI_TEST_TAG" \
    /proc/[0-9]*/environ >"$T/tagged" 2>/dev/null
  sed 's,^/proc/,,; s,/environ$,,' "$T/tagged" | grep -vx "$$" | tr '\n' ' '
}

# expect_rc GOT WANT: sets $why unless they are equal.
expect_rc() {
  [ "$1" = "$2" ] || why="${why:+$why; }exit status $1, want $2"
}

# valid_json FILE: with python3, every line of FILE is one JSON object, in
# strict UTF-8, whose keys are known and whose seq counts from 0.
valid_json() {
  have python3 || return 0
  python3 - "$1" <<'EOF' >"$T/json.err" 2>&1 || why="${why:+$why; }$(head -n 1 "$T/json.err")"
import json, sys
known = {"seq", "id", "status", "output", "output_base64", "signal", "exit", "code",
         "error", "backtrace", "attempts", "worker", "ms"}
with open(sys.argv[1], "rb") as f:
    for n, raw in enumerate(f):
        if not raw.endswith(b"\n"):
            sys.exit("line %d has no newline" % n)
        try:
            o = json.loads(raw.decode("utf-8", "strict"))
        except Exception as e:
            sys.exit("line %d is not valid JSON: %s: %r" % (n, e, raw[:80]))
        if not isinstance(o, dict) or set(o) - known:
            sys.exit("line %d: unexpected keys: %r" % (n, o))
        if o.get("seq") != n:
            sys.exit("line %d: seq %r" % (n, o.get("seq")))
        for k in ("attempts", "worker"):
            if not isinstance(o.get(k), int):
                sys.exit("line %d: %s is not an integer" % (n, k))
        if not isinstance(o.get("ms"), (int, float)):
            sys.exit("line %d: ms is not a number" % n)
        bt = o.get("backtrace")
        if bt is not None and (o["status"] not in ("crashed", "timeout")
                               or "\n#0 " not in bt):
            sys.exit("line %d: backtrace %r" % (n, bt[:80]))
EOF
}

# mix: one task of each kind of outcome.
mix() { printf 'hello\nsegv\nabort\nhang\nexit 3\nfail 7\nworld\n'; }

# --- 1. mixed outcomes, JSON -------------------------------------------------
mix | $TMO "$FP" run --handler "$CRASHY" --workers 2 --timeout 500 \
  --json >"$T/mix.json" 2>"$T/mix.err"
rc=$?
expect_lines "$T/mix.json" \
  '{"seq":0,"status":"ok","output":"HELLO",*"attempts":1,"worker":*,"ms":*}' \
  '{"seq":1,"status":"crashed","signal":"SIGSEGV",*}' \
  '{"seq":2,"status":"crashed","signal":"SIGABRT",*}' \
  '{"seq":3,"status":"timeout",*}' \
  '{"seq":4,"status":"crashed","exit":3,*}' \
  '{"seq":5,"status":"failed",*"code":7,*}' \
  '{"seq":6,"status":"ok","output":"WORLD",*}'
valid_json "$T/mix.json"
expect_rc $rc 1
check "json: mixed outcomes in input order"

# --- 2. the same, plain ------------------------------------------------------
mix | $TMO "$FP" run --handler "$CRASHY" --workers 2 --timeout 500 \
  >"$T/mix.txt" 2>"$T/mix.err"
rc=$?
expect_lines "$T/mix.txt" "ok${TAB}HELLO" "crashed${TAB}SIGSEGV" \
  "crashed${TAB}SIGABRT" "timeout${TAB}SIGKILL" "crashed${TAB}exit=3" \
  "failed${TAB}code=7" "ok${TAB}WORLD"
expect_rc $rc 1
check "plain: mixed outcomes in input order"

# --- 3. bulk throughput ------------------------------------------------------
seq "$BULK" | sed 's/^/t/' >"$T/bulk.in"
sed "s/^t/ok${TAB}T/" "$T/bulk.in" >"$T/bulk.want"
t0=$(now)
$TMO "$FP" run --handler "$CRASHY" --workers 2 <"$T/bulk.in" \
  >"$T/bulk.out" 2>"$T/bulk.err"
rc=$?
t1=$(now)
cmp -s "$T/bulk.out" "$T/bulk.want" ||
  why="output differs from expected ($(wc -l <"$T/bulk.out") lines; $(cmp "$T/bulk.out" "$T/bulk.want" 2>&1 | head -n 1))"
expect_rc $rc 0
info "$BULK tasks, 2 workers: $(awk -v a="$t0" -v b="$t1" -v n="$BULK" \
  'BEGIN { d = b - a; printf "%.2f s, %.0f tasks/s", d, (d > 0 ? n / d : 0) }')"
check "bulk: $BULK tasks all ok, in order"

# --- 4. bulk with crashes ----------------------------------------------------
awk 'BEGIN { for (i = 1; i <= 10000; i++) print (i % 10 ? "t" i : "segv") }' \
  >"$T/crash.in"
sed -e "s/^t/ok${TAB}T/" -e "s/^segv\$/crashed${TAB}SIGSEGV/" "$T/crash.in" \
  >"$T/crash.want"
t0=$(now)
$TMO "$FP" run --handler "$CRASHY" --workers 2 <"$T/crash.in" \
  >"$T/crash.out" 2>"$T/crash.err"
rc=$?
t1=$(now)
n_segv=$(grep -c "^crashed${TAB}SIGSEGV\$" "$T/crash.out")
n_ok=$(grep -c "^ok${TAB}" "$T/crash.out")
[ "$n_segv" = 1000 ] && [ "$n_ok" = 9000 ] ||
  why="$n_segv crashed SIGSEGV and $n_ok ok, want 1000 and 9000"
[ -n "$why" ] || cmp -s "$T/crash.out" "$T/crash.want" ||
  why="results out of order: $(cmp "$T/crash.out" "$T/crash.want" 2>&1 | head -n 1)"
expect_rc $rc 1
info "10000 tasks with 1000 crashes: $(awk -v a="$t0" -v b="$t1" \
  'BEGIN { printf "%.2f s", b - a }')"
check "crashes: every tenth task segfaults, the rest run"

# --- 4b. bench ----------------------------------------------------------------
# Counts only, never times: every task ends ok or crashed as asked, each
# crash costs one restart, and --idle reports a share of CPU.
bjs=$($TMO "$FP" bench --workers 2 --tasks 2000 --inflight 64 --crash-every 100 \
  --idle 200 --json 2>"$T/bench.err")
rc=$?
expect_rc $rc 0
bnum() { printf '%s\n' "$bjs" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
[ "$(bnum tasks)" = 2000 ] && [ "$(bnum ok)" = 1980 ] &&
  [ "$(bnum crashes)" = 20 ] && [ "$(bnum other)" = 0 ] ||
  why="${why:+$why; }want 2000 tasks, 1980 ok, 20 crashes: $bjs"
[ "$(bnum restarts)" = 20 ] ||
  why="${why:+$why; }restarts $(bnum restarts), want 20"
for k in tasks_per_sec p50_us p99_us p999_us idle_cpu_pct in_bytes_per_sec \
  out_bytes_per_sec; do
  [ -n "$(bnum $k)" ] || why="${why:+$why; }no $k in: $bjs"
done
# Output bytes count the ok results only: 1980 of the 2000 tasks' inputs
# (both rates are printed rounded to a byte: |d| <= 0.5 * (2000 + 1980)).
awk -v i="$(bnum in_bytes_per_sec)" -v o="$(bnum out_bytes_per_sec)" 'BEGIN {
  d = o * 2000 - i * 1980; exit !(i > 0 && d * d <= 2000 * 2000) }' ||
  why="${why:+$why; }out bytes/s is not 1980/2000 of in bytes/s: $bjs"
check "bench: crash every 100th of 2000, one restart per crash, idle CPU reported"

# Large tasks: --payload up to 1 MiB, a pool sized from it, every byte back.
bjs=$($TMO "$FP" bench --workers 2 --tasks 40 --inflight 4 --queue 8 \
  --payload 1048576 --json 2>"$T/bench.err")
rc=$?
expect_rc $rc 0
[ "$(bnum tasks)" = 40 ] && [ "$(bnum ok)" = 40 ] && [ "$(bnum other)" = 0 ] &&
  [ "$(bnum payload)" = 1048576 ] ||
  why="${why:+$why; }want 40 ok tasks of 1048576 B: $bjs $(head -n 1 "$T/bench.err")"
[ -n "$(bnum in_bytes_per_sec)" ] &&
  [ "$(bnum in_bytes_per_sec)" = "$(bnum out_bytes_per_sec)" ] ||
  why="${why:+$why; }in and out bytes/s differ for echo tasks: $bjs"
check "bench: 1 MiB tasks, bytes per second each way"

# --zero-copy: fp_submit_begin/commit and fp_collect_view, crashes included
# (a crashed task's view is its report, released like any other).
bjs=$($TMO "$FP" bench --workers 2 --tasks 300 --inflight 8 --queue 16 \
  --payload 65536 --crash-every 50 --zero-copy --json 2>"$T/bench.err")
rc=$?
expect_rc $rc 0
[ "$(bnum ok)" = 294 ] && [ "$(bnum crashes)" = 6 ] &&
  [ "$(bnum other)" = 0 ] && [ "$(bnum zero_copy)" = 1 ] ||
  why="${why:+$why; }want 294 ok, 6 crashed, zero_copy 1: $bjs $(head -n 1 "$T/bench.err")"
check "bench --zero-copy: 64 KiB tasks in place, crashes included"

# --lat-every: only tasks whose global sequence number is a multiple of N
# are timed, across producers too (seq 0..2000: 201 multiples of 10).
bjs=$($TMO "$FP" bench --workers 2 --tasks 2001 --producers 3 --inflight 64 \
  --lat-every 10 --json 2>"$T/bench.err")
rc=$?
expect_rc $rc 0
[ "$(bnum ok)" = 2001 ] && [ "$(bnum lat_every)" = 10 ] &&
  [ "$(bnum lat_samples)" = 201 ] && [ -n "$(bnum p50_us)" ] ||
  why="${why:+$why; }want 2001 ok, 201 of them timed: $bjs $(head -n 1 "$T/bench.err")"
check "bench: --lat-every 10 times every tenth task of 3 producers"

# A window of 1 while the workers are stopped and continued again and again
# (SIGSTOP for 2 ms, up to 400 times): a submit that found the queue lock
# held by a stopped worker must wait for its slot, not give up with nothing
# in flight (then collecting failed: "no such pending task"). The supervisor
# may kill a stopped lock holder: such a task ends crashed, and is counted.
# Without /proc/PID/task/TID/children there is no tree to walk: skipped.
if [ -r "/proc/$$/task/$$/children" ]; then
  $TMO "$FP" bench --workers 2 --tasks 2000000 --inflight 1 --json \
    >"$T/stop.json" 2>"$T/stop.err" &
  bpid=$!
  kids() { cat /proc/"$1"/task/*/children 2>/dev/null; }
  tree() { for _k in $(kids "$1"); do echo "$_k"; tree "$_k"; done; }
  n=0
  while [ $n -lt 400 ] && kill -0 $bpid 2>/dev/null; do
    ws=$(tree $bpid | tail -n +3) # timeout's child, its supervisor: not them
    # shellcheck disable=SC2086 # a list of pids
    [ -n "$ws" ] && kill -STOP $ws 2>/dev/null
    sleep 0.002
    # shellcheck disable=SC2086
    [ -n "$ws" ] && kill -CONT $ws 2>/dev/null
    n=$((n + 1))
  done
  wait $bpid
  rc=$?
  expect_rc $rc 0
  bjs=$(cat "$T/stop.json")
  n_ok=$(bnum ok) n_cr=$(bnum crashes)
  [ "$((${n_ok:-0} + ${n_cr:-0}))" = 2000000 ] && [ "$(bnum other)" = 0 ] ||
    why="${why:+$why; }want 2000000 ok or crashed: $bjs $(head -n 1 "$T/stop.err")"
  info "bench with its workers stopped $n times: $(bnum ok) ok, $(bnum crashes) crashed, $(bnum restarts) restarts"
  check "bench: window of 1 survives workers stopped and continued"
else
  info "SKIP bench with stopped workers: no /proc/PID/task/TID/children"
fi

# --- 5. usage errors ---------------------------------------------------------
# expect_usage NAME NEEDLE ARG...: exit status 2, nothing on stdout, and a
# message on stderr that contains NEEDLE.
expect_usage() {
  _name=$1
  _needle=$2
  shift 2
  echo hello | $TMO "$FP" "$@" >"$T/use.out" 2>"$T/use.err"
  _rc=$?
  expect_rc $_rc 2
  [ -s "$T/use.out" ] && why="${why:+$why; }wrote to stdout"
  grep -qF -e "$_needle" "$T/use.err" ||
    why="${why:+$why; }stderr does not name '$_needle': $(head -n 1 "$T/use.err")"
  check "usage: $_name"
}
expect_usage "--workers 0" "--workers" run --handler "$CRASHY" --workers 0
expect_usage "--workers -1" "'-1'" run --handler "$CRASHY" --workers -1
expect_usage "--workers abc" "--workers: 'abc'" run --handler "$CRASHY" --workers abc
expect_usage "--workers=abc" "--workers: 'abc'" run --handler "$CRASHY" --workers=abc
expect_usage "--workers without value" "--workers" run --handler "$CRASHY" --workers
expect_usage "--workers 99999999999999999999999" "--workers" run --handler "$CRASHY" --workers 99999999999999999999999
expect_usage "--timeout x" "--timeout: 'x'" run --handler "$CRASHY" --timeout x
expect_usage "--max-input 0" "--max-input" run --handler "$CRASHY" --max-input 0
expect_usage "--queue 1x" "--queue: '1x'" run --handler "$CRASHY" --queue 1x
expect_usage "unknown flag" "--bogus" run --handler "$CRASHY" --bogus
expect_usage "--json=yes" "--json" run --handler "$CRASHY" --json=yes
expect_usage "missing --handler" "--handler" run --workers 2
expect_usage "unknown subcommand" "frobnicate" frobnicate
expect_usage "no subcommand" "Usage" 

"$FP" --version >"$T/ver.out" 2>&1
rc=$?
# The version is written once, in include/forkpool.h: read it from there.
hver() { sed -n "s/^#define FP_VERSION_$1[[:space:]]*\([0-9]*\)[[:space:]]*\$/\1/p" include/forkpool.h; }
expect_lines "$T/ver.out" "forkpool $(hver MAJOR).$(hver MINOR).$(hver PATCH)"
expect_rc $rc 0
check "--version"

"$FP" --help >"$T/help.out" 2>&1
rc=$?
grep -q '^  run ' "$T/help.out" || why="--help does not list 'run'"
expect_rc $rc 0
check "--help lists subcommands"

"$FP" run --help >"$T/help.out" 2>&1
rc=$?
grep -qF -e "--max-input" "$T/help.out" || why="run --help lacks --max-input"
expect_rc $rc 0
check "run --help"

# --- 6. plugin errors --------------------------------------------------------
echo "not a shared object" >"$T/notelf.so"
expect_usage "handler file missing" "$T/missing.so" run --handler "$T/missing.so"
expect_usage "handler not a shared object" "$T/notelf.so" run --handler "$T/notelf.so"
expect_usage "handler symbol missing" "nope" run --handler "$CRASHY:nope"
# A bare name is a file in the current directory, never a library search.
expect_usage "bare name is not searched for" "libc.so.6" run --handler libc.so.6

(cd "$(dirname "$CRASHY")" && printf 'abc\n' |
  $TMO "$FPABS" run --handler "$(basename "$CRASHY"):forkpool_handler" \
  >"$T/bare.out" 2>"$T/bare.err")
rc=$?
expect_lines "$T/bare.out" "ok${TAB}ABC"
expect_rc $rc 0
check "bare file name with explicit symbol loads from the current directory"

# The plugin ABI in forkpool.h: a plugin built with -fvisibility=hidden
# still exports forkpool_handler (it loads and runs), and a wrong signature
# does not compile at all (before, it compiled and failed at run time).
INC=$(cd "$(dirname "$0")/../include" && pwd)
CC_=${CC:-cc}
cat >"$T/hidden.c" <<'PLUGIN'
#include <string.h>
#include <forkpool.h>
int forkpool_handler(void *arg, const void *in, size_t in_len, void *out,
                     size_t out_cap, size_t *out_len) {
  (void)arg;
  if (in_len > out_cap) return 1;
  memcpy(out, in, in_len);
  *out_len = in_len;
  return 0;
}
PLUGIN
if $CC_ -shared -fPIC -fvisibility=hidden -I"$INC" -o "$T/hidden.so" \
  "$T/hidden.c" 2>"$T/hidden.cc"; then
  printf 'abc\n' | $TMO "$FP" run --handler "$T/hidden.so" >"$T/hidden.out" \
    2>"$T/hidden.err"
  rc=$?
  expect_lines "$T/hidden.out" "ok${TAB}abc"
  expect_rc $rc 0
else
  why="the -fvisibility=hidden plugin did not compile: $(head -n 1 "$T/hidden.cc")"
fi
check "plugin ABI: a handler built with -fvisibility=hidden is exported"

cat >"$T/wrongsig.c" <<'PLUGIN'
#include <forkpool.h>
int forkpool_handler(const char *in, size_t in_len) { return (int)in_len + *in; }
PLUGIN
if $CC_ -shared -fPIC -I"$INC" -o "$T/wrongsig.so" "$T/wrongsig.c" \
  2>"$T/wrongsig.cc"; then
  why="a forkpool_handler of the wrong signature compiled"
elif ! grep -q "conflicting types" "$T/wrongsig.cc"; then
  why="the compiler did not name the conflict: $(head -n 1 "$T/wrongsig.cc")"
fi
check "plugin ABI: a handler of the wrong signature does not compile"

# --handler-arg: the plugin's handler and its init hook get the string;
# without it, NULL; an empty one is a string too. (crashy's "arg" command.)
printf 'arg\n' | $TMO "$FP" run --handler "$CRASHY" --handler-arg 'two words' \
  >"$T/harg.out" 2>"$T/harg.err"
rc=$?
expect_lines "$T/harg.out" "ok${TAB}arg=two words init=two words"
expect_rc $rc 0
printf 'arg\n' | $TMO "$FP" run --handler "$CRASHY" >"$T/harg0.out" 2>&1
expect_lines "$T/harg0.out" "ok${TAB}arg=(none) init=(none)"
printf 'arg\n' | $TMO "$FP" run --handler "$CRASHY" --handler-arg= \
  >"$T/harg1.out" 2>&1
expect_lines "$T/harg1.out" "ok${TAB}arg= init="
check "run --handler-arg: the handler and forkpool_init get the string"

# --- 7. input over --max-input ----------------------------------------------
printf 'ab\n%s\ncd\n' "xxxxxxxxxxxxxxxxxxxx" |
  $TMO "$FP" run --handler "$CRASHY" --max-input 10 >"$T/big.out" 2>"$T/big.err"
rc=$?
expect_lines "$T/big.out" "ok${TAB}AB" \
  "failed${TAB}code=90 input is 20 bytes, over --max-input 10" "ok${TAB}CD"
expect_rc $rc 1
check "oversized line fails in its place, the others run"

printf 'ab\n%s\ncd\n' "xxxxxxxxxxxxxxxxxxxx" |
  $TMO "$FP" run --handler "$CRASHY" --max-input 10 --json >"$T/big.json" 2>"$T/big.err"
rc=$?
expect_lines "$T/big.json" '{"seq":0,"status":"ok",*}' \
  '{"seq":1,"status":"failed",*"code":90,"error":"input is 20 bytes, over --max-input 10"*}' \
  '{"seq":2,"status":"ok",*}'
valid_json "$T/big.json"
expect_rc $rc 1
check "oversized line in JSON"

# 300000 bytes with the default limit, at the end without a newline.
{ echo ab; head -c 300000 /dev/zero | tr '\0' y; } |
  $TMO "$FP" run --handler "$CRASHY" >"$T/huge.out" 2>"$T/huge.err"
rc=$?
expect_lines "$T/huge.out" "ok${TAB}AB" \
  "failed${TAB}code=90 input is 300000 bytes, over --max-input 65536"
expect_rc $rc 1
check "oversized last line without newline"

# --- 8. delimiters and empty input ------------------------------------------
printf 'a\nb\0\0c' | $TMO "$FP" run --handler "$CRASHY" -0 >"$T/nul.out" 2>"$T/nul.err"
rc=$?
expect_lines "$T/nul.out" "ok${TAB}A\\\\nB" "ok${TAB}" "ok${TAB}C"
expect_rc $rc 0
check "-0: NUL-delimited tasks, newline inside a task"

printf 'a\nb\0' | $TMO "$FP" run --handler "$CRASHY" -0 --json >"$T/nul.json" 2>"$T/nul.err"
rc=$?
expect_lines "$T/nul.json" '{"seq":0,"status":"ok","output":"A\\nB",*}'
valid_json "$T/nul.json"
expect_rc $rc 0
check "-0 --json: newline escaped in JSON"

: | $TMO "$FP" run --handler "$CRASHY" >"$T/empty.out" 2>"$T/empty.err"
rc=$?
[ -s "$T/empty.out" ] && why="printed something for empty input"
expect_rc $rc 0
check "empty stdin: no output, exit 0"

printf 'x\n\ny' | $TMO "$FP" run --handler "$CRASHY" --json >"$T/el.json" 2>"$T/el.err"
rc=$?
expect_lines "$T/el.json" '{"seq":0,"status":"ok","output":"X",*}' \
  '{"seq":1,"status":"ok","output":"",*}' '{"seq":2,"status":"ok","output":"Y",*}'
valid_json "$T/el.json"
expect_rc $rc 0
check "empty line is a task; last line without newline is a task"

# Bytes that are not text: control characters, invalid UTF-8, a surrogate.
# Valid UTF-8 with control characters is escaped in "output"; bytes that
# are not UTF-8 (a stray byte, an encoded surrogate) go as base64.
printf 'q"\\\001\177\303\251\tz\r\nq"\\\001\177\303\251\355\240\200\377\tz\r\n' |
  $TMO "$FP" run --handler "$CRASHY" --json >"$T/bin.json" 2>"$T/bin.err"
rc=$?
# (In a glob pattern each literal backslash is written \\.)
expect_lines "$T/bin.json" '{"seq":0,"status":"ok","output":"Q\\"\\\\\\u0001\\u007f'"$(printf '\303\251')"'\\tZ\\r",*}' \
  '{"seq":1,"status":"ok","output_base64":"USJcAX/Dqe2ggP8JWg0=",*}'
valid_json "$T/bin.json"
expect_rc $rc 0
check "json: arbitrary bytes give valid JSON in valid UTF-8"

# Lossless: bytes ff and c3 bf (the UTF-8 of U+00FF) must not decode to the
# same thing. A consumer takes output_base64 when it is there, else output.
printf '\377\nx\303\277\nab\200\ntext \303\251\n' |
  $TMO "$FP" run --handler "$CRASHY" --json >"$T/raw.json" 2>"$T/raw.err"
rc=$?
valid_json "$T/raw.json"
if have python3; then
  python3 - "$T/raw.json" <<'EOF2' >"$T/raw.chk" 2>&1 || why="${why:+$why; }$(head -n 1 "$T/raw.chk")"
import base64, json, sys
want = [b"\xff", b"X\xc3\xbf", b"AB\x80", b"TEXT \xc3\xa9"]
got = []
for line in open(sys.argv[1], "rb"):
    o = json.loads(line)
    if "output_base64" in o:
        if "output" in o:
            sys.exit("line %d has both output and output_base64" % o["seq"])
        got.append(base64.b64decode(o["output_base64"], validate=True))
    else:
        got.append(o["output"].encode("utf-8"))
if got != want:
    sys.exit("decoded %r, want %r" % (got, want))
if '"output"' not in open(sys.argv[1]).read().splitlines()[3]:
    sys.exit("valid UTF-8 must stay in the readable output field")
EOF2
else
  info "SKIP json lossless check: no python3"
fi
expect_rc $rc 0
check "json: output bytes decode back exactly (base64 when not UTF-8)"

printf 'q"\\\001\177\303\251\377\tz\r\n' |
  $TMO "$FP" run --handler "$CRASHY" >"$T/bin.out" 2>"$T/bin.err"
rc=$?
expect_lines "$T/bin.out" "ok${TAB}"'Q"\\\\\\x01\\x7f'"$(printf '\303\251')"'\\xff\\tZ\\r'
expect_rc $rc 0
check "plain: arbitrary bytes escaped on one line"

# --- 9. memory exhaustion, sleeping ------------------------------------------
printf 'oom\nhello\n' | $TMO "$FP" run --handler "$CRASHY" --workers 1 \
  --timeout 20000 >"$T/oom.out" 2>"$T/oom.err"
rc=$?
expect_lines "$T/oom.out" "crashed${TAB}*" "ok${TAB}HELLO" ||
  { why=""; expect_lines "$T/oom.out" "failed${TAB}*" "ok${TAB}HELLO"; }
expect_rc $rc 1
check "oom: task crashes (or fails), the next one works"

printf 'sleep 50\n' | $TMO "$FP" run --handler "$CRASHY" >"$T/sleep.out" 2>"$T/sleep.err"
rc=$?
expect_lines "$T/sleep.out" "ok${TAB}slept 50"
expect_rc $rc 0
check "sleep 50"

# --- 10. streaming, stdout closed, signals -----------------------------------
# The first result must come out while stdin is still open and idle.
mkfifo "$T/s.in" "$T/s.out"
$TMO "$FP" run --handler "$CRASHY" <"$T/s.in" >"$T/s.out" 2>"$T/s.err" &
job=$!
exec 4>"$T/s.in" 5<"$T/s.out"
echo first >&4
first=$(timeout 10 head -n 1 <&5)
echo second >&4
exec 4>&-
rest=$(cat <&5)
exec 5<&-
wait $job
rc=$?
[ "$first" = "ok${TAB}FIRST" ] ||
  why="first result '$first' did not come before stdin was closed"
[ "$rest" = "ok${TAB}SECOND" ] || why="${why:+$why; }then got '$rest'"
expect_rc $rc 0
check "streaming: a result is printed while stdin stays open"
rm -f "$T/s.in" "$T/s.out"

{ $TMO "$FP" run --handler "$CRASHY" --workers 2 <"$T/bulk.in" 2>"$T/pipe.err"
  echo $? >"$T/pipe.rc"; } | head -n 1 >"$T/pipe.out"
expect_lines "$T/pipe.out" "ok${TAB}T1"
expect_rc "$(cat "$T/pipe.rc")" 1
[ -s "$T/pipe.err" ] && why="${why:+$why; }stderr not quiet: $(head -n 1 "$T/pipe.err")"
check "closed stdout ends the run quietly with status 1"

# SIGTERM while a task hangs: exit 143 and the pool is gone.
mkfifo "$T/t.in" "$T/t.out"
$TMO "$FP" run --handler "$CRASHY" --workers 2 <"$T/t.in" >"$T/t.out" 2>"$T/t.err" &
job=$!
exec 4>"$T/t.in" 5<"$T/t.out"
printf 'hello\nhang\n' >&4
first=$(timeout 10 head -n 1 <&5)
fppid=$(ps -o pid= --ppid $job | tr -d ' ')
if [ -n "$fppid" ]; then
  kill -TERM "$fppid"
else
  why="could not find the forkpool process"
  kill -TERM $job
fi
wait $job
rc=$?
exec 4>&- 5<&-
[ "$first" = "ok${TAB}HELLO" ] || why="${why:+$why; }first result '$first'"
expect_rc $rc 143
sleep 0.2
left=$(tagged)
[ -z "$left" ] || why="${why:+$why; }processes left after SIGTERM: $left"
check "SIGTERM stops the pool and exits 143"
rm -f "$T/t.in" "$T/t.out"

# --- 11. reports, retries, limits, logs --------------------------------------
# (Report patterns allow frames before the crashing function: a sanitizer
# build adds its own, e.g. ASan's backtrace interceptor.)
mix | $TMO "$FP" run --handler "$CRASHY" --workers 2 --timeout 500 --backtrace \
  >"$T/bt.txt" 2>"$T/bt.err"
rc=$?
expect_lines "$T/bt.txt" "ok${TAB}HELLO" \
  "crashed${TAB}SIGSEGV${TAB}SIGSEGV at address 0x0 | #0 *crashy_segv+* (crashy.so) | #* forkpool_handler+*" \
  "crashed${TAB}SIGABRT${TAB}SIGABRT | #0 * | *crashy_abort+*" \
  "timeout${TAB}SIGKILL${TAB}stuck in: | #0 *crashy_hang+* (crashy.so) | *" \
  "crashed${TAB}exit=3" "failed${TAB}code=7" "ok${TAB}WORLD"
expect_rc $rc 1
check "--backtrace: the report is a third field, still one line per result"

mix | $TMO "$FP" run --handler "$CRASHY" --workers 2 --timeout 500 --backtrace \
  --json >"$T/bt.json" 2>"$T/bt.err"
rc=$?
expect_lines "$T/bt.json" '{"seq":0,"status":"ok","output":"HELLO","attempts":1,*}' \
  '{"seq":1,"status":"crashed","signal":"SIGSEGV","backtrace":"SIGSEGV at address 0x0\\n#0 *crashy_segv+*","attempts":1,*}' \
  '{"seq":2,"status":"crashed","signal":"SIGABRT","backtrace":"SIGABRT\\n#0 *crashy_abort+*","attempts":1,*}' \
  '{"seq":3,"status":"timeout","signal":"SIGKILL","backtrace":"stuck in:\\n#0 *crashy_hang+*","attempts":1,*}' \
  '{"seq":4,"status":"crashed","exit":3,"attempts":1,*}' \
  '{"seq":5,"status":"failed","code":7,"attempts":1,*}' \
  '{"seq":6,"status":"ok","output":"WORLD","attempts":1,*}'
valid_json "$T/bt.json"
expect_rc $rc 1
check "--backtrace --json: a \"backtrace\" string for crashed and timeout"

# A timeout kill ends the task it was aimed at, never the next one, and a
# task past its limit never ends ok, even when the hang report's signal cut
# its sleep short (issue 13.1). One worker, 12 pairs: A overruns 200 ms
# (spins just past it, or sleeps once), B (60 ms) waits behind it.
for a in "spin 201" "sleep 800"; do
  set --
  _i=0
  while [ $_i -lt 12 ]; do
    printf '%s\nspin 60\n' "$a"
    set -- "$@" "timeout${TAB}SIGKILL" "ok${TAB}spun 60"
    _i=$((_i + 1))
  done >"$T/late.in"
  $TMO "$FP" run --handler "$HOSTILE" --workers 1 --timeout 200 \
    <"$T/late.in" >"$T/late.out" 2>"$T/late.err"
  rc=$?
  expect_lines "$T/late.out" "$@"
  expect_rc $rc 1
  check "a late timeout kill spares the next task ('$a', 12 rounds)"
done

# Reports end at the handler (no frame of forkpool or the host below it),
# and a signal sent, not a fault, names its sender (issue 13.19).
printf 'fpe\nsegv\n' | $TMO "$FP" run --handler "$HOSTILE" --workers 1 \
  --backtrace >"$T/sent.out" 2>"$T/sent.err"
rc=$?
expect_lines "$T/sent.out" \
  "crashed${TAB}SIGFPE${TAB}SIGFPE sent by pid * (uid $(id -u), the worker itself) | #0 * | *forkpool_handler+* (hostile.so)" \
  "crashed${TAB}SIGSEGV${TAB}SIGSEGV at address 0x0 | #0 *hostile_segv+* (hostile.so) | #* forkpool_handler+* (hostile.so)"
expect_rc $rc 1
check "--backtrace: a sent signal names its sender; stacks end at the handler"

# Retries: the poison task runs 3 times, each death is logged once (WARN),
# then the quarantine (ERROR); the next task is not held up.
printf 'segv\nhello\n' | $TMO "$FP" run --handler "$CRASHY" --workers 1 \
  --max-attempts 3 --json --log-level warn >"$T/ma.json" 2>"$T/ma.err"
rc=$?
expect_lines "$T/ma.json" '{"seq":0,"status":"crashed","signal":"SIGSEGV","attempts":3,*}' \
  '{"seq":1,"status":"ok","output":"HELLO","attempts":1,*}'
expect_rc $rc 1
ts='[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
for a in 1 2 3; do
  n=$(grep -c "^$ts WARN worker [0-9]* died running task [0-9]* (attempt $a): SIGSEGV after [0-9]*\.[0-9]* ms (crashed): SIGSEGV at address 0x0 | #0 .*crashy_segv" "$T/ma.err")
  [ "$n" = 1 ] || why="${why:+$why; }$n log lines for attempt $a: $(head -n 1 "$T/ma.err")"
done
grep -q "^$ts ERROR task [0-9]* quarantined as poison" "$T/ma.err" ||
  why="${why:+$why; }no quarantine line"
bad=$(grep -cv "^$ts \(WARN\|ERROR\) " "$T/ma.err")
[ "$bad" = 0 ] || why="${why:+$why; }$bad lines below warn: $(grep -v "^$ts \(WARN\|ERROR\) " "$T/ma.err" | head -n 1)"
check "--max-attempts 3: three runs, each death logged once, then quarantined"

printf 'segv\n' | $TMO "$FP" run --handler "$CRASHY" --workers 1 >"$T/q.out" 2>"$T/q.err"
expect_lines "$T/q.out" "crashed${TAB}SIGSEGV"
[ -s "$T/q.err" ] && why="stderr not quiet: $(head -n 1 "$T/q.err")"
printf 'segv\n' | $TMO "$FP" run --handler "$CRASHY" --workers 1 \
  --log-level warn --log-format json >"$T/lj.out" 2>"$T/lj.err"
expect_lines "$T/lj.err" '{"ts":"'"$ts"'","level":"warn","msg":"worker [0-9]* died running task [0-9]* (attempt 1): SIGSEGV after *"}'
if have python3; then
  python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    assert list(o) == ["ts", "level", "msg"], o
' "$T/lj.err" 2>"$T/py.err" || why="${why:+$why; }not JSON: $(tail -n 1 "$T/py.err")"
fi
check "run logs the supervisor's events: none by default, JSON lines on request"

# --max-memory 16: oom hits the limit after 16 MiB, not crashy's own 256.
# (Not under ASan, which needs far more address space than that.)
if ldd "$FP" 2>/dev/null | grep -q libasan; then
  echo "# SKIP --max-memory: $FP is an ASan build"
else
  echo oom | CRASHY_OOM_MB=256 $TMO "$FP" run --handler "$CRASHY" --workers 1 \
    --max-memory 16 --timeout 20000 --json >"$T/mm.json" 2>"$T/mm.err"
  rc=$?
  expect_lines "$T/mm.json" '{"seq":0,"status":"crashed","signal":"SIGABRT",*}'
  ms=$(sed -n 's/.*"ms":\([0-9.]*\)}$/\1/p' "$T/mm.json")
  awk -v m="${ms:-0}" 'BEGIN { exit !(m < 500) }' || why="${why:+$why; }oom ran $ms ms: no limit?"
  expect_rc $rc 1
  check "--max-memory 16: allocation fails early"
fi

# --seal: crashy's scribble finds no writable shared mapping to damage.
printf 'a\nscribble\nb\n' | $TMO "$FP" run --handler "$CRASHY" --workers 2 \
  --seal >"$T/seal.out" 2>"$T/seal.err"
rc=$?
expect_lines "$T/seal.out" "ok${TAB}A" "crashed${TAB}SIGSEGV" "ok${TAB}B"
expect_rc $rc 1
check "--seal: a scribbling task crashes alone"

expect_usage "--max-attempts 0" "--max-attempts: '0'" run --handler "$CRASHY" --max-attempts 0
expect_usage "--max-attempts 101" "--max-attempts: '101'" run --handler "$CRASHY" --max-attempts 101
expect_usage "--max-memory 1048577" "--max-memory: '1048577'" run --handler "$CRASHY" --max-memory 1048577
expect_usage "--seal=1" "--seal" run --handler "$CRASHY" --seal=1
expect_usage "--backtrace=yes" "--backtrace" run --handler "$CRASHY" --backtrace=yes
expect_usage "--quiet=1" "--quiet" run --handler "$CRASHY" --quiet=1
expect_usage "--log-level verbose" "--log-level: 'verbose' is not one of debug, info, warn or error" run --handler "$CRASHY" --log-level verbose
expect_usage "--log-format xml" "--log-format: 'xml' is not one of text or json" run --handler "$CRASHY" --log-format=xml
expect_usage "--log-level without value" "--log-level: missing value" run --handler "$CRASHY" --log-level

"$FP" run --help >"$T/help.out" 2>&1
for f in --max-attempts --max-memory --seal --backtrace --quiet --log-level --log-format; do
  grep -qF -e "$f" "$T/help.out" || why="${why:+$why; }run --help lacks $f"
done
check "run --help documents the new flags"

# --- 12. the progress line, in a real terminal --------------------------------
# tm_run NAME COMMAND: run the shell command line COMMAND in a new detached
# 200x20 tmux window; every byte it writes to the terminal is copied to
# $T/NAME.raw (COMMAND starts only once the copy is set up), and its exit
# status goes to $T/NAME.rc.
tm_run() {
  : >"$T/$1.raw"
  tm new-session -d -s "$1" -x 200 -y 20 -c "$(pwd)" \
    "while [ ! -e '$T/$1.go' ]; do sleep 0.02; done; $2; echo \$? >'$T/$1.rc'"
  tm pipe-pane -t "$1" -o "cat >>'$T/$1.raw'"
  touch "$T/$1.go"
}
# tm_wait NAME: wait (up to 120 s) for the command of NAME to end.
tm_wait() {
  _i=0
  while [ ! -s "$T/$1.rc" ] && [ $_i -lt 1200 ]; do sleep 0.1; _i=$((_i + 1)); done
  sleep 0.2 # let pipe-pane copy the last bytes
}
ESC=$(printf '\033')
CR=$(printf '\r')

sh "$(dirname "$0")/need-tool.sh" tmux tmux 2>"$T/tmux.err"
if ! have tmux; then
  echo "# SKIP tmux unavailable: progress line not tested ($(head -n 1 "$T/tmux.err"))"
else
  printf 'set -g remain-on-exit on\nset -g status off\n' >"$T/tmux.conf"
  # 200000 quick tasks, every 20000th a crash, then one of 500 ms that
  # keeps the line up once the total is known; results go to a file.
  awk 'BEGIN { for (i = 1; i <= 200000; i++) print (i % 20000 ? "sleep 0" : "segv")
               print "sleep 500" }' >"$T/prog.in"
  sed -e "s/^sleep 0\$/ok${TAB}slept 0/" -e "s/^segv\$/crashed${TAB}SIGSEGV/" \
    -e "s/^sleep 500\$/ok${TAB}slept 500/" "$T/prog.in" >"$T/prog.want"
  tm_run prog "'$FPABS' run --handler '$CRASHY' --workers 2 <'$T/prog.in' >'$T/prog.out'"
  live=""
  _i=0
  while [ ! -s "$T/prog.rc" ] && [ $_i -lt 1200 ]; do
    tm capture-pane -p -t prog >"$T/pane.txt" 2>/dev/null
    live=$(grep -m 1 '^forkpool run: [0-9]*/[0-9]*+\{0,1\} done' "$T/pane.txt")
    [ -n "$live" ] && break
    sleep 0.1
    _i=$((_i + 1))
  done
  tm_wait prog
  [ -n "$live" ] || why="no progress line seen while it ran"
  case $live in
    *"/s, "*" crashed, "*" timeout"*) ;;
    *) why="${why:+$why; }live line '$live'" ;;
  esac
  info "progress: $live"
  cmp -s "$T/prog.out" "$T/prog.want" ||
    why="${why:+$why; }results differ: $(cmp "$T/prog.out" "$T/prog.want" 2>&1 | head -n 1)"
  expect_rc "$(cat "$T/prog.rc")" 1
  # The raw stream: frames "\r" TEXT "\033[K", one with a crash counted, one
  # with the total once the input ended, and at the very end the erase.
  tr '\r' '\n' <"$T/prog.raw" >"$T/frames"
  nf=$(grep -c '^forkpool run: ' "$T/frames")
  [ "$nf" -ge 2 ] || why="${why:+$why; }$nf frames"
  grep -q '^forkpool run: .*, [1-9][0-9]* crashed, ' "$T/frames" ||
    why="${why:+$why; }no frame counts a crash"
  grep -q "^forkpool run: 200000/200001 done (99%), [0-9]*/s, 10 crashed, 0 timeout, ETA 0:00${ESC}\[K\$" "$T/frames" ||
    why="${why:+$why; }no frame with the total: $(tail -n 2 "$T/frames" | head -n 1 | cat -v)"
  nbad=$(grep '^forkpool run: ' "$T/frames" | grep -cv "${ESC}\[K\$")
  [ "$nbad" = 0 ] || why="${why:+$why; }$nbad frames not ending in ESC[K"
  [ "$(tail -c 4 "$T/prog.raw" | od -An -tx1 | tr -d ' \n')" = 0d1b5b4b ] ||
    why="${why:+$why; }output does not end by erasing the line"
  tm capture-pane -p -t prog >"$T/pane.txt" 2>/dev/null
  grep -q 'forkpool run:' "$T/pane.txt" && why="${why:+$why; }line left on screen"
  check "progress: live on a terminal, erased at the end, results intact"

  # --quiet, and stderr not a terminal: not one byte of progress.
  head -n 20000 "$T/prog.in" >"$T/prog2.in"
  head -n 20000 "$T/prog.want" >"$T/prog2.want"
  tm_run quiet "'$FPABS' run --handler '$CRASHY' --workers 2 --quiet <'$T/prog2.in' >'$T/quiet.out'"
  tm_run file "'$FPABS' run --handler '$CRASHY' --workers 2 <'$T/prog2.in' >'$T/file.out' 2>'$T/file.err'"
  tm_wait quiet
  tm_wait file
  for n in quiet file; do
    [ -s "$T/$n.raw" ] && why="${why:+$why; }$n: wrote to the terminal: $(head -c 60 "$T/$n.raw" | tr "$CR$ESC" '^^')"
    cmp -s "$T/$n.out" "$T/prog2.want" || why="${why:+$why; }$n: results differ"
    expect_rc "$(cat "$T/$n.rc")" 1
  done
  [ -s "$T/file.err" ] && why="${why:+$why; }stderr file not empty: $(head -c 60 "$T/file.err" | tr "$CR$ESC" '^^')"
  check "progress: none with --quiet, none when stderr is a file"
  tm_stop
  _i=0
  while tm has-session >/dev/null 2>&1 && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
fi

# --- 12b. a task's descendants end with it; --max-rss ------------------------
# hostile.so records every process it forks in $HOSTILE_PIDS and returns
# only once they did. After a task ended, each must be gone: no process
# with that pid, or another one (start time), and no zombie either.
# pid_start PID: the start time of PID ("" when there is none).
pid_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
# left_of FILE: the recorded processes of FILE still there ("PID:STATE ...").
left_of() {
  [ -f "$1.st" ] || return 0
  while read -r _p _s; do
    [ -n "$_s" ] && [ "$(pid_start "$_p")" = "$_s" ] &&
      printf '%s:%s ' "$_p" "$(sed 's/.*) //' "/proc/$_p/stat" 2>/dev/null | cut -c1)"
  done <"$1.st"
}
# stamp FILE: pid and start time of each recorded pid, read as soon as the
# run ends (a reused pid then has another start time); kill_left FILE ends
# what is left (a failed test must not leak processes).
stamp() { : >"$1.st"; [ -f "$1" ] && while read -r _p; do echo "$_p $(pid_start "$_p")"; done <"$1" >"$1.st"; }
nlines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
kill_left() { for _x in $(left_of "$1"); do kill -9 "${_x%%:*}" 2>/dev/null; done; }
HP=$T/hostile.pids
rm -f "$HP"
# Stamp on the fly: the pids are read while the processes still live.
printf 'child 30\nsetsid 30\nsetpgid 30\ndouble 30\nignoreterm 30\nzombie\ngrandzombie\nok\n' |
  HOSTILE_PIDS=$HP $TMO "$FP" run --handler "$HOSTILE" --workers 2 \
  >"$T/desc.out" 2>"$T/desc.err" &
dpid=$!
# The run ends its tasks' children before it returns; record their start
# times while the handler's pids are still fresh.
while kill -0 $dpid 2>/dev/null; do stamp "$HP"; sleep 0.01; done
wait $dpid
rc=$?
# Entries stamped while alive; any not stamped was gone already.
left=$(left_of "$HP")
[ "$(nlines "$HP")" -ge 9 ] || why="only $(nlines "$HP") pids recorded, want 9"
[ -z "$left" ] || why="${why:+$why; }left after the run: $left"
[ "$(grep -c "^ok${TAB}" "$T/desc.out")" = 8 ] || why="${why:+$why; }results: $(tr '\n' ' ' <"$T/desc.out")"
expect_rc $rc 0
kill_left "$HP"
check "descendants of ok tasks end with them: own session, own group, orphans, zombies"

rm -f "$HP"
printf 'setsidhang 30\nok\n' | HOSTILE_PIDS=$HP $TMO "$FP" run --handler "$HOSTILE" \
  --workers 1 --timeout 300 >"$T/desc2.out" 2>"$T/desc2.err" &
dpid=$!
while kill -0 $dpid 2>/dev/null; do stamp "$HP"; sleep 0.01; done
wait $dpid
rc=$?
expect_lines "$T/desc2.out" "timeout${TAB}SIGKILL" "ok${TAB}ok"
[ -s "$HP" ] || why="${why:+$why; }no pid recorded"
left=$(left_of "$HP")
[ -z "$left" ] || why="${why:+$why; }left after the timeout: $left"
expect_rc $rc 1
kill_left "$HP"
check "timeout kill ends a child in its own session"

rm -f "$HP"
printf 'setsidhang 30\nsetsidhang 30\n' | HOSTILE_PIDS=$HP $TMO "$FP" run \
  --handler "$HOSTILE" --workers 2 >"$T/desc3.out" 2>"$T/desc3.err" &
dpid=$!
_i=0
while [ "$(nlines "$HP")" -lt 2 ] && [ $_i -lt 500 ]; do sleep 0.01; _i=$((_i + 1)); done
stamp "$HP"
kill -TERM $dpid
wait $dpid
rc=$?
left=$(left_of "$HP")
[ "$(nlines "$HP.st")" = 2 ] || why="$(nlines "$HP.st") pids recorded, want 2"
[ -z "$left" ] || why="${why:+$why; }left after the run ended: $left"
expect_rc $rc 143
kill_left "$HP"
check "the end of forkpool run (SIGTERM) ends running tasks' children in their own sessions"

# --max-rss 16: the task that grew its worker to 24 MiB ends ok, the next
# runs in a fresh worker, and the supervisor says so once. (Not under ASan,
# whose workers are far bigger than that from the start.)
if ldd "$FP" 2>/dev/null | grep -q libasan; then
  echo "# SKIP --max-rss: $FP is an ASan build"
else
printf 'ok\nrss 24\nok\nok\n' | $TMO "$FP" run --handler "$HOSTILE" --workers 1 \
  --max-rss 16 --json --log-level warn >"$T/rss.json" 2>"$T/rss.err"
rc=$?
expect_lines "$T/rss.json" '{"seq":0,"status":"ok",*}' \
  '{"seq":1,"status":"ok","output":"rss 24",*}' '{"seq":2,"status":"ok",*}' \
  '{"seq":3,"status":"ok",*}'
w() { sed -n 's/.*"worker":\([0-9]*\).*/\1/p' "$T/rss.json" | sed -n "$1p"; }
[ "$(w 1)" = "$(w 2)" ] && [ "$(w 2)" != "$(w 3)" ] && [ "$(w 3)" = "$(w 4)" ] ||
  why="${why:+$why; }workers $(w 1) $(w 2) $(w 3) $(w 4): want a new one after rss 24 only"
n=$(grep -c "recycled" "$T/rss.err")
[ "$n" = 1 ] || why="${why:+$why; }$n recycling lines, want 1: $(head -c 300 "$T/rss.err")"
grep -q "worker $(w 2) recycled: resident set 2[4-9].[0-9] MiB above the limit of 16 MiB" "$T/rss.err" ||
  why="${why:+$why; }log line: $(grep recycled "$T/rss.err")"
expect_rc $rc 0
check "--max-rss 16: a worker grown to 24 MiB is replaced after its task, logged once"
fi

expect_usage "--max-rss 1048577" "--max-rss: '1048577'" run --handler "$HOSTILE" --max-rss 1048577
"$FP" run --help 2>&1 | grep -qF -e "--max-rss" || why="run --help lacks --max-rss"
"$FP" serve --help 2>&1 | grep -qF -e "--max-rss" || why="${why:+$why; }serve --help lacks --max-rss"
check "--max-rss in run --help and serve --help"

# --- 12c. hostile handlers: stdin, stdout, forked children, exit -------------
# A handler that reads stdin must not eat run's input (one read of 64 KiB
# took that much of the task lines before).
(echo readstdin; yes ok | head -n 50000) >"$T/h.in"
$TMO "$FP" run --handler "$HOSTILE" --workers 2 <"$T/h.in" >"$T/h.out" 2>"$T/h.err"
expect_rc $? 0 "run with readstdin"
n=$(wc -l <"$T/h.out")
[ "$n" -eq 50001 ] || why="$n results for 50001 tasks"
[ "$(head -n 1 "$T/h.out")" = "ok${TAB}read 0" ] || why="${why:+$why; }readstdin got: $(head -n 1 "$T/h.out")"
check "run: a handler reading stdin reads /dev/null, every task gets its result"

# What handlers write to fd 1 and 2 goes to the log, under the task id.
printf 'stdout EVIL\nok\nstderr BAD\nprintf half\nok\n' |
  $TMO "$FP" run --handler "$HOSTILE" --workers 1 --json --log-level warn \
  >"$T/h.out" 2>"$T/h.err"
expect_rc $? 0 "run with printing handlers"
expect_lines "$T/h.out" '{"seq":0,*"output":"wrote",*}' '{"seq":1,*"output":"ok",*}' \
  '{"seq":2,*"output":"wrote",*}' '{"seq":3,*"output":"wrote",*}' \
  '{"seq":4,*"output":"ok",*}'
valid_json "$T/h.out" || why="${why:+$why; }invalid JSON"
grep -q 'WARN task [0-9]* (worker [0-9]*) stdout: EVIL$' "$T/h.err" || why="${why:+$why; }no stdout line: $(cat "$T/h.err")"
grep -q 'WARN task [0-9]* (worker [0-9]*) stderr: BAD$' "$T/h.err" || why="${why:+$why; }no stderr line"
grep -q 'WARN task [0-9]* (worker [0-9]*) stdout: half$' "$T/h.err" || why="${why:+$why; }no printf line"
check "run: handler stdout and stderr go to the log, never into the results"

# Out of descriptors (RLIMIT_NOFILE): the workers without an output pipe
# write to /dev/null, said once; the results stay clean.
yes 'stdout hi' | head -n 300 >"$T/h.in"
(ulimit -n 32 && exec $TMO "$FP" run --handler "$HOSTILE" --workers 40 \
  --log-level warn <"$T/h.in" >"$T/h.out" 2>"$T/h.err")
expect_rc $? 0 "run with ulimit -n 32"
[ "$(grep -c "^ok${TAB}wrote$" "$T/h.out")" -eq 300 ] || why="${why:+$why; }results: $(sort "$T/h.out" | uniq -c | head -n 3 | tr '\n' ' ')"
n=$(grep -c 'no pipe for the output of the worker in row [0-9]* (Too many open files): what it writes to stdout or stderr goes to /dev/null' "$T/h.err")
[ "$n" -eq 1 ] || why="${why:+$why; }$n 'no pipe' lines, want 1: $(grep -v 'stdout: hi' "$T/h.err" | head -n 3)"
check "run: a worker without an output pipe (RLIMIT_NOFILE) writes to /dev/null, logged once"

# A forked child that returns from the handler must not act as a worker
# (0.2% of the tasks: some innocent ones ended corrupt before).
seq 1 20000 | awk '{ print (NR % 500 == 0) ? "forkreturn" : "ok" }' >"$T/h.in"
for seal in "" --seal; do
  $TMO "$FP" run --handler "$HOSTILE" --workers 2 $seal <"$T/h.in" >"$T/h.out" 2>"$T/h.err"
  expect_rc $? 0 "run with forkreturn $seal"
  n=$(grep -c "^ok${TAB}ok$" "$T/h.out")
  m=$(grep -c "^ok${TAB}parent$" "$T/h.out")
  [ "$n" -eq 19960 ] && [ "$m" -eq 40 ] ||
    why="${why:+$why; }$seal: $n ok, $m parent, others: $(grep -v "^ok${TAB}" "$T/h.out" | sort | uniq -c | head -n 3 | tr '\n' ' ')"
done
check "run: a forked child returning from the handler never touches the queue"

# exit() in a handler ends the task crashed with its status.
printf 'exit 3\nok\n' | $TMO "$FP" run --handler "$HOSTILE" --workers 1 >"$T/h.out" 2>"$T/h.err"
expect_lines "$T/h.out" "crashed${TAB}exit=3" "ok${TAB}ok"
check "run: exit(3) in a handler ends crashed exit=3"

# --- 13. nothing left behind -------------------------------------------------
sleep 0.2
ps -o pid=,comm= --ppid $$ >"$T/kids" 2>/dev/null
kids=$(awk '$2 != "ps"' "$T/kids" | tr '\n' ' ')
[ -z "$kids" ] || why="children of the test script still running: $kids"
# Processes descending from this shell that are called forkpool...
ps -e -o pid=,ppid=,comm= >"$T/ps.all"
desc=$(awk -v top=$$ '
  { pp[$1] = $2; cm[$1] = $3 }
  END {
    for (p in pp) {
      if (cm[p] !~ /forkpool/) continue
      for (q = pp[p]; q > 1; q = pp[q]) if (q == top) { printf "%s ", p; break }
    }
  }' "$T/ps.all")
[ -z "$desc" ] || why="${why:+$why; }forkpool processes under the script: $desc"
# ...and any that inherited our tag, even if reparented (an orphaned pool).
left=$(tagged)
[ -z "$left" ] || why="${why:+$why; }processes started by the tests still alive: $left"
check "no process left behind"

# Other test suites may create entries of their own meanwhile: only an
# entry that is new and still there a second later counts.
shm_list "$T/shm.after"
new=$(comm -13 "$T/shm.before" "$T/shm.after")
if [ -n "$new" ]; then
  sleep 1
  shm_list "$T/shm.later"
  new=$(comm -13 "$T/shm.before" "$T/shm.after" | comm -12 - "$T/shm.later" |
    tr '\n' ' ')
fi
[ -z "$new" ] || why="new /dev/shm entries: $new (another test running at the same time?)"
check "no /dev/shm entry left behind"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
