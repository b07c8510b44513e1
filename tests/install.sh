#!/bin/sh
# `make install` and `make uninstall`, as a packager and a user would use
# them: install into a temporary DESTDIR with PREFIX=/usr, build the
# examples against the installed files with pkg-config alone, run them,
# then uninstall and check that nothing is left.
#
# Usage: sh tests/install.sh [BUILD_DIR]   (from anywhere; default
# BUILD_DIR is build, relative to the repository root). Runs
# `${MAKE:-make} install BUILD=BUILD_DIR ...`, which builds what is missing.
# Needs cc and pkg-config; as root with apt-get it installs pkg-config when
# missing.
#
# Checks:
#   - install puts exactly the expected files in DESTDIR (binaries, static
#     and shared library with its two symlinks, header, forkpool.pc, man
#     pages), with the expected modes, soname and symlink targets;
#   - forkpool.pc names the real PREFIX (not DESTDIR), the version, and
#     with --define-prefix points into DESTDIR; --static adds the private
#     libraries;
#   - examples/minimal.c builds against the installed header and library
#     (`pkg-config --define-prefix --cflags --libs forkpool`), links to
#     libforkpool.so.MAJOR, and runs with LD_LIBRARY_PATH into DESTDIR;
#     it also links statically (libforkpool.a and Libs.private);
#   - examples/producer.c builds the same way and runs against a named pool
#     that the installed `forkpool serve` serves (the crashy plugin, built
#     against the installed header, as its handler); the server is stopped
#     by pid with SIGTERM and leaves no /dev/shm entry;
#   - the installed `forkpool --version` and the installed man pages work;
#   - uninstall removes every file install added and nothing else (files
#     planted beside them survive), and can run twice;
#   - the default PREFIX is /usr/local, and LIBDIR may be moved.
#
# Prints "ok - NAME" or "not ok - NAME: WHY" per check, "# ..." notes, then
# "N passed, M failed"; exit status 0 only when nothing failed. Every
# program is run under `timeout`.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
B=${1:-build}
MAKE=${MAKE:-make}
CC=${CC:-cc}
TMO="timeout 60"

pass=0
fail=0
why=""
ok() { pass=$((pass + 1)); echo "ok - $1"; }
nok() { fail=$((fail + 1)); echo "not ok - $1: $2"; }
info() { echo "# $*"; }
check() { if [ -z "$why" ]; then ok "$1"; else nok "$1" "$why"; fi; why=""; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }
have() { command -v "$1" >/dev/null 2>&1; }

if ! have pkg-config && [ "$(id -u)" = 0 ] && have apt-get; then
  sh "$(dirname "$0")/apt-install.sh" tests/install.sh pkg-config || true
fi
for tool in pkg-config "$CC" readelf timeout; do
  if ! have "$tool"; then
    nok "setup" "$tool not found"
    finish
  fi
done

hnum() { sed -n "s/^#define FP_VERSION_$1  *\([0-9][0-9]*\).*/\1/p" include/forkpool.h; }
MAJOR=$(hnum MAJOR)
VERSION=$MAJOR.$(hnum MINOR).$(hnum PATCH)

W=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-install.XXXXXX") || exit 1
SERVE_PID=""
cleanup() {
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -KILL "$SERVE_PID" 2>/dev/null
  fi
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# mk VARS... TARGET: run make quietly; its output goes to $W/make.log.
mk() { $MAKE -s --no-print-directory -C "$ROOT" BUILD="$B" "$@" >"$W/make.log" 2>&1; }
mklog() { tail -n 15 "$W/make.log" | tr '\n' '|'; }

# files DIR: every non-directory under DIR, relative, sorted.
files() { (cd "$1" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort); }

D=$W/dest
P=$D/usr
LIBD=$P/lib

# --- install -----------------------------------------------------------
if mk install DESTDIR="$D" PREFIX=/usr; then
  ok "make install DESTDIR=... PREFIX=/usr"
else
  nok "make install DESTDIR=... PREFIX=/usr" "$(mklog)"
  finish
fi

bridge=""
[ -x "$B/bin/forkpool-bridge" ] && bridge="usr/bin/forkpool-bridge"
{
  echo usr/bin/forkpool
  [ -n "$bridge" ] && echo "$bridge"
  echo usr/include/forkpool.h
  echo usr/lib/libforkpool.a
  echo usr/lib/libforkpool.so
  echo "usr/lib/libforkpool.so.$MAJOR"
  echo "usr/lib/libforkpool.so.$VERSION"
  echo usr/lib/pkgconfig/forkpool.pc
  echo usr/share/man/man1/forkpool.1
  echo usr/share/man/man3/forkpool.3
} | LC_ALL=C sort >"$W/expected"
files "$D" >"$W/installed"
if cmp -s "$W/expected" "$W/installed"; then
  ok "install added exactly the expected $(wc -l <"$W/expected") files"
else
  nok "install added exactly the expected files" \
    "$(diff "$W/expected" "$W/installed" | grep '^[<>]' | tr '\n' ' ')"
fi
[ -n "$bridge" ] || info "forkpool-bridge not built (no hiredis): not installed"

# Modes and links.
mode() { stat -c %a "$1" 2>/dev/null; }
for f in usr/bin/forkpool $bridge "usr/lib/libforkpool.so.$VERSION"; do
  [ "$(mode "$D/$f")" = 755 ] || why="${why:+$why; }$f mode $(mode "$D/$f")"
done
for f in usr/include/forkpool.h usr/lib/libforkpool.a \
  usr/lib/pkgconfig/forkpool.pc usr/share/man/man1/forkpool.1 \
  usr/share/man/man3/forkpool.3; do
  [ "$(mode "$D/$f")" = 644 ] || why="${why:+$why; }$f mode $(mode "$D/$f")"
done
check "installed files have modes 0755 (programs, shared library) and 0644"

for l in libforkpool.so "libforkpool.so.$MAJOR"; do
  if [ ! -L "$LIBD/$l" ]; then
    why="${why:+$why; }$l is not a symlink"
  elif [ "$(readlink "$LIBD/$l")" != "libforkpool.so.$VERSION" ]; then
    why="${why:+$why; }$l -> $(readlink "$LIBD/$l")"
  fi
done
check "libforkpool.so and libforkpool.so.$MAJOR link to libforkpool.so.$VERSION (relative)"

soname=$(readelf -d "$LIBD/libforkpool.so.$VERSION" 2>/dev/null |
  sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "libforkpool.so.$MAJOR" ] || why="soname '$soname'"
check "installed library's soname is libforkpool.so.$MAJOR"

if cmp -s include/forkpool.h "$P/include/forkpool.h"; then
  ok "installed header is include/forkpool.h"
else
  nok "installed header is include/forkpool.h" "differs"
fi

out=$($TMO "$P/bin/forkpool" --version 2>&1)
[ "$out" = "forkpool $VERSION" ] || why="'$out'"
check "installed forkpool --version says forkpool $VERSION"

# The man pages are installed from build/man, where make filled in the
# version of their sources' @VERSION@ placeholder.
for m in man1/forkpool.1 man3/forkpool.3; do
  th=$(sed -n 's/^\.TH .*"forkpool \([^"]*\)".*/\1/p' "$P/share/man/$m")
  [ "$th" = "$VERSION" ] || why="${why:+$why; }$m .TH says '$th'"
done
check "installed man pages' title lines say forkpool $VERSION"

# --- pkg-config ----------------------------------------------------------
# Only our file: PKG_CONFIG_LIBDIR replaces the default search path, so a
# forkpool.pc installed on this machine cannot answer instead.
PC="env PKG_CONFIG_PATH=$LIBD/pkgconfig PKG_CONFIG_LIBDIR=$LIBD/pkgconfig pkg-config"
pcf=$LIBD/pkgconfig/forkpool.pc
grep -qx 'prefix=/usr' "$pcf" || why="prefix line: $(grep '^prefix=' "$pcf")"
if grep -q "$D" "$pcf"; then why="${why:+$why; }names DESTDIR"; fi
check "forkpool.pc names PREFIX=/usr, not DESTDIR"

v=$($PC --modversion forkpool 2>&1)
[ "$v" = "$VERSION" ] || why="--modversion says '$v'"
check "pkg-config --modversion forkpool is $VERSION"

flags=$($PC --define-prefix --cflags --libs forkpool 2>&1 | sed 's/ *$//')
case " $flags " in
  *" -I$P/include "*) ;;
  *) why="no -I$P/include in '$flags'" ;;
esac
case " $flags " in
  *" -L$LIBD -lforkpool "*) ;;
  *) why="${why:+$why; }no -L$LIBD -lforkpool in '$flags'" ;;
esac
check "pkg-config --define-prefix --cflags --libs points into DESTDIR"

sflags=$($PC --define-prefix --static --libs forkpool 2>&1)
for l in -lpthread -lrt -ldl; do
  case " $sflags " in *" $l "*) ;; *) why="${why:+$why; }no $l" ;; esac
done
check "pkg-config --static --libs adds -lpthread -lrt -ldl"

CFL=$($PC --define-prefix --cflags forkpool)
LIBS=$($PC --define-prefix --libs forkpool)
SLIBS=$($PC --define-prefix --static --libs forkpool | sed 's/ *-lforkpool\b//')

# --- minimal, linked dynamically and statically --------------------------
# shellcheck disable=SC2086 # flag lists on purpose
if $CC -std=gnu11 -Wall -Wextra -Werror -o "$W/minimal" examples/minimal.c \
  $CFL $LIBS 2>"$W/cc.log"; then
  ok "examples/minimal.c builds with pkg-config --cflags --libs forkpool"
else
  nok "examples/minimal.c builds with pkg-config --cflags --libs forkpool" \
    "$(head -c 1500 "$W/cc.log" | tr '\n' '|')"
fi

if [ -x "$W/minimal" ]; then
  readelf -d "$W/minimal" | grep -q "NEEDED.*\[libforkpool.so.$MAJOR\]" ||
    why="not linked to libforkpool.so.$MAJOR"
  check "minimal is linked dynamically to libforkpool.so.$MAJOR"

  where=$(LD_LIBRARY_PATH=$LIBD ldd "$W/minimal" 2>&1 | grep libforkpool)
  case $where in *"$LIBD/"*) ;; *) why="ldd: $where" ;; esac
  check "minimal loads libforkpool from DESTDIR"

  LD_LIBRARY_PATH=$LIBD $TMO "$W/minimal" >"$W/out" 2>"$W/err"
  rc=$?
  [ "$rc" -eq 0 ] || why="exit status $rc: $(head -c 500 "$W/err")"
  for want in "ok olleh" "ok loopkrof" "ok racecar" "ok !"; do
    grep -q "^task [0-9]*: $want\$" "$W/out" || why="${why:+$why; }no '$want'"
  done
  [ "$(wc -l <"$W/out")" -eq 4 ] || why="${why:+$why; }$(wc -l <"$W/out") lines"
  check "minimal runs against the installed library and prints 4 reversed words"
fi

# shellcheck disable=SC2086
if $CC -std=gnu11 -Wall -Wextra -Werror -o "$W/minimal-static" \
  examples/minimal.c $CFL -L"$LIBD" -Wl,-Bstatic -lforkpool -Wl,-Bdynamic \
  $SLIBS 2>"$W/cc.log"; then
  if readelf -d "$W/minimal-static" | grep -q 'NEEDED.*libforkpool'; then
    why="still needs libforkpool.so"
  elif ! $TMO "$W/minimal-static" >"$W/out" 2>&1 ||
    ! grep -q "ok racecar" "$W/out"; then
    why="run: $(head -c 500 "$W/out" | tr '\n' '|')"
  fi
else
  why="$(head -c 1500 "$W/cc.log" | tr '\n' '|')"
fi
check "minimal links with the installed libforkpool.a and pkg-config --static"

# --- producer against the installed forkpool serve -----------------------
if [ ! -f examples/producer.c ]; then
  info "SKIP producer: examples/producer.c is not there yet"
elif ! $TMO "$P/bin/forkpool" help serve >/dev/null 2>&1; then
  info "SKIP producer: the installed forkpool has no 'serve' command yet"
else
  # shellcheck disable=SC2086
  # -D_GNU_SOURCE as the Makefile builds it: it calls sigabbrev_np().
  if $CC -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$W/producer" \
    examples/producer.c $CFL $LIBS 2>"$W/cc.log"; then
    ok "examples/producer.c builds with pkg-config --cflags --libs forkpool"
  else
    nok "examples/producer.c builds with pkg-config --cflags --libs forkpool" \
      "$(head -c 1500 "$W/cc.log" | tr '\n' '|')"
  fi
  # shellcheck disable=SC2086
  if ! $CC -std=gnu11 -shared -fPIC -o "$W/crashy.so" examples/crashy.c \
    $CFL 2>"$W/cc.log"; then
    nok "examples/crashy.c builds as a plugin against the installed header" \
      "$(head -c 1500 "$W/cc.log" | tr '\n' '|')"
  fi
  if [ -x "$W/producer" ] && [ -f "$W/crashy.so" ]; then
    NAME="fp-install-$$-$(date +%s)"
    # The server logs on stderr; its pidfile appears once it is ready.
    # Run directly (not under timeout) so that $! is its own pid; the
    # waits below are bounded, and cleanup kills it by pid.
    "$P/bin/forkpool" serve --name "$NAME" --handler "$W/crashy.so" \
      --workers 2 --grace 5000 --pidfile "$W/serve.pid" \
      </dev/null >/dev/null 2>"$W/serve.log" &
    SERVE_PID=$!
    i=0
    while [ ! -s "$W/serve.pid" ] && [ $i -lt 100 ] &&
      kill -0 "$SERVE_PID" 2>/dev/null; do
      sleep 0.1
      i=$((i + 1))
    done
    if [ ! -s "$W/serve.pid" ]; then
      nok "installed forkpool serve starts" \
        "no pidfile after 10 s: $(tail -n 5 "$W/serve.log" | tr '\n' '|')"
    else
      [ "$(cat "$W/serve.pid")" = "$SERVE_PID" ] ||
        why="pidfile says $(cat "$W/serve.pid"), started $SERVE_PID"
      check "installed forkpool serve starts and writes its pidfile"

      LD_LIBRARY_PATH=$LIBD $TMO "$W/producer" "$NAME" hello segv "fail 7" \
        world >"$W/out" 2>"$W/err"
      rc=$?
      # Exit status 1: not every task ended ok (segv, fail 7).
      [ "$rc" -eq 1 ] || why="exit status $rc (want 1): $(head -c 300 "$W/err")"
      for want in '[0] hello -> ok: HELLO' '[1] segv -> crashed: SIGSEGV' \
        '[2] fail 7 -> failed: code 7' '[3] world -> ok: WORLD'; do
        grep -qF "$want" "$W/out" || why="${why:+$why; }no '$want'"
      done
      check "producer runs against the installed serve: ok, crashed, failed, ok"
    fi
    kill -TERM "$SERVE_PID" 2>/dev/null
    i=0
    while kill -0 "$SERVE_PID" 2>/dev/null && [ $i -lt 150 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    if kill -0 "$SERVE_PID" 2>/dev/null; then
      why="still running 15 s after SIGTERM"
      kill -KILL "$SERVE_PID" 2>/dev/null
    fi
    wait "$SERVE_PID" 2>/dev/null
    rc=$?
    [ -n "$why" ] || [ "$rc" -eq 0 ] || why="exit status $rc"
    SERVE_PID=""
    [ ! -e "/dev/shm/forkpool.$NAME" ] ||
      why="${why:+$why; }/dev/shm/forkpool.$NAME left behind"
    [ ! -e "$W/serve.pid" ] || why="${why:+$why; }pidfile left behind"
    check "installed forkpool serve stops on SIGTERM with status 0, leaving nothing"
  fi
fi

# --- the installed man pages ---------------------------------------------
if man --version 2>/dev/null | grep -q '^man '; then
  for s in 1 3; do
    if MANPATH=$P/share/man MANWIDTH=80 $TMO man "$s" forkpool 2>&1 |
      grep -q "^FORKPOOL($s)"; then
      ok "man $s forkpool finds the installed page"
    else
      nok "man $s forkpool finds the installed page" "not found in $P/share/man"
    fi
  done
else
  info "SKIP man: man-db not installed"
fi

# --- uninstall -----------------------------------------------------------
# Files of other packages beside ours must survive.
mkdir -p "$LIBD" "$P/share/man/man1" "$P/bin"
for f in "$LIBD/libother.so" "$P/share/man/man1/other.1" "$P/bin/other"; do
  echo other >"$f"
done
if mk uninstall DESTDIR="$D" PREFIX=/usr; then
  ok "make uninstall DESTDIR=... PREFIX=/usr"
else
  nok "make uninstall DESTDIR=... PREFIX=/usr" "$(mklog)"
fi
left=$(files "$D" | grep -v -e '^usr/lib/libother.so$' \
  -e '^usr/share/man/man1/other.1$' -e '^usr/bin/other$' | tr '\n' ' ')
[ -z "$left" ] || why="left behind: $left"
check "uninstall removes every file install added"
for f in "$LIBD/libother.so" "$P/share/man/man1/other.1" "$P/bin/other"; do
  [ -f "$f" ] || why="${why:+$why; }removed $f"
done
check "uninstall leaves other files alone"
rm -f "$LIBD/libother.so" "$P/share/man/man1/other.1" "$P/bin/other"
left=$(files "$D" | tr '\n' ' ')
[ -z "$left" ] || why="left behind: $left"
mk uninstall DESTDIR="$D" PREFIX=/usr || why="${why:+$why; }$(mklog)"
check "uninstall leaves no file, and runs again on an empty DESTDIR"

# --- default PREFIX, and a moved LIBDIR ----------------------------------
D2=$W/dest2
if mk install DESTDIR="$D2"; then
  [ -x "$D2/usr/local/bin/forkpool" ] || why="no usr/local/bin/forkpool"
  pc=$D2/usr/local/lib/pkgconfig/forkpool.pc
  grep -qx 'prefix=/usr/local' "$pc" 2>/dev/null || why="${why:+$why; }forkpool.pc prefix"
  mk uninstall DESTDIR="$D2" || why="${why:+$why; }uninstall: $(mklog)"
  left=$(files "$D2" | tr '\n' ' ')
  [ -z "$left" ] || why="${why:+$why; }left behind: $left"
else
  why="$(mklog)"
fi
check "default PREFIX is /usr/local; uninstall leaves no file"

D3=$W/dest3
MLIB=/usr/lib/x86_64-linux-gnu
if mk install DESTDIR="$D3" PREFIX=/usr LIBDIR=$MLIB; then
  pc=$D3$MLIB/pkgconfig/forkpool.pc
  grep -qx 'libdir=${exec_prefix}/lib/x86_64-linux-gnu' "$pc" 2>/dev/null ||
    why="libdir line: $(grep '^libdir=' "$pc" 2>/dev/null)"
  [ -f "$D3$MLIB/libforkpool.so.$VERSION" ] || why="${why:+$why; }no library in LIBDIR"
  v=$(env PKG_CONFIG_LIBDIR="$D3$MLIB/pkgconfig" pkg-config --libs forkpool |
    sed 's/ *$//')
  [ "$v" = "-lforkpool" ] || [ "$v" = "-L$MLIB -lforkpool" ] ||
    why="${why:+$why; }--libs says '$v'"
  mk uninstall DESTDIR="$D3" PREFIX=/usr LIBDIR=$MLIB ||
    why="${why:+$why; }uninstall: $(mklog)"
  left=$(files "$D3" | tr '\n' ' ')
  [ -z "$left" ] || why="${why:+$why; }left behind: $left"
else
  why="$(mklog)"
fi
check "LIBDIR=$MLIB: library and forkpool.pc follow it; uninstall leaves no file"

finish
