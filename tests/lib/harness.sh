# Shared by tests/serve.sh and tests/anylang.sh (sourced, POSIX sh): the
# "ok - NAME" / "not ok - NAME: WHY" reporting, the clock helpers, finding
# the processes a run started (by a tag in their environment) and ending
# the servers it started, by pid.
#
# The sourcing script sets, before it calls these: $T (its private
# temporary directory), $P (its pool name prefix), $FP, $TMO and $STMO
# (the forkpool binary, and `timeout N` for a client and for a server),
# and $HARNESS_TAG_VAR
# (the name of its tag variable, exported). $servers lists the pids of
# the `timeout` wrappers of its servers, as they start and are reaped.

# shellcheck disable=SC2034 # wrap, spid, rc: results for the sourcing script

pass=0
fail=0
why=""
servers=""

ok() { pass=$((pass + 1)); echo "ok - $1"; }
nok() { fail=$((fail + 1)); echo "not ok - $1: $2"; }
info() { echo "# $*"; }
# check NAME: ok when the test steps left $why empty.
check() { if [ -z "$why" ]; then ok "$1"; else nok "$1" "$why"; fi; why=""; }
fails() { why="${why:+$why; }$*"; }
now() { date +%s.%N; }
# within T0 T1 MAX: true when T1 - T0 <= MAX seconds.
within() { awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { exit !(b - a <= m) }'; }
# past T: true when the clock is at or after T.
past() { awk -v n="$(now)" -v t="$1" 'BEGIN { exit !(n >= t) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# wait_until SECONDS COMMAND...: run COMMAND every 50 ms until it succeeds
# or SECONDS passed. Returns its last status. A grep polling a server's log
# takes -s: the first try may come before the server's shell made the file,
# and "not there yet" is not worth a line.
wait_until() {
  _end=$(awk -v n="$(now)" -v s="$1" 'BEGIN { printf "%.3f", n + s }')
  shift
  while :; do
    "$@" && return 0
    past "$_end" && return 1
    sleep 0.05
  done
}

# tagged: the pids of live processes (other than this shell) whose
# environment carries our tag ($HARNESS_TAG_VAR's value), zombies
# excluded, on one line.
tagged() {
  eval "_tag=\$$HARNESS_TAG_VAR"
  # shellcheck disable=SC2154 # _tag is set by the eval
  env -u "$HARNESS_TAG_VAR" grep -laF "$_tag" /proc/[0-9]*/environ \
    >"$T/tagged" 2>/dev/null
  # shellcheck disable=SC2013 # pids: one word a line
  for _p in $(sed 's,^/proc/,,; s,/environ$,,' "$T/tagged" | grep -vx "$$"); do
    [ "$(awk '{ print $3 }' /proc/"$_p"/stat 2>/dev/null)" = Z ] ||
      printf '%s ' "$_p"
  done
}

# reaped WRAP: WRAP was waited for; its pid may be reused, never kill it.
reaped() { servers=$(echo " $servers " | sed "s/ $1 / /"); }

# cleanup (the EXIT trap): SIGKILL every server still listed and its
# wrapper, by pid; remove our pool segments and $T.
cleanup() {
  for w in $servers; do
    for s in $(ps -o pid= --ppid "$w" 2>/dev/null); do kill -KILL "$s" 2>/dev/null; done
    kill -KILL "$w" 2>/dev/null
  done
  rm -f /dev/shm/forkpool."$P"*
  rm -rf "$T"
}

# serve_pool NAME LOG [OPTION...]: start `forkpool serve --name NAME
# OPTION...` in the background, its stderr to LOG. Sets $wrap to the pid
# of its `timeout` wrapper (whose exit status is the server's) and, once
# the ready line is logged, $spid to the server's pid ($why says so when
# it never is).
serve_pool() {
  _name=$1
  _log=$2
  shift 2
  $STMO "$FP" serve --name "$_name" "$@" 2>"$_log" &
  wrap=$!
  servers="$servers $wrap"
  spid=""
  if wait_until 10 grep -qs ' INFO ready: ' "$_log"; then
    spid=$(sed -n 's/.* INFO ready: .*supervisor pid \([0-9]*\)$/\1/p' "$_log")
  else
    fails "no ready line from serve $_name: $(tail -n 1 "$_log")"
  fi
}

# stop WRAP: SIGTERM the server under WRAP (never the wrapper: timeout
# would pass it on to the whole process group), wait, set $rc to its
# status.
stop() {
  for s in $(ps -o pid= --ppid "$1"); do kill -TERM "$s"; done
  wait "$1"
  rc=$?
  reaped "$1"
}

# st NAME: `forkpool stat --json` into $T/st.json, and without the rows
# into $T/st.top, so that jget reads top-level keys only.
st() {
  $TMO "$FP" stat --name "$1" --json >"$T/st.json" 2>"$T/st.err" || return 1
  sed 's/,"workers_rows":.*//' "$T/st.json" >"$T/st.top"
}
# jget KEY: a top-level number of the last st.
jget() { sed -n 's/.*"'"$1"'":\([0-9]*\).*/\1/p' "$T/st.top"; }
# row_pids: the pids of the last st's rows, sorted, on one line.
row_pids() { sed 's/.*"workers_rows"://' "$T/st.json" | grep -o '"pid":[0-9]*' | cut -d: -f2 | grep -v '^0$' | sort -n | tr '\n' ' '; }
# stat_is NAME KEY VALUE...: every KEY has VALUE in a fresh stat.
stat_is() {
  _sn=$1
  shift
  st "$_sn" || return 1
  while [ $# -ge 2 ]; do
    [ "$(jget "$1")" = "$2" ] || return 1
    shift 2
  done
}
