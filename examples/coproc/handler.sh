#!/bin/sh
# A forkpool coprocess handler in POSIX sh (dash works), using coreutils
# only. Use:  forkpool run --coproc sh examples/coproc/handler.sh ...
#
# It is slow: every task forks several processes (head, wc, tr, ...), so
# expect milliseconds per task where handler.c takes microseconds. It shows
# that any language that can read and write bytes can be a handler.
#
# THE PROTOCOL (forkpool coproc protocol, version 1); handler.py explains
# it at length:
#   request on stdin:  N "\n" then exactly N bytes (the task)
#   reply on stdout:   S " " M "\n" then exactly M bytes (the output),
#                      S = 0 ok, 1..255 failed with code S
#   EOF on stdin: exit 0. stdout carries replies only; stderr is the log.
#
# How the bytes stay exact:
#   - `read -r` takes the header: the shell reads a pipe one byte at a time
#     so it never consumes a byte past the "\n".
#   - `head -c N` takes the task into a file: GNU head never reads past N
#     bytes on a pipe, so the next request stays in the pipe.
#   - The task lives in a file, never only in a shell variable, because
#     the shell drops NUL bytes and trailing newlines; it is loaded into a
#     variable only to compare it with the commands, and only when the
#     variable's length proves that nothing was dropped.
#   - Files go in a private `mktemp -d` directory, removed on exit by the
#     EXIT trap (a SIGKILL, which nothing can catch, leaves it behind).
#   - fd 1 is pointed at stderr right away and replies go to fd 3, a copy
#     of the real stdout, so that a command that prints cannot corrupt the
#     reply stream.
#
# Tasks (the same in handler.py and handler.c, checked by
# tests/coproc_proto.sh): abort, exit N, fail N, sleep S, garbage, big N,
# stderr TEXT, pid; anything else is echoed with a-z made A-Z. A number is
# decimal without sign or leading zeros, 9 digits at most; a command with
# any other argument counts as "anything else". A malformed request
# (forkpool never sends one), or a task over 1 GiB, makes the handler exit 2
# without a reply.

LC_ALL=C # byte semantics for tr, wc and ${#var}
export LC_ALL

D=$(mktemp -d "${TMPDIR:-/tmp}/coproc-sh.XXXXXX") || exit 1
trap 'rm -rf "$D"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

exec 3>&1 1>&2

bad_request() {
  echo "handler.sh: bad request: $1" >&2
  exit 2
}

# is_number STRING: STRING is "0" or 1 to 9 digits without a leading zero.
is_number() {
  case $1 in
    0) return 0 ;;
    '' | 0* | *[!0-9]*) return 1 ;;
  esac
  [ ${#1} -le 9 ]
}

# is_seconds STRING: a number, optionally followed by "." and 1 to 9 digits.
is_seconds() {
  case $1 in
    *.*)
      _f=${1#*.}
      case $_f in '' | *[!0-9]*) return 1 ;; esac
      [ ${#_f} -le 9 ] || return 1
      is_number "${1%%.*}"
      ;;
    *) is_number "$1" ;;
  esac
}

# reply STATUS FILE: send one reply with FILE's bytes as output.
reply() {
  _len=$(wc -c <"$2") || exit 1
  _len=$((_len + 0)) # wc may pad with blanks
  printf '%d %d\n' "$1" "$_len" >&3 && cat "$2" >&3 || exit 1
}

# reply_str STATUS STRING: send one reply with STRING as output.
reply_str() {
  printf '%s' "$2" >"$D/out" && reply "$1" "$D/out"
}

# handle N: run the task in $D/task (N bytes) and reply. Replace the body
# with your own code; finish every task with reply or reply_str.
handle() {
  t=""
  if [ "$1" -le 32 ]; then
    # The "." keeps trailing newlines from being stripped; a NUL byte is
    # dropped by the shell, which the length test then catches.
    t=$(cat "$D/task"; echo .)
    t=${t%.}
    [ ${#t} -eq "$1" ] || t=""
  fi
  case $t in
    abort)
      rm -rf "$D"
      trap - EXIT
      kill -ABRT $$
      ;;
    "exit "*)
      n=${t#exit }
      if is_number "$n" && [ "$n" -le 255 ]; then exit "$n"; fi
      ;;
    "fail "*)
      n=${t#fail }
      if is_number "$n" && [ "$n" -ge 1 ] && [ "$n" -le 255 ]; then
        reply_str "$n" "failed $n"
        return
      fi
      ;;
    "sleep "*)
      s=${t#sleep }
      if is_seconds "$s"; then
        sleep "$s"
        reply_str 0 "slept $s"
        return
      fi
      ;;
    "big "*)
      n=${t#big }
      if is_number "$n"; then
        head -c "$n" /dev/zero | tr '\000' x >"$D/out" && reply 0 "$D/out"
        return
      fi
      ;;
    garbage)
      printf 'hello world\n' >&3
      return
      ;;
    pid)
      reply_str 0 "$$"
      return
      ;;
  esac
  # TEXT may be long or binary, so look at the first 7 bytes only.
  if [ "$1" -ge 7 ] && [ "$(head -c 7 "$D/task")" = "stderr " ]; then
    tail -c +8 "$D/task" >&2
    echo >&2
    reply_str 0 logged
    return
  fi
  # Exactly ASCII a-z, whatever the locale, so no [:lower:] here.
  # shellcheck disable=SC2018,SC2019
  tr 'a-z' 'A-Z' <"$D/task" >"$D/out" && reply 0 "$D/out"
}

while :; do
  if ! IFS= read -r hdr; then
    [ -z "$hdr" ] && exit 0 # EOF between requests: the normal stop
    bad_request "stream ended inside the header"
  fi
  [ ${#hdr} -le 32 ] || bad_request "header line longer than 32 bytes"
  # At most 1 GiB, as in handler.c and handler.py. (The shell's numbers
  # are 64-bit: 18 digits always fit, so test the digit count first.)
  if [ ${#hdr} -gt 18 ] || [ "$hdr" -gt 1073741824 ]; then
    bad_request "task length $hdr is too large"
  fi
  case $hdr in
    0) ;;
    '' | 0* | *[!0-9]*) bad_request "task length is not a number: $hdr" ;;
  esac
  head -c "$hdr" >"$D/task" || exit 1
  got=$(wc -c <"$D/task") || exit 1
  [ "$got" -eq "$hdr" ] || bad_request "stream ended $got bytes into a $hdr-byte task"
  handle "$hdr"
done
