# Shared by tests/man.sh and tests/synopsis.sh (sourced, POSIX sh): the
# flags a subcommand's usage text defines, and the roff sections of a man
# page that should name them.

# usage_flag_groups FILE: one line per option that the usage text FILE
# (what `forkpool SUBCMD --help` prints) defines, its spellings separated
# by a space, short one first ("-0 --null", "--json"). Flags are read from
# the usage lines ("Usage: ..." or "usage: ..." and the indented lines
# that continue it) and from the option list ("  -0, --null   ...",
# "  --json   ..."), not from the prose: a sentence such as "as 'forkpool
# submit --json' prints them" names another command's flag.
usage_flag_groups() {
  awk '
    function longs(s,   out) {
      out = ""
      while (match(s, /--[a-z][a-z0-9-]*/)) {
        out = out " " substr(s, RSTART, RLENGTH)
        s = substr(s, RSTART + RLENGTH)
      }
      return out
    }
    /^[Uu]sage: / { inusage = 1; n = split(longs($0), f, " ")
                    for (i = 1; i <= n; i++) print f[i]; next }
    inusage && /^[ \t]/ { n = split(longs($0), f, " ")
                          for (i = 1; i <= n; i++) print f[i]; next }
    { inusage = 0 }
    /^  +-[A-Za-z0-9], --[a-z]/ {
      s = $0; sub(/^ +/, "", s)
      short = substr(s, 1, 2); sub(/^-[A-Za-z0-9], /, "", s)
      match(s, /^--[a-z][a-z0-9-]*/); print short " " substr(s, 1, RLENGTH); next
    }
    /^  +-[A-Za-z0-9]( |$)/ { s = $0; sub(/^ +/, "", s); print substr(s, 1, 2); next }
    /^  +--[a-z]/ { s = $0; sub(/^ +/, "", s)
                    match(s, /^--[a-z][a-z0-9-]*/); print substr(s, 1, RLENGTH) }
  ' "$1" | awk '
    # A long flag seen alone (in a usage line) and again with its short
    # spelling is one option: keep the pair only.
    { line[NR] = $0; if (NF == 2) paired[$2] = 1 }
    END {
      for (i = 1; i <= NR; i++) {
        if (line[i] in paired || line[i] in seen) continue
        seen[line[i]] = 1
        print line[i]
      }
    }
  ' | sort
}

# usage_flags FILE: every spelling of every option of usage_flag_groups,
# one per line, sorted.
usage_flags() {
  usage_flag_groups "$1" | tr ' ' '\n' | sort -u
}

# man_section PAGE TITLE: the roff source of the section or subsection
# ".SH TITLE" / ".SS TITLE" (quotes ignored), up to the next .SS or .SH.
man_section() {
  awk -v t="$2" '
    /^\.S[SH] / {
      h = $0; sub(/^\.S[SH] +/, "", h); gsub(/"/, "", h)
      on = (h == t); next
    }
    on { print }' "$1"
}

# roff_missing_flags FILE FLAG...: prints (space-separated) each FLAG that
# the roff source FILE does not name. In roff source a flag's hyphens are
# written \- ; a flag is named when it is not followed by a letter, a digit
# or a hyphen (--max-tasks does not name --max).
roff_missing_flags() {
  _rf_file=$1
  shift
  _rf_missing=""
  for _rf in "$@"; do
    _rf_pat=$(printf '%s' "$_rf" | sed 's/-/\\\\-/g')
    grep -q -- "$_rf_pat\([^a-z0-9-]\|\$\)" "$_rf_file" ||
      _rf_missing="$_rf_missing $_rf"
  done
  echo $_rf_missing
}

# roff_flags FILE: the flags (long and short) that the roff text FILE
# names, one per line, sorted: \- read as -, font escapes (\fB, \fR) and
# quotes as separators.
roff_flags() {
  sed 's/\\-/-/g; s/\\f[A-Z]/ /g; s/\\[(&|^]/ /g; s/"/ /g' "$1" |
    grep -o -- '\(^\|[^A-Za-z0-9-]\)--*[A-Za-z0-9][A-Za-z0-9-]*' |
    sed 's/^[^-]*//' | grep -- '^-\(-[a-z][a-z0-9-]*\|[A-Za-z0-9]\)$' | sort -u
}
