#!/bin/sh
# forkpool demo, run by `make demo` as: sh examples/demo.sh BUILD_DIR
#
# Feeds a mix of good tasks and tasks that crash, abort, exit, hang, eat
# memory or fail to `forkpool run` with the crashy plugin, and prints each
# task next to its result. forkpool run exits 1 when some task is not ok,
# which is the point here; the demo fails only when forkpool itself fails
# (exit 2 or more), when a task got no result line, or when the pool did not
# live on (the final tasks, sent after every crash, must end ok).
set -u

build=${1:-build}
bin=$build/bin/forkpool
plugin=$build/examples/crashy.so

for f in "$bin" "$plugin"; do
  if [ ! -e "$f" ]; then
    echo "demo: $f is missing; run make first" >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-demo.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# One task per line. The last $final tasks come after every crash.
final=3
cat >"$tmp/tasks" <<'EOF'
hello
segv
world
abort
exit 3
forkpool
hang
fail 7
sleep 100
oom
crash isolation
exit 0
segv
sleep 20
fail 42
abort
hang
exit 77
pre-fork workers
the pool lives on
every task got an answer
EOF

ntasks=$(wc -l <"$tmp/tasks")
ntasks=$((ntasks + 0)) # drop the padding some wc versions add

cat <<EOF
== forkpool demo ==
$ntasks tasks go to 2 worker processes running the crashy plugin, with a
500 ms time limit per task. crashy does what a task says: segv, abort,
exit N, hang (until the timeout kills it), oom (eats memory up to a cap,
then aborts), fail N (returns error N), sleep MS; any other text comes back
upper-cased. Each crash costs one worker, which is replaced; it never costs
another task or the pool.

  \$ CRASHY_OOM_MB=64 $bin run --handler $plugin \\
      --workers 2 --timeout 500 < tasks

EOF

# A small memory cap keeps "oom" well inside the 500 ms limit even where
# touching fresh memory is slow.
CRASHY_OOM_MB=64 "$bin" run --handler "$plugin" --workers 2 --timeout 500 \
  <"$tmp/tasks" >"$tmp/results" 2>"$tmp/stderr"
rc=$?
if [ "$rc" -ge 2 ]; then
  echo "demo: forkpool run failed with exit status $rc:" >&2
  cat "$tmp/stderr" >&2
  exit 1
fi

nresults=$(wc -l <"$tmp/results")
if [ "$ntasks" -ne "$nresults" ]; then
  echo "demo: $ntasks tasks but $nresults result lines" >&2
  cat "$tmp/stderr" >&2
  exit 1
fi

printf '  %-26s %-10s %s\n' TASK STATUS DETAIL
paste "$tmp/tasks" "$tmp/results" |
  awk -F '\t' '{ printf "  %-26s %-10s %s\n", $1, $2, $3 }'

echo
if [ "$rc" -eq 1 ]; then
  echo "forkpool run exited 1: some tasks were not ok, as intended."
else
  echo "forkpool run exited 0: every task was ok (crashy did not crash?)."
fi
printf 'Per status:'
cut -f1 "$tmp/results" | sort | uniq -c |
  awk '{ printf " %s %s", $2, $1 } END { printf "\n" }'

notok=$(tail -n "$final" "$tmp/results" | cut -f1 | grep -vcx ok)
if [ "$notok" -ne 0 ]; then
  echo "demo: the last $final tasks should have ended ok:" >&2
  tail -n "$final" "$tmp/results" >&2
  exit 1
fi
crashes=$(cut -f1 "$tmp/results" | grep -cEx 'crashed|timeout')
echo "The pool lived on: after $crashes dead workers, the last $final tasks ended ok."
