#!/bin/sh
# Regenerate the fuzzers' seed corpora (committed; run this again when the
# segment layout changes, and commit the result):
#   tests/fuzz/corpus/segment/  real segments of a small named pool, copied
#       from /dev/shm while `forkpool serve` runs it: fresh; busy (a task
#       running, others queued by a producer); after tasks that ended ok,
#       failed and crashed (a crash report in its row). Plus structured
#       inputs (geometry + patches, see fuzz_segment.c).
#   tests/fuzz/corpus/cli/  records, UTF-8 good and bad, control bytes,
#       option lists (see fuzz_cli.c for how each input is read).
# Usage: sh tests/fuzz/make-seeds.sh [BUILD_DIR [OUT_DIR]]   (from the
# repository root; needs BUILD_DIR/bin/forkpool and BUILD_DIR/examples/
# crashy.so; OUT_DIR defaults to tests/fuzz/corpus). `make fuzz` runs it
# into its scratch corpus too, so the fuzzer always starts from segments of
# the current layout even when the committed ones are out of date.
set -u

B=${1:-build}
FP=$B/bin/forkpool
CRASHY=$B/examples/crashy.so
OUT=${2:-tests/fuzz/corpus}
if [ ! -x "$FP" ] || [ ! -f "$CRASHY" ]; then
  echo "need $FP and $CRASHY" >&2
  exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/fp-seeds.XXXXXX") || exit 1
NAME=fpseed$$
SEG=/dev/shm/forkpool.$NAME
serve_pid=""
sub_pid=""
cleanup() {
  [ -n "$sub_pid" ] && kill "$sub_pid" 2>/dev/null
  if [ -n "$serve_pid" ]; then
    kill -TERM "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
  fi
  rm -f "$SEG"
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$OUT/segment" "$OUT/cli"

# --- segments of a live pool ---------------------------------------------
timeout 60 "$FP" serve --name "$NAME" --handler "$CRASHY" --workers 1 \
  --queue 4 --max-input 64 --max-output 64 --max-workers 2 --max-clients 2 \
  --grace 0 --pidfile "$T/pid" 2>"$T/serve.log" &
serve_pid=$!
n=0
while [ ! -s "$T/pid" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -s "$T/pid" ] || { cat "$T/serve.log" >&2; exit 1; }
cp "$SEG" "$OUT/segment/fresh" && chmod 644 "$OUT/segment/fresh"

printf 'hello\nfail 7\nsegv\n' | timeout 30 "$FP" submit --name "$NAME" \
  >/dev/null
cp "$SEG" "$OUT/segment/after-crash" && chmod 644 "$OUT/segment/after-crash"

# One worker: "hang" runs, the next two wait on the producer's list.
printf 'hang\nqueued-1\nqueued-2\n' | timeout 30 "$FP" submit --name "$NAME" \
  >/dev/null 2>&1 &
sub_pid=$!
sleep 1
cp "$SEG" "$OUT/segment/busy" && chmod 644 "$OUT/segment/busy"
kill "$sub_pid" 2>/dev/null
wait "$sub_pid" 2>/dev/null
sub_pid=""
kill -TERM "$serve_pid"
wait "$serve_pid"
serve_pid=""

# Structured inputs: geometry bytes (slots, rows, clients, max input, max
# output), patch count, resize, then (offset, value) patches.
printf '\003\001\001\021\021\000\000' >"$OUT/segment/structured-plain"
printf '\007\003\002\041\000\003\000\040\000\377\377\377\377\044\000\002\000\000\000\210\000\001\000\000\000' \
  >"$OUT/segment/structured-patched"

# --- the command line's inputs -------------------------------------------
c=$OUT/cli
printf 'hello\nworld\n\nlast' >"$c/lines"
printf '\001hello\000\000world\000' >"$c/nul-records"
printf '\004\000\377%s' "$(head -c 300 /dev/zero | tr '\0' 'x')" >"$c/long-record"
printf '\002\003\007h\303\251llo \342\230\203 \360\237\230\200 caf\303\251\n' >"$c/utf8"
printf '\000\000\000\300\257\355\240\200\364\220\200\200\377\376\340\200\200\302' >"$c/bad-utf8"
printf '\000\001\002\t\r\n\033[0m\177\\"/\010\014' >"$c/controls"
printf '\012\001--workers\0004\000--timeout=100\000--json\000--json=1\000--max-input\00099999999999999999999\000-1\000--workers=\0000755\00018446744073709551616' \
  >"$c/options"
printf '\377\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037\040\041\042\043\044output with "quotes" and \\ and \303\251' \
  >"$c/result"
echo "seeds written under $OUT"
