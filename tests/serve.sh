#!/bin/sh
# Tests of named pools from the command line: `forkpool serve`, `forkpool
# submit`, `forkpool stat` and the producer example, driven the way a
# user's shell script (or an init system) would drive them.
#
# Usage: sh tests/serve.sh [BUILD_DIR]   (from the repository root; default
# BUILD_DIR is build). Needs BUILD_DIR/bin/forkpool, the crashy plugin
# BUILD_DIR/examples/crashy.so and BUILD_DIR/examples/producer; promtool
# (Debian package prometheus) checks `stat --prometheus`: installed with
# apt-get when missing and running as root, else that check is "# SKIP".
# The cases of hostile environments (section 12b) need root: they create
# temporary users and a group (fp[abcg]<pid>, removed at exit), run
# commands as them with setpriv and prlimit, and mount a 2 MiB tmpfs on
# /dev/shm inside `unshare -m`; without root (or a tool) they "# SKIP".
#
# Prints one line per test, "ok - NAME" or "not ok - NAME: WHY", lines
# starting with "#" for information, then "N passed, M failed". Exit
# status 0 only when nothing failed. Every forkpool process is wrapped in
# `timeout`, so a bug fails a test instead of hanging the script. Pool
# names are fps<pid of this shell>_<letter>, so parallel runs do not
# collide; at exit every server this script started and did not reap is
# killed (by pid), and its /dev/shm/forkpool.fps<pid>_* entries removed.

set -u

B=${1:-build}
FP=$B/bin/forkpool
CRASHY=$B/examples/crashy.so
HOSTILE=$B/examples/hostile.so
PRODUCER=$B/examples/producer
TMO="timeout 20"     # a submit, stat or producer
STMO="timeout 120"   # a server
TAB=$(printf '\t')
P=fps$$_             # pool name prefix of this run: the "_" keeps the
                     # glob fps$$_* off the pools of a run whose pid
                     # merely starts with ours

. "$(dirname "$0")/lib/harness.sh"

for f in "$FP" "$CRASHY" "$HOSTILE" "$PRODUCER"; do
  if [ ! -e "$f" ]; then
    nok "setup" "need $f (run make first)"
    echo "$pass passed, $fail failed"
    exit 1
  fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-serve.XXXXXX") || exit 1

# Every process this script starts inherits this tag, so one that outlives
# its test is found at the end even after it was reparented.
FORKPOOL_SERVE_TEST_TAG="forkpool-serve-test-$$-$(date +%s%N)"
export FORKPOOL_SERVE_TEST_TAG
HARNESS_TAG_VAR=FORKPOOL_SERVE_TEST_TAG

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# serve NAME LOG [OPTION...]: serve_pool (tests/lib/harness.sh) with the
# crashy plugin as the handler.
serve() {
  _svn=$1
  _svl=$2
  shift 2
  serve_pool "$_svn" "$_svl" --handler "$CRASHY" "$@"
}

idle() { stat_is "$1" queued 0 running 0; }

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
      fails "$_f: unexpected line $_n: '$_line'"
      exec 3<&-
      return 1
    fi
    # shellcheck disable=SC2254 # the pattern is a glob on purpose
    case $_line in
      $1) ;;
      *) fails "$_f: line $_n is '$_line', want '$1'"; exec 3<&-; return 1 ;;
    esac
    shift
  done
  exec 3<&-
  [ $# -eq 0 ] || { fails "$_f: only $_n lines; missing one like '$1'"; return 1; }
}
expect_rc() { [ "$1" = "$2" ] || fails "${3:-exit status} $1, want $2"; }
# same_lines FILE N LINE: FILE is N copies of LINE.
same_lines() {
  _c=$(grep -cxF -e "$3" "$1")
  _t=$(wc -l <"$1")
  [ "$_c" = "$2" ] && [ "$_t" = "$2" ] ||
    fails "$1: $_c of $_t lines are '$3', want all $2 ($(grep -vxF -e "$3" "$1" | head -n 1))"
}
# tasks N WORD...: N arguments, each the words.
tasks() { _k=$1; shift; _i=0; while [ $_i -lt "$_k" ]; do printf '%s\n' "$*"; _i=$((_i + 1)); done; }

A=${P}a
# --- 1. ready line, pidfile, segment ----------------------------------------
serve "$A" "$T/a.log" --workers 2 --timeout 500 --queue 64 --pidfile "$T/a.pid"
a_wrap=$wrap a_pid=$spid
ts='[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
grep ' INFO ready: ' "$T/a.log" >"$T/ready"
# shellcheck disable=SC2016
expect_lines "$T/ready" "$ts INFO ready: pool '$A' (segment /dev/shm/forkpool.$A), 2 workers, 64 slots, supervisor pid $a_pid"
[ "$(cat "$T/a.pid" 2>/dev/null)" = "$a_pid" ] || fails "pidfile holds '$(cat "$T/a.pid" 2>/dev/null)', want $a_pid"
[ "$(stat -c %a /dev/shm/forkpool."$A" 2>/dev/null)" = 600 ] || fails "segment mode is not 600"
tr '\0' ' ' </proc/"$a_pid"/cmdline 2>/dev/null | grep -q " serve --name $A " || fails "pid $a_pid is not the server"
check "serve: ready line, pidfile and segment"

# A pidfile that cannot be written: found before starting (no such
# directory), or only at rename time (the path is a directory).
G=${P}g
mkdir "$T/piddir"
for pf in "$T/nodir/g.pid" "$T/piddir"; do
  $TMO "$FP" serve --name "$G" --handler "$CRASHY" --workers 1 --pidfile "$pf" >/dev/null 2>"$T/g.log"
  expect_rc $? 1 "--pidfile $pf: exit status"
  grep -q " ERROR cannot write pidfile $pf: " "$T/g.log" || fails "--pidfile $pf: $(tail -n 1 "$T/g.log")"
  [ -e /dev/shm/forkpool."$G" ] && fails "--pidfile $pf: segment left"
done
# shellcheck disable=SC2012
[ "$(ls -A "$T/piddir" "$T" | grep -c '\.tmp\.')" = 0 ] || fails "temporary pidfile left"
check "serve: a pidfile that cannot be written stops it with exit status 1"

# --- 2. four concurrent submit loops with crashes and hangs --------------------
t0=$(now)
for i in 1 2 3 4; do
  (
    for k in 1 2 3; do
      if [ "$k" = 1 ]; then
        $TMO "$FP" submit --name "$A" "a$i$k" segv "b$i$k" hang "fail 7" >"$T/l$i$k.out" 2>"$T/l$i$k.err"
      else
        $TMO "$FP" submit --name "$A" "a$i$k" segv "b$i$k" "fail 7" >"$T/l$i$k.out" 2>"$T/l$i$k.err"
      fi
      echo $? >"$T/l$i$k.rc"
    done
  ) &
  eval "loop$i=\$!"
done
# shellcheck disable=SC2154
wait "$loop1" "$loop2" "$loop3" "$loop4"
t1=$(now)
for i in 1 2 3 4; do
  for k in 1 2 3; do
    if [ "$k" = 1 ]; then
      expect_lines "$T/l$i$k.out" "ok${TAB}A$i$k" "crashed${TAB}SIGSEGV" "ok${TAB}B$i$k" "timeout${TAB}SIGKILL" "failed${TAB}code=7"
    else
      expect_lines "$T/l$i$k.out" "ok${TAB}A$i$k" "crashed${TAB}SIGSEGV" "ok${TAB}B$i$k" "failed${TAB}code=7"
    fi
    expect_rc "$(cat "$T/l$i$k.rc")" 1 "loop $i run $k: exit status"
  done
done
info "12 submits, 52 tasks, 4 loops: $(secs "$t0" "$t1") s"
check "submit: four concurrent loops with crashes and hangs get every result"

wait_until 3 idle "$A" || fails "pool not idle: $(cat "$T/st.top")"
sub=$(jget submitted)
sum=$(( $(jget ok) + $(jget failed) + $(jget crashed) + $(jget timeout) + $(jget cancelled) ))
[ "$sub" = "$sum" ] || fails "submitted $sub != ok+failed+crashed+timeout+cancelled $sum"
[ "$sub" = 52 ] || fails "submitted $sub, want 52"
[ "$(jget crashed)" = 12 ] || fails "crashed $(jget crashed), want 12"
[ "$(jget timeout)" = 4 ] || fails "timeout $(jget timeout), want 4"
[ "$(jget ok)" = 24 ] || fails "ok $(jget ok), want 24"
[ "$(jget failed)" = 12 ] || fails "failed $(jget failed), want 12"
[ "$(jget supervisor)" = "$a_pid" ] || fails "supervisor $(jget supervisor), want $a_pid"
check "stat --json: counters add up"

# --- 3. no pool, bad names ---------------------------------------------------
t0=$(now)
$TMO "$FP" submit --name "${P}none" hello >"$T/np.out" 2>"$T/np.err"
rc=$?
t1=$(now)
expect_rc $rc 3
grep -qF "no forkpool named ${P}none is running" "$T/np.err" || fails "stderr: $(head -n 1 "$T/np.err")"
[ -s "$T/np.out" ] && fails "wrote to stdout"
within "$t0" "$t1" 1 || fails "took $(secs "$t0" "$t1") s"
$TMO "$FP" stat --name "${P}none" >"$T/np.out" 2>"$T/np.err"
expect_rc $? 3 "stat: exit status"
check "submit and stat without a pool exit 3 at once"

for bad in "a/b" "-x" "" "a b" "$(printf '%065d' 0)"; do
  $TMO "$FP" serve --name "$bad" --handler "$CRASHY" >"$T/bad.out" 2>"$T/bad.err"
  expect_rc $? 2 "serve --name '$bad': exit status"
  grep -qF "[A-Za-z0-9_-], 1-64 chars, not starting with '-'" "$T/bad.err" ||
    fails "serve --name '$bad': $(head -n 1 "$T/bad.err")"
done
$TMO "$FP" submit --name "a.b" x >/dev/null 2>"$T/bad.err"
expect_rc $? 2 "submit --name a.b: exit status"
$TMO "$FP" serve --name "${P}m" --handler "$CRASHY" --mode 0800 >/dev/null 2>"$T/bad.err"
expect_rc $? 2 "--mode 0800: exit status"
[ -e /dev/shm/forkpool."${P}m" ] && fails "a refused serve created a segment"
check "bad names and modes are refused with the rules"

# --- 4. a second server on a live name -------------------------------------
ino=$(stat -c %i /dev/shm/forkpool."$A")
t0=$(now)
$TMO "$FP" serve --name "$A" --handler "$CRASHY" --pidfile "$T/a.pid" >"$T/dup.out" 2>"$T/dup.err"
rc=$?
t1=$(now)
expect_rc $rc 1
grep -qF "a live forkpool already serves $A (pid $a_pid)" "$T/dup.err" || fails "stderr: $(tail -n 1 "$T/dup.err")"
within "$t0" "$t1" 2 || fails "took $(secs "$t0" "$t1") s"
[ "$(stat -c %i /dev/shm/forkpool."$A")" = "$ino" ] || fails "segment was replaced"
[ "$(cat "$T/a.pid")" = "$a_pid" ] || fails "pidfile changed"
$TMO "$FP" submit --name "$A" still >"$T/dup.out" 2>&1
expect_lines "$T/dup.out" "ok${TAB}STILL"
check "a second serve on a live name is refused and changes nothing"

# --- 5. producer example -----------------------------------------------------
$TMO "$PRODUCER" "$A" hello segv "fail 7" world >"$T/prod.out" 2>"$T/prod.err"
rc=$?
expect_lines "$T/prod.out" "\[0\] hello -> ok: HELLO *" "\[1\] segv -> crashed: SIGSEGV *" \
  "\[2\] fail 7 -> failed: code 7 *" "\[3\] world -> ok: WORLD *"
expect_rc $rc 1
$TMO "$PRODUCER" "$A" >"$T/prod.out" 2>"$T/prod.err"
[ "$(wc -l <"$T/prod.out")" -ge 3 ] || fails "default batch: $(cat "$T/prod.out" "$T/prod.err")"
$TMO "$PRODUCER" "${P}none" x >/dev/null 2>"$T/prod.err"
expect_rc $? 3 "producer without a pool: exit status"
check "examples/producer attaches and gets results"

# --- 5b. submit --timeout, --json, stdin ---------------------------------------
t0=$(now)
# Generous margins: the machine may be loaded; only "gives up well before
# the slow task ends" is asserted.
# (Pool A kills tasks after 500 ms: the submit gives up before that.)
# Earlier tests may leave a task running for a while: start from idle.
wait_until 5 sh -c "$FP stat --name $A --json | grep -q '\"running\":0'" ||
  fails "pool A never became idle"
$TMO "$FP" submit --name "$A" --timeout 300 "sleep 1000" hello >"$T/wt.out" 2>"$T/wt.err"
rc=$?
t1=$(now)
expect_lines "$T/wt.out" "error${TAB}no result within 300 ms" "ok${TAB}HELLO"
expect_rc $rc 1
within "$t0" "$t1" 5 || fails "took $(secs "$t0" "$t1") s"
printf 'x\nsegv\n\n' | $TMO "$FP" submit --name "$A" --json >"$T/js.out" 2>"$T/js.err"
rc=$?
expect_lines "$T/js.out" '{"seq":0,"id":[1-9]*,"status":"ok","output":"X","attempts":1,"worker":*,"ms":*}' \
  '{"seq":1,"id":[1-9]*,"status":"crashed","signal":"SIGSEGV",*}' '{"seq":2,"id":[1-9]*,"status":"ok","output":"",*}'
expect_rc $rc 1
st "$A"
if command -v python3 >/dev/null 2>&1; then
  cat "$T/js.out" "$T/st.json" | python3 -c '
import json, sys
for n, line in enumerate(sys.stdin):
    o = json.loads(line)
    assert isinstance(o, dict), "line %d is not an object" % n
st = o
for k in ("supervisor", "workers", "alive", "queued", "slots", "running",
          "clients", "submitted", "ok", "failed", "crashed", "timeout",
          "cancelled", "restarts", "abandoned"):
    assert isinstance(st[k], int), "stat: %s is not an integer" % k
assert isinstance(st["workers_rows"], list) and st["workers_rows"], "no rows"
for r in st["workers_rows"]:
    assert set(r) == {"row", "pid", "state", "task", "running_ms", "done",
                      "restarts"}, "row keys %r" % sorted(r)
' 2>"$T/py.err" || fails "invalid JSON: $(tail -n 1 "$T/py.err")"
fi
check "submit --timeout gives up in time; --json and stat --json are valid JSON"

# --- 6. SIGHUP under load ----------------------------------------------------
wait_until 3 stat_is "$A" alive 2 running 0 || fails "not 2 idle workers: $(cat "$T/st.top")"
old=$(row_pids)
tasks 60 sleep 20 | $TMO "$FP" submit --name "$A" >"$T/hup.out" 2>"$T/hup.err" &
job=$!
wait_until 3 stat_is "$A" running 2 || fails "load did not start"
kill -s HUP "$a_pid"
wait $job
expect_rc $? 0 "submit: exit status"
same_lines "$T/hup.out" 60 "ok${TAB}slept 20"
gone() { st "$A" && new=$(row_pids) && [ -n "$new" ] && for p in $old; do case " $new " in *" $p "*) return 1 ;; esac; done; }
wait_until 3 gone || fails "old workers still there: was $old, now $new"
grep -q "INFO SIGHUP" "$T/a.log" || fails "no SIGHUP line in the log"
check "SIGHUP replaces every worker under load, no task lost"

# --- 7. SIGTTIN / SIGTTOU under load --------------------------------------------
tasks 200 sleep 10 | $TMO "$FP" submit --name "$A" >"$T/ttin.out" 2>"$T/ttin.err" &
job=$!
kill -s TTIN "$a_pid"
wait_until 3 stat_is "$A" workers 3 alive 3 || fails "after TTIN: $(cat "$T/st.top")"
kill -s TTOU "$a_pid"
wait_until 3 stat_is "$A" workers 2 alive 2 || fails "after TTOU: $(cat "$T/st.top")"
for k in 1 2 3; do kill -s TTOU "$a_pid"; sleep 0.05; done
wait_until 3 stat_is "$A" workers 1 alive 1 || fails "after 3 more TTOU: $(cat "$T/st.top")"
sleep 0.2
stat_is "$A" workers 1 alive 1 || fails "went below one: $(cat "$T/st.top")"
kill -s TTIN "$a_pid"
wait_until 3 stat_is "$A" workers 2 alive 2 || fails "back to 2: $(cat "$T/st.top")"
wait $job
expect_rc $? 0 "submit: exit status"
same_lines "$T/ttin.out" 200 "ok${TAB}slept 10"
grep -q "WARN resize refused" "$T/a.log" || fails "no 'resize refused' in the log"
check "SIGTTIN/SIGTTOU resize 2 -> 3 -> 2 -> 1 (never 0) under load, no task lost"

# --- 8. a producer killed mid-flight -------------------------------------------
Bq=${P}b
serve "$Bq" "$T/b.log" --workers 2 --queue 8
b_wrap=$wrap
st "$Bq"
ab0=$(jget abandoned)
$TMO "$FP" submit --name "$Bq" "sleep 300" "sleep 300" "sleep 300" "sleep 300" "sleep 300" "sleep 300" >/dev/null 2>&1 &
job=$!
sleep 0.1
for s in $(ps -o pid= --ppid $job); do kill -KILL "$s"; done
# The shell reports a job killed by a signal with a bare "Killed" line on
# its stderr when it is waited for; braces around the wait send that
# report (only that: the job's own stderr was set when it started) to
# /dev/null, and its status is checked instead: `timeout` dies of the
# signal that killed its command, so 128 + 9.
{ wait $job; } 2>/dev/null
expect_rc $? 137 "killed submit: exit status (SIGKILL)"
wait_until 3 stat_is "$Bq" abandoned $((ab0 + 6)) queued 0 running 0 clients 0 ||
  fails "after the kill: $(cat "$T/st.top"), want abandoned $((ab0 + 6))"
# A lone producer may hold 6 of the 8 slots (its share: 8 - 8/4): all of it.
tasks 6 sleep 300 | $TMO "$FP" submit --name "$Bq" >"$T/cap.out" 2>"$T/cap.err" &
job=$!
wait_until 2 stat_is "$Bq" submitted 12 || fails "6 more tasks not all taken: $(cat "$T/st.top")"
[ $(( $(jget queued) + $(jget running) )) = 6 ] || fails "queued + running = $(( $(jget queued) + $(jget running) )), want 6"
wait $job
expect_rc $? 0 "submit: exit status"
same_lines "$T/cap.out" 6 "ok${TAB}slept 300"
stop "$b_wrap"
expect_rc $rc 0 "serve: exit status"
check "a producer killed with -9: results abandoned, full capacity usable again"

# --- 9. kill -9 of the supervisor while producers wait --------------------------
C=${P}c
serve "$C" "$T/c.log" --workers 3
c_wrap=$wrap c_pid=$spid
for i in 1 2 3; do
  $TMO "$FP" submit --name "$C" "sleep 3000" >"$T/k$i.out" 2>"$T/k$i.err" &
  eval "k$i=\$!"
done
wait_until 3 stat_is "$C" running 3 || fails "tasks not running: $(cat "$T/st.top")"
wpids=$(row_pids)
[ "$(echo "$wpids" | wc -w)" = 3 ] || fails "workers: '$wpids'"
kill -KILL "$c_pid"
t0=$(now)
# shellcheck disable=SC2154
wait "$k1"; r1=$?
# shellcheck disable=SC2154
wait "$k2"; r2=$?
# shellcheck disable=SC2154
wait "$k3"; r3=$?
t1=$(now)
wait "$c_wrap"
reaped "$c_wrap"
within "$t0" "$t1" 2 || fails "submits took $(secs "$t0" "$t1") s to exit"
for i in 1 2 3; do
  eval "r=\$r$i"
  expect_rc "$r" 3 "submit $i: exit status"
  grep -qF "supervisor of $C died" "$T/k$i.err" || fails "submit $i: $(head -n 1 "$T/k$i.err")"
done
alive() { for p in $wpids; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
wait_until 2 eval '! alive' || fails "workers still alive: $wpids"
info "producers exited $(secs "$t0" "$t1") s after kill -9 of the supervisor"
$TMO "$FP" stat --name "$C" >/dev/null 2>"$T/c.err"
expect_rc $? 3 "stat of a dead pool: exit status"
grep -qF "no forkpool named $C is running" "$T/c.err" || fails "stat: $(head -n 1 "$T/c.err")"
serve "$C" "$T/c2.log" --workers 1
c_wrap=$wrap
$TMO "$FP" submit --name "$C" again >"$T/c2.out" 2>&1
expect_lines "$T/c2.out" "ok${TAB}AGAIN"
stop "$c_wrap"
expect_rc $rc 0 "new serve: exit status"
check "kill -9 of the supervisor: producers exit 3 at once, workers die, a new serve takes over"

# --handler-arg reaches a served pool's handler and its init hook.
HA=${P}ha
serve "$HA" "$T/ha.log" --workers 1 --handler-arg 'served arg'
ha_wrap=$wrap
printf 'arg\n' | $TMO "$FP" submit --name "$HA" >"$T/ha.out" 2>&1
expect_lines "$T/ha.out" "ok${TAB}arg=served arg init=served arg"
stop "$ha_wrap"
expect_rc $rc 0 "serve --handler-arg: exit status"
check "serve --handler-arg: the handler and forkpool_init get the string"

# --- 10. SIGTERM drains queued work -----------------------------------------------
D=${P}d
serve "$D" "$T/d.log" --workers 2 --grace 10000 --pidfile "$T/d.pid"
d_wrap=$wrap
tasks 20 sleep 200 | $TMO "$FP" submit --name "$D" >"$T/d.out" 2>"$T/d.err" &
job=$!
wait_until 3 stat_is "$D" submitted 20 || fails "tasks not submitted: $(cat "$T/st.top")"
t0=$(now)
stop "$d_wrap"
t1=$(now)
expect_rc $rc 0 "serve: exit status"
wait $job
expect_rc $? 0 "submit: exit status"
same_lines "$T/d.out" 20 "ok${TAB}slept 200"
[ -e /dev/shm/forkpool."$D" ] && fails "segment left"
[ -e "$T/d.pid" ] && fails "pidfile left"
grep -q "INFO draining" "$T/d.log" || fails "no draining line"
info "drained 20 x 200 ms on 2 workers in $(secs "$t0" "$t1") s"
check "SIGTERM drains: every queued task ends ok, serve exits 0, nothing left"

# --- 11. SIGTERM with a short grace cancels -------------------------------------
E=${P}e
serve "$E" "$T/e.log" --workers 2 --grace 300
e_wrap=$wrap
$TMO "$FP" submit --name "$E" "sleep 5000" "sleep 5000" "sleep 5000" "sleep 5000" >"$T/e.out" 2>"$T/e.err" &
job=$!
wait_until 3 stat_is "$E" running 2 queued 2 || fails "not 2 running 2 queued: $(cat "$T/st.top")"
t0=$(now)
stop "$e_wrap"
t1=$(now)
expect_rc $rc 0 "serve: exit status"
wait $job
expect_rc $? 1 "submit: exit status"
same_lines "$T/e.out" 4 "cancelled${TAB}cancelled"
within "$t0" "$t1" 2 || fails "stop took $(secs "$t0" "$t1") s"
[ -e /dev/shm/forkpool."$E" ] && fails "segment left"
check "SIGTERM with --grace 300: long tasks end cancelled, serve exits 0"

# --- 12. inherited ignored signals; SIGINT; submit to a draining pool ---------------
# A server started with SIGINT, SIGHUP and SIGCHLD ignored (nohup, a shell's
# background job, a careless parent) must still see its workers die and
# still drain on SIGINT.
F=${P}f
# (dash does not pass on an ignored SIGCHLD; GNU env >= 8.31 does. An older
# env falls back to the shell's trap, which still covers SIGINT and SIGHUP.)
if env --ignore-signal=CHLD true 2>/dev/null; then
  $STMO env --ignore-signal=INT --ignore-signal=HUP --ignore-signal=CHLD \
    "$FP" serve --name "$F" --handler "$CRASHY" --workers 1 2>"$T/f.log" &
else
  info "env --ignore-signal is missing: SIGCHLD not tested ignored"
  $STMO sh -c 'trap "" INT HUP; exec "$@"' sh \
    "$FP" serve --name "$F" --handler "$CRASHY" --workers 1 2>"$T/f.log" &
fi
f_wrap=$!
servers="$servers $f_wrap"
wait_until 10 grep -qs ' INFO ready: ' "$T/f.log" || fails "no ready line"
f_pid=$(sed -n 's/.* INFO ready: .*supervisor pid \([0-9]*\)$/\1/p' "$T/f.log")
ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/"$f_pid"/status 2>/dev/null)
[ $(( 0x${ign:-0} & 2 )) -ne 0 ] || fails "the test setup failed: SIGINT is not ignored in the server"
$TMO "$FP" submit --name "$F" segv after >"$T/f0.out" 2>&1
expect_lines "$T/f0.out" "crashed${TAB}SIGSEGV" "ok${TAB}AFTER"
$TMO "$FP" submit --name "$F" "sleep 1000" >"$T/f.out" 2>&1 &
job=$!
wait_until 3 stat_is "$F" running 1 || fails "task not running"
kill -s INT "$f_pid"
wait_until 3 stat_is "$F" supervisor "$f_pid" && grep -q "draining" "$T/st.json" ||
  fails "not draining after SIGINT: $(cat "$T/st.json")"
$TMO "$FP" submit --name "$F" late >"$T/f2.out" 2>"$T/f2.err"
expect_rc $? 3 "submit to a draining pool: exit status"
grep -qF "pool $F is shutting down" "$T/f2.err" || fails "late submit: $(head -n 1 "$T/f2.err")"
wait $job
expect_rc $? 0 "running task: exit status"
expect_lines "$T/f.out" "ok${TAB}slept 1000"
wait "$f_wrap"
expect_rc $? 0 "serve: exit status"
reaped "$f_wrap"
check "inherited ignored SIGCHLD/SIGINT: crashes seen, SIGINT drains; late submits exit 3"

# --- 12b. JSON logs, retries, reports, corrupt slots, metrics ---------------------
# A pool with JSON logs at debug level, one worker, two attempts per task,
# the segment sealed and worker memory capped.
# (ASan needs far more address space than --max-memory 64 leaves.)
H=${P}h
asan=""
mm=64
ldd "$FP" 2>/dev/null | grep -q libasan && asan=1 mm=0
$STMO "$FP" serve --name "$H" --handler "$CRASHY" --workers 1 --queue 8 \
  --max-input 256 --max-output 4096 --max-attempts 2 --seal \
  --max-memory "$mm" \
  --log-format json --log-level debug 2>"$T/h.log" &
h_wrap=$!
servers="$servers $h_wrap"
wait_until 10 grep -qs '"level":"info","msg":"ready: ' "$T/h.log" || fails "no JSON ready line: $(tail -n 1 "$T/h.log")"
$TMO "$FP" submit --name "$H" --json --backtrace hello segv >"$T/h1.json" 2>"$T/h1.err"
expect_rc $? 1
expect_lines "$T/h1.json" '{"seq":0,"id":[1-9]*,"status":"ok","output":"HELLO","attempts":1,*}' \
  '{"seq":1,"id":[1-9]*,"status":"crashed","signal":"SIGSEGV","backtrace":"SIGSEGV at address 0x0\\n#0 *crashy_segv+*","attempts":2,*}'
# The id correlates a result with the log: each of its two deaths is
# logged exactly once, with pid, task id, attempt, signal and run time.
id=$(sed -n '2s/^{"seq":1,"id":\([0-9]*\),.*/\1/p' "$T/h1.json")
for a in 1 2; do
  n=$(grep -c '"level":"warn","msg":"worker [0-9]* died running task '"$id"' (attempt '"$a"'): SIGSEGV after [0-9]*\.[0-9]* ms (crashed): SIGSEGV at address 0x0 | #0 .*crashy_segv' "$T/h.log")
  [ "$n" = 1 ] || fails "task $id attempt $a: logged $n times"
done
grep -q '"level":"error","msg":"task '"$id"' quarantined as poison' "$T/h.log" || fails "no quarantine line for task $id"
grep -q '"level":"debug","msg":"worker [0-9]* started in row 0"}$' "$T/h.log" || fails "no debug line"
$TMO "$FP" submit --name "$H" --backtrace segv "exit 3" >"$T/h2.out" 2>"$T/h2.err"
expect_lines "$T/h2.out" "crashed${TAB}SIGSEGV${TAB}SIGSEGV at address 0x0 | #0 *crashy_segv+* | #* forkpool_handler+*" \
  "crashed${TAB}exit=3"
if [ -n "$asan" ]; then
  info "SKIP --max-memory: $FP is an ASan build"
else
  echo oom | CRASHY_OOM_MB=1024 $TMO "$FP" submit --name "$H" >"$T/h3.out" 2>&1
  expect_lines "$T/h3.out" "crashed${TAB}SIGABRT"
fi
check "submit --json gives task ids that match the log; --backtrace; serve --max-attempts, --seal, --max-memory"

# corrupt: damage the input of a queued task in the segment (as a stray
# write would); the worker finds it fails its check and does not run it.
for fmt in plain json; do
  mark="MARK$$$fmt"
  if [ $fmt = json ]; then jflag=--json; else jflag=; fi
  # shellcheck disable=SC2086 # $jflag is empty or one word
  $TMO "$FP" submit --name "$H" $jflag "sleep 600" "$mark" >"$T/cor.$fmt" 2>"$T/cor.err" &
  job=$!
  wait_until 3 stat_is "$H" running 1 queued 1 || fails "$fmt: not 1 running, 1 queued: $(cat "$T/st.top")"
  off=$(grep -boa "$mark" /dev/shm/forkpool."$H" | head -n 1 | cut -d: -f1)
  if [ -n "$off" ]; then
    printf 'Q' | dd of=/dev/shm/forkpool."$H" bs=1 seek="$off" conv=notrunc status=none
  else
    fails "$fmt: input not found in the segment"
  fi
  wait $job
  expect_rc $? 1 "$fmt: submit exit status"
done
expect_lines "$T/cor.plain" "ok${TAB}slept 600" "corrupt${TAB}code=74"
expect_lines "$T/cor.json" '{"seq":0,"id":*,"status":"ok","output":"slept 600",*}' \
  '{"seq":1,"id":*,"status":"corrupt","code":74,"attempts":*}'
check "a task whose input was damaged ends corrupt, code=74 (EBADMSG)"

# stat --prometheus: valid exposition, values that agree with --json.
$TMO "$FP" stat --name "$H" --prometheus >"$T/prom.txt" 2>"$T/prom.err"
expect_rc $? 0 "stat --prometheus: exit status"
st "$H"
pv() { sed -n "s/^$1{pool=\"$H\"${2:-}} \\([0-9.]*\\)\$/\\1/p" "$T/prom.txt"; }
for k in submitted; do
  [ "$(pv forkpool_tasks_${k}_total)" = "$(jget $k)" ] || fails "$k: $(pv forkpool_tasks_${k}_total) vs $(jget $k)"
done
for k in ok failed crashed timeout cancelled; do
  [ "$(pv forkpool_tasks_finished_total ",status=\"$k\"")" = "$(jget $k)" ] ||
    fails "finished $k: '$(pv forkpool_tasks_finished_total ",status=\"$k\"")' vs $(jget $k)"
done
[ "$(pv forkpool_workers_configured)" = 1 ] || fails "workers_configured $(pv forkpool_workers_configured)"
[ "$(pv forkpool_queue_slots)" = 8 ] || fails "queue_slots $(pv forkpool_queue_slots)"
[ "$(pv forkpool_up)" = 1 ] || fails "up $(pv forkpool_up)"
# Two poison tasks, each retried once; two damaged inputs.
for m in task_retries_total:retried:2 tasks_quarantined_total:quarantined:2 corrupt_slots_total:corrupt:2; do
  metric=forkpool_${m%%:*}
  k=${m#*:}
  k=${k%:*}
  [ "$(pv "$metric")" = "$(jget "$k")" ] && [ "$(jget "$k")" -ge "${m##*:}" ] ||
    fails "$metric $(pv "$metric"), stat --json $k $(jget "$k"), want >= ${m##*:}"
done
# Histogram: cumulative buckets, +Inf equal to _count, at least one
# observation per finished task but cancelled.
awk -v pool="$H" -v ran=$(( $(jget ok) + $(jget failed) + $(jget crashed) + $(jget timeout) )) '
  /^forkpool_task_duration_seconds_bucket/ { v = $2 + 0; if (v < last) bad = "not cumulative"; last = v; inf = v; nb++ }
  /^forkpool_task_duration_seconds_count/ { cnt = $2 + 0 }
  END {
    if (nb < 2) bad = "only " nb " buckets"
    else if (inf != cnt) bad = "+Inf " inf " != count " cnt
    else if (cnt < ran) bad = "count " cnt " < tasks that ran " ran
    if (bad != "") { print bad; exit 1 }
  }' "$T/prom.txt" >"$T/hist.err" || fails "histogram: $(cat "$T/hist.err")"
grep -q '^forkpool_task_duration_seconds_bucket{pool="'"$H"'",le="+Inf"} ' "$T/prom.txt" || fails "no +Inf bucket"
bad=$(grep -v '^# \(HELP\|TYPE\) forkpool_[a-z_]* ' "$T/prom.txt" | grep -cv '^forkpool_[a-z_]*{pool="'"$H"'"[^}]*} [0-9.]*$')
[ "$bad" = 0 ] || fails "$bad lines not forkpool_*{pool=...} VALUE"
sh "$(dirname "$0")/need-tool.sh" promtool prometheus 2>"$T/pt.err"
case $? in
  0) promtool check metrics <"$T/prom.txt" >"$T/pt.out" 2>&1 ||
       fails "promtool check metrics: $(head -n 3 "$T/pt.out" | tr '\n' ' ')" ;;
  2) info "SKIP promtool unavailable (not root, or no apt-get): $(head -n 1 "$T/pt.err")" ;;
  *) fails "promtool could not be installed: $(tail -n 1 "$T/pt.err")" ;;
esac
$TMO "$FP" stat --name "$H" --json --prometheus >/dev/null 2>"$T/prom.err"
expect_rc $? 2 "stat --json --prometheus: exit status"
check "stat --prometheus: promtool-valid, counters, gauges and histogram agree"

stop "$h_wrap"
expect_rc $rc 0 "serve: exit status"
grep -q '"level":"info","msg":"stopped: pool' "$T/h.log" || fails "no JSON 'stopped' line"
if command -v python3 >/dev/null 2>&1; then
  python3 -c '
import json, re, sys
for n, line in enumerate(open(sys.argv[1], "rb")):
    o = json.loads(line.decode("utf-8", "strict"))
    assert list(o) == ["ts", "level", "msg"], "line %d: keys %r" % (n, list(o))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["ts"]), o["ts"]
    assert o["level"] in ("debug", "info", "warn", "error"), o["level"]
' "$T/h.log" 2>"$T/py.err" || fails "JSON log: $(tail -n 1 "$T/py.err")"
fi
check "serve --log-format json: every line one JSON object"

# --log-level error: a crash, a start and a stop log nothing.
I=${P}i
$STMO "$FP" serve --name "$I" --handler "$CRASHY" --workers 1 --log-level error 2>"$T/i.log" &
i_wrap=$!
servers="$servers $i_wrap"
wait_until 10 stat_is "$I" alive 1 || fails "serve --log-level error did not start"
$TMO "$FP" submit --name "$I" segv >/dev/null 2>&1
stop "$i_wrap"
expect_rc $rc 0 "serve: exit status"
[ -s "$T/i.log" ] && fails "logged below error: $(head -n 1 "$T/i.log")"
"$FP" serve --help >"$T/help.out" 2>&1
for f in --max-attempts --max-memory --seal --log-level --log-format; do
  grep -qF -e "$f" "$T/help.out" || fails "serve --help lacks $f"
done
check "serve --log-level error logs nothing for a normal life; --help lists the flags"

# --- 12c. scheduling: priority, cancel, min/max workers -----------------------------
G=${P}g
serve "$G" "$T/g.log" --workers 1
g_wrap=$wrap
# A long task holds the one worker; it is cancelled by id (read from stat)
# from another process, and its producer is told.
$TMO "$FP" submit --name "$G" --json 'sleep 5000' >"$T/g.cancel" 2>&1 &
gsub=$!
wait_until 5 sh -c "$FP stat --name $G --json | grep -q '\"task\":[1-9]'" ||
  fails "the task never started"
id=$("$FP" stat --name "$G" --json | sed -n 's/.*"task":\([0-9][0-9]*\).*/\1/p' | head -n 1)
$TMO "$FP" cancel --name "$G" "$id" >"$T/g.c1" 2>&1 || fails "cancel: $(cat "$T/g.c1")"
grep -q "killing" "$T/g.c1" || fails "cancel did not say killing: $(cat "$T/g.c1")"
t0=$(now)
wait "$gsub"
within "$t0" "$(now)" 2 || fails "the cancelled task's producer waited $(secs "$t0" "$(now)") s"
grep -q "\"id\":$id,\"status\":\"cancelled\"" "$T/g.cancel" || fails "not cancelled: $(cat "$T/g.cancel")"
# Once its result was collected, an id is unknown to the pool.
$TMO "$FP" cancel --name "$G" "$id" 123456789 >"$T/g.c3" 2>&1
expect_rc $? 1 "cancel of a collected and an unknown id"
[ "$(grep -c "unknown" "$T/g.c3")" = 2 ] || fails "not reported: $(cat "$T/g.c3")"
$TMO "$FP" cancel --name "$G" >/dev/null 2>&1
expect_rc $? 2 "cancel without an id"
check "cancel: a running task is killed and ends cancelled, its producer is told; unknown ids exit 1"

# Under load the pool grows to 3 workers, then shrinks back to 1 when idle.
H=${P}h
serve "$H" "$T/h.log" --workers 1 --min-workers 1 --max-workers 3 --idle-ms 200
h_wrap=$wrap
seq 60 | sed 's/^/sleep /; s/$/0/' >"$T/g.load"
$TMO "$FP" submit --name "$H" <"$T/g.load" >"$T/g.out" 2>&1 &
gsub=$!
wait_until 10 sh -c "$FP stat --name $H | grep -q '3 alive'" || fails "never grew to 3 workers: $($FP stat --name $H | grep workers)"
wait "$gsub" || fails "loaded submit failed"
[ "$(grep -c "^ok${TAB}slept" "$T/g.out")" = 60 ] || fails "tasks lost while resizing: $(grep -vc "^ok" "$T/g.out") not ok"
wait_until 10 sh -c "$FP stat --name $H | grep -q '1 target, 1 alive'" || fails "never shrank back: $($FP stat --name $H | grep workers)"
"$FP" stat --name "$H" | grep -q 'resizing 1..3, last resize' || fails "stat does not show the resize: $($FP stat --name $H | grep workers)"
grep -q 'workers 1 -> 2 (tasks waiting' "$T/h.log" || fails "no resize logged"
check "--min-workers/--max-workers: grows under load, shrinks when idle, no task lost; stat shows it"
stop "$h_wrap"
expect_rc $rc 0 "serve h: exit status"

# Priority: behind a held worker, high-priority tasks start first.
$TMO "$FP" submit --name "$G" 'sleep 300' >/dev/null 2>&1 &
hold=$!
sleep 0.1
$TMO "$FP" submit --name "$G" 'sleep 1' 'sleep 2' 'sleep 3' >"$T/g.norm" 2>&1 &
norm=$!
sleep 0.1
$TMO "$FP" submit --name "$G" --priority high 'sleep 4' >"$T/g.high" 2>&1 &
high=$!
wait "$high" "$norm" "$hold"
grep -q "^ok${TAB}slept 4" "$T/g.high" || fails "high task: $(cat "$T/g.high")"
$TMO "$FP" submit --name "$G" --priority urgent x >/dev/null 2>"$T/g.bad"
expect_rc $? 2 "submit --priority urgent"
check "submit --priority high; a bad priority is a usage error"
stop "$g_wrap"
expect_rc $rc 0 "serve g: exit status"

# --- 12d. a task's processes end with it, in its own session too --------------
# hostile.so's setsidhang forks a child that calls setsid() (out of the
# worker's process group), records its pid in $HOSTILE_PIDS, then hangs.
# After the timeout kill, and after serve stopped, the child must be gone.
HP=$T/hostile.pids
pid_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
# still: recorded processes alive now with the start time they had.
still() { while read -r _p _s; do [ -n "$_s" ] && [ "$(pid_start "$_p")" = "$_s" ] && printf '%s ' "$_p"; done <"$HP.st"; }
stamp() { while read -r _p; do echo "$_p $(pid_start "$_p")"; done <"$HP" >"$HP.st"; }
K=${P}k
rm -f "$HP"
HOSTILE_PIDS=$HP $STMO "$FP" serve --name "$K" --handler "$HOSTILE" --workers 1 \
  --timeout 300 --grace 200 2>"$T/k.log" &
k_wrap=$!
servers="$servers $k_wrap"
wait_until 10 grep -qs ' INFO ready: ' "$T/k.log" || fails "no ready line: $(tail -n 1 "$T/k.log")"
$TMO "$FP" submit --name "$K" "setsidhang 30" >"$T/k.out" 2>"$T/k.err" &
job=$!
wait_until 5 test -s "$HP" || fails "no pid recorded"
[ -s "$HP" ] && stamp
wait $job
expect_rc $? 1 "submit: exit status"
expect_lines "$T/k.out" "timeout${TAB}SIGKILL"
left=$([ -s "$HP.st" ] && still)
[ -z "$left" ] || fails "left after the timeout: $left"
for p in $left; do kill -KILL "$p"; done
check "serve: a timeout kill ends the task's child in its own session"

rm -f "$HP" "$HP.st"
$TMO "$FP" submit --name "$K" "setsidhang 30" >"$T/k.out" 2>"$T/k.err" &
job=$!
wait_until 5 test -s "$HP" || fails "no pid recorded"
[ -s "$HP" ] && stamp
stop "$k_wrap"
expect_rc $rc 0 "serve: exit status"
wait $job
left=$([ -s "$HP.st" ] && still)
[ -z "$left" ] || fails "left after serve stopped: $left"
for p in $left; do kill -KILL "$p"; done
check "serve: stopping ends a running task's child in its own session"

# --- 12e. a worker has neither serve's stdin nor its stdout ----------------------
# serve reads a pipe holding "secret"; a handler that reads stdin gets EOF,
# and what handlers write to fd 1 and 2 is logged, never on serve's stdout.
R=${P}r
printf 'secret' | $STMO "$FP" serve --name "$R" --handler "$HOSTILE" \
  --workers 1 >"$T/r.out" 2>"$T/r.log" &
r_wrap=$!
servers="$servers $r_wrap"
wait_until 10 grep -qs ' INFO ready: ' "$T/r.log" || fails "no ready line: $(tail -n 1 "$T/r.log")"
$TMO "$FP" submit --name "$R" readstdin 'stdout EVIL' 'stderr BAD' >"$T/r.sub" 2>&1 ||
  fails "submit: $(cat "$T/r.sub")"
printf 'ok\tread 0\nok\twrote\nok\twrote\n' | cmp -s - "$T/r.sub" ||
  fails "results: $(cat "$T/r.sub")"
stop "$r_wrap"
expect_rc $rc 0 "serve r: exit status"
[ -s "$T/r.out" ] && fails "serve's stdout got: $(cat "$T/r.out")"
grep -q ') stdout: EVIL$' "$T/r.log" || fails "no stdout line logged: $(cat "$T/r.log")"
grep -q ') stderr: BAD$' "$T/r.log" || fails "no stderr line logged"
check "serve: workers read /dev/null, not serve's stdin; their stdout and stderr go to the log"

# --- 12f. issue 13: hostile environments (full /dev/shm, signal storms, other users)
# Cases that need root (chown, useradd, unshare, setpriv) say "# SKIP" without
# it. Temporary users and groups are named after this shell's pid and removed
# at exit, whatever happens.

# A SIGTERM storm: serve exits 0 and removes its segment and pidfile, however
# many SIGTERMs arrive (20 rounds: the old code lost about half of them).
storm_bad=0
k=0
while [ $k -lt 20 ]; do
  k=$((k + 1))
  rm -f "$T/s.pid"
  $STMO "$FP" serve --name "${P}s" --handler "$CRASHY" --workers 1 --pidfile "$T/s.pid" 2>"$T/s.log" &
  wrap=$!
  servers="$servers $wrap"
  wait_until 10 test -s "$T/s.pid" || { fails "round $k: no pidfile: $(tail -n 1 "$T/s.log")"; break; }
  sp=$(cat "$T/s.pid")
  while kill -TERM "$sp" 2>/dev/null; do :; done
  wait "$wrap"
  rc=$?
  reaped "$wrap"
  left=""
  [ -e /dev/shm/forkpool."${P}s" ] && left="$left segment"
  [ -e "$T/s.pid" ] && left="$left pidfile"
  if [ "$rc" != 0 ] || [ -n "$left" ]; then
    storm_bad=$((storm_bad + 1))
    [ $storm_bad = 1 ] && fails "round $k: exit status $rc, left:${left:- nothing}"
  fi
  rm -f /dev/shm/forkpool."${P}s"
done
[ $storm_bad = 0 ] || fails "$storm_bad of $k rounds not clean"
check "serve: a SIGTERM storm: exit 0, segment and pidfile removed ($k rounds)"

# shellcheck disable=SC2046 # $(asu U) is a command prefix: split on purpose
if [ "$(id -u)" != 0 ]; then
  info "SKIP issue 13 cases for other users, /dev/shm and limits: not root"
else
# Temporary users: A serves, B is in A's group, C is not.
UA=fpa$$ UB=fpb$$ UC=fpc$$ GS=fpg$$
tusers=""
tgroup=""
rmusers() {
  for u in $tusers; do userdel "$u" >/dev/null 2>&1; done
  [ -n "$tgroup" ] && groupdel "$tgroup" >/dev/null 2>&1
  tusers=""
  tgroup=""
}
trap 'cleanup; rmusers' EXIT
users_ok=1
: >"$T/user.err"
for t in setpriv prlimit useradd groupadd userdel groupdel truncate; do
  command -v "$t" >/dev/null 2>&1 || { users_ok=0; echo "no $t" >"$T/user.err"; }
done
[ $users_ok = 1 ] && { groupadd "$GS" 2>"$T/user.err" && tgroup=$GS || users_ok=0; }
for u in "$UA" "$UB" "$UC"; do
  [ $users_ok = 1 ] || break
  case $u in "$UA") g="-g $GS" ;; "$UB") g="-G $GS" ;; *) g="" ;; esac
  # shellcheck disable=SC2086 # $g is an option and its value
  useradd -M -N -s /usr/sbin/nologin $g "$u" 2>>"$T/user.err" && tusers="$tusers $u" || users_ok=0
done
# asu USER: the command prefix that runs a command as USER, with its primary
# and supplementary groups (after timeout: the wrapper stays root's).
asu() { echo "setpriv --reuid=$1 --regid=$(id -g "$1") --init-groups"; }

# The temporary pidfile is made exclusively, under a name nobody can guess:
# a file another user planted under the old predictable name ".BASE.tmp.PID"
# is never written, and the pidfile is root's, mode 0644.
mkdir "$T/pd13"
rm -f "$T/p13.sh"
# shellcheck disable=SC2016 # expanded by the inner shell
$STMO sh -c 'echo $$ >"$1"; sleep 0.5; umask 022; exec "$2" serve --name "$3" --handler "$4" --workers 1 --pidfile "$5"' \
  sh "$T/p13.sh" "$FP" "${P}p" "$CRASHY" "$T/pd13/srv.pid" 2>"$T/p13.log" &
wrap=$!
servers="$servers $wrap"
if wait_until 5 test -s "$T/p13.sh"; then
  planted="$T/pd13/.srv.pid.tmp.$(cat "$T/p13.sh")"
  echo planted >"$planted"
  chown 65534:65534 "$planted"
  chmod 0666 "$planted"
  wait_until 10 test -s "$T/pd13/srv.pid" || fails "no pidfile: $(tail -n 1 "$T/p13.log")"
  [ "$(stat -c %u:%a "$T/pd13/srv.pid" 2>/dev/null)" = 0:644 ] ||
    fails "pidfile owner:mode is $(stat -c %u:%a "$T/pd13/srv.pid" 2>/dev/null), want 0:644"
  [ "$(cat "$planted" 2>/dev/null)" = planted ] && [ "$(stat -c %u "$planted")" = 65534 ] ||
    fails "the planted file was written or replaced"
else
  fails "the server's shell did not start"
fi
stop "$wrap"
expect_rc $rc 0 "serve: exit status"
check "serve: the pidfile's temporary file is created exclusively, never another user's"

# A full /dev/shm: in a private mount namespace with a 2 MiB tmpfs there.
if ! command -v unshare >/dev/null 2>&1; then
  info "SKIP full /dev/shm: no unshare"
else
  head -c 60000 /dev/zero | tr '\0' a >"$T/in60k"
  : >"$T/in40"
  k=0
  while [ $k -lt 40 ]; do cat "$T/in60k" >>"$T/in40"; echo >>"$T/in40"; k=$((k + 1)); done
  # The inner script prints "key value" lines; every process is bounded by
  # timeout and dies with the namespace's tmpfs.
  cat >"$T/shm.sh" <<'INNER'
FP=$1 CRASHY=$2 T=$3 N=$4
mount -t tmpfs -o size=2m tmpfs /dev/shm || { echo "mount failed"; exit 0; }
# 1. 64 slots of 64 KiB + 64 KiB: 8 MiB, does not fit.
timeout 20 "$FP" serve --name "${N}a" --handler "$CRASHY" --queue 64 --workers 2 2>"$T/shm.a.log" &
w=$!
i=0
while [ $i -lt 100 ] && ! grep -q ' INFO ready: ' "$T/shm.a.log"; do
  kill -0 $w 2>/dev/null || break
  sleep 0.05; i=$((i + 1))
done
if grep -q ' INFO ready: ' "$T/shm.a.log"; then
  timeout 20 "$FP" submit --name "${N}a" <"$T/in40" >/dev/null 2>&1
  echo "a_submit $?"
  for s in $(ps -o pid= --ppid $w); do kill -TERM $s; done
fi
wait $w
echo "a_serve $?"
echo "a_left $(ls -A /dev/shm | tr '\n' ' ')"
# 2. 8 slots of 60000 + 60000 bytes fit; then somebody fills /dev/shm.
timeout 30 "$FP" serve --name "${N}b" --handler "$CRASHY" --queue 8 --workers 2 \
  --max-input 60000 --max-output 60000 2>"$T/shm.b.log" &
w=$!
i=0
while [ $i -lt 100 ] && ! grep -q ' INFO ready: ' "$T/shm.b.log"; do
  kill -0 $w 2>/dev/null || break
  sleep 0.05; i=$((i + 1))
done
dd if=/dev/zero of=/dev/shm/filler bs=64k count=64 2>/dev/null
echo "b_free $(df -k /dev/shm | awk 'NR == 2 { print $4 }')"
timeout 20 "$FP" submit --name "${N}b" <"$T/in40" >"$T/shm.b.out" 2>&1
echo "b_submit $?"
echo "b_ok $(grep -c '^ok' "$T/shm.b.out")"
for s in $(ps -o pid= --ppid $w); do kill -TERM $s; done
wait $w
echo "b_serve $?"
rm -f /dev/shm/filler
echo "b_left $(ls -A /dev/shm | tr '\n' ' ')"
INNER
  timeout 90 unshare -m sh "$T/shm.sh" "$FP" "$CRASHY" "$T" "${P}f" >"$T/shm.res" 2>&1
  res() { sed -n "s/^$1 //p" "$T/shm.res"; }
  grep -q "mount failed" "$T/shm.res" && fails "cannot mount a tmpfs in the namespace"
  [ -z "$(res a_submit)" ] || fails "serve --queue 64 started in 2 MiB (then submit exit status $(res a_submit))"
  [ "$(res a_serve)" = 1 ] || fails "serve --queue 64: exit status $(res a_serve), want 1"
  grep -q "ERROR segment /dev/shm/forkpool.${P}fa needs 8[0-9]* bytes (8.3 MiB), which do not fit in /dev/shm" "$T/shm.a.log" ||
    fails "no message naming the size and /dev/shm: $(tail -n 2 "$T/shm.a.log" | tr '\n' '|')"
  [ -z "$(res a_left | tr -d ' ')" ] || fails "left in /dev/shm: $(res a_left)"
  check "serve: a segment too large for /dev/shm: refused at start with its size, nothing left"
  [ "$(res b_submit)" = 0 ] || fails "submit exit status $(res b_submit), want 0 (135 is SIGBUS)"
  [ "$(res b_ok)" = 40 ] || fails "$(res b_ok) ok results of 40"
  [ "$(res b_serve)" = 0 ] || fails "serve exit status $(res b_serve), want 0 (135 is SIGBUS)"
  [ -z "$(res b_left | tr -d ' ')" ] || fails "left in /dev/shm: $(res b_left)"
  check "serve: /dev/shm filled after the start: no SIGBUS, 40 large tasks run (free: $(res b_free) KiB)"
fi

if [ $users_ok = 0 ]; then
  info "SKIP cases for other users: cannot create users: $(head -n 1 "$T/user.err")"
else
  # Another user's live pool at the name: named, not called "a live forkpool".
  : >"$T/u1.log"
  $STMO $(asu "$UA") "$FP" serve --name "${P}u" --handler "$CRASHY" --workers 1 2>"$T/u1.log" &
  u_wrap=$!
  servers="$servers $u_wrap"
  wait_until 10 grep -qs ' INFO ready: ' "$T/u1.log" || fails "no ready line from $UA's server: $(tail -n 1 "$T/u1.log")"
  $TMO "$FP" serve --name "${P}u" --handler "$CRASHY" --workers 1 2>"$T/u0.log"
  expect_rc $? 1 "root's serve"
  grep -q "ERROR cannot serve ${P}u: /dev/shm/forkpool.${P}u belongs to user $UA (uid $(id -u "$UA")), group $GS" "$T/u0.log" ||
    fails "message: $(tail -n 1 "$T/u0.log")"
  grep -q "a live forkpool" "$T/u0.log" && fails "says 'a live forkpool already serves'"
  check "serve: another user's pool at the name: the message names its owner"

  # Group producers (--mode 0660): B (in the group) submits and watches, C
  # (not in it) is told why not; on a 0640 pool B may watch but not submit.
  stop "$u_wrap"
  : >"$T/u2.log"
  $STMO $(asu "$UA") "$FP" serve --name "${P}u" --handler "$CRASHY" --workers 2 --mode 0660 2>"$T/u2.log" &
  u_wrap=$!
  servers="$servers $u_wrap"
  wait_until 10 grep -qs ' INFO ready: ' "$T/u2.log" || fails "no ready line (0660): $(tail -n 1 "$T/u2.log")"
  [ "$(stat -c %U:%G:%a /dev/shm/forkpool."${P}u")" = "$UA:$GS:660" ] ||
    fails "segment is $(stat -c %U:%G:%a /dev/shm/forkpool."${P}u")"
  $TMO $(asu "$UB") "$FP" submit --name "${P}u" hello 'sleep 50' >"$T/ub.out" 2>&1
  expect_rc $? 0 "$UB's submit"
  grep -q "^ok${TAB}HELLO" "$T/ub.out" || fails "$UB's results: $(head -c 200 "$T/ub.out")"
  $TMO $(asu "$UB") "$FP" stat --name "${P}u" >"$T/ub.st" 2>&1 || fails "$UB's stat: $(head -n 1 "$T/ub.st")"
  $TMO $(asu "$UA") "$FP" submit --name "${P}u" own >"$T/ua.out" 2>&1 || fails "the owner's submit: $(head -n 1 "$T/ua.out")"
  # A group producer killed mid-task: the supervisor reclaims its row.
  $TMO $(asu "$UB") "$FP" submit --name "${P}u" 'sleep 1000' >/dev/null 2>&1 &
  bwrap=$!
  # shellcheck disable=SC2016 # for the inner shell
  wait_until 10 sh -c '$1 "$2" stat --name "$3" --json 2>/dev/null | grep -q "\"running\":[1-9]"' \
    sh "$(asu "$UB")" "$FP" "${P}u" || fails "$UB's task never ran"
  for p in $(ps -o pid= --ppid "$bwrap"); do kill -KILL "$p"; done
  { wait "$bwrap"; } 2>/dev/null
  wait_until 10 grep -qs 'INFO a producer of row [0-9]* is gone' "$T/u2.log" ||
    fails "the killed group producer's row was not reclaimed"
  $TMO $(asu "$UC") "$FP" submit --name "${P}u" hello >"$T/uc.out" 2>"$T/uc.err"
  expect_rc $? 3 "$UC's submit"
  grep -q "forkpool submit: permission denied for pool ${P}u: /dev/shm/forkpool.${P}u belongs to user $UA (uid [0-9]*), group $GS (gid [0-9]*), mode 0660, and you are not in its group" "$T/uc.err" ||
    fails "$UC's message: $(head -n 1 "$T/uc.err")"
  stop "$u_wrap"
  expect_rc $rc 0 "serve --mode 0660: exit status"
  : >"$T/u3.log"
  $STMO $(asu "$UA") "$FP" serve --name "${P}u" --handler "$CRASHY" --workers 1 --mode 0640 2>"$T/u3.log" &
  u_wrap=$!
  servers="$servers $u_wrap"
  wait_until 10 grep -qs ' INFO ready: ' "$T/u3.log" || fails "no ready line (0640): $(tail -n 1 "$T/u3.log")"
  $TMO $(asu "$UB") "$FP" stat --name "${P}u" >"$T/ub.st" 2>&1 || fails "$UB's stat of a 0640 pool: $(head -n 1 "$T/ub.st")"
  $TMO $(asu "$UB") "$FP" submit --name "${P}u" hello >/dev/null 2>"$T/ub.err"
  expect_rc $? 3 "$UB's submit to a 0640 pool"
  grep -q "mode 0640, which gives its group no read and write access" "$T/ub.err" ||
    fails "$UB's message: $(head -n 1 "$T/ub.err")"
  stop "$u_wrap"
  expect_rc $rc 0 "serve --mode 0640: exit status"
  check "serve --mode 0660: group members submit and watch, others are told why not; 0640: watch only"

  # A group member who truncates the segment: the supervisor does not die
  # of SIGBUS; it stops, says why, and leaves nothing behind.
  : >"$T/u4.log"
  $STMO $(asu "$UA") "$FP" serve --name "${P}u" --handler "$CRASHY" --workers 2 --mode 0660 2>"$T/u4.log" &
  u_wrap=$!
  servers="$servers $u_wrap"
  wait_until 10 grep -qs ' INFO ready: ' "$T/u4.log" || fails "no ready line (0660): $(tail -n 1 "$T/u4.log")"
  usrv=$(ps -o pid= --ppid "$u_wrap" | tr -d ' ')
  $TMO $(asu "$UB") truncate -s 0 /dev/shm/forkpool."${P}u" || fails "$UB cannot truncate the segment"
  wait_until 10 sh -c '! kill -0 "$1" 2>/dev/null' sh "$usrv" || fails "serve still runs 10 s after the truncation"
  stop "$u_wrap"
  expect_rc $rc 1 "serve after the truncation: exit status (135 is SIGBUS)"
  grep -q "ERROR segment /dev/shm/forkpool.${P}u was truncated by another process" "$T/u4.log" ||
    fails "no message: $(tail -n 1 "$T/u4.log")"
  [ -e /dev/shm/forkpool."${P}u" ] && fails "segment left"
  check "serve --mode 0660: a group member truncating the segment stops the pool cleanly, no SIGBUS"

  # A file of the owner's own with a mode that shuts it out; a symbolic link.
  $(asu "$UA") sh -c 'umask 077; : >/dev/shm/forkpool.'"${P}o"'; chmod 0400 /dev/shm/forkpool.'"${P}o"
  $TMO $(asu "$UA") "$FP" submit --name "${P}o" hello >/dev/null 2>"$T/uo.err"
  expect_rc $? 3 "submit to a 0400 file"
  grep -q "/dev/shm/forkpool.${P}o is yours but its mode 0400 does not let you read and write it" "$T/uo.err" ||
    fails "message: $(head -n 1 "$T/uo.err")"
  rm -f /dev/shm/forkpool."${P}o"
  check "submit: the owner's own file of mode 0400: the message says so"

  # Fork failing under RLIMIT_NPROC: at start, a clear cause; later, one
  # log line per burst of failed retries (not one per 100 ms). The limit
  # counts every process of the user: none of the cases above may linger.
  wait_until 10 test -z "$(ps -o pid= -u "$UA")" || fails "processes of $UA left: $(ps -o pid=,args= -u "$UA" | head -n 3)"
  $TMO prlimit --nproc=2 $(asu "$UA") "$FP" serve --name "${P}n" --handler "$CRASHY" --workers 2 2>"$T/n.log"
  expect_rc $? 1 "serve under ulimit -u 2"
  grep -q "ERROR cannot serve ${P}n: fork of a worker failed: the process limit of uid $(id -u "$UA") is reached (ulimit -u 2)" "$T/n.log" ||
    fails "message: $(tail -n 1 "$T/n.log")"
  grep -q "queue full" "$T/n.log" && fails "says 'queue full'"
  [ -e /dev/shm/forkpool."${P}n" ] && fails "segment left"
  # (LeakSanitizer, in an ASan build, cannot start its tracer under this
  # limit: it is told not to try.)
  echo hello | ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    $TMO prlimit --nproc=1 $(asu "$UA") "$FP" run --handler "$CRASHY" --workers 2 >/dev/null 2>"$T/n.run"
  expect_rc $? 2 "run under ulimit -u 1"
  grep -q "forkpool run: cannot start the pool: fork failed: the process limit of uid $(id -u "$UA") is reached" "$T/n.run" ||
    fails "run's message: $(head -n 1 "$T/n.run")"
  $STMO prlimit --nproc=3 $(asu "$UA") "$FP" serve --name "${P}n" --handler "$CRASHY" --workers 2 2>"$T/n.log" &
  n_wrap=$!
  servers="$servers $n_wrap"
  wait_until 10 grep -qs ' INFO ready: ' "$T/n.log" || fails "no ready line under ulimit -u 3: $(tail -n 1 "$T/n.log")"
  # This producer is the user's 4th process: the crashed worker's
  # replacement cannot be forked while it lives (2 s).
  $TMO $(asu "$UA") "$FP" submit --name "${P}n" segv 'sleep 2000' >"$T/n.out" 2>&1
  wait_until 5 grep -qs 'fork works again' "$T/n.log" || fails "no 'fork works again' line"
  nfail=$(grep -c 'fork for worker row' "$T/n.log")
  [ "$nfail" = 1 ] || fails "$nfail 'fork for worker row' lines in 2 s, want 1"
  stop "$n_wrap"
  expect_rc $rc 0 "serve under ulimit -u 3: exit status"
  check "serve: fork failing under RLIMIT_NPROC: the real cause, one log line per burst"
fi
rmusers
trap cleanup EXIT
fi

# --- 12g. a producer that stops collecting starves nobody (issue 13, item 9) -------
# The hog's output goes to a reader that never reads: its results stay
# uncollected. It may hold its share of the 256 slots (192), never all of
# them (check_named.c checks the share itself).
H2=${P}h2
serve "$H2" "$T/h2.log" --workers 2
h2_wrap=$wrap
(yes abc | head -n 200000 | $TMO "$FP" submit --name "$H2" 2>/dev/null | sleep 6) &
hog=$!
hog_full() { st "$H2" && [ "$(jget submitted)" -ge 150 ] && [ "$(jget queued)" = 0 ] && [ "$(jget running)" = 0 ]; }
wait_until 5 hog_full || fails "the hog never filled its share: $(cat "$T/st.top")"
sleep 0.5 # its output pipe full: it collects no more
t0=$(now)
$TMO "$FP" submit --name "$H2" --timeout 2000 hello >"$T/h2.out" 2>"$T/h2.err"
expect_rc $? 0 "second producer's submit --timeout 2000"
t1=$(now)
grep -q "^ok${TAB}HELLO" "$T/h2.out" || fails "second producer: $(cat "$T/h2.out" "$T/h2.err")"
within "$t0" "$t1" 4 || fails "second producer waited $(secs "$t0" "$t1") s"
info "second producer answered in $(secs "$t0" "$t1") s beside a producer that stopped collecting"
wait "$hog"
check "a producer that stops collecting holds its share, another producer is served"
stop "$h2_wrap"
expect_rc $rc 0 "serve h2: exit status"

# submit --timeout bounds the wait for a free slot too. 4 slots, one worker:
# two producers hold every slot with long tasks (3, their share, and the last
# one), a third gives up after its --timeout with a clear message.
H3=${P}h3
serve "$H3" "$T/h3.log" --workers 1 --queue 4 --grace 500
h3_wrap=$wrap
$TMO "$FP" submit --name "$H3" "sleep 5000" "sleep 5000" "sleep 5000" >/dev/null 2>&1 &
hog1=$!
wait_until 3 stat_is "$H3" submitted 3 || fails "first hog: $(cat "$T/st.top")"
$TMO "$FP" submit --name "$H3" "sleep 5000" >/dev/null 2>&1 &
hog2=$!
wait_until 3 stat_is "$H3" submitted 4 || fails "second hog: $(cat "$T/st.top")"
t0=$(now)
$TMO "$FP" submit --name "$H3" --timeout 1000 hello >"$T/h3.out" 2>"$T/h3.err"
expect_rc $? 1 "submit --timeout 1000 with no free slot"
t1=$(now)
within "$t0" "$t1" 3 || fails "gave up after $(secs "$t0" "$t1") s"
grep -q "no free slot in pool $H3 within 1000 ms" "$T/h3.err" || fails "message: $(cat "$T/h3.err")"
info "no slot: submit --timeout 1000 gave up after $(secs "$t0" "$t1") s"
stop "$h3_wrap"
wait "$hog1" "$hog2"
check "submit --timeout bounds the wait for a free slot, with a message"

# --- 13. the first server stops cleanly, nothing is left ----------------------------
stop "$a_wrap"
expect_rc $rc 0 "serve: exit status"
[ -e /dev/shm/forkpool."$A" ] && fails "segment left"
[ -e "$T/a.pid" ] && fails "pidfile left"
grep -q "INFO stopped" "$T/a.log" || fails "no 'stopped' line"
# Every log line is one event: a timestamp, a level, a message.
for l in "$T"/[a-f].log "$T"/c2.log; do
  bad=$(grep -cv "^$ts \(DEBUG\|INFO\|WARN\|ERROR\) " "$l")
  [ "$bad" = 0 ] || fails "$l: $bad malformed lines: $(grep -v "^$ts \(DEBUG\|INFO\|WARN\|ERROR\) " "$l" | head -n 1)"
done
check "serve exits 0 on SIGTERM, removes segment and pidfile; log lines well formed"

left=$(tagged)
[ -z "$left" ] || { sleep 1; left=$(tagged); }
[ -z "$left" ] || fails "processes started by the tests still alive: $left"
check "no process left behind"
# shellcheck disable=SC2012
shm=$(ls -A /dev/shm 2>/dev/null | grep "^forkpool\.$P" | tr '\n' ' ')
[ -z "$shm" ] || fails "entries left in /dev/shm: $shm"
check "no /dev/shm entry left behind"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
