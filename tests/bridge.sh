#!/bin/sh
# Tests of `forkpool bridge` (build/bin/forkpool-bridge) against a real
# redis-server, started here on a free loopback port and stopped after.
#
# Usage: sh tests/bridge.sh [BUILD_DIR]   (from the repository root;
# default BUILD_DIR is build). Needs BUILD_DIR/bin/forkpool (with `serve`),
# BUILD_DIR/bin/forkpool-bridge, BUILD_DIR/examples/crashy.so,
# redis-server and redis-cli; skips (exit 0) when the bridge was not built
# or Redis is not installed (tests/ensure-bridge-deps.sh installs both),
# printing one "# SKIP" line.
#
# First the start: usage errors exit 2; a missing pool exits 3 (as for
# submit, stat and cancel); a Redis that cannot be reached exits 4 at once,
# naming HOST:PORT and the error; with --retry-connect the bridge instead
# retries until a redis-server comes up on that port, then runs a task.
#
# The main test plays two hosts on this machine: two pools, each fed by
# its own bridge (consumers host-a and host-b of one group), and
# FORKPOOL_BRIDGE_TASKS (default 20000) tasks, some crashing, added in
# chunks while the bridges run. Meanwhile:
#   - bridge B is stopped (SIGSTOP) while it holds entries, until A has
#     claimed them all, then continued: B must not write a result for any
#     of them (the "slow bridge" case);
#   - bridge A and its pool are killed with SIGKILL while A holds entries:
#     B must redo every one of them;
#   - one "poison" entry, already delivered 3 times to a consumer that
#     never answered, must end in the dead-letter stream unrun.
# Then everything is counted from Redis itself: every task entry has
# exactly one result entry or one dead-letter entry, and every result is
# the right one for its task. A second test kills redis-server (with an
# append-only file) under a running bridge and starts it again: the bridge
# retries, reconnects, and still writes exactly one result per entry; then
# a bridge SIGKILLed and restarted under the same --consumer takes back its
# own pending entries at once.
#
# Prints "ok - NAME" or "not ok - NAME: WHY" per test, "#" lines for
# information (the counts), then "N passed, M failed". Every wait is
# bounded; every process started here is stopped by its pid at the end.
# FORKPOOL_BRIDGE_TEST_KEEP=1 keeps the temporary directory (logs, dumps).

# "A && B || C" below means "unless A and B, C", on purpose (SC2015); the
# cleanup function is called by the EXIT trap (SC2317).
# shellcheck disable=SC2015,SC2317

set -u

B=${1:-build}
FP=$B/bin/forkpool
FPB=$B/bin/forkpool-bridge
CRASHY=$B/examples/crashy.so
PRODUCER=$B/examples/redis_producer
N=${FORKPOOL_BRIDGE_TASKS:-20000}
TAB=$(printf '\t')

pass=0
fail=0
why=""

ok() { pass=$((pass + 1)); echo "ok - $1"; }
nok() { fail=$((fail + 1)); echo "not ok - $1: $2"; }
info() { echo "# $*"; }
check() { if [ -z "$why" ]; then ok "$1"; else nok "$1" "$why"; fi; why=""; }
addwhy() { why="${why:+$why; }$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

# A skip prints no "N passed" line: in `make check` the summary of the
# tests that did run stays the last one.
if [ ! -x "$FPB" ]; then
  info "SKIP tests/bridge.sh: $FPB is not built (it needs hiredis:" \
    "apt-get install libhiredis-dev, then make)"
  exit 0
fi
if ! have redis-server || ! have redis-cli; then
  info "SKIP tests/bridge.sh: redis-server or redis-cli is missing" \
    "(apt-get install redis-server)"
  exit 0
fi
if [ ! -x "$FP" ] || [ ! -f "$CRASHY" ] ||
  ! "$FP" serve --help >/dev/null 2>&1; then
  nok "setup" "need $FP with 'serve' and $CRASHY (run make first)"
  finish
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-bridge.XXXXXX") || exit 1
RUN="fpbt$$"
POOLS=""     # pool names, whose /dev/shm entries are removed at exit

# Every process this script starts carries this variable, so one that
# outlives its test can be found (and reported) at the end.
FORKPOOL_BRIDGE_TEST_TAG="forkpool-bridge-test-$$-$(date +%s%N)"
export FORKPOOL_BRIDGE_TEST_TAG

tagged() {
  env -u FORKPOOL_BRIDGE_TEST_TAG grep -laF "$FORKPOOL_BRIDGE_TEST_TAG" \
    /proc/[0-9]*/environ >"$T/tagged" 2>/dev/null
  sed 's,^/proc/,,; s,/environ$,,' "$T/tagged" | grep -vx "$$" | tr '\n' ' '
}

# At exit: SIGKILL what is left of ours, by pid. Only processes that carry
# our tag are touched, so a recorded pid reused by someone else is safe.
# Workers die with their supervisor (PR_SET_PDEATHSIG); a second pass
# catches any that had not yet.
cleanup() {
  for p in $(tagged); do kill -9 "$p" 2>/dev/null; done
  sleep 0.2
  for p in $(tagged); do kill -9 "$p" 2>/dev/null; done
  for n in $POOLS; do rm -f "/dev/shm/forkpool.$n"; done
  if [ -n "${FORKPOOL_BRIDGE_TEST_KEEP:-}" ]; then
    echo "# kept $T"
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS COMMAND...: poll COMMAND every 50 ms until it succeeds.
wait_for() {
  _end=$(($(date +%s) + $1))
  shift
  while ! "$@"; do
    [ "$(date +%s)" -ge "$_end" ] && return 1
    sleep 0.05
  done
  return 0
}

alive() { kill -0 "$1" 2>/dev/null; }
dead() { ! kill -0 "$1" 2>/dev/null; }

# start_redis NAME DIR [ARGS...]: redis-server on a free loopback port in
# DIR; sets PORT and RPID. A port already in use makes the server exit at
# once: then the next candidate is tried.
start_redis() {
  _name=$1 _dir=$2
  shift 2
  mkdir -p "$_dir"
  _try=0
  while [ $_try -lt 20 ]; do
    PORT=$((20000 + ($$ * 7 + _try * 997 + $(date +%N | sed 's/^0*//;s/^$/0/') % 1000) % 40000))
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
      --appendonly no --daemonize no --dir "$_dir" "$@" \
      >"$_dir/redis.log" 2>&1 &
    RPID=$!
    if wait_for 5 sh -c "redis-cli -p $PORT ping 2>/dev/null | grep -q PONG ||
        ! kill -0 $RPID 2>/dev/null"; then
      if alive "$RPID" &&
        [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; then
        info "$_name: redis-server pid $RPID on 127.0.0.1:$PORT"
        return 0
      fi
    fi
    kill -9 "$RPID" 2>/dev/null
    _try=$((_try + 1))
  done
  return 1
}

# R ARGS...: redis-cli on the current PORT, bounded in time.
R() { timeout 20 redis-cli -p "$PORT" "$@"; }

# serve NAME: `forkpool serve` a crashy pool NAME in the background;
# sets SPID once the pool is ready (its pidfile is written then).
serve() {
  POOLS="$POOLS $1"
  "$FP" serve --name "$1" --handler "$CRASHY" --workers 2 --timeout 5000 \
    --pidfile "$T/$1.pid" >"$T/$1.serve.log" 2>&1 &
  SPID=$!
  wait_for 15 test -s "$T/$1.pid"
}

# bridge POOL CONSUMER ARGS...: the bridge in the background; sets BPID.
bridge() {
  _pool=$1 _cons=$2
  shift 2
  "$FPB" --name "$_pool" --redis "127.0.0.1:$PORT" --consumer "$_cons" \
    "$@" >"$T/$_cons.log" 2>&1 &
  BPID=$!
}

# Lua run by redis-cli: one line per stream entry, tab-separated fields.
# tasks:   id, data
# results: task, status, output|signal|exit|code, deliveries, consumer
# dead:    task, reason, deliveries, last_consumer
DUMP_TASKS="local o = {} for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do local m = {} for i = 1, #e[2], 2 do m[e[2][i]] = e[2][i + 1] end o[#o + 1] = e[1] .. '\t' .. (m.data or '-') end return o"
DUMP_RESULTS="local o = {} for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do local m = {} for i = 1, #e[2], 2 do m[e[2][i]] = e[2][i + 1] end o[#o + 1] = table.concat({ m.task or '-', m.status or '-', m.output or m.signal or m.exit or m.code or '-', m.deliveries or '-', m.consumer or '-' }, '\t') end return o"
DUMP_DEAD="local o = {} for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do local m = {} for i = 1, #e[2], 2 do m[e[2][i]] = e[2][i + 1] end o[#o + 1] = table.concat({ m.task or '-', m.reason or '-', m.deliveries or '-', m.last_consumer or '-', m.data or '-' }, '\t') end return o"

xlen() { R XLEN "$1"; }
# pending_of CONSUMER: ids pending for CONSUMER (at most 10000).
pending_of() {
  R XPENDING jobs g - + 10000 "$1" | awk 'NR % 4 == 1 && $0 != ""'
}
pending_total() { R XPENDING jobs g | head -n 1; }
done_count() { echo $(($(xlen jobs:results) + $(xlen jobs:dead))); }
at_least_done() { [ "$(done_count)" -ge "$1" ]; }
no_pending_for() { [ -z "$(pending_of "$1")" ]; }

# add_tasks COUNT: XADD the next COUNT tasks (of N) in one pipe; NEXT is
# the number of the next task. Task i is "segv" every 100th, "abort" every
# 100th + 50, "fail 7" every 1000th + 7, else the word w<i> (the crashy
# handler echoes it upper-cased).
NEXT=1
add_tasks() {
  [ "$1" -gt 0 ] || return 0
  _last=$((NEXT + $1 - 1))
  [ "$_last" -gt "$N" ] && _last=$N
  awk -v a="$NEXT" -v b="$_last" 'BEGIN {
    for (i = a; i <= b; i++) {
      if (i % 100 == 0) d = "segv"
      else if (i % 100 == 50) d = "abort"
      else if (i % 1000 == 7) d = "\"fail 7\""
      else d = "w" i
      printf "XADD jobs * data %s\r\n", d
    }
  }' | timeout 60 redis-cli -p "$PORT" --pipe >"$T/pipe.out" 2>&1 ||
    addwhy "redis-cli --pipe failed: $(tail -n 1 "$T/pipe.out")"
  NEXT=$((_last + 1))
}

# stop_holding PID CONSUMER FILE LIMIT: SIGSTOP the bridge PID at a moment it
# holds entries, their ids in FILE. Each try adds a chunk of 500 tasks
# first (until task LIMIT), so there is work in flight to catch it with.
stop_holding() {
  while [ "$NEXT" -le "$4" ]; do
    add_tasks 500
    _i=0
    while [ $_i -lt 10 ]; do
      kill -STOP "$1"
      sleep 0.05 # a script it sent before the stop finishes in Redis
      pending_of "$2" >"$3"
      [ -s "$3" ] && return 0
      kill -CONT "$1"
      sleep 0.01
      _i=$((_i + 1))
    done
  done
  return 1
}

# ---------------------------------------------------------------------------
# Usage errors need no Redis.
"$FPB" --name x --stream s --group g >"$T/u1" 2>&1
rc1=$?
"$FPB" --name x --redis 127.0.0.1:99999 --stream s --group g >"$T/u2" 2>&1
rc2=$?
"$FPB" --name x --redis 127.0.0.1:1 --stream s --group g --retry-connect=yes \
  >"$T/u3" 2>&1
rc3=$?
[ $rc1 = 2 ] && grep -q -- '--redis is required' "$T/u1" ||
  addwhy "missing --redis: status $rc1: $(head -n 1 "$T/u1")"
[ $rc2 = 2 ] && grep -q 'out of range' "$T/u2" ||
  addwhy "bad port: status $rc2: $(head -n 1 "$T/u2")"
[ $rc3 = 2 ] && grep -q -- '--retry-connect' "$T/u3" ||
  addwhy "--retry-connect=yes: status $rc3: $(head -n 1 "$T/u3")"
check "usage errors exit 2 with a message"

# A missing pool is exit status 3, as for submit, stat and cancel, also
# through `forkpool bridge`, and before Redis is tried.
"$FPB" --name "no-such-pool-$RUN" --redis 127.0.0.1:1 --stream s \
  --group g >"$T/p1" 2>&1
rc1=$?
"$FP" bridge --name "no-such-pool-$RUN" --redis 127.0.0.1:1 --stream s \
  --group g >"$T/p2" 2>&1
rc2=$?
[ $rc1 = 3 ] && grep -q "pool 'no-such-pool-$RUN': no pool of that name" "$T/p1" ||
  addwhy "forkpool-bridge: status $rc1: $(head -n 1 "$T/p1")"
[ $rc2 = 3 ] && grep -q 'no pool of that name' "$T/p2" ||
  addwhy "forkpool bridge: status $rc2: $(head -n 1 "$T/p2")"
check "a missing pool: exit status 3 with a message"

# Redis unreachable at start: an error at once (exit status 4, naming
# HOST:PORT and the reason), not endless retries; with --retry-connect the
# bridge waits for Redis and works once it is there.
PS="$RUN-s"
serve "$PS" || addwhy "pool $PS did not start: $(tail -n 2 "$T/$PS.serve.log")"
SPS=$SPID
t0=$(date +%s)
timeout 15 "$FPB" --name "$PS" --redis 127.0.0.1:1 --stream s --group g \
  >"$T/n1" 2>&1
rc1=$?
t1=$(date +%s)
[ $rc1 = 4 ] || addwhy "status $rc1, want 4 (after $((t1 - t0)) s)"
[ $((t1 - t0)) -le 5 ] || addwhy "took $((t1 - t0)) s"
grep -q 'cannot reach Redis at 127.0.0.1:1: connect: Connection refused' "$T/n1" ||
  addwhy "message: $(tail -n 1 "$T/n1")"
check "Redis unreachable at start: exit status 4 at once, with host:port and the error"

if start_redis "retry-connect" "$T/r0"; then
  kill -9 "$RPID"
  wait_for 5 dead "$RPID"
  { wait "$RPID"; } 2>/dev/null
  bridge "$PS" host-s --stream s --group g --retry-connect
  BS=$BPID
  # Backoff 100, 200, 400 ms...: three failed attempts within 2 s.
  wait_for 10 sh -c "[ \$(grep -cs 'connect: Connection refused; retrying in' '$T/host-s.log') -ge 3 ]" ||
    addwhy "no retries logged: $(tail -n 1 "$T/host-s.log")"
  alive "$BS" || addwhy "the bridge exited: $(tail -n 1 "$T/host-s.log")"
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$T/r0" >>"$T/r0/redis.log" 2>&1 &
  RPID=$!
  wait_for 10 sh -c "redis-cli -p $PORT ping 2>/dev/null | grep -q PONG" ||
    addwhy "redis-server did not start again on port $PORT"
  wait_for 15 grep -q 'connected after [0-9]* failed attempts' "$T/host-s.log" ||
    addwhy "no 'connected' line: $(tail -n 1 "$T/host-s.log")"
  R XADD s '*' data late >/dev/null
  wait_for 15 sh -c "[ \"\$(timeout 20 redis-cli -p $PORT XLEN s:results)\" = 1 ]" ||
    addwhy "$(xlen s:results) results, want 1"
  out=$(R --raw EVAL "$DUMP_RESULTS" 1 s:results | cut -f2,3)
  [ "$out" = "ok${TAB}LATE" ] || addwhy "result '$out'"
  kill -TERM "$BS" 2>/dev/null
  wait_for 15 dead "$BS" || addwhy "bridge still running after SIGTERM"
  wait "$BS"
  rc1=$?
  [ $rc1 = 0 ] || addwhy "bridge exit status $rc1 after SIGTERM"
  kill -9 "$RPID" 2>/dev/null
  wait_for 5 dead "$RPID"
  { wait "$RPID"; } 2>/dev/null
else
  addwhy "no free port for redis-server"
fi
check "--retry-connect: retries until Redis is up, then runs the task"
kill -TERM "$SPS"
wait_for 15 dead "$SPS" || addwhy "pool $PS still running after SIGTERM"
check "pool $PS stopped"

# ---------------------------------------------------------------------------
# Two hosts.
t0=$(date +%s)
if ! start_redis "two hosts" "$T/r1"; then
  nok "two hosts: start redis-server" "no free port found"
  finish
fi
PA="$RUN-a"
PB="$RUN-b"
serve "$PA" || addwhy "pool $PA did not start: $(tail -n 2 "$T/$PA.serve.log")"
SPA=$SPID
serve "$PB" || addwhy "pool $PB did not start: $(tail -n 2 "$T/$PB.serve.log")"
SPB=$SPID
check "two pools served"

# The poison: delivered 3 times to a consumer that never answered (as if
# each delivery had taken its host down), before any bridge runs.
R XGROUP CREATE jobs g 0 MKSTREAM >/dev/null
POISON=$(R XADD jobs '*' data poison)
R XREADGROUP GROUP g ghost COUNT 1 STREAMS jobs '>' >/dev/null
R XCLAIM jobs g ghost 0 "$POISON" >/dev/null
R XCLAIM jobs g ghost 0 "$POISON" >/dev/null
pdel=$(R XPENDING jobs g - + 1 ghost | sed -n 4p)
[ "$pdel" = 3 ] || addwhy "poison delivery count is '$pdel', want 3"
check "poison entry delivered 3 times to a silent consumer"

COMMON="--stream jobs --group g --claim-idle 1000 --max-deliveries 3 --inflight 64"
# shellcheck disable=SC2086 # $COMMON is a list of words on purpose
bridge "$PA" host-a $COMMON
BA=$BPID
# shellcheck disable=SC2086
bridge "$PB" host-b $COMMON
BB=$BPID

# Slow bridge: stop B while it holds entries; A claims them after 1 s.
if stop_holding "$BB" host-b "$T/held-b" $((N / 4)); then
  nb=$(wc -l <"$T/held-b")
  wait_for 20 no_pending_for host-b ||
    addwhy "A did not claim B's entries: $(pending_of host-b | wc -l) left"
  kill -CONT "$BB"
else
  nb=0
  kill -CONT "$BB"
  addwhy "bridge B never held entries when stopped"
fi
check "stopped bridge B's $nb entries claimed by bridge A"

# Kill A and its pool while A holds entries, past the middle of the run.
add_tasks $((N / 2 - NEXT + 1))
if stop_holding "$BA" host-a "$T/held-a" $((N * 3 / 4)); then
  na=$(wc -l <"$T/held-a")
  done_at_kill=$(done_count)
  kill -9 "$BA" "$SPA"
  wait_for 10 dead "$BA" && wait_for 10 dead "$SPA" ||
    addwhy "bridge A or pool A survived SIGKILL"
  rm -f "/dev/shm/forkpool.$PA"
  info "killed bridge A (pid $BA) and pool A (pid $SPA) holding $na" \
    "entries, with $done_at_kill of $((NEXT - 1)) tasks added done"
else
  na=0
  addwhy "bridge A never held entries when stopped"
fi
check "bridge A and its pool killed with SIGKILL mid-run"

add_tasks $((N - NEXT + 1))
[ "$NEXT" = $((N + 1)) ] || addwhy "added $((NEXT - 1)) tasks, want $N"
check "all $N tasks added"

wait_for 60 at_least_done $((N + 1)) ||
  addwhy "only $(done_count) of $((N + 1)) entries done after 60 s"
wait_for 10 sh -c "[ \"\$(timeout 20 redis-cli -p $PORT XPENDING jobs g | head -n 1)\" = 0 ]" ||
  addwhy "$(pending_total) entries still pending"
check "all $((N + 1)) entries done, none pending"

R --raw EVAL "$DUMP_TASKS" 1 jobs >"$T/tasks"
R --raw EVAL "$DUMP_RESULTS" 1 jobs:results >"$T/results"
R --raw EVAL "$DUMP_DEAD" 1 jobs:dead >"$T/dead"
ntasks=$(wc -l <"$T/tasks")
nres=$(wc -l <"$T/results")
ndead=$(wc -l <"$T/dead")
redone=$(awk -F'\t' '$4 >= 2' "$T/results" | wc -l)
[ "$ntasks" = $((N + 1)) ] || addwhy "$ntasks task entries, want $((N + 1))"
[ $((nres + ndead)) = "$ntasks" ] ||
  addwhy "$nres results + $ndead dead letters != $ntasks tasks"
cut -f1 "$T/tasks" | sort >"$T/ids.tasks"
{ cut -f1 "$T/results"; cut -f1 "$T/dead"; } | sort >"$T/ids.ended"
dups=$(uniq -d "$T/ids.ended" | wc -l)
[ "$dups" = 0 ] ||
  addwhy "$dups entries ended twice, e.g. $(uniq -d "$T/ids.ended" | head -n 1)"
cmp -s "$T/ids.tasks" "$T/ids.ended" ||
  addwhy "the ids that ended differ from the task ids:" \
    "$(comm -3 "$T/ids.tasks" "$T/ids.ended" | head -n 2 | tr '\n' ' ')"
check "every entry ended exactly once: $nres results + $ndead dead letters = $ntasks tasks"

# Each result is the right one for its task.
bad=$(awk -F'\t' '
  FNR == NR { data[$1] = $2; next }
  {
    d = data[$1]; want = ""
    if (d == "segv") want = "crashed\tSIGSEGV"
    else if (d == "abort") want = "crashed\tSIGABRT"
    else if (d == "fail 7") want = "failed\t7"
    else want = "ok\t" toupper(d)
    if ($2 "\t" $3 != want) { print $1 " (" d "): " $2 " " $3; exit }
  }' "$T/tasks" "$T/results")
[ -z "$bad" ] || addwhy "wrong result: $bad"
ncrash=$(awk -F'\t' '$2 == "crashed"' "$T/results" | wc -l)
[ "$ncrash" = $((N / 50)) ] || addwhy "$ncrash crashed results, want $((N / 50))"
check "every result matches its task ($ncrash crashed)"

line=$(grep "^$POISON$TAB" "$T/dead")
case $line in
  "$POISON${TAB}max-deliveries${TAB}3${TAB}ghost${TAB}poison") ;;
  *) addwhy "poison dead letter is '$line'" ;;
esac
grep -q "^$POISON$TAB" "$T/results" && addwhy "the poison was run"
[ "$ndead" = 1 ] || addwhy "$ndead dead letters, want 1 (the poison)"
check "the poison entry ended in the dead-letter stream, unrun"

# Every entry A held when it died was redone by B; every entry B held when
# stopped was redone (by A, or by B after A's death).
miss=$(awk -F'\t' 'FNR == NR { held[$1] = 1; next }
  ($1 in held) && $5 == "host-b" && $4 >= 2 { delete held[$1] }
  END { for (k in held) { print k; exit } }' "$T/held-a" "$T/results")
[ -z "$miss" ] || addwhy "entry $miss held by A at its death was not redone by B"
miss=$(awk -F'\t' 'FNR == NR { held[$1] = 1; next }
  ($1 in held) && $4 >= 2 { delete held[$1] }
  END { for (k in held) { print k; exit } }' "$T/held-b" "$T/results")
[ -z "$miss" ] || addwhy "entry $miss held by stopped B was not redone"
[ "$redone" -ge "$na" ] || addwhy "$redone redone < $na held by A"
check "entries held by the killed and the stopped bridge were redone"

# The hiredis example against the surviving bridge.
if [ -x "$PRODUCER" ]; then
  timeout 40 "$PRODUCER" -p "$PORT" -s jobs hello segv "fail 7" \
    >"$T/producer.out" 2>&1
  prc=$?
  printf 'hello\tok\tHELLO\nsegv\tcrashed\tSIGSEGV\nfail 7\tfailed\tcode=7\n' \
    >"$T/producer.want"
  [ $prc = 0 ] || addwhy "exit status $prc"
  cmp -s "$T/producer.out" "$T/producer.want" ||
    addwhy "output: $(tr '\n\t' '| ' <"$T/producer.out")"
  check "examples/redis_producer submits and reads its results"
else
  info "examples/redis_producer not built: its test is skipped"
fi

# SIGTERM: B finishes what it holds and exits 0.
kill -TERM "$BB"
if wait_for 15 dead "$BB"; then
  wait "$BB"
  brc=$?
  [ $brc = 0 ] || addwhy "bridge B exit status $brc"
else
  addwhy "bridge B still running 15 s after SIGTERM"
fi
grep -q 'INFO stopped:' "$T/host-b.log" || addwhy "no 'stopped' line in B's log"
dropped_b=$(sed -n 's/.* \([0-9]*\) results not written.*/\1/p' "$T/host-b.log")
released_b=$(sed -n 's/.* \([0-9]*\) entries released$/\1/p' "$T/host-b.log")
# Each entry B held when stopped was claimed by A: B counts it once, as a
# result it did not write, or as released unrun.
[ "$((${dropped_b:-0} + ${released_b:-0}))" = "$nb" ] ||
  addwhy "B held $nb when stopped, but did not write ${dropped_b:-?}" \
    "and released ${released_b:-?}"
check "SIGTERM: bridge B drained and exited 0"

kill -TERM "$SPB"
wait_for 15 dead "$SPB" || addwhy "pool B still running after SIGTERM"
[ ! -e "/dev/shm/forkpool.$PB" ] || addwhy "/dev/shm/forkpool.$PB left"
check "pool B stopped"

t1=$(date +%s)
info "tasks: $N (+1 poison) in $((t1 - t0)) s"
info "results: $nres (written by host-a: $(awk -F'\t' '$5 == "host-a"' "$T/results" | wc -l), by host-b: $(awk -F'\t' '$5 == "host-b"' "$T/results" | wc -l))"
info "redone after the kill: $na entries held by host-a at its SIGKILL, all redone by host-b"
info "redone in all (deliveries >= 2): $redone; held by stopped host-b: $nb, results it did not write: ${dropped_b:-0} (+${released_b:-0} released unrun)"
info "dead-lettered: $ndead"
kill -9 "$RPID" 2>/dev/null
wait_for 5 dead "$RPID"

# ---------------------------------------------------------------------------
# Redis goes away and comes back (append-only file, fsync always: what Redis
# acknowledged survives its SIGKILL).
NR=300
if start_redis "redis restart" "$T/r2" --appendonly yes --appendfsync always; then
  PC="$RUN-c"
  serve "$PC" || addwhy "pool $PC did not start"
  SPC=$SPID
  # Tasks before any group or bridge exists: the group starts at 0.
  awk -v n=$NR 'BEGIN { for (i = 1; i <= n; i++)
    printf "XADD jobs * data \"sleep 10\"\r\n" }' |
    timeout 60 redis-cli -p "$PORT" --pipe >/dev/null 2>&1
  bridge "$PC" host-c --stream jobs --group g --claim-idle 5000 --inflight 8
  BC=$BPID
  wait_for 30 at_least_done 40 || addwhy "no progress before the restart"
  kill -9 "$RPID"
  wait_for 5 dead "$RPID"
  sleep 1.5
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync always --daemonize no --dir "$T/r2" \
    >>"$T/r2/redis.log" 2>&1 &
  RPID=$!
  wait_for 10 sh -c "redis-cli -p $PORT ping 2>/dev/null | grep -q PONG" ||
    addwhy "redis-server did not restart on port $PORT"
  wait_for 60 at_least_done $NR || addwhy "only $(done_count) of $NR done"
  R --raw EVAL "$DUMP_RESULTS" 1 jobs:results | cut -f1 | sort >"$T/r2.ended"
  R --raw EVAL "$DUMP_TASKS" 1 jobs | cut -f1 | sort >"$T/r2.tasks"
  [ "$(wc -l <"$T/r2.tasks")" = $NR ] || addwhy "$(wc -l <"$T/r2.tasks") tasks"
  cmp -s "$T/r2.tasks" "$T/r2.ended" ||
    addwhy "results do not match tasks one to one ($(wc -l <"$T/r2.ended") results)"
  [ "$(xlen jobs:dead)" = 0 ] || addwhy "dead letters: $(xlen jobs:dead)"
  grep -q 'retrying in' "$T/host-c.log" || addwhy "no retry logged"
  grep -q 'connected again' "$T/host-c.log" || addwhy "no reconnection logged"
  alive "$BC" || addwhy "the bridge died"
  check "Redis killed and restarted under a bridge: retried, one result per entry"

  # A bridge killed and restarted under the same --consumer takes back its
  # own pending entries at once (not after --claim-idle, a minute here).
  # The tasks last 3 s so that the kill surely comes before they end, even
  # on a loaded machine (with 300 ms, one sanitizer run in CI killed the
  # bridge only after it had written both results).
  R XADD jobs2 '*' data "sleep 3000" >/dev/null
  R XADD jobs2 '*' data "sleep 3000" >/dev/null
  bridge "$PC" host-d --stream jobs2 --group g --claim-idle 60000
  BD=$BPID
  # An entry id on a line of its own: XPENDING's error before the bridge
  # made the group ("NOGROUP ...") must not pass for a pending entry (it did
  # on a loaded machine: the bridge was killed before it read anything).
  wait_for 10 sh -c "timeout 20 redis-cli -p $PORT --raw XPENDING jobs2 g - + 10 host-d | grep -Eq '^[0-9]+-[0-9]+\$'" ||
    addwhy "host-d never held the entries"
  kill -9 "$BD"
  wait_for 5 dead "$BD"
  mv "$T/host-d.log" "$T/host-d.1.log"
  bridge "$PC" host-d --stream jobs2 --group g --claim-idle 60000
  BD=$BPID
  wait_for 15 sh -c "[ \"\$(timeout 20 redis-cli -p $PORT XLEN jobs2:results)\" = 2 ]" ||
    addwhy "$(xlen jobs2:results) results after the restart, want 2"
  grep -q 'took back 2 entries' "$T/host-d.log" ||
    addwhy "no 'took back' line: $(tail -n 1 "$T/host-d.log")"
  d2=$(R --raw EVAL "$DUMP_RESULTS" 1 jobs2:results | awk -F'\t' '$4 == 2 && $5 == "host-d"' | wc -l)
  [ "$d2" = 2 ] || addwhy "$d2 results with deliveries 2 from host-d, want 2"
  kill -TERM "$BD"
  wait_for 15 dead "$BD" || addwhy "bridge D still running after SIGTERM"
  check "a bridge restarted under the same --consumer takes back its entries"

  kill -TERM "$BC"
  wait_for 15 dead "$BC" || addwhy "bridge C still running after SIGTERM"
  kill -TERM "$SPC"
  wait_for 15 dead "$SPC" || addwhy "pool C still running after SIGTERM"
  info "redis restart: $NR tasks, $(wc -l <"$T/r2.ended") results," \
    "$(grep -c 'retrying in' "$T/host-c.log") retries logged"
  kill -9 "$RPID" 2>/dev/null
  wait_for 5 dead "$RPID"
  check "bridge C and pool C stopped"
else
  nok "redis restart" "no free port for redis-server"
fi

left=$(tagged)
[ -z "$left" ] || addwhy "processes left: $left"
for n in $POOLS; do
  [ ! -e "/dev/shm/forkpool.$n" ] || [ "$n" = "$PA" ] ||
    addwhy "/dev/shm/forkpool.$n left"
done
check "no process and no pool segment left behind"

finish
