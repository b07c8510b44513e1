#!/bin/sh
# Tests of handlers in any language: `forkpool run|serve ... --exec CMD
# [ARG...]` and `--coproc CMD [ARG...]`, and of SIGHUP reloading a
# plugin (or restarting the coprocesses) under `forkpool serve`. They are
# driven the way a user's shell script would, with commands that misbehave
# on purpose: small sh and python3 scripts written into a temporary
# directory (removed at exit).
#
# Usage: sh tests/anylang.sh [BUILD_DIR]   (from the repository root;
# default BUILD_DIR is build). Needs BUILD_DIR/bin/forkpool, cc (for the
# test plugins) and python3 (the coprocesses).
#
# Prints one line per test, "ok - NAME" or "not ok - NAME: WHY", lines
# starting with "#" for information, then "N passed, M failed". Exit
# status 0 only when nothing failed. Every forkpool process is wrapped in
# `timeout`, so a bug fails a test instead of hanging the script. Pool
# names are fpa<pid of this shell>_<letter>; at exit every server this
# script started and did not reap is killed (by pid), and its
# /dev/shm/forkpool.fpa<pid>_* entries are removed. Every process started
# here inherits a tag variable, so one left behind is found at the end.

# $EX and $CP hold a command and its first arguments: split on purpose.
# shellcheck disable=SC2086
set -u

B=${1:-build}
FP=$B/bin/forkpool
TMO="timeout 20"     # a run, a submit or a stat
STMO="timeout 60"    # a server
TAB=$(printf '\t')
P=fpa$$_             # pool name prefix; the "_" keeps fpa$$_* off the
                     # pools of a run whose pid merely starts with ours

. "$(dirname "$0")/lib/harness.sh"

if [ ! -x "$FP" ]; then
  nok "setup" "need $FP (run make first)"
  echo "$pass passed, $fail failed"
  exit 1
fi
for t in cc python3 setsid; do
  if ! command -v "$t" >/dev/null 2>&1; then
    nok "setup" "need $t"
    echo "$pass passed, $fail failed"
    exit 1
  fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-anylang.XXXXXX") || exit 1

FORKPOOL_ANYLANG_TEST_TAG="forkpool-anylang-test-$$-$(date +%s%N)"
export FORKPOOL_ANYLANG_TEST_TAG
HARNESS_TAG_VAR=FORKPOOL_ANYLANG_TEST_TAG
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# alive PID: PID runs (and is not a zombie).
alive() {
  [ -n "$1" ] && [ -e /proc/"$1" ] &&
    [ "$(awk '{ print $3 }' /proc/"$1"/stat 2>/dev/null)" != Z ]
}
dead() { ! alive "$1"; }

# same FILE EXPECTED: FILE holds exactly the bytes of EXPECTED (a printf
# format), else $why says what it holds.
same() {
  # shellcheck disable=SC2059 # the expectation is a format on purpose
  printf "$2" >"$T/want"
  cmp -s "$1" "$T/want" ||
    fails "$(basename "$1"): got '$(od -An -c "$1" | tr -s ' ' | head -c 300)', want '$(od -An -c "$T/want" | tr -s ' ' | head -c 300)'"
}
expect_rc() { [ "$1" = "$2" ] || fails "${3:-exit status} $1, want $2"; }
has() { grep -qF -e "$2" "$1" || fails "$(basename "$1") lacks '$2': $(head -c 300 "$1")"; }
hasnt() { ! grep -qF -e "$2" "$1" || fails "$(basename "$1") holds '$2'"; }

# run NAME INPUT [OPTION...]: forkpool run with the bytes of the printf
# format INPUT as stdin, stdout to $T/NAME.out, stderr to $T/NAME.err,
# status in $rc, seconds in $dt.
run() {
  _n=$1
  # shellcheck disable=SC2059 # the input is a format on purpose
  printf "$2" >"$T/$_n.in"
  shift 2
  _t0=$(now)
  $TMO "$FP" run -q "$@" <"$T/$_n.in" >"$T/$_n.out" 2>"$T/$_n.err"
  rc=$?
  dt=$(secs "$_t0" "$(now)")
}

# serve NAME LOG [OPTION...]: serve_pool (tests/lib/harness.sh); the
# handler is among the options.
serve() { serve_pool "$@"; }
# submit NAME POOL [ARG...]: forkpool submit into $T/NAME.out/.err, $rc.
submit() {
  _n=$1
  _p=$2
  shift 2
  $TMO "$FP" submit --name "$_p" "$@" >"$T/$_n.out" 2>"$T/$_n.err"
  rc=$?
}
# pidof_file FILE: the pid FILE holds (empty when none).
pidof_file() { cat "$1" 2>/dev/null; }
# more_lines FILE PATTERN N: FILE has more than N lines holding PATTERN.
more_lines() { [ "$(grep -c -e "$2" "$1")" -gt "$3" ]; }
# ok_reached POOL N: the pool's ok counter is at least N.
ok_reached() { st "$1" && [ "$(jget ok)" -ge "$2" ]; }

# --- the misbehaving commands ------------------------------------------------
D=$T/d
mkdir "$D"

# ex.sh WHAT: one --exec task, chosen by its argument ({}).
cat >"$T/ex.sh" <<'EOF'
D=$1
shift
case $1 in
  ok) printf 'fine' ;;
  fail) printf 'some out' ; echo "bad thing happened" >&2; exit 7 ;;
  fail255) exit 255 ;;
  segv) echo "about to die" >&2; kill -SEGV $$ ;;
  abrt) kill -ABRT $$ ;;
  term) kill -TERM $$ ;;
  hang) sleep 30 ;;
  setsid) setsid sleep 30 & echo $! >"$D/exec-setsid.pid"; sleep 30 ;;
  leave) sleep 30 & echo $! >"$D/exec-leave.pid"; printf 'left' ;;
  leaveout) sleep 30 & echo $! >"$D/exec-leaveout.pid"; printf 'gone' ;;
  leavesid) setsid sleep 30 & echo $! >"$D/exec-leavesid.pid"; printf 'fled' ;;
  stdin) cat; printf '[%s]' "$1" ;;
  bytes) head -c "$2" /dev/zero | tr '\0' x ;;
  huge) head -c 10000000 /dev/zero ;;
  bin) printf 'a\000b\377' ;;
  noise) echo "line one" >&2; echo "line two" >&2; printf 'quiet' ;;
  '') printf 'empty' ;;
  *) printf 'unknown %s' "$1"; exit 9 ;;
esac
EOF

# cp.py: a coprocess speaking the framing; the task says what to do.
cat >"$T/cp.py" <<'EOF'
import os, sys, signal, time, subprocess
i = sys.stdin.buffer
o = sys.stdout.buffer
D = sys.argv[1]
def reply(s, b):
    o.write(b'%d %d\n' % (s, len(b)) + b)
    o.flush()
while True:
    h = i.readline()
    if not h:
        sys.exit(0)
    n = int(h)
    d = i.read(n) if n else b''
    w = d.split(b' ')
    c = w[0]
    if c == b'fail':
        reply(int(w[1]), b'err')
    elif c == b'abort':
        os.abort()
    elif c == b'exit':
        os._exit(int(w[1]))
    elif c == b'pid':
        reply(0, str(os.getpid()).encode())
    elif c == b'nap':
        time.sleep(0.005)
        reply(0, b'nap ' + str(os.getpid()).encode())
    elif c == b'hang':
        time.sleep(3600)
    elif c == b'big':
        reply(0, b'x' * int(w[1]))
    elif c == b'len':
        reply(0, str(len(d)).encode())
    elif c == b'garbage':
        o.write(b'hello world\n')
        o.flush()
    elif c == b'badstatus':
        o.write(b'300 0\n')
        o.flush()
    elif c == b'badlen':
        o.write(b'0 -1\n')
        o.flush()
    elif c == b'quit':
        reply(0, b'bye')
        sys.exit(0)
    elif c == b'quitfork':
        reply(0, b'bye')
        p = os.fork()
        if p == 0:
            time.sleep(30)
            os._exit(0)
        with open(D + '/cp-quitfork.pid', 'w') as f:
            f.write(str(p))
        os._exit(0)
    elif c == b'quitlater':
        reply(0, b'bye')
        time.sleep(0.2)
        os._exit(3)
    elif c == b'forkdie':
        p = os.fork()
        if p == 0:
            time.sleep(30)
            os._exit(0)
        with open(D + '/cp-forkdie.pid', 'w') as f:
            f.write(str(p))
        os.kill(os.getpid(), signal.SIGKILL)
    elif c == b'greedy':
        i.readline()
        reply(0, b'greedy')
    elif c == b'spawn':
        p = subprocess.Popen(['setsid', 'sleep', '30'])
        with open(D + '/cp-spawn.pid', 'w') as f:
            f.write(str(p.pid))
        time.sleep(3600)
    else:
        reply(0, d)
EOF

# stubborn.py: a coprocess that ignores SIGTERM and, at end of file, sleeps.
cat >"$T/stubborn.py" <<'EOF'
import os, sys, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1] + '/stubborn.' + str(os.getpid()), 'w') as f:
    f.write(str(os.getpid()))
i = sys.stdin.buffer
while True:
    h = i.readline()
    if not h:
        break
    d = i.read(int(h))
    sys.stdout.buffer.write(b'0 %d\n' % len(d) + d)
    sys.stdout.buffer.flush()
while True:
    time.sleep(1)
EOF

EX="sh $T/ex.sh $D"
CP="python3 $T/cp.py $D"

# ============================================================================
# --exec, forkpool run
# ============================================================================

# The two examples of the issue, exactly.
run e1 'a\nb\n' --exec tr a-z A-Z
expect_rc $rc 0
same "$T/e1.out" 'ok\tA\nok\tB\n'
run e2 'a\n' --exec sh -c 'exit 3'
expect_rc $rc 1 "exit 3: exit status"
same "$T/e2.out" 'failed\tcode=3\n'
check "exec: tr a-z A-Z upper-cases each task; sh -c 'exit 3' is failed code=3"

# Without {} the task is the whole stdin, its exact bytes: no newline added.
run e3 'abc\n\nxy z\n' --exec wc -c
same "$T/e3.out" 'ok\t3\\n\nok\t0\\n\nok\t4\\n\n'
run e3b 'a\000b\377\n' --json --exec od -An -v -tx1
has "$T/e3b.out" '"output":" 61 00 62 ff\n"'
check "exec: without {} the task is CMD's stdin, exact bytes (NUL, 0xff, empty)"

# {} is replaced in every ARG that holds it, with no shell: words stay
# whole and $(...) is not run.
run e4 "x y\\n\$(touch $D/pwned)\\n\\n-n\\n" --exec printf '<%s|%s>' '{}' 'pre{}post'
expect_rc $rc 0
same "$T/e4.out" "ok\t<x y|prex ypost>\nok\t<\$(touch $D/pwned)|pre\$(touch $D/pwned)post>\nok\t<|prepost>\nok\t<-n|pre-npost>\n"
[ -e "$D/pwned" ] && fails "a shell ran the task"
check "exec: {} replaced in each ARG, empty task too, no shell"

# With {} the command's stdin is not the task: reading it ends at once.
run e5 'zz\n' --timeout 3000 --exec $EX stdin '{}'
same "$T/e5.out" 'ok\t[stdin]\n'
check "exec: with {} the command's stdin is empty (not the task, no hang)"

# A task with a NUL byte cannot be an argument: failed code=256, others run.
run e6 'a\000b\nok\n' --exec $EX '{}'
expect_rc $rc 1
same "$T/e6.out" 'failed\tcode=256\nok\tfine\n'
check "exec: a NUL byte in a task for {} fails code=256"

# Exit N is failed code=N, plain "failed<TAB>code=N"; JSON keeps stderr.
run e7 'fail\nfail255\nok\n' --exec $EX '{}'
same "$T/e7.out" 'failed\tcode=7\nfailed\tcode=255\nok\tfine\n'
run e7j 'fail\n' --json --exec $EX '{}'
has "$T/e7j.out" '"status":"failed"'
has "$T/e7j.out" '"code":7'
has "$T/e7j.out" '"output":"bad thing happened\n"'
check "exec: exit N is failed code=N; JSON output is the head of stderr"

# Death by a signal is crashed with its name; --backtrace says who.
run e8 'segv\nabrt\nterm\nok\n' --exec $EX '{}'
expect_rc $rc 1
same "$T/e8.out" 'crashed\tSIGSEGV\ncrashed\tSIGABRT\ncrashed\tSIGTERM\nok\tfine\n'
run e8b 'segv\n' --backtrace --exec $EX '{}'
has "$T/e8b.out" "crashed${TAB}SIGSEGV${TAB}'sh' killed by SIGSEGV; stderr: "
has "$T/e8b.out" "about to die"
check "exec: a signal is crashed SIGxxx; --backtrace: 'CMD' killed by SIGxxx; stderr"

# stderr goes to the log at warn, marked with the task and worker.
run e9 'noise\n' --log-level warn --exec $EX '{}'
same "$T/e9.out" 'ok\tquiet\n'
grep -q "WARN task [0-9]* (worker [0-9]*) stderr: line one" "$T/e9.err" ||
  fails "no stderr line in the log: $(head -c 300 "$T/e9.err")"
has "$T/e9.err" "line two"
run e9q 'noise\n' --exec $EX '{}'
hasnt "$T/e9q.err" "line one"
check "exec: stderr is logged at warn as 'task N (worker PID) stderr: ...'"

# The timeout kills the command and what it started, setsid'd or not.
run e10 'hang\nsetsid\nok\n' --timeout 300 --workers 2 --exec $EX '{}'
same "$T/e10.out" 'timeout\tSIGKILL\ntimeout\tSIGKILL\nok\tfine\n'
within 0 "$dt" 5 || fails "took $dt s"
sp=$(pidof_file "$D/exec-setsid.pid")
[ -n "$sp" ] || fails "the setsid child never started"
wait_until 2 dead "$sp" || fails "setsid child $sp still alive after the timeout"
check "exec: --timeout kills the command and its setsid child"

# Processes a task left behind are killed when it ends, even when they
# keep its stdout open (the task still ends at once).
run e11 'leave\nleaveout\nleavesid\n' --workers 1 --exec $EX '{}'
same "$T/e11.out" 'ok\tleft\nok\tgone\nok\tfled\n'
within 0 "$dt" 5 || fails "took $dt s: a leftover held the task"
for f in exec-leave exec-leaveout exec-leavesid; do
  lp=$(pidof_file "$D/$f.pid")
  [ -n "$lp" ] || fails "$f: no pid"
  dead "$lp" || fails "$f: leftover $lp still alive"
done
check "exec: processes a task left behind are killed when it ends"

# Output: up to --max-output is ok, one byte more fails code=257; a flood
# fails too, without a hang; the default limit is 65536.
# shellcheck disable=SC2016 # a script for sh -c
run e12 'bytes 100\nbytes 101\nhuge\n' --max-output 100 --exec sh -c 'read -r w n; case $w in bytes) head -c "$n" /dev/zero | tr "\0" x ;; huge) head -c 10000000 /dev/zero ;; esac'
x100=$(printf '%0100d' 0 | tr 0 x)
same "$T/e12.out" "ok\t$x100\nfailed\tcode=257\nfailed\tcode=257\n"
within 0 "$dt" 10 || fails "took $dt s"
# shellcheck disable=SC2016 # a script for sh -c
run e12b '65536\n65537\n' --json --exec sh -c 'read -r n; head -c "$n" /dev/zero'
python3 -c '
import json, sys, base64
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 2, r
assert r[0]["status"] == "ok", r[0]
out = r[0]["output"] if "output" in r[0] else base64.b64decode(r[0]["output_base64"]).decode()
assert out == "\0" * 65536, len(out)
assert r[1]["status"] == "failed" and r[1]["code"] == 257, r[1]
' "$T/e12b.out" 2>"$T/py.err" || fails "default --max-output: $(tail -n 1 "$T/py.err")"
check "exec: output exactly at --max-output is ok, over fails code=257"

# Binary output: NUL and 0xff come back exactly (output_base64).
run e13 'bin\n' --json --exec $EX '{}'
has "$T/e13.out" '"output_base64":"YQBi/w=="'
run e13b '\377\376\n' --json --exec cat
has "$T/e13b.out" '"output_base64":"//4="'
check "exec: binary output (NUL, 0xff) exact in --json output_base64"

# An empty task: empty stdin, empty output, still ok.
run e14 '\n\n' --exec cat
same "$T/e14.out" 'ok\t\nok\t\n'
run e14b '\n' --json --exec cat
has "$T/e14b.out" '"status":"ok"'
check "exec: empty tasks are ok with empty output"

# A command that does not read its stdin (EPIPE for us), one whose stdout
# fills while we still write its stdin, and one flooding stderr: no hang.
python3 -c 'import sys; sys.stdout.write("a" * 60000 + "\n" + "b" * 500000 + "\n")' >"$T/e16.in"
$TMO "$FP" run -q --max-input 1000000 --exec echo hi <"$T/e16.in" >"$T/e16.out" 2>"$T/e16.err"
same "$T/e16.out" 'ok\thi\\n\nok\thi\\n\n'
$TMO "$FP" run -q --max-input 1000000 --max-output 1000000 --exec sh -c 'head -c 300000 /dev/zero | tr "\0" y; wc -c | tr -d " \n"' <"$T/e16.in" | sed 's/yyyy*/Y/' >"$T/e16b.out"
same "$T/e16b.out" 'ok\tY60000\nok\tY500000\n'
run e16c 'x\n' --exec sh -c 'head -c 5000000 /dev/zero | tr "\0" e >&2; printf done'
same "$T/e16c.out" 'ok\tdone\n'
check "exec: unread stdin, full pipes both ways, a stderr flood: no hang"

# A command that does not exist: exit 2 at start, with a reason.
run e15 'a\n' --exec nosuchcmd_$$
expect_rc $rc 2
has "$T/e15.err" "not found on PATH"
[ -s "$T/e15.out" ] && fails "printed results: $(cat "$T/e15.out")"
printf 'echo x\n' >"$T/noexec.sh"
run e15b 'a\n' --exec "$T/noexec.sh"
expect_rc $rc 2 "a file without x bit: exit status"
grep -qi "permission denied" "$T/e15b.err" || fails "no 'permission denied': $(cat "$T/e15b.err")"
check "exec: a command not on PATH (or not executable) is exit 2 at start"


# ============================================================================
# --coproc, forkpool run
# ============================================================================

# pids FILE: the outputs of "ok<TAB>PID" lines, one per line, into $pids.
pids() { pids=$(sed -n "s/^ok${TAB}\([0-9][0-9]*\)\$/\1/p" "$1" | tr '\n' ' '); }
# distinct WORD...: no two equal.
distinct() { [ "$(printf '%s\n' "$@" | sort -u | wc -l)" = $# ]; }

run c1 'a\nfail 5\nfail 255\n\nb\n' --workers 1 --coproc $CP
expect_rc $rc 1
same "$T/c1.out" 'ok\ta\nfailed\tcode=5\nfailed\tcode=255\nok\t\nok\tb\n'
run c1j 'fail 5\n' --json --workers 1 --coproc $CP
has "$T/c1j.out" '"code":5'
check "coproc: S 0 is ok with the reply, S 1..255 failed code=S, empty task ok"

# Binary both ways: the request carries NUL and 0xff, the reply too.
run c2 'a\000b\377\nlen \000\377\n' --json --workers 1 --coproc $CP
has "$T/c2.out" '"output_base64":"YQBi/w=="'
has "$T/c2.out" '"output":"6"'
check "coproc: binary request and reply (NUL, 0xff) exact"

# Dying mid-task: crashed with the signal or the exit status, restarted.
run c3 'pid\nabort\npid\nexit 4\npid\nexit 0\npid\n' --workers 1 --coproc $CP
expect_rc $rc 1
sed -n '2p;4p;6p' "$T/c3.out" >"$T/c3.crash"
same "$T/c3.crash" 'crashed\tSIGABRT\ncrashed\texit=4\ncrashed\texit=0\n'
pids "$T/c3.out"
# shellcheck disable=SC2086
{ [ "$(echo $pids | wc -w)" = 4 ] && distinct $pids; } ||
  fails "want 4 distinct coprocess pids, got '$pids' ($(tr '\n' ' ' <"$T/c3.out"))"
check "coproc: death mid-task is crashed SIGABRT / exit=4 / exit=0, then a new one"

# Repeated crashes go through the crash-loop backoff and still end.
run c3b 'abort\nabort\nabort\nabort\nok\n' --workers 1 --coproc $CP
same "$T/c3b.out" 'crashed\tSIGABRT\ncrashed\tSIGABRT\ncrashed\tSIGABRT\ncrashed\tSIGABRT\nok\tok\n'
info "4 crashes in a row and one task: $dt s"
check "coproc: repeated crashes each end crashed, the next task runs"

# A malformed reply: failed code=258, a new coprocess for the next task.
run c4 'pid\ngarbage\npid\nbadstatus\npid\nbadlen\npid\n' --workers 1 --coproc $CP
sed -n '2p;4p;6p' "$T/c4.out" >"$T/c4.bad"
same "$T/c4.bad" 'failed\tcode=258\nfailed\tcode=258\nfailed\tcode=258\n'
pids "$T/c4.out"
# shellcheck disable=SC2086
{ [ "$(echo $pids | wc -w)" = 4 ] && distinct $pids; } ||
  fails "want 4 distinct coprocess pids, got '$pids' ($(tr '\n' ' ' <"$T/c4.out"))"
check "coproc: a malformed reply is failed code=258, the coprocess restarted"

# Exiting between tasks (at once or a little later, with a status) costs
# nothing: the next task runs on a new coprocess, nothing is crashed.
run c5 'pid\nquit\npid\nquitlater\npid\nquitfork\npid\n' --json --workers 1 --coproc $CP
python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [x["status"] for x in r] == ["ok"] * 7, [x["status"] for x in r]
assert all(x["attempts"] == 1 for x in r), r
p = [x["output"] for x in r]
assert p[1] == "bye" and p[3] == "bye" and p[5] == "bye", p
assert p[0] != p[2] and p[2] != p[4] and p[4] != p[6], p
' "$T/c5.out" 2>"$T/py.err" || fails "$(tail -n 1 "$T/py.err")"
qp=$(pidof_file "$D/cp-quitfork.pid")
[ -n "$qp" ] || fails "quitfork: no pid"
wait_until 2 dead "$qp" || fails "the child $qp of a coprocess that exited between tasks is alive"
check "coproc: one that exits between tasks is replaced, never crashed"

# Output: exactly --max-output is ok, more fails code=257, the next runs.
run c6 'big 100\nbig 101\nbig 1000000\nbig 0\npid\n' --workers 1 --max-output 100 --coproc $CP
x100=$(printf '%0100d' 0 | tr 0 x)
sed -n '1,4p' "$T/c6.out" >"$T/c6.head"
same "$T/c6.head" "ok\t$x100\nfailed\tcode=257\nfailed\tcode=257\nok\t\n"
pids "$T/c6.out"
[ -n "$pids" ] || fails "last task: $(tail -n 1 "$T/c6.out")"
check "coproc: reply exactly at --max-output is ok, over it fails code=257"

# A hang: --timeout kills it and what it started (even setsid'd). (The
# timeouts of coprocess tests leave time for a new python3 to start: the
# task after a restart waits for it.)
run c7 'hang\npid\nspawn\npid\n' --workers 1 --timeout 1000 --coproc $CP
sed -n '1p;3p' "$T/c7.out" >"$T/c7.to"
same "$T/c7.to" 'timeout\tSIGKILL\ntimeout\tSIGKILL\n'
pids "$T/c7.out"
# shellcheck disable=SC2086
[ "$(echo $pids | wc -w)" = 2 ] || fails "after the timeouts: $(tr '\n' ' ' <"$T/c7.out")"
sp=$(pidof_file "$D/cp-spawn.pid")
[ -n "$sp" ] || fails "spawn: no pid"
wait_until 2 dead "$sp" || fails "the coprocess's setsid child $sp outlived the timeout"
check "coproc: --timeout kills the coprocess and its descendants"

# One that reads a second record before replying hangs: timeout, then fine.
run c8 'greedy\npid\npid\n' --workers 1 --timeout 1000 --coproc $CP
sed -n 1p "$T/c8.out" >"$T/c8.first"
same "$T/c8.first" 'timeout\tSIGKILL\n'
pids "$T/c8.out"
# shellcheck disable=SC2086
[ "$(echo $pids | wc -w)" = 2 ] || fails "after it: $(tr '\n' ' ' <"$T/c8.out")"
check "coproc: reading more than one record is a timeout, the next task runs"

# A child that keeps the stdout pipe open while the coprocess dies: the
# task still ends crashed, at once, and the child does not survive it.
_tmo=$TMO
TMO="timeout 10"
run c9 'forkdie\npid\n' --workers 1 --coproc $CP
TMO=$_tmo
expect_rc $rc 1
sed -n 1p "$T/c9.out" >"$T/c9.first"
same "$T/c9.first" 'crashed\tSIGKILL\n'
pids "$T/c9.out"
[ -n "$pids" ] || fails "the next task: $(tail -n 1 "$T/c9.out")"
within 0 "$dt" 4 || fails "took $dt s"
cp=$(pidof_file "$D/cp-forkdie.pid")
[ -n "$cp" ] || fails "forkdie: no pid"
wait_until 2 dead "$cp" || fails "the child $cp holding the pipe is still alive"
check "coproc: a dead coprocess's child holding stdout: crashed, no hang"

# --max-tasks N recycles the coprocess with its worker.
run c10 'pid\npid\npid\npid\npid\n' --workers 1 --max-tasks 2 --coproc $CP
pids "$T/c10.out"
# shellcheck disable=SC2086
set -- $pids
if [ $# = 5 ] && [ "$1" = "$2" ] && [ "$3" = "$4" ] && distinct "$1" "$3" "$5"; then :; else
  fails "pids '$pids', want p1 p1 p2 p2 p3"
fi
check "coproc: --max-tasks 2 starts a new coprocess every 2 tasks"

# One that ignores SIGTERM and even end of file does not hold the end.
run c11 'a\nb\nc\nd\n' --workers 2 --coproc python3 "$T/stubborn.py" "$D"
same "$T/c11.out" 'ok\ta\nok\tb\nok\tc\nok\td\n'
within 0 "$dt" 4 || fails "run took $dt s"
for f in "$D"/stubborn.*; do
  [ -e "$f" ] || { fails "no stubborn coprocess started"; break; }
  dead "$(cat "$f")" || fails "stubborn coprocess $(cat "$f") still alive"
  rm -f "$f"
done
info "run with a coprocess deaf to SIGTERM and EOF: $dt s"
check "coproc: one deaf to SIGTERM and EOF is killed, run ends in ~1 s"

# A coprocess that replies before it read the request is out of step: its
# reply must not be taken for the task's.
cat >"$T/early.py" <<'EOF2'
import sys, time
o = sys.stdout.buffer
i = sys.stdin.buffer
o.write(b'0 5\nSTALE')
o.flush()
time.sleep(0.3)
while True:
    h = i.readline()
    if not h:
        break
    d = i.read(int(h))
    o.write(b'0 %d\n' % len(d) + d)
    o.flush()
EOF2
run c13 'x\ny\nz\n' --workers 1 --coproc python3 "$T/early.py"
grep -q "STALE" "$T/c13.out" && fails "a reply written before the request was read became a result: $(tr '\n' ' ' <"$T/c13.out")"
awk -v tab="$TAB" '/^ok/ && $0 != "ok" tab "x" && $0 != "ok" tab "y" && $0 != "ok" tab "z" { exit 1 }' "$T/c13.out" ||
  fails "a task got another one's reply: $(tr '\n' ' ' <"$T/c13.out")"
check "coproc: a reply sent before the request was read is never a task's result"

# A coprocess that always dies at start (a script that does not even
# import): every task still ends (crashed or failed), or run refuses to
# start; it never hangs.
printf 'import no_such_module_anylang\n' >"$T/broken.py"
_tmo=$TMO
TMO="timeout 8"
run c14 'x\ny\n' --workers 1 --coproc python3 "$T/broken.py"
TMO=$_tmo
[ "$rc" = 124 ] && fails "forkpool run hung (killed by timeout after $dt s), results: '$(tr '\n' ' ' <"$T/c14.out")'"
[ "$rc" = 1 ] || [ "$rc" = 2 ] || fails "exit status $rc, want 1 or 2"
[ "$rc" = 1 ] && { grep -q "^ok" "$T/c14.out" || [ "$(wc -l <"$T/c14.out")" != 2 ]; } &&
  fails "want 2 not-ok results: $(tr '\n' ' ' <"$T/c14.out")"
check "coproc: a coprocess that dies at every start does not hang the run"

# A command that does not exist: exit 2 at start.
run c12 'a\n' --coproc nosuchcmd_$$
expect_rc $rc 2
has "$T/c12.err" "not found on PATH"
check "coproc: a command not on PATH is exit 2 'not found on PATH'"

# ============================================================================
# forkpool serve + submit
# ============================================================================

# --- --exec ------------------------------------------------------------------
SE=${P}e
serve "$SE" "$T/se.log" --workers 2 --timeout 300 --exec $EX '{}'
se_wrap=$wrap
submit se1 "$SE" ok fail segv abrt hang fail255 ok
expect_rc $rc 1 "submit: exit status"
same "$T/se1.out" 'ok\tfine\nfailed\tcode=7\ncrashed\tSIGSEGV\ncrashed\tSIGABRT\ntimeout\tSIGKILL\nfailed\tcode=255\nok\tfine\n'
submit se2 "$SE" --json fail bin
has "$T/se2.out" '"output":"bad thing happened\n"'
has "$T/se2.out" '"output_base64":"YQBi/w=="'
submit se3 "$SE" '' leave
same "$T/se3.out" 'ok\tempty\nok\tleft\n'
lp=$(pidof_file "$D/exec-leave.pid")
wait_until 2 dead "$lp" || fails "leftover $lp still alive"
wait_until 3 stat_is "$SE" ok 5 failed 3 crashed 2 timeout 1 ||
  fails "counters: $(cat "$T/st.top")"
grep -q "WARN task [0-9]* (worker [0-9]*) stderr: bad thing happened" "$T/se.log" ||
  fails "no stderr line in the log"
check "serve --exec: ok, failed, crashed, timeout, binary and empty through submit"

# --- --coproc ----------------------------------------------------------------
SC=${P}c
serve "$SC" "$T/sc.log" --workers 2 --timeout 1500 --coproc $CP
sc_wrap=$wrap sc_pid=$spid
submit sc1 "$SC" a 'fail 5' abort 'exit 4' hang garbage '' b
expect_rc $rc 1 "submit: exit status"
same "$T/sc1.out" 'ok\ta\nfailed\tcode=5\ncrashed\tSIGABRT\ncrashed\texit=4\ntimeout\tSIGKILL\nfailed\tcode=258\nok\t\nok\tb\n'
submit sc2 "$SC" --json "$(printf 'x\377y')"
has "$T/sc2.out" '"output_base64":"eP95"'
wait_until 3 stat_is "$SC" ok 4 failed 2 crashed 2 timeout 1 ||
  fails "counters: $(cat "$T/st.top")"
check "serve --coproc: ok, failed, crashed (signal, exit), timeout, garbage"

# Coprocesses that exit between tasks are no crash.
wait_until 3 stat_is "$SC" running 0 queued 0 || fails "not idle"
st "$SC"
c0=$(jget crashed)
submit sc3 "$SC" quit pid quit pid quitlater pid pid
expect_rc $rc 0 "submit: exit status"
grep -cv "^ok${TAB}" "$T/sc3.out" >/dev/null && fails "not all ok: $(tr '\n' ' ' <"$T/sc3.out")"
[ "$(wc -l <"$T/sc3.out")" = 7 ] || fails "$(wc -l <"$T/sc3.out") results, want 7"
sleep 0.3
st "$SC"
[ "$(jget crashed)" = "$c0" ] || fails "crashed went from $c0 to $(jget crashed)"
check "serve --coproc: exits between tasks are never counted crashed"

# SIGHUP restarts the coprocesses: new pids, the same code.
tasks() { _k=$1; shift; _i=0; while [ $_i -lt "$_k" ]; do printf '%s\n' "$*"; _i=$((_i + 1)); done; }
coproc_pids() { # POOL FILE: the pids replying to 20 "pid" tasks
  tasks 20 pid | $TMO "$FP" submit --name "$1" >"$2" 2>/dev/null
  sed -n "s/^ok${TAB}//p" "$2" | sort -u | tr '\n' ' '
}
before=$(coproc_pids "$SC" "$T/sc4a.out")
n0=$(grep -c 'reload done' "$T/sc.log")
kill -s HUP "$sc_pid"
wait_until 5 more_lines "$T/sc.log" "reload done" "$n0" || fails "no 'reload done' in the log"
after=$(coproc_pids "$SC" "$T/sc4b.out")
if [ -z "$before" ] || [ -z "$after" ]; then fails "no pids: before '$before', after '$after'"; fi
for p in $after; do
  case " $before " in *" $p "*) fails "coprocess $p survived SIGHUP (before: $before)" ;; esac
done
for p in $before; do dead "$p" || fails "old coprocess $p still alive"; done
check "serve --coproc: SIGHUP restarts the coprocesses (new pids)"

# SIGHUP twice under load: every task ok, none lost.
st "$SC"
ok0=$(jget ok)
tasks 200 nap | $TMO "$FP" submit --name "$SC" >"$T/sc5.out" 2>"$T/sc5.err" &
job=$!
wait_until 5 ok_reached "$SC" $((ok0 + 60)) || info "load: $(cat "$T/st.top")"
kill -s HUP "$sc_pid"
sleep 0.2
kill -s HUP "$sc_pid"
wait $job
expect_rc $? 0 "loaded submit: exit status"
[ "$(grep -c "^ok${TAB}nap [0-9]*\$" "$T/sc5.out")" = 200 ] ||
  fails "$(grep -c "^ok${TAB}nap" "$T/sc5.out") of 200 ok: $(grep -v "^ok${TAB}nap" "$T/sc5.out" | head -n 2 | tr '\n' ' ')"
[ "$(sed -n "s/^ok${TAB}nap //p" "$T/sc5.out" | sort -u | wc -l)" -gt 2 ] ||
  fails "no new coprocess ran a task during the load"
check "serve --coproc: two SIGHUPs under load lose or fail no task"

stop "$sc_wrap"
expect_rc $rc 0 "serve --coproc: exit status"
stop "$se_wrap"
expect_rc $rc 0 "serve --exec: exit status"
check "serve --exec and --coproc stop cleanly"

# A coprocess deaf to SIGTERM and end of file does not hold a stop.
SS=${P}s
serve "$SS" "$T/ss.log" --workers 2 --coproc python3 "$T/stubborn.py" "$D"
ss_wrap=$wrap
submit ss1 "$SS" a b c
same "$T/ss1.out" 'ok\ta\nok\tb\nok\tc\n'
t0=$(now)
stop "$ss_wrap"
t1=$(now)
expect_rc $rc 0 "serve: exit status"
within "$t0" "$t1" 4 || fails "stop took $(secs "$t0" "$t1") s"
info "stop with coprocesses deaf to SIGTERM and EOF: $(secs "$t0" "$t1") s"
for f in "$D"/stubborn.*; do
  [ -e "$f" ] || { fails "no stubborn coprocess started"; break; }
  dead "$(cat "$f")" || fails "stubborn coprocess $(cat "$f") still alive"
done
check "serve --coproc: one deaf to SIGTERM and EOF does not hold the stop"

# ============================================================================
# SIGHUP reloads a plugin
# ============================================================================
cat >"$T/ver.c" <<'EOF2'
#include <stdio.h>
#include <time.h>
#include <forkpool.h>
/* A handler that says which build ran it: "VER:task". */
int forkpool_handler(void *arg, const void *in, size_t in_len, void *out,
                     size_t out_cap, size_t *out_len)
{
  struct timespec ts = { 0, 3000000 };
  int n;

  (void)arg;
  nanosleep(&ts, NULL);
  n = snprintf(out, out_cap, "%s:%.*s", VER, (int)in_len, (const char *)in);
  *out_len = (size_t)n < out_cap ? (size_t)n : out_cap;
  return 0;
}
EOF2
printf 'int not_a_handler(void) { return 1; }\n' >"$T/nosym.c"
for v in v1 v2 v3 v4; do
  cc -shared -fPIC -Iinclude -DVER="\"$v\"" -o "$T/$v.so" "$T/ver.c" || fails "cc $v"
done
cc -shared -fPIC -o "$T/nosym.so" "$T/nosym.c" || fails "cc nosym"
awk 'BEGIN { for (i = 0; i < 200; i++) print "this is not an ELF shared object, just text" }' >"$T/text.so"
# install FILE: put FILE at $T/plug.so as a build would: a new file moved
# over the old one.
install_plug() { cp "$1" "$T/plug.new" && mv "$T/plug.new" "$T/plug.so"; }
install_plug "$T/v1.so"

SR=${P}r
serve "$SR" "$T/sr.log" --workers 2 --handler "$T/plug.so"
sr_wrap=$wrap sr_pid=$spid
submit sr0 "$SR" hello
same "$T/sr0.out" 'ok\tv1:hello\n'
i=0
while [ $i -lt 300 ]; do echo "t$i"; i=$((i + 1)); done >"$T/sr1.in"
$TMO "$FP" submit --name "$SR" <"$T/sr1.in" >"$T/sr1.out" 2>"$T/sr1.err" &
job=$!
wait_until 5 ok_reached "$SR" 40 || info "load: $(cat "$T/st.top")"
install_plug "$T/v2.so"
kill -s HUP "$sr_pid"
wait_until 5 ok_reached "$SR" 150 || info "load: $(cat "$T/st.top")"
install_plug "$T/v3.so"
kill -s HUP "$sr_pid"
wait $job
expect_rc $? 0 "loaded submit: exit status"
awk -v tab="$TAB" '$0 != "ok" tab "v1:t" NR - 1 && $0 != "ok" tab "v2:t" NR - 1 && $0 != "ok" tab "v3:t" NR - 1 { bad++; if (!first) first = $0 }
  END { printf "%d lines, %d bad %s", NR, bad, first; exit !(NR == 300 && bad == 0) }' "$T/sr1.out" >"$T/sr1.why" ||
  fails "results: $(cat "$T/sr1.why")"
grep -q "${TAB}v1:" "$T/sr1.out" || fails "no task ran the first build"
grep -q "${TAB}v3:" "$T/sr1.out" || fails "no task ran the third build during the load"
info "under load: $(grep -c "${TAB}v1:" "$T/sr1.out") v1, $(grep -c "${TAB}v2:" "$T/sr1.out") v2, $(grep -c "${TAB}v3:" "$T/sr1.out") v3"
wait_until 5 more_lines "$T/sr.log" "reload done" 0 || fails "no 'reload done' in the log"
wait_until 3 stat_is "$SR" running 0 alive 2 || fails "not idle: $(cat "$T/st.top")"
sleep 0.3
submit sr2 "$SR" a b c d e f
same "$T/sr2.out" 'ok\tv3:a\nok\tv3:b\nok\tv3:c\nok\tv3:d\nok\tv3:e\nok\tv3:f\n'
st "$SR"
[ "$(jget failed)$(jget crashed)$(jget timeout)$(jget cancelled)" = 0000 ] ||
  fails "not-ok counters: $(cat "$T/st.top")"
check "serve: two SIGHUP reloads under load (300 tasks): every task ok, new code runs"

# A file that is not a plugin: the old code keeps running, the log says why.
for bad in text nosym; do
  install_plug "$T/$bad.so"
  n0=$(grep -c "reload of plugin" "$T/sr.log")
  kill -s HUP "$sr_pid"
  wait_until 3 more_lines "$T/sr.log" "reload of plugin" "$n0" ||
    fails "$bad: no 'reload of plugin ... failed' line: $(tail -n 1 "$T/sr.log")"
  grep "reload of plugin $T/plug.so failed: " "$T/sr.log" | tail -n 1 >"$T/sr.fail"
  [ -s "$T/sr.fail" ] || fails "$bad: log: $(tail -n 2 "$T/sr.log" | tr '\n' ' ')"
  [ $bad = nosym ] && has "$T/sr.fail" forkpool_handler
  info "$bad: $(sed 's/.*ERROR //' "$T/sr.fail")"
  sleep 0.3
  submit sr3 "$SR" x y z
  same "$T/sr3.out" 'ok\tv3:x\nok\tv3:y\nok\tv3:z\n'
  wait_until 2 stat_is "$SR" alive 2 || fails "$bad: workers: $(cat "$T/st.top")"
done
# and a good build after the bad ones is taken.
install_plug "$T/v4.so"
n0=$(grep -c "reload done" "$T/sr.log")
kill -s HUP "$sr_pid"
wait_until 5 more_lines "$T/sr.log" "reload done" "$n0" || fails "no 'reload done' after the good build"
sleep 0.2
submit sr4 "$SR" p q
same "$T/sr4.out" 'ok\tv4:p\nok\tv4:q\n'
check "serve: SIGHUP with a broken plugin keeps the old code and logs why"

stop "$sr_wrap"
expect_rc $rc 0 "serve: exit status"
check "serve --handler stops cleanly after reloads"

# ============================================================================
# nothing left behind
# ============================================================================
left=$(tagged)
[ -z "$left" ] || { sleep 1; left=$(tagged); }
for p in $left; do
  fails "process left: $p $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)"
done
check "no process the tests started is left"
shm=""
for f in /dev/shm/forkpool."$P"*; do [ -e "$f" ] && shm="$shm $f"; done
[ -z "$shm" ] || fails "entries left in /dev/shm: $shm"
check "no /dev/shm entry left behind"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
