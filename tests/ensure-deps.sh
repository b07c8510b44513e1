#!/bin/sh
# Make sure what `make check` needs is installed:
#   - libcheck, found with pkg-config, for the C tests (required);
#   - ps (Debian's procps), with which tests/cli.sh and tests/serve.sh find
#     the processes they started (required; a minimal Debian lacks it);
#   - python3, with which tests/cli.sh also checks its JSON output and
#     tests/python.sh tests the Python client (optional: without it those
#     checks are skipped).
# As root with apt-get it installs what is missing (tests/apt-install.sh);
# otherwise it prints the command to run, and fails when something
# required is missing.
# Exit status: 0 when everything required is there, 1 otherwise.
set -u

have_check() {
  command -v pkg-config >/dev/null 2>&1 && pkg-config --exists check
}

have_python() {
  command -v python3 >/dev/null 2>&1
}

have_ps() {
  command -v ps >/dev/null 2>&1
}

required=""
have_check || required="check pkg-config"
have_ps || required="${required:+$required }procps"
optional=""
have_python || optional="python3"
if [ -z "$required$optional" ]; then
  exit 0
fi
pkgs="${required}${required:+${optional:+ }}${optional}"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086 # $pkgs is a list of words on purpose
  if ! sh "$(dirname "$0")/apt-install.sh" ensure-deps $pkgs; then
    [ -z "$required" ] && exit 0 # only python3 is missing: go on without it
    exit 1
  fi
  if ! have_check || ! have_ps; then
    echo "ensure-deps: installed, but pkg-config still finds no 'check'," \
      "or there is still no ps" >&2
    exit 1
  fi
  exit 0
fi

if [ -n "$required" ]; then
  echo "ensure-deps: missing: $required; install with:" >&2
  echo "  sudo apt-get install -y $pkgs" >&2
  exit 1
fi
echo "ensure-deps: python3 is missing; tests/cli.sh will skip its JSON" \
  "check (sudo apt-get install -y python3)" >&2
exit 0
