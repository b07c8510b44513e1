#!/bin/sh
# The examples of README.md, run as a reader would run them, so that none
# of them can drift from what the code does.
#
# Usage: sh tests/readme.sh [BUILD_DIR]   (from the repository root, after
# make; default BUILD_DIR is build).
#
# What it does with each fenced block of README.md:
#   ```c   needs a marker, an HTML comment on the line just before it (only
#          blank lines may come between); a C block without one fails
#          ("unmarked C block at line N"):
#            <!-- readme-test: program FILE -->  a whole program, FILE.
#              When FILE exists the block must be FILE byte for byte;
#              otherwise (a plain file name only) the block is written to
#              FILE in the sandbox. A `$ cc ... FILE ...` command must
#              follow in an sh block of the same section: that block
#              compiles it with the README's command, runs it and checks
#              its output, as every sh block is checked.
#            <!-- readme-test: plugin FILE -->  a handler plugin, placed as
#              for program; compiled with the first `cc ... FILE ...` that
#              the same section gives after it (in backquotes, or as a
#              `$ ` command, which then runs in its sh block).
#            <!-- readme-test: fragment -->  declarations or a snippet:
#              compiled as an object file (cc -std=gnu11 -Wall -Werror
#              -Iinclude -c).
#   ```sh  with lines starting "$ ": each such line (joined with the lines
#          that continue it: after a trailing \, |, && or ||, and a
#          here-document's body) is a command, and the lines after it, up
#          to the next "$ ", are its output. The block's commands run in
#          order in one sh, in a sandbox that looks like the repository
#          root (a temporary directory with a symbolic link to each of its
#          top-level entries, so that files the commands write land in the
#          sandbox), with stdin /dev/null and stdout and stderr together,
#          as a terminal shows them, compared with the output shown.
#          build/bin is not on PATH: a bare `forkpool` fails (a stand-in
#          on PATH says so). A command ending in `&` runs in the
#          background; its output is not compared. A pool that a block
#          serves (`forkpool serve --name NAME`) gets a name of its own,
#          NAME-readme-PID, in every command of that block (and back to
#          NAME in the output compared); a server the block left running
#          is stopped by pid when it ends (a note, not a failure), and its
#          /dev/shm entry must be gone. Any other process the block started
#          (each carries a tag in its environment) must be gone within
#          3 s, or the block fails and it is killed. The environment adds
#          LC_ALL=C, a private TMPDIR and PYTHONDONTWRITEBYTECODE=1 (no
#          __pycache__ in python/). Markers:
#            <!-- readme-test: output-varies -->  pids, times and offsets
#              differ from run to run: every hexadecimal 0x... and every
#              run of digits stands for any, runs of blanks for one, and
#              "..." in the shown output for anything; the number of lines
#              must still match.
#            <!-- readme-test: needs CMD... -->  "# SKIP" unless each CMD
#              is on PATH.
#          An sh block without a "$ " prompt lists commands to type (make,
#          make install): it is not run ("# not run").
#   any    <!-- readme-test: skip REASON -->: not run, "# SKIP REASON"
#          (root, network, a Redis server).
# A marker that is not just before a block, or that this script does not
# know, fails.
#
# Prints "ok - NAME" or "not ok - NAME: WHY" per check, "# ..." notes,
# then "N passed, M failed"; exit status 0 only when nothing failed.
# Every block runs under `timeout` (120 s, or $FORKPOOL_README_TIMEOUT).

set -u

B=${1:-build}
FP=$B/bin/forkpool
README=README.md
BLOCK_TMO=${FORKPOOL_README_TIMEOUT:-120}
CC=${CC:-cc}

pass=0
fail=0
# printf, not echo: a message may quote a command's backslashes.
ok() { pass=$((pass + 1)); printf 'ok - %s\n' "$1"; }
nok() { fail=$((fail + 1)); printf 'not ok - %s: %s\n' "$1" "$2"; }
info() { printf '# %s\n' "$*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

if [ ! -f "$README" ] || [ ! -x "$FP" ]; then
  nok "setup" "run from the repository root after make (need $README and $FP)"
  finish
fi
if [ "$B" != build ]; then
  info "the README's commands name build/; BUILD_DIR $B is used only for this check"
fi
ROOT=$(pwd)

T=$(mktemp -d "${TMPDIR:-/tmp}/forkpool-readme.XXXXXX") || exit 1
D=$T/blocks
SB=$T/repo
mkdir -p "$D" "$SB" "$T/bin" "$T/tmp"
# Pids of every server a block started, for the cleanup at exit.
: >"$T/allbg"
stop_pids() {
  # stop_pids FILE WAIT_S: wait up to WAIT_S s for each pid in FILE that
  # still runs and carries the tag to end by itself, then TERM, then KILL.
  for _p in $(cat "$1"); do
    _i=0
    while is_ours "$_p" && [ $_i -lt $(($2 * 10)) ]; do
      sleep 0.1
      _i=$((_i + 1))
    done
    if is_ours "$_p"; then
      echo "$_p" >>"$T/left"
      kill -TERM "$_p" 2>/dev/null
      _i=0
      while is_ours "$_p" && [ $_i -lt 100 ]; do
        sleep 0.1
        _i=$((_i + 1))
      done
      is_ours "$_p" && kill -KILL "$_p" 2>/dev/null
    fi
  done
}
# Every process a block starts inherits this variable, so what outlives its
# block is found even after it was reparented, and a pid that was reused
# by someone else's process is never signalled.
TAG="forkpool-readme-test-$$-$(date +%s%N)"
# is_ours PID: PID runs and carries the tag.
is_ours() {
  kill -0 "$1" 2>/dev/null && grep -qaF "$TAG" "/proc/$1/environ" 2>/dev/null
}
# tagged: pids of live processes that carry the tag (grep runs without it,
# and writes to a file, so that it does not find itself).
tagged() {
  env -u FORKPOOL_README_TEST_TAG grep -laF "$TAG" /proc/[0-9]*/environ \
    >"$T/tagged" 2>/dev/null
  sed 's,^/proc/,,; s,/environ$,,' "$T/tagged" | tr '\n' ' '
}
trap 'stop_pids "$T/allbg" 0; for p in $(tagged); do kill -KILL "$p"; done; rm -rf "$T"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The sandbox: the repository's top-level entries, linked.
for e in "$ROOT"/* "$ROOT"/.[!.]*; do
  [ -e "$e" ] || continue
  case ${e##*/} in .git) continue ;; esac
  ln -s "$e" "$SB/${e##*/}"
done
# A bare `forkpool` is not on PATH after make, whatever is installed.
cat >"$T/bin/forkpool" <<'EOF'
#!/bin/sh
echo "forkpool: not on PATH after make (tests/readme.sh): write build/bin/forkpool" >&2
exit 127
EOF
chmod +x "$T/bin/forkpool"

# --- parse README.md ----------------------------------------------------
# $D/index: one line per block, "ID<TAB>KIND<TAB>LINE<TAB>MARKERS" (KIND c,
# sh, sh-plain or other; MARKERS the markers' texts joined by "|"), or
# "ERR<TAB>LINE<TAB>MESSAGE". $D/ID.body: a block's text. For sh: $D/ID.n
# commands, $D/ID.K.cmd, $D/ID.K.exp, $D/ID.K.line. For a c block with
# program or plugin FILE: $D/ID.cc, "WHERE<TAB>LINE<TAB>COMMAND" of the
# first cc command naming FILE after it in its section (WHERE prompt or
# inline).
awk -v D="$D" '
  function out(f, s) { printf "%s\n", s >> f; close(f) }
  function touch(f) { printf "" > f; close(f) }
  function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
  # hasword(S, W): W occurs in S delimited by characters not of a path.
  function hasword(s, w,   i, b, a) {
    while ((i = index(s, w)) > 0) {
      b = (i == 1) ? "" : substr(s, i - 1, 1)
      a = substr(s, i + length(w), 1)
      if (b !~ /[A-Za-z0-9_.\/-]/ && a !~ /[A-Za-z0-9_\/-]/ && !(a == "." && substr(s, i + length(w) + 1, 1) ~ /[A-Za-z0-9]/))
        return 1
      s = substr(s, i + length(w))
    }
    return 0
  }
  function found(where, line, cmd) {
    out(D "/" pend_id ".cc", where "\t" line "\t" cmd)
    pend_id = ""
  }
  # Inline code spans of LINE that are cc commands naming the pending file.
  function inline_cc(line, nr,   s, span) {
    s = line
    while (match(s, /`[^`]+`/)) {
      span = substr(s, RSTART + 1, RLENGTH - 2)
      s = substr(s, RSTART + RLENGTH)
      if (span ~ /^cc / && hasword(span, pend_file)) { found("inline", nr, span); return }
    }
  }
  # A command line is continued after a trailing \, |, && or ||.
  function continues(s) { s = trim(s); return s ~ /(\\|\||&&)$/ }
  function flush_block(   i, k, l, prompt, incmd, hd, hdtab, cont, m, w, kind) {
    kind = lang
    if (lang == "sh") {
      prompt = 0
      for (i = 1; i <= nb; i++) if (buf[i] ~ /^\$ /) prompt = 1
      if (!prompt) kind = "sh-plain"
    } else if (lang != "c") kind = "other"
    id++
    out(D "/index", id "\t" kind "\t" start "\t" markers)
    touch(D "/" id ".body")
    for (i = 1; i <= nb; i++) out(D "/" id ".body", buf[i])
    if (kind == "sh") {
      k = 0; incmd = 0; hd = ""
      for (i = 1; i <= nb; i++) {
        l = buf[i]
        if (incmd && hd != "") {
          out(D "/" id "." k ".cmd", l)
          w = l; if (hdtab) sub(/^\t+/, "", w)
          if (w == hd) { hd = ""; if (!cont) incmd = 0 }
          continue
        }
        if (incmd) {
          out(D "/" id "." k ".cmd", l)
        } else if (l ~ /^\$ /) {
          k++; incmd = 1
          touch(D "/" id "." k ".exp")
          out(D "/" id "." k ".line", start + i)
          l = substr(l, 3)
          touch(D "/" id "." k ".cmd")
          out(D "/" id "." k ".cmd", l)
        } else {
          if (k == 0) { out(D "/index", "ERR\t" start + i "\ttext before the first $ prompt of its block"); continue }
          out(D "/" id "." k ".exp", l)
          continue
        }
        cont = continues(l)
        if (match(l, /<<-?[ \t]*["\047]?[A-Za-z_][A-Za-z0-9_]*/)) {
          m = substr(l, RSTART, RLENGTH)
          hdtab = (m ~ /^<<-/)
          sub(/^<<-?[ \t]*["\047]?/, "", m)
          hd = m
        } else if (!cont) incmd = 0
        if (pend_id != "" && l ~ /^cc / && hasword(l, pend_file)) found("prompt", start + i, l)
      }
      out(D "/" id ".n", k)
    }
    if (kind == "c" && markers ~ /(^|\|)(program|plugin) /) {
      m = markers; sub(/^(.*\|)?(program|plugin) +/, "", m); sub(/[ |].*/, "", m)
      pend_id = id; pend_file = m
    }
  }
  /^```/ && !infence {
    infence = 1; lang = substr($0, 4); start = NR; nb = 0
    markers = pending; pending = ""; next
  }
  /^```$/ && infence { infence = 0; flush_block(); next }
  infence { buf[++nb] = $0; next }
  /^<!-- readme-test:.*-->[ \t]*$/ {
    m = $0; sub(/^<!-- readme-test:[ \t]*/, "", m); sub(/[ \t]*-->[ \t]*$/, "", m)
    pending = (pending == "" ? m : pending "|" m); pend_line = NR; next
  }
  /readme-test:/ { out(D "/index", "ERR\t" NR "\ta readme-test marker must be a whole line <!-- readme-test: ... -->") }
  /^[ \t]*$/ { next }
  pending != "" { out(D "/index", "ERR\t" pend_line "\tmarker \"" pending "\" is not just before a fenced block"); pending = "" }
  /^#/ { pend_id = "" }
  pend_id != "" { inline_cc($0, NR) }
  END { if (pending != "") out(D "/index", "ERR\t" pend_line "\tmarker \"" pending "\" is not just before a fenced block") }
' "$README"

if [ ! -s "$D/index" ]; then
  nok "README.md has fenced blocks" "none parsed"
  finish
fi

# --- helpers ------------------------------------------------------------
# marker_arg MARKERS WORD: the argument text of marker WORD ("" if none),
# and status 1 when the marker is absent.
marker_arg() {
  printf '%s\n' "$1" | tr '|' '\n' | awk -v w="$2" '
    $1 == w { $1 = ""; sub(/^ /, ""); print; f = 1; exit }
    END { exit !f }'
}
known_markers() {
  printf '%s\n' "$1" | tr '|' '\n' | awk '
    NF && $1 !~ /^(program|plugin|fragment|skip|output-varies|needs)$/ { print $1 }'
}
# compare_varies WANT GOT: sets $why when GOT does not have WANT's shape.
compare_varies() {
  why=$(awk '
    function norm(s) {
      gsub(/0x[0-9a-fA-F]+/, "0xH", s); gsub(/[0-9]+/, "N", s)
      gsub(/ +/, " ", s); sub(/ $/, "", s); return s
    }
    function esc(s) { gsub(/[][\\^$.|?*+(){}]/, "\\\\&", s); return s }
    function rx(s,   p, n, i, r) {
      n = split(s, p, /\.\.\./); r = ""
      for (i = 1; i <= n; i++) r = r (i > 1 ? ".*" : "") esc(p[i])
      return "^" r "$"
    }
    FNR == NR { want[++nw] = $0; next }
    { got[++ng] = $0 }
    END {
      for (i = 1; i <= nw || i <= ng; i++) {
        if (i > ng) { printf "output line %d missing: want \"%s\"", i, want[i]; exit }
        if (i > nw) { printf "unexpected output line %d: \"%s\"", i, got[i]; exit }
        if (norm(got[i]) !~ rx(norm(want[i]))) {
          printf "output line %d is \"%s\", want the shape of \"%s\"", i, got[i], want[i]; exit
        }
      }
    }' "$1" "$2")
}
# compare_exact WANT GOT: sets $why unless the files are the same bytes.
compare_exact() {
  why=""
  cmp -s "$1" "$2" && return
  why=$(awk '
    FNR == NR { want[++nw] = $0; next }
    { got[++ng] = $0 }
    END {
      for (i = 1; i <= nw || i <= ng; i++) {
        if (i > ng) { printf "output line %d missing: want \"%s\"", i, want[i]; exit }
        if (i > nw) { printf "unexpected output line %d: \"%s\"", i, got[i]; exit }
        if (got[i] != want[i]) { printf "output line %d is \"%s\", want \"%s\"", i, got[i], want[i]; exit }
      }
      printf "output differs (a missing newline at the end?)"
    }' "$1" "$2")
}
# place_file ID LINE FILE: the C block's FILE in the sandbox: checked
# against the repository's, or written there. Sets $why on failure.
place_file() {
  why=""
  if [ -z "$3" ]; then
    why="the marker names no FILE"
  elif [ -f "$ROOT/$3" ]; then
    cmp -s "$D/$1.body" "$ROOT/$3" ||
      why="the block is not $3 byte for byte ($(diff "$ROOT/$3" "$D/$1.body" | grep -c '^[<>]') lines differ)"
  else
    case $3 in
      */*) why="$3 does not exist (a FILE that is not in the repository must be a plain name)" ;;
      *) cp "$D/$1.body" "$SB/$3" ;;
    esac
  fi
}

# --- the blocks, in order -------------------------------------------------
NAMES_SUFFIX="readme-$$"
while IFS="$(printf '\t')" read -r id kind line markers; do
  if [ "$id" = ERR ]; then
    nok "README.md line $kind" "$line"
    continue
  fi
  bad=$(known_markers "$markers" | tr '\n' ' ')
  if [ -n "$bad" ]; then
    nok "$kind block at line $line" "unknown readme-test marker(s): $bad"
    continue
  fi
  if reason=$(marker_arg "$markers" skip); then
    info "SKIP $kind block at line $line: ${reason:-no reason given}"
    continue
  fi
  case $kind in
    other)
      [ -z "$markers" ] || nok "block at line $line" "readme-test markers on a block that is neither c nor sh"
      continue ;;
    sh-plain)
      info "not run: sh block at line $line shows no '\$ ' prompt (commands to type)"
      continue ;;
  esac
  if needs=$(marker_arg "$markers" needs); then
    missing=""
    for c in $needs; do command -v "$c" >/dev/null 2>&1 || missing="$missing $c"; done
    if [ -n "$missing" ]; then
      info "SKIP $kind block at line $line: needs$missing"
      continue
    fi
  fi

  if [ "$kind" = c ]; then
    if file=$(marker_arg "$markers" program); then
      place_file "$id" "$line" "$file"
      if [ -n "$why" ]; then nok "C program at line $line" "$why"; continue; fi
      if [ ! -f "$D/$id.cc" ]; then
        nok "C program at line $line ($file)" "no '\$ cc ... $file' command follows it in its section"
      elif ! grep -q '^prompt' "$D/$id.cc"; then
        nok "C program at line $line ($file)" "its compile command (line $(cut -f2 "$D/$id.cc")) is not a '\$ ' command of an sh block, so nothing runs the program"
      else
        ok "C program at line $line is $file; the sh block with line $(cut -f2 "$D/$id.cc") compiles and runs it"
      fi
    elif file=$(marker_arg "$markers" plugin); then
      place_file "$id" "$line" "$file"
      if [ -n "$why" ]; then nok "C plugin at line $line" "$why"; continue; fi
      if [ ! -f "$D/$id.cc" ]; then
        nok "C plugin at line $line ($file)" "no 'cc ... $file' command follows it in its section"
        continue
      fi
      where=$(cut -f1 "$D/$id.cc")
      ccl=$(cut -f2 "$D/$id.cc")
      cmd=$(cut -f3- "$D/$id.cc")
      if [ "$where" = prompt ]; then
        ok "C plugin at line $line is $file; the sh block with line $ccl compiles it"
      elif (cd "$SB" && timeout 60 sh -c "$cmd") >"$T/cc.out" 2>&1; then
        ok "C plugin at line $line compiles with the README's command (line $ccl): $cmd"
      else
        nok "C plugin at line $line compiles with the README's command (line $ccl)" \
          "$cmd: $(head -c 600 "$T/cc.out" | tr '\n' '|')"
      fi
    elif marker_arg "$markers" fragment >/dev/null; then
      cp "$D/$id.body" "$T/fragment.c"
      if timeout 60 $CC -std=gnu11 -Wall -Werror -Wno-unused-function -I"$ROOT/include" \
        -c -o "$T/fragment.o" "$T/fragment.c" >"$T/cc.out" 2>&1; then
        ok "C fragment at line $line compiles as an object file"
      else
        nok "C fragment at line $line compiles as an object file" "$(head -c 600 "$T/cc.out" | tr '\n' '|')"
      fi
    else
      nok "unmarked C block at line $line" \
        "mark it <!-- readme-test: program FILE -->, plugin FILE or fragment"
    fi
    continue
  fi

  # --- an sh block with prompts ---
  n=$(cat "$D/$id.n")
  varies=""
  marker_arg "$markers" output-varies >/dev/null && varies=1
  W=$T/run.$id
  mkdir -p "$W"
  : >"$W/bgpids"
  # The pools this block serves, and their names of its own.
  names=$(cat "$D/$id".*.cmd | tr '\n' ' ' |
    grep -o 'forkpool serve[^;&|]*--name[= ][A-Za-z0-9_-]*' |
    sed 's/.*--name[= ]//' | sort -u)
  subst=""
  back=""
  for nm in $names; do
    subst="$subst -e s/\\<$nm\\>/$nm-$NAMES_SUFFIX/g"
    back="$back -e s/$nm-$NAMES_SUFFIX/$nm/g"
  done
  {
    echo 'cd "$1" || exit 1'
    k=1
    while [ "$k" -le "$n" ]; do
      if [ -n "$subst" ]; then
        # shellcheck disable=SC2086 # one -e per name
        sed $subst "$D/$id.$k.cmd" >"$W/$k.cmd"
      else
        cp "$D/$id.$k.cmd" "$W/$k.cmd"
      fi
      if tail -n 1 "$W/$k.cmd" | grep -Eq '(^|[^&])&[[:space:]]*(#.*)?$'; then
        # Redirections before the command word, so that the command's own
        # (2>log) still win; $! is then the command's pid.
        printf '>"$2/%s.out" 2>&1 </dev/null ' "$k"
        sed '$ s/&[[:space:]]*\(#.*\)\{0,1\}$/\&/' "$W/$k.cmd"
        echo "echo \$! >>\"\$2/bgpids\""
        echo "$k" >>"$W/background"
      else
        echo "{"
        cat "$W/$k.cmd"
        echo "} >\"\$2/$k.out\" 2>&1 </dev/null"
        echo "readme_test_rc=\$?; echo \$readme_test_rc >\"\$2/$k.rc\"; (exit \$readme_test_rc)"
      fi
      k=$((k + 1))
    done
  } >"$W/script.sh"
  (
    cd "$SB" &&
      env PATH="$T/bin:$PATH" TMPDIR="$T/tmp" LC_ALL=C PYTHONDONTWRITEBYTECODE=1 \
        FORKPOOL_README_TEST_TAG="$TAG" \
        timeout "$BLOCK_TMO" sh "$W/script.sh" "$SB" "$W" </dev/null >"$W/script.out" 2>&1
  )
  rc=$?
  cat "$W/bgpids" >>"$T/allbg"
  : >"$T/left"
  stop_pids "$W/bgpids" 3
  leftwhy=""
  # Anything else the block started (workers, a background child of a
  # pipeline) must be gone too: give it a moment, then kill it.
  i=0
  while [ -n "$(tagged)" ] && [ $i -lt 30 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  left=$(tagged)
  if [ -n "$left" ]; then
    leftwhy="processes left running: $(for p in $left; do
      printf '%s(%s) ' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-60)"
    done)"
    for p in $left; do kill -KILL "$p" 2>/dev/null; done
  fi
  name="sh block at line $line ($n command$([ "$n" = 1 ] || echo s))"
  if [ "$rc" = 124 ]; then
    nok "$name" "did not finish within $BLOCK_TMO s${leftwhy:+; $leftwhy}"
    continue
  fi
  if [ -s "$W/script.out" ]; then
    nok "$name" "the block's shell said: $(head -c 400 "$W/script.out" | tr '\n' '|')"
    continue
  fi
  why=$leftwhy
  k=1
  while [ "$k" -le "$n" ] && [ -z "$why" ]; do
    if ! grep -qx "$k" "$W/background" 2>/dev/null; then
      if [ -n "$back" ]; then
        # shellcheck disable=SC2086
        sed $back "$W/$k.out" >"$W/$k.got"
      else
        cp "$W/$k.out" "$W/$k.got"
      fi
      if [ -n "$varies" ]; then
        compare_varies "$D/$id.$k.exp" "$W/$k.got"
      else
        compare_exact "$D/$id.$k.exp" "$W/$k.got"
      fi
      [ -z "$why" ] || why="\$ $(head -n 1 "$D/$id.$k.cmd") (line $(cat "$D/$id.$k.line"), exit status $(cat "$W/$k.rc" 2>/dev/null)): $why"
    fi
    k=$((k + 1))
  done
  if [ -s "$T/left" ]; then
    info "the block at line $line left a server running: stopped pid(s) $(tr '\n' ' ' <"$T/left")"
  fi
  for nm in $names; do
    if [ -e "/dev/shm/forkpool.$nm-$NAMES_SUFFIX" ]; then
      why="${why:+$why; }/dev/shm/forkpool.$nm-$NAMES_SUFFIX is left"
      rm -f "/dev/shm/forkpool.$nm-$NAMES_SUFFIX"
    fi
  done
  if [ -z "$why" ]; then
    ok "$name: the output shown${varies:+ (its shape: output-varies)}"
  else
    nok "$name" "$why"
  fi
done <"$D/index"

finish
