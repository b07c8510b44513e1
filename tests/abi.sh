#!/bin/sh
# The shared library's ABI surface: only the public API is exported.
#
# Usage: sh tests/abi.sh [BUILD_DIR]   (from the repository root; default
# BUILD_DIR is build). Needs BUILD_DIR/libforkpool.so (run make first),
# nm and readelf (binutils).
#
# Checks:
#   - every defined dynamic symbol (nm -D --defined-only) is an fp_*
#     function, and none is an fp__* internal;
#   - every function declared FP_EXTERN in include/forkpool.h is exported,
#     as a function (type T), and nothing is exported that the header does
#     not declare;
#   - the soname is libforkpool.so.MAJOR, with MAJOR from the header;
#   - the static library defines every FP_EXTERN function too.
#
# Prints "ok - NAME" or "not ok - NAME: WHY" per check, then
# "N passed, M failed"; exit status 0 only when nothing failed.

set -u

B=${1:-build}
SO=$B/libforkpool.so
AR=$B/libforkpool.a
HDR=include/forkpool.h

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
nok() { fail=$((fail + 1)); echo "not ok - $1: $2"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

for tool in nm readelf; do
  if ! command -v $tool >/dev/null 2>&1; then
    nok "setup" "$tool not found (apt-get install binutils)"
    finish
  fi
done
if [ ! -f "$SO" ] || [ ! -f "$AR" ] || [ ! -f "$HDR" ]; then
  nok "setup" "need $SO, $AR and $HDR (run make from the repository root)"
  finish
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-abi.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

# The header's public functions: each FP_EXTERN declaration names its
# function on the FP_EXTERN line ("FP_EXTERN int fp_submit(fp_pool *p,").
grep '^FP_EXTERN ' "$HDR" |
  sed -n 's/^FP_EXTERN[^(]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' |
  sort -u >"$T/declared"
ndecl=$(grep -c '^FP_EXTERN ' "$HDR")
if [ "$ndecl" -gt 0 ] && [ "$(wc -l <"$T/declared")" -eq "$ndecl" ]; then
  ok "header: $ndecl FP_EXTERN functions parsed"
else
  nok "header: FP_EXTERN functions parsed" \
    "$ndecl FP_EXTERN lines, $(wc -l <"$T/declared") names parsed"
fi

# Defined dynamic symbols, as "TYPE NAME".
nm -D --defined-only "$SO" | awk 'NF >= 3 { print $2, $3 }' |
  sort -k2 >"$T/dynsyms"
awk '{ print $2 }' "$T/dynsyms" | sort -u >"$T/exported"
if [ ! -s "$T/exported" ]; then
  nok "nm -D lists symbols" "nm -D --defined-only $SO printed nothing"
  finish
fi

bad=$(grep -v '^fp_[a-z0-9]' "$T/exported" | tr '\n' ' ')
if [ -z "$bad" ]; then
  ok "nm -D lists fp_* symbols alone ($(wc -l <"$T/exported") symbols)"
else
  nok "nm -D lists fp_* symbols alone" "also exported: $bad"
fi

internal=$(grep '^fp__' "$T/exported" | tr '\n' ' ')
if [ -z "$internal" ]; then
  ok "no fp__* internal symbol exported"
else
  nok "no fp__* internal symbol exported" "exported: $internal"
fi

missing=$(comm -23 "$T/declared" "$T/exported" | tr '\n' ' ')
if [ -z "$missing" ]; then
  ok "every FP_EXTERN function is exported"
else
  nok "every FP_EXTERN function is exported" "not exported: $missing"
fi

extra=$(comm -13 "$T/declared" "$T/exported" | tr '\n' ' ')
if [ -z "$extra" ]; then
  ok "nothing exported beyond the header's FP_EXTERN functions"
else
  nok "nothing exported beyond the header's FP_EXTERN functions" \
    "exported but not declared FP_EXTERN: $extra"
fi

notfunc=$(awk '$1 != "T" { print $2 "(" $1 ")" }' "$T/dynsyms" | tr '\n' ' ')
if [ -z "$notfunc" ]; then
  ok "every export is a function (no exported data)"
else
  nok "every export is a function (no exported data)" "$notfunc"
fi

major=$(sed -n 's/^#define FP_VERSION_MAJOR  *\([0-9][0-9]*\).*/\1/p' "$HDR")
soname=$(readelf -d "$SO" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ -n "$major" ] && [ "$soname" = "libforkpool.so.$major" ]; then
  ok "soname is libforkpool.so.$major"
else
  nok "soname is libforkpool.so.MAJOR" \
    "soname '$soname', FP_VERSION_MAJOR '$major'"
fi

nm --defined-only "$AR" 2>/dev/null | awk '$2 == "T" { print $3 }' |
  sort -u >"$T/static"
missing=$(comm -23 "$T/declared" "$T/static" | tr '\n' ' ')
if [ -z "$missing" ]; then
  ok "the static library defines every FP_EXTERN function"
else
  nok "the static library defines every FP_EXTERN function" \
    "missing: $missing"
fi

finish
