#!/bin/sh
# Tests of the forkpool command-line tool, driven the way a user's shell
# script would drive it.
#
# Usage: sh tests/cli.sh [BUILD_DIR]   (from the repository root; default
# BUILD_DIR is build). Needs BUILD_DIR/bin/forkpool and the crashy plugin
# BUILD_DIR/examples/crashy.so. python3, when present, checks that every
# --json line is valid JSON in valid UTF-8.
#
# Prints one line per test, "ok - NAME" or "not ok - NAME: WHY", lines
# starting with "#" for information, then "N passed, M failed". Exit
# status 0 only when nothing failed. Every forkpool run is wrapped in
# `timeout 120`, so a bug fails a test instead of hanging the script.
#
# FORKPOOL_CLI_BULK (default 100000) sets the size of the bulk test.

set -u

B=${1:-build}
FP=$B/bin/forkpool
CRASHY=$B/examples/crashy.so
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

if [ ! -x "$FP" ] || [ ! -f "$CRASHY" ]; then
  nok "setup" "need $FP and $CRASHY (run make first)"
  echo "$pass passed, $fail failed"
  exit 1
fi
case $FP in /*) FPABS=$FP ;; *) FPABS=$(pwd)/$FP ;; esac

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
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
known = {"seq", "status", "output", "signal", "exit", "code", "error",
         "attempts", "worker", "ms"}
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
expect_lines "$T/ver.out" "forkpool 0.1.0"
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
printf 'q"\\\001\177\303\251\355\240\200\377\tz\r\n' |
  $TMO "$FP" run --handler "$CRASHY" --json >"$T/bin.json" 2>"$T/bin.err"
rc=$?
# (In a glob pattern each literal backslash is written \\.)
expect_lines "$T/bin.json" '{"seq":0,"status":"ok","output":"Q\\"\\\\\\u0001\\u007f'"$(printf '\303\251')"'\\u00ed\\u00a0\\u0080\\u00ff\\tZ\\r",*}'
valid_json "$T/bin.json"
expect_rc $rc 0
check "json: arbitrary bytes give valid JSON in valid UTF-8"

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

# --- 11. nothing left behind -------------------------------------------------
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
