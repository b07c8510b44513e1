#!/bin/sh
# The ABI policy (forkpool.h): tests/abi/old_layout.c, a program written against
# an older, shorter layout of every public struct, built without
# forkpool.h and run against BUILD_DIR/libforkpool.so. See tests/abi/old_layout.c.
#
# Usage: sh tests/abi_old.sh [BUILD_DIR]   (from the repository root).
# Prints the program's "ok - " / "not ok - " lines; exit status 0 only
# when every check passed.

set -u
B=${1:-build}
CC=${CC:-cc}
if [ ! -f "$B/libforkpool.so" ]; then
  echo "not ok - setup: need $B/libforkpool.so (run make first)"
  exit 1
fi
LIBDIR=$(cd "$B" && pwd)
mkdir -p "$B/tests"
# A sanitizer build of the library (make check-sanitize) needs the program
# built with the same sanitizers: their runtime must come first.
SAN=""
if command -v readelf >/dev/null 2>&1; then
  readelf -d "$B/libforkpool.so" | grep -q 'libasan\.so' && SAN="address"
  readelf -d "$B/libforkpool.so" | grep -q 'libubsan\.so' &&
    SAN="${SAN:+$SAN,}undefined"
fi
# -Werror: a mistake in the old declarations must not pass as a warning.
if ! $CC -std=gnu11 -Wall -Wextra -Werror -O1 -g ${SAN:+-fsanitize=$SAN} \
  -o "$B/tests/abi_old" tests/abi/old_layout.c -L"$LIBDIR" -lforkpool \
  -Wl,-rpath,"$LIBDIR"; then
  echo "not ok - tests/abi/old_layout.c builds"
  exit 1
fi
exec timeout 60 "$B/tests/abi_old"
