#!/bin/sh
# Make sure the tools of the quality gates (mk/quality.mk) are installed:
#   valgrind    for `make memcheck`
#   libfuzzer   clang with its libFuzzer and sanitizer runtimes, for
#               `make fuzz` (a test program must build and run)
# Usage: sh tests/ensure-tools.sh TOOL...
# As root with apt-get it installs what is missing; otherwise it prints the
# command to run. Exit status: 0 when every TOOL works, 1 otherwise.
set -u

CLANG=${FUZZ_CC:-clang}

works() {
  case $1 in
    valgrind)
      command -v valgrind >/dev/null 2>&1 ;;
    libfuzzer)
      command -v "$CLANG" >/dev/null 2>&1 || return 1
      _d=$(mktemp -d "${TMPDIR:-/tmp}/ensure-tools.XXXXXX") || return 1
      printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
        '{ (void)d; (void)n; return 0; }' >"$_d/t.c"
      "$CLANG" -fsanitize=fuzzer,address,undefined -o "$_d/t" "$_d/t.c" \
        >/dev/null 2>&1 && "$_d/t" -runs=1 >/dev/null 2>&1
      _r=$?
      rm -rf "$_d"
      return $_r ;;
    *)
      echo "ensure-tools: unknown tool '$1'" >&2
      return 2 ;;
  esac
}

packages() {
  case $1 in
    valgrind) echo valgrind ;;
    # clang-14 only recommends the runtimes (libFuzzer, ASan, UBSan).
    libfuzzer) echo clang libclang-rt-dev ;;
  esac
}

missing=""
pkgs=""
for t in "$@"; do
  works "$t"
  case $? in
    0) ;;
    2) exit 1 ;;
    *) missing="$missing $t"; pkgs="$pkgs $(packages "$t")" ;;
  esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086 # $pkgs is a list of words on purpose
  sh "$(dirname "$0")/apt-install.sh" ensure-tools $pkgs || exit 1
  for t in $missing; do
    works "$t" || { echo "ensure-tools: $t still does not work" >&2; exit 1; }
  done
  exit 0
fi
echo "ensure-tools: missing:$missing; install with:" >&2
echo "  sudo apt-get install -y$pkgs" >&2
exit 1
