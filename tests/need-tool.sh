#!/bin/sh
# Make sure an optional test tool is installed, the way ensure-deps.sh does
# libcheck: as root with apt-get, install its Debian package when missing
# (with tests/apt-install.sh, which leaves no service of it enabled).
#
# Usage: sh tests/need-tool.sh COMMAND PACKAGE
#   e.g. sh tests/need-tool.sh promtool prometheus
#
# Exit status: 0 the command is there (now); 1 it is missing and could not
# be installed although we are root with apt-get (a test should fail);
# 2 it is missing and we may not install it (not root, or no apt-get: a
# test should skip). Messages go to stderr.
set -u

cmd=$1
pkg=$2
command -v "$cmd" >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "need-tool: $cmd is missing; install it with: sudo apt-get install -y $pkg" >&2
  exit 2
fi
# --no-install-recommends: a server package (prometheus) would otherwise
# pull in much more than the one command the tests need. apt-install.sh
# keeps its service from starting and disables it again.
if ! sh "$(dirname "$0")/apt-install.sh" "need-tool ($cmd)" \
  --no-install-recommends "$pkg"; then
  exit 1
fi
command -v "$cmd" >/dev/null 2>&1 && exit 0
echo "need-tool: $pkg installed, but there is still no $cmd" >&2
exit 1
