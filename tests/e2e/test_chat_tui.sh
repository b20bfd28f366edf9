#!/bin/sh
# The full-screen chat in tmux with stories260K and --temp 0: the
# answer streams into the transcript, the privacy panel has one row per user token (--unit token), /eps
# changes the next message's charge, Ctrl-C stops a long answer and the input works again,
# Up recalls the last input, and a resize to 60x20 and back redraws without garbage.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
mkdir -p "$TMPD/state"
N=$(ntok "Once upon a time")
[ "$N" -ge 2 ] || die "tokenize failed"
HALF=$(awk -v n="$N" 'BEGIN { printf "%.4g", n / 2 }')
tm_start 100 30 "XDG_STATE_HOME=$TMPD/state $CMIF -m $MODEL --temp 0 -n 300 --delay-ms 8 --no-color --unit token"
wait_for "Ctrl-D quits" || die "the chat did not start"

tm send-keys -t cmif "Once upon a time" Enter
wait_for "> Once upon a time" || die "the message is not in the transcript"
wait_re "│ [0-9.]+ tok/s" 30 || die "the answer did not finish"
screen > "$TMPD/s1"
# The answer streamed below the message (stories260K always answers with text).
awk '/> Once upon a time/{f=1; next} f && /[a-z]/ {print; exit}' "$TMPD/s1" | grep -q . \
  || die "no answer text after the message"
grep -q "message: $N tok, ε $N *$" "$TMPD/s1" || { cat "$TMPD/s1"; die "panel totals wrong for $N tokens at ε 1"; }
rows=$(grep -c " → .*[KRPC]  *1\.00" "$TMPD/s1")
[ "$rows" -eq "$N" ] || { cat "$TMPD/s1"; die "panel has $rows token rows, expected $N"; }

tm send-keys -t cmif "/eps 0.5" Enter
wait_for "ε per token is now 0.5" || die "/eps did not answer"
tm send-keys -t cmif "Once upon a time" Enter
wait_for "message: $N tok, ε $HALF" 30 || die "/eps 0.5 did not halve the next message's charge"
wait_re "│ [0-9.]+ tok/s" 30 || die "the second answer did not finish"
[ "$(screen | grep -c ' → .*[KRPC]  *0\.50')" -eq "$N" ] || die "panel rows do not show ε 0.50"

# Ctrl-C stops a long answer; the session goes on. Unsanitized, a story request gets a
# long answer from either model (the bundled chat model ends a noisy prompt in a few tokens).
tm send-keys -t cmif "/mechanism none" Enter
wait_for "OFF" || die "/mechanism none did not ask first"
tm send-keys -t cmif "/mechanism none!" Enter
wait_for "mechanism is now none" || die "/mechanism none! did not answer"
tm send-keys -t cmif "Tell me a story about a dog and a ball." Enter
wait_for "generating" 10 || die "no answer started"
screen | grep -q "│ NOT SANITIZED (none)" || { screen; die "the panel lost the mechanism's name during the answer"; }
tm send-keys -t cmif C-c
wait_for "stopped: the session goes on" 10 || die "Ctrl-C did not stop the answer"
tm send-keys -t cmif "hello there"
wait_re "^> hello there *$" 5 || die "the input line does not work after Ctrl-C"
tm send-keys -t cmif C-u
wait_re "^> *$" 5 || die "Ctrl-U did not clear the line"
tm send-keys -t cmif Up
wait_re "^> Tell me a story about a dog and a ball\. *$" 5 || die "Up did not recall the last input"
tm send-keys -t cmif C-u

# Resize and back: the redraw must equal a from-scratch repaint (Ctrl-L), no leftovers.
for size in "60 20" "100 30"; do
  set -- $size
  tm resize-window -t cmif -x "$1" -y "$2"
  wait_stable || die "screen never settled after resize to $1x$2"
  screen > "$TMPD/a"
  [ "$(wc -l < "$TMPD/a")" -eq "$2" ] || die "capture has the wrong height"
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys; w=int(sys.argv[2]); sys.exit(any(len(l.rstrip("\n")) > w for l in open(sys.argv[1], encoding="utf-8")))' \
      "$TMPD/a" "$1" || { cat "$TMPD/a"; die "a line is wider than $1 columns"; }
  fi
  grep -q "tok/s" "$TMPD/a" || { cat "$TMPD/a"; die "status line missing at $1x$2"; }
  tail -n 1 "$TMPD/a" | grep -q "^>" || { cat "$TMPD/a"; die "input line missing at $1x$2"; }
  tm send-keys -t cmif C-l
  wait_stable
  screen > "$TMPD/b"
  cmp -s "$TMPD/a" "$TMPD/b" || { diff "$TMPD/a" "$TMPD/b"; die "resize to $1x$2 left garbage"; }
done
grep -q "Privacy" "$TMPD/b" || die "panel not back at 100x30"

tm send-keys -t cmif C-d
st=$(wait_exit 10) || die "Ctrl-D did not exit"
[ "$st" = 0 ] || die "exit status $st"
wait_for "AFTER-EXIT" 5 || die "terminal not restored after exit"
echo "ok: chat streams, panel rows, /eps, Ctrl-C, history recall, resize"
