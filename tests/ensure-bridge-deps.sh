#!/bin/sh
# Make sure what the Redis bridge and its test need is installed:
#   - hiredis (libhiredis-dev, found with pkg-config), to build
#     forkpool-bridge and examples/redis_producer;
#   - redis-server and redis-cli (redis-server, redis-tools), for
#     tests/bridge.sh, which starts its own server on a loopback port.
# As root with apt-get it installs what is missing. Installing
# redis-server may start the distribution's service: this script stops it
# again at once, since no test uses it and nothing should be left running.
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

# stop_service: stop the redis-server service a fresh install started.
stop_service() {
  if command -v systemctl >/dev/null 2>&1 &&
    systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server >/dev/null 2>&1
  elif command -v service >/dev/null 2>&1; then
    service redis-server stop >/dev/null 2>&1
  fi
  return 0
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

echo "ensure-bridge-deps: installing $pkgs with apt-get" >&2
apt-get update -qq >/dev/null 2>&1 ||
  echo "ensure-bridge-deps: apt-get update failed; trying the install" \
    "anyway" >&2
# shellcheck disable=SC2086 # $pkgs is a list of words on purpose
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
then
  echo "ensure-bridge-deps: apt-get install -y $pkgs failed" >&2
  exit 1
fi
case " $pkgs " in *" redis-server "*) stop_service ;; esac
if ! have_hiredis || ! have_redis; then
  echo "ensure-bridge-deps: installed, but hiredis or redis-server is" \
    "still missing" >&2
  exit 1
fi
exit 0
