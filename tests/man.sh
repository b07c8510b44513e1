#!/bin/sh
# The man pages: they render without a warning, and they keep up with the
# code they document.
#
# Usage: sh tests/man.sh [BUILD_DIR]   (from the repository root; default
# BUILD_DIR is build).
#
# Checks:
#   - man/forkpool.1 and man/forkpool.3 render with
#     `LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l -E UTF-8 FILE` and with
#     `groff -ww -man -Tutf8` with nothing at all on stderr;
#   - their NAME sections parse (lexgrog, what mandb reads for whatis);
#   - forkpool.1 has a section for every subcommand that
#     `BUILD_DIR/bin/forkpool --help` lists (and for bridge when
#     BUILD_DIR/bin/forkpool-bridge exists), and each section names every
#     flag that the subcommand's own usage text defines (its usage lines
#     and option list: tests/lib/flags.sh);
#   - forkpool.3 documents every FP_EXTERN function of include/forkpool.h
#     (a ".SS name()" section and an entry in NAME), every public type (a
#     .SS section) and every field of the public structs (named in its
#     struct's section).
# The parts that need the built tool are skipped, with a note, without it.
#
# man-db and groff-base are Debian's packages for man and groff; as root
# with apt-get the script installs what is missing (tests/apt-install.sh),
# as tests/ensure-deps.sh does for libcheck, and otherwise says what to
# install.
#
# Prints "ok - NAME" or "not ok - NAME: WHY" per check, "# ..." notes,
# then "N passed, M failed"; exit status 0 only when nothing failed.

set -u

B=${1:-build}
FP=$B/bin/forkpool
BRIDGE=$B/bin/forkpool-bridge
M1=man/forkpool.1
M3=man/forkpool.3
HDR=include/forkpool.h
TMO="timeout 60"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
nok() { fail=$((fail + 1)); echo "not ok - $1: $2"; }
info() { echo "# $*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

if [ ! -f "$M1" ] || [ ! -f "$M3" ] || [ ! -f "$HDR" ]; then
  nok "setup" "run from the repository root (need $M1, $M3, $HDR)"
  finish
fi

# A real man-db: Debian's minimized images replace /usr/bin/man with a
# stub that only explains how to get the real one.
have_man() { man --version 2>/dev/null | grep -q '^man '; }
have_groff() { command -v groff >/dev/null 2>&1; }

if ! have_man || ! have_groff; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # (apt-install.sh disables again the man-db.timer the install enables.)
    sh "$(dirname "$0")/apt-install.sh" tests/man.sh man-db groff-base ||
      info "apt-get install man-db groff-base failed"
  fi
fi
if ! have_man && ! have_groff; then
  nok "setup" "neither man (man-db) nor groff found: apt-get install -y man-db groff-base"
  finish
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-man.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

# --- rendering ---------------------------------------------------------
for page in "$M1" "$M3"; do
  if have_man; then
    if LC_ALL=C.UTF-8 MANWIDTH=80 $TMO man --warnings -l -E UTF-8 "$page" \
      >"$T/out" 2>"$T/err" && [ ! -s "$T/err" ] && [ -s "$T/out" ]; then
      ok "$page: man --warnings -l renders it without a warning"
    else
      nok "$page: man --warnings -l renders it without a warning" \
        "$(head -c 2000 "$T/err" | tr '\n' '|')"
    fi
  else
    info "man (man-db) not found: skipping the man --warnings check"
  fi
  if have_groff; then
    if LC_ALL=C.UTF-8 $TMO groff -ww -man -Tutf8 -z "$page" 2>"$T/err" &&
      [ ! -s "$T/err" ]; then
      ok "$page: groff -ww -man renders it without a warning"
    else
      nok "$page: groff -ww -man renders it without a warning" \
        "$(head -c 2000 "$T/err" | tr '\n' '|')"
    fi
  else
    info "groff not found: skipping the groff -ww check"
  fi
  if command -v lexgrog >/dev/null 2>&1; then
    if lexgrog "$page" >"$T/out" 2>&1 && grep -q ' - ' "$T/out"; then
      ok "$page: NAME section parses (lexgrog)"
    else
      nok "$page: NAME section parses (lexgrog)" "$(tr '\n' '|' <"$T/out")"
    fi
  fi
done

# man_section, usage_flags, roff_missing_flags: shared with
# tests/synopsis.sh.
. "$(dirname "$0")/lib/flags.sh"
section() { man_section "$@"; }

# --- forkpool(1) against the tool -------------------------------------
if [ -x "$FP" ]; then
  cmds=$($TMO "$FP" --help 2>/dev/null |
    awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
  if [ -z "$cmds" ]; then
    nok "forkpool --help lists its commands" "no 'Commands:' list"
  fi
  # The bridge is its own binary, built where hiredis is.
  if [ -x "$BRIDGE" ] && ! echo "$cmds" | grep -qx bridge; then
    cmds="$cmds bridge"
  fi
  for c in $cmds; do
    section "$M1" "forkpool $c" >"$T/sec"
    if [ ! -s "$T/sec" ]; then
      nok "forkpool.1 documents 'forkpool $c'" "no .SS \"forkpool $c\" section"
      continue
    fi
    if grep -q "^\.SY \"forkpool $c\"" "$M1"; then
      ok "forkpool.1 SYNOPSIS lists 'forkpool $c'"
    else
      nok "forkpool.1 SYNOPSIS lists 'forkpool $c'" "no .SY line"
    fi
    # The subcommand's usage text (help COMMAND prints it on stdout).
    $TMO "$FP" help "$c" >"$T/usage" 2>/dev/null
    if [ ! -s "$T/usage" ] && [ "$c" = bridge ] && [ -x "$BRIDGE" ]; then
      $TMO "$BRIDGE" --help >"$T/usage" 2>/dev/null
    fi
    if [ ! -s "$T/usage" ]; then
      nok "usage text of 'forkpool $c'" "forkpool help $c printed nothing"
      continue
    fi
    # The flags of its usage lines and option list (every spelling).
    flags=$(usage_flags "$T/usage")
    # shellcheck disable=SC2086 # one argument per flag
    missing=$(roff_missing_flags "$T/sec" $flags)
    [ -z "$missing" ] || missing=" $missing"
    if [ -z "$missing" ]; then
      ok "forkpool.1 'forkpool $c' names all its flags ($(echo $flags | wc -w))"
    else
      nok "forkpool.1 'forkpool $c' names all its flags" "missing:$missing"
    fi
  done
else
  info "$FP not built: skipping the check of forkpool.1 against the tool"
fi

# Sections every forkpool(1) has.
for s in SYNOPSIS DESCRIPTION SIGNALS "EXIT STATUS" ENVIRONMENT FILES \
  EXAMPLES; do
  if grep -q "^\.SH \"\{0,1\}$s\"\{0,1\}\$" "$M1"; then
    ok "forkpool.1 has the $s section"
  else
    nok "forkpool.1 has the $s section" "no .SH $s"
  fi
done
for sig in SIGTERM SIGINT SIGHUP SIGTTIN SIGTTOU; do
  section "$M1" SIGNALS | grep -q "$sig" || missing_sig="${missing_sig:-} $sig"
done
if [ -z "${missing_sig:-}" ]; then
  ok "forkpool.1 SIGNALS covers SIGTERM SIGINT SIGHUP SIGTTIN SIGTTOU"
else
  nok "forkpool.1 SIGNALS covers the serve signals" "missing:$missing_sig"
fi
# Exit statuses of src/cli/cli.h and of the bridge (src/bridge/bridge.h).
if [ -f src/cli/cli.h ]; then
  codes=$(sed -n 's/^#define \(CLI\|BRIDGE\)_EXIT_[A-Z]* \([0-9][0-9]*\).*/\2/p' \
    src/cli/cli.h src/bridge/bridge.h 2>/dev/null | sort -nu)
  missing=""
  for n in $codes; do
    section "$M1" "EXIT STATUS" | grep -q "^\.B $n\$" || missing="$missing $n"
  done
  if [ -n "$codes" ] && [ -z "$missing" ]; then
    ok "forkpool.1 EXIT STATUS lists every CLI_EXIT_* and BRIDGE_EXIT_* code ($(echo $codes))"
  else
    nok "forkpool.1 EXIT STATUS lists every CLI_EXIT_* and BRIDGE_EXIT_* code" \
      "missing:${missing:- (none parsed from src/cli/cli.h)}"
  fi
fi

# --- forkpool(3) against the header ------------------------------------
funcs=$(grep '^FP_EXTERN ' "$HDR" |
  sed -n 's/^FP_EXTERN[^(]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p')
# The NAME section: from ".SH NAME" to the next .SH.
name_sec=$(section "$M3" NAME | tr '\n' ' ')
missing_ss=""
missing_name=""
for f in $funcs; do
  grep -q "^\.SS .*\b$f()" "$M3" || missing_ss="$missing_ss $f"
  case " $name_sec " in
    *"$f,"* | *"$f "*) ;;
    *) missing_name="$missing_name $f" ;;
  esac
done
n=$(echo $funcs | wc -w)
if [ "$n" -gt 0 ] && [ -z "$missing_ss" ]; then
  ok "forkpool.3 has a section for each of the $n FP_EXTERN functions"
else
  nok "forkpool.3 has a section for each FP_EXTERN function" "missing:$missing_ss"
fi
if [ -z "$missing_name" ]; then
  ok "forkpool.3 NAME lists every FP_EXTERN function"
else
  nok "forkpool.3 NAME lists every FP_EXTERN function" "missing:$missing_name"
fi
# Public types: "} fp_x;" closing a typedef'd struct or enum, and function
# pointer typedefs "typedef int (*fp_x)(".
types=$( (sed -n 's/^} \(fp_[a-z_]*\);.*/\1/p' "$HDR"
  sed -n 's/^typedef [^(]*(\*\(fp_[a-z_]*\)).*/\1/p' "$HDR") | sort -u)
missing=""
for t in $types; do
  grep -q "^\.SS .*\b$t\b" "$M3" || missing="$missing $t"
done
if [ -n "$types" ] && [ -z "$missing" ]; then
  ok "forkpool.3 has a section for each public type ($(echo $types | wc -w))"
else
  nok "forkpool.3 has a section for each public type" "missing:$missing"
fi

# Fields of the public structs: each named in its type's section. The
# header's comments are stripped by the preprocessor (nothing is expanded).
if command -v "${CC:-cc}" >/dev/null 2>&1; then
  "${CC:-cc}" -fpreprocessed -dD -E -P "$HDR" 2>/dev/null | awk '
    /^typedef struct fp_[a-z_]* \{/ { on = 1; name = $3; next }
    on && /^\}/ { on = 0; next }
    on {
      line = $0
      gsub(/\[[^]]*\]/, "", line)
      if (line ~ /\(\*/) {            # a function pointer: (*name)(...)
        sub(/^[^(]*\(\*/, "", line); sub(/\).*/, "", line)
        print name, line; next
      }
      sub(/;.*/, "", line)
      n = split(line, parts, ",")      # "uint64_t a, b, c"
      for (i = 1; i <= n; i++) {
        p = parts[i]; gsub(/[*]/, " ", p)
        if (split(p, w, " ") > 0) print name, w[split(p, w, " ")]
      }
    }' >"$T/fields"
  if [ ! -s "$T/fields" ]; then
    nok "forkpool.3 names every public struct field" "no field parsed from $HDR"
  else
    missing=""
    while read -r st field; do
      section "$M3" "$st" | grep -qw -- "$field" || missing="$missing $st.$field"
    done <"$T/fields"
    if [ -z "$missing" ]; then
      ok "forkpool.3 names every public struct field ($(wc -l <"$T/fields"))"
    else
      nok "forkpool.3 names every public struct field" "missing:$missing"
    fi
  fi
else
  info "no C compiler: skipping the check of struct fields"
fi

finish
