#!/bin/sh
# Make sure what the Redis bridge and its test need is installed:
#   - hiredis (libhiredis-dev, found with pkg-config), to build
#     forkpool-bridge and examples/redis_producer;
#   - redis-server and redis-cli (redis-server, redis-tools), for
#     tests/bridge.sh, which starts its own server on a loopback port.
# As root with apt-get it installs what is missing, with
# tests/apt-install.sh: installing redis-server would enable and start the
# distribution's service (port 6379, and again at every boot); that script
# keeps it from starting and disables it again, since no test uses it:
# tests/bridge.sh starts its own redis-server on a private loopback port.
# Without root it prints the command to run. The bridge is optional (the
# library and `forkpool` need libc alone, and tests/bridge.sh skips
# without these), so the exit status is 0 unless an install failed.
set -u

have_hiredis() {
  command -v pkg-config >/dev/null 2>&1 && pkg-config --exists hiredis
}

have_redis() {
  command -v redis-server >/dev/null 2>&1 &&
    command -v redis-cli >/dev/null 2>&1
}

pkgs=""
have_hiredis || pkgs="libhiredis-dev pkg-config"
have_redis || pkgs="${pkgs:+$pkgs }redis-server redis-tools"
[ -z "$pkgs" ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-bridge-deps: the Redis bridge and its test need: $pkgs;" \
    "install them with:" >&2
  echo "  sudo apt-get install -y $pkgs" >&2
  exit 0
fi

# shellcheck disable=SC2086 # $pkgs is a list of words on purpose
sh "$(dirname "$0")/apt-install.sh" ensure-bridge-deps $pkgs || exit 1
if ! have_hiredis || ! have_redis; then
  echo "ensure-bridge-deps: installed, but hiredis or redis-server is" \
    "still missing" >&2
  exit 1
fi
exit 0
