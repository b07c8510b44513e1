#!/bin/sh
# The synopses of README.md and forkpool(1) against the tool itself, so
# that neither can lag what `forkpool SUBCMD --help` says.
#
# Usage: sh tests/synopsis.sh [BUILD_DIR]   (from the repository root;
# default BUILD_DIR is build). Needs BUILD_DIR/bin/forkpool and
# BUILD_DIR/examples/crashy.so.
#
# For each subcommand that `forkpool --help` lists (bridge only when
# BUILD_DIR/bin/forkpool-bridge exists, else "# SKIP"), the options are
# those its `forkpool SUBCMD --help` defines: its usage lines and option
# list (tests/lib/flags.sh, shared with tests/man.sh). Then:
#   - README.md has a synopsis of it: a line "forkpool SUBCMD ..." (and
#     the indented lines that continue it) in a fenced block without a
#     language whose first line starts with "forkpool ";
#   - that synopsis names every option (one spelling of it is enough:
#     -0 or --null; -h/--help, which every subcommand has, may be left
#     out), and no flag that --help does not define;
#   - forkpool(1)'s section "forkpool SUBCMD" names every spelling of
#     every option (what tests/man.sh checks too, here in `make check`),
#     and neither that section's item tags (.TP) nor its SYNOPSIS lines
#     (.SY "forkpool SUBCMD" to .YS) name a flag that --help does not
#     define.
# And on a pool served for the test: the keys that forkpool(1) lists for
# `stat --json` (the top-level ones, then those of "an array of objects")
# are exactly the keys `forkpool stat --json --name NAME` prints.
#
# Prints "ok - NAME" or "not ok - NAME: WHY" per check, "# ..." notes,
# then "N passed, M failed"; exit status 0 only when nothing failed.
# Everything the tool runs is under `timeout`; the served pool is named
# with this shell's pid and stopped by its pid.

set -u

B=${1:-build}
FP=$B/bin/forkpool
BRIDGE=$B/bin/forkpool-bridge
CRASHY=$B/examples/crashy.so
README=README.md
M1=man/forkpool.1
TMO="timeout 30"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
nok() { fail=$((fail + 1)); echo "not ok - $1: $2"; }
info() { echo "# $*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

if [ ! -f "$README" ] || [ ! -f "$M1" ] || [ ! -x "$FP" ] || [ ! -f "$CRASHY" ]; then
  nok "setup" "run from the repository root after make (need $README, $M1, $FP, $CRASHY)"
  finish
fi
. "$(dirname "$0")/lib/flags.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-synopsis.XXXXXX") || exit 1
NAME="synopsis-$$"
srv=""
stop_server() {
  [ -n "$srv" ] || return 0
  kill -TERM "$srv" 2>/dev/null
  _i=0
  while kill -0 "$srv" 2>/dev/null && [ $_i -lt 100 ]; do
    sleep 0.1
    _i=$((_i + 1))
  done
  kill -KILL "$srv" 2>/dev/null
  wait "$srv" 2>/dev/null
  srv=""
  rm -f "/dev/shm/forkpool.$NAME"
}
trap 'stop_server; rm -rf "$T"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# readme_synopses: "SUBCMD<TAB>LINE<TAB>TEXT" for every synopsis entry of
# README.md, its continuation lines joined to it.
readme_synopses() {
  awk '
    function flush() { if (cmd != "") print cmd "\t" at "\t" text; cmd = "" }
    /^```/ {
      if (!infence) { infence = 1; bare = ($0 == "```"); first = 1; next }
      flush(); infence = 0; next
    }
    !infence { next }
    first { first = 0; syn = bare && /^forkpool [a-z]/ }
    !syn { next }
    /^forkpool [a-z]/ { flush(); cmd = $2; at = NR; text = $0; next }
    /^[ \t]/ && cmd != "" { text = text " " $0; next }
    { flush() }
  ' "$README"
}

# words_flags: the flags in the text on stdin, one per line, sorted: long
# ones, and short ones standing alone ("[-0]", "-v").
words_flags() {
  sed 's/[][{}()|]/ /g' | tr ' \t' '\n\n' |
    grep -- '^-\(-[a-z][a-z0-9-]*\|[A-Za-z0-9]\)$' | sort -u
}

readme_synopses >"$T/readme.syn"

cmds=$($TMO "$FP" --help 2>/dev/null |
  awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
if [ -z "$cmds" ]; then
  nok "forkpool --help lists its commands" "no 'Commands:' list"
  finish
fi
if [ ! -x "$BRIDGE" ]; then
  info "SKIP bridge: $BRIDGE is not built (it needs hiredis)"
  cmds=$(echo "$cmds" | grep -vx bridge)
elif ! echo "$cmds" | grep -qx bridge; then
  cmds="$cmds bridge"
fi

for c in $cmds; do
  if ! $TMO "$FP" "$c" --help >"$T/usage" 2>"$T/usage.err" || [ ! -s "$T/usage" ]; then
    nok "forkpool $c --help" "exit status not 0 or no usage text on stdout: $(head -c 300 "$T/usage.err")"
    continue
  fi
  usage_flag_groups "$T/usage" >"$T/groups"
  usage_flags "$T/usage" >"$T/known"
  if [ ! -s "$T/groups" ]; then
    nok "forkpool $c --help defines its options" "no option parsed from its usage text"
    continue
  fi

  # --- README.md -------------------------------------------------------
  awk -F '\t' -v c="$c" '$1 == c { print $3 }' "$T/readme.syn" >"$T/rsyn"
  lines=$(awk -F '\t' -v c="$c" '$1 == c { printf " %s", $2 }' "$T/readme.syn")
  if [ ! -s "$T/rsyn" ]; then
    nok "README.md has a synopsis of forkpool $c" \
      "no line 'forkpool $c ...' in a fenced block starting with 'forkpool '"
  else
    words_flags <"$T/rsyn" >"$T/rflags"
    missing=""
    while read -r g; do
      case " $g " in *" --help "*) continue ;; esac
      hit=""
      for f in $g; do grep -qx -- "$f" "$T/rflags" && hit=1; done
      [ -n "$hit" ] || missing="$missing ${g%% *}"
    done <"$T/groups"
    unknown=$(grep -vxF -f "$T/known" "$T/rflags" | tr '\n' ' ')
    n=$(grep -cv -- '--help' "$T/groups")
    if [ -z "$missing" ]; then
      ok "README.md synopsis of forkpool $c (line$lines) names all $n options of its --help"
    else
      nok "README.md synopsis of forkpool $c (line$lines) names all options of its --help" \
        "missing:$missing"
    fi
    if [ -z "$unknown" ]; then
      ok "README.md synopsis of forkpool $c names no flag unknown to its --help"
    else
      nok "README.md synopsis of forkpool $c names no flag unknown to its --help" \
        "unknown: $unknown"
    fi
  fi

  # --- forkpool(1) -----------------------------------------------------
  man_section "$M1" "forkpool $c" >"$T/sec"
  if [ ! -s "$T/sec" ]; then
    nok "forkpool.1 has a section 'forkpool $c'" "no .SS \"forkpool $c\""
    continue
  fi
  # shellcheck disable=SC2046 # one argument per flag
  missing=$(roff_missing_flags "$T/sec" $(cat "$T/known"))
  if [ -z "$missing" ]; then
    ok "forkpool.1 'forkpool $c' names all $(wc -l <"$T/known") flags of its --help"
  else
    nok "forkpool.1 'forkpool $c' names all flags of its --help" "missing: $missing"
  fi
  # The item tags of the section, and its SYNOPSIS entries.
  awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 }' "$T/sec" >"$T/defined"
  awk -v c="forkpool $c" '
    /^\.SY / { h = $0; sub(/^\.SY +/, "", h); gsub(/"/, "", h); on = (h == c); next }
    /^\.YS/ { on = 0 }
    on { print }' "$M1" >>"$T/defined"
  roff_flags "$T/defined" >"$T/mflags"
  unknown=$(grep -vxF -f "$T/known" "$T/mflags" | tr '\n' ' ')
  if [ -z "$unknown" ]; then
    ok "forkpool.1 'forkpool $c' (SYNOPSIS and items) defines no flag unknown to its --help"
  else
    nok "forkpool.1 'forkpool $c' (SYNOPSIS and items) defines no flag unknown to its --help" \
      "unknown: $unknown"
  fi
done

# --- stat --json keys: forkpool(1) against a served pool ---------------
# The item of --json in the stat section: the words set in bold (.B/.BR)
# before "array of objects" are top-level keys, those after are a row's.
man_section "$M1" "forkpool stat" | awk '
  /^\.TP/ { tag = 1; next }
  tag { tag = 0; injson = ($0 ~ /^\.B \\-\\-json$/); rows = 0; next }
  !injson { next }
  /array of objects/ { rows = 1 }
  /^\.BR? [a-z_]+( |$)/ { print (rows ? "row" : "top"), $2 }' >"$T/mankeys"
grep '^top ' "$T/mankeys" | cut -d' ' -f2 | sort >"$T/man.top"
grep '^row ' "$T/mankeys" | cut -d' ' -f2 | sort >"$T/man.row"

rm -f "/dev/shm/forkpool.$NAME"
$TMO "$FP" serve --name "$NAME" --handler "$CRASHY" --workers 2 \
  --pidfile "$T/pid" >"$T/serve.out" 2>"$T/serve.err" &
srv=$!
i=0
while [ ! -s "$T/pid" ] && kill -0 "$srv" 2>/dev/null && [ $i -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
if [ ! -s "$T/pid" ]; then
  nok "forkpool serve for the stat --json check" "not ready in 10 s: $(tail -n 3 "$T/serve.err" | tr '\n' '|')"
elif ! $TMO "$FP" stat --json --name "$NAME" >"$T/stat.json" 2>"$T/stat.err"; then
  nok "forkpool stat --json --name $NAME" "failed: $(head -c 300 "$T/stat.err")"
else
  # The pool's JSON is flat but for workers_rows, an array of flat
  # objects; no string of it contains '"' or '":'.
  sed 's/"workers_rows":\[.*//' "$T/stat.json" | grep -o '"[a-z_]*":' |
    tr -d '":' | sort >"$T/real.top"
  grep -q '"workers_rows":\[' "$T/stat.json" && echo workers_rows >>"$T/real.top"
  sort -o "$T/real.top" "$T/real.top"
  sed -n 's/.*"workers_rows":\[\(.*\)\].*/\1/p' "$T/stat.json" | grep -o '"[a-z_]*":' |
    tr -d '":' | sort -u >"$T/real.row"
  for part in top row; do
    what="top-level keys"
    [ "$part" = row ] && what="keys of a workers_rows object"
    if [ ! -s "$T/real.$part" ]; then
      nok "stat --json $what" "none parsed from: $(head -c 300 "$T/stat.json")"
      continue
    fi
    lack=$(comm -23 "$T/real.$part" "$T/man.$part" | tr '\n' ' ')
    extra=$(comm -13 "$T/real.$part" "$T/man.$part" | tr '\n' ' ')
    if [ -z "$lack$extra" ]; then
      ok "forkpool.1 lists exactly the $(wc -l <"$T/real.$part") $what that stat --json prints"
    else
      nok "forkpool.1 lists exactly the $what that stat --json prints" \
        "${lack:+not listed: $lack}${lack:+${extra:+; }}${extra:+listed but not printed: $extra}"
    fi
  done
fi
stop_server
if [ -e "/dev/shm/forkpool.$NAME" ]; then
  nok "the served pool is gone" "/dev/shm/forkpool.$NAME is left"
fi

finish
