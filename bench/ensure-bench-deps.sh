#!/bin/sh
# Make sure what the optional C++ baseline of `make bench` needs is
# installed, the way tests/ensure-deps.sh installs the test dependencies:
#   - Boost.Interprocess headers (libboost-dev) and a C++ compiler (g++),
#     for bench/boost_mq_pool.cpp.
# As root with apt-get it installs what is missing; otherwise it prints the
# command to run. The baseline is optional (the library and `forkpool` link
# libc alone, and bench/compare.sh skips the Boost rows with a note when
# the binary is missing), so the exit status is always 0: a failed install
# only costs those rows.
set -u

HDR=/usr/include/boost/interprocess/ipc/message_queue.hpp
CXX_CMD=${CXX:-g++}

pkgs=""
[ -f "$HDR" ] || pkgs="libboost-dev"
command -v "$CXX_CMD" >/dev/null 2>&1 || pkgs="${pkgs:+$pkgs }g++"
[ -z "$pkgs" ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-bench-deps: the Boost baseline needs: $pkgs; without it" \
    "make bench skips the Boost rows. Install with:" >&2
  echo "  sudo apt-get install -y $pkgs" >&2
  exit 0
fi

# --no-install-recommends: the headers are all the baseline needs.
# (tests/apt-install.sh installs every package the project's targets need.)
# shellcheck disable=SC2086 # $pkgs is a list of words on purpose
if ! sh "$(dirname "$0")/../tests/apt-install.sh" ensure-bench-deps \
  --no-install-recommends $pkgs; then
  echo "ensure-bench-deps: apt-get install -y $pkgs failed; make bench" \
    "skips the Boost rows" >&2
  exit 0
fi
[ -f "$HDR" ] ||
  echo "ensure-bench-deps: installed, but $HDR is still missing" >&2
exit 0
