#!/bin/sh
# Install Debian packages for the tests, leaving no service behind.
#
# Usage: sh tests/apt-install.sh TAG [APT-OPTION...] PACKAGE...
#   TAG starts each message ("ensure-deps", "need-tool", ...); options
#   starting with '-' (e.g. --no-install-recommends) go to apt-get install.
# Run as root with apt-get (the callers check that first).
#
# Installing a server package enables its service and starts it: Debian's
# redis-server would then listen on port 6379, prometheus (which carries
# promtool) on 9090, and both would come back at every boot. The tests
# start their own redis-server on a private loopback port and need only
# the promtool command, so around the install:
#   - a temporary /usr/sbin/policy-rc.d that exits 101 ("action
#     forbidden") keeps invoke-rc.d and deb-systemd-invoke from starting
#     anything; a policy-rc.d that is already there is the administrator's
#     and is left as it is;
#   - every systemd unit and every init script (/etc/rc[2-5].d/S*) that
#     was not enabled before the install and is after it is disabled
#     again, and stopped if it runs all the same. What was enabled before
#     stays enabled.
# apt-get's own output goes to a log, shown only when it fails.
# Exit status: 0 installed, 1 apt-get install failed.
set -u

tag=$1
shift
opts=""
while [ $# -gt 0 ]; do
  case $1 in
    -*) opts="$opts $1"; shift ;;
    *) break ;;
  esac
done

POLICY=/usr/sbin/policy-rc.d
MARK="# forkpool tests/apt-install.sh $$"
T=$(mktemp -d "${TMPDIR:-/tmp}/apt-install.XXXXXX") || exit 1
ours=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  # Only the file we wrote: never a policy-rc.d of someone else's.
  if [ -n "$ours" ] && grep -qxF "$MARK" "$POLICY" 2>/dev/null; then
    rm -f "$POLICY"
  fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

have() { command -v "$1" >/dev/null 2>&1; }

# enabled_units: the systemd units enabled now, one per line (this works
# without systemd running, as in a container: it reads the unit files).
enabled_units() {
  have systemctl || return 0
  systemctl list-unit-files --state=enabled --no-legend --no-pager \
    2>/dev/null | awk '{ print $1 }' | sort -u
}

# enabled_scripts: the init scripts started in a multi-user runlevel.
enabled_scripts() {
  for f in /etc/rc[2345].d/S*; do
    [ -e "$f" ] && echo "${f##*/S[0-9][0-9]}"
  done | sort -u
}

# The temporary policy: created only when there is none (noclobber makes
# the test and the creation one step).
if [ ! -e "$POLICY" ] &&
  (set -C; printf '#!/bin/sh\n%s\nexit 101\n' "$MARK" >"$POLICY") 2>/dev/null
then
  chmod 0755 "$POLICY"
  ours=1
fi

enabled_units >"$T/units.before"
enabled_scripts >"$T/scripts.before"

echo "$tag: installing $* with apt-get" >&2
# A failed update is not fatal on its own: the lists may be recent enough.
apt-get update -qq >"$T/update.log" 2>&1 ||
  echo "$tag: apt-get update failed; trying the install anyway" >&2
# shellcheck disable=SC2086 # $opts is a list of words on purpose
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $opts "$@" \
  >"$T/apt.log" 2>&1
rc=$?

# Undo what the install enabled, also after a failed install (a package
# may have been configured before another one failed).
enabled_units >"$T/units.after"
enabled_scripts >"$T/scripts.after"
for u in $(comm -13 "$T/units.before" "$T/units.after"); do
  echo "$tag: disabling $u, which the install enabled" >&2
  # With systemd running, a service that runs anyway is stopped too
  # (--now). systemctl also disables the init script of the same name.
  if [ -d /run/systemd/system ]; then
    systemctl disable --now --quiet "$u" >/dev/null 2>&1
  else
    systemctl disable --quiet "$u" >/dev/null 2>&1
  fi || echo "$tag: systemctl disable $u failed" >&2
done
enabled_scripts >"$T/scripts.now"
for s in $(comm -12 "$T/scripts.now" "$T/scripts.after" |
  comm -13 "$T/scripts.before" -); do
  echo "$tag: disabling init script $s, which the install enabled" >&2
  if [ -z "$ours" ] && have service; then
    service "$s" stop >/dev/null 2>&1
  fi
  update-rc.d "$s" disable >/dev/null 2>&1 ||
    echo "$tag: update-rc.d $s disable failed" >&2
done

if [ "$rc" != 0 ]; then
  tail -n 20 "$T/apt.log" >&2
  echo "$tag: apt-get install -y$opts $* failed" >&2
  exit 1
fi
exit 0
