#!/bin/sh
# Tests of the Python client, python/forkpool.py (tests/python/*.py, with
# unittest), against pools served by BUILD_DIR/bin/forkpool.
#
# Usage: sh tests/python.sh [BUILD_DIR]   (from the repository root; default
# BUILD_DIR is build). Needs python3 (3.7 or later): without it, prints
# "# SKIP python3 missing" and succeeds. The module is loaded with
# FORKPOOL_LIB=BUILD_DIR/libforkpool.so. The run is wrapped in `timeout`,
# so a bug fails it instead of hanging `make check`.
set -u

B=${1:-build}
case $B in
  /*) ;;
  *) B=$(pwd)/$B ;;
esac

if ! command -v python3 >/dev/null 2>&1; then
  echo "# SKIP python3 missing: the Python client is not tested"
  exit 0
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 7))'; then
  echo "# SKIP python3 is older than 3.7: the Python client is not tested"
  exit 0
fi

# A sanitizer build (make check-sanitize) needs its runtime loaded before
# the library, which python3 was not linked with: preload it. Python's own
# allocations are not ours to check for leaks, and freed memory is reused
# at once (no quarantine) so that the RSS test still measures ours.
PRELOAD=""
if command -v readelf >/dev/null 2>&1; then
  for rt in asan ubsan; do
    if readelf -d "$B/libforkpool.so" 2>/dev/null | grep -q "lib$rt\.so"; then
      f=$(${CC:-cc} -print-file-name="lib$rt.so" 2>/dev/null)
      [ -e "$f" ] && PRELOAD="${PRELOAD:+$PRELOAD:}$f"
    fi
  done
fi
if [ -n "$PRELOAD" ]; then
  echo "# sanitizer build: python3 runs with LD_PRELOAD=$PRELOAD"
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:quarantine_size_mb=0" \
    LD_PRELOAD=$PRELOAD FORKPOOL_BUILD=$B FORKPOOL_LIB=$B/libforkpool.so \
    exec timeout 300 python3 -m unittest discover -s tests/python -v
fi
FORKPOOL_BUILD=$B FORKPOOL_LIB=$B/libforkpool.so \
  exec timeout 300 python3 -m unittest discover -s tests/python -v
