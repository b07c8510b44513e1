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

FORKPOOL_BUILD=$B FORKPOOL_LIB=$B/libforkpool.so \
  exec timeout 300 python3 -m unittest discover -s tests/python -v
