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

echo "ensure-bench-deps: installing $pkgs with apt-get" >&2
# A failed update is not fatal on its own: the lists may be recent enough.
apt-get update -qq >/dev/null 2>&1 ||
  echo "ensure-bench-deps: apt-get update failed; trying the install" \
    "anyway" >&2
# --no-install-recommends: the headers are all the baseline needs.
# shellcheck disable=SC2086 # $pkgs is a list of words on purpose
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends $pkgs >/dev/null 2>&1; then
  echo "ensure-bench-deps: apt-get install -y $pkgs failed; make bench" \
    "skips the Boost rows" >&2
  exit 0
fi
[ -f "$HDR" ] ||
  echo "ensure-bench-deps: installed, but $HDR is still missing" >&2
exit 0
