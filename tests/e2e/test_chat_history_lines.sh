#!/bin/sh
# A multi-line message (trailing-backslash continuation) is one history entry that keeps
# its line breaks on disk: recalled with Up in a new session (--history) and sent again,
# it is the same message, line breaks and all (checked in /save's transcript).
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
ST=$TMPD/state
mkdir -p "$ST"
RUN="XDG_STATE_HOME=$ST $CMIF -m $MODEL --temp 0 -n 4 --no-ledger --history --no-color"

tm_start 100 30 "$RUN"
wait_for "Ctrl-D quits" || die "first run did not start"
tm send-keys -t cmif "cont one \\" Enter "cont two" Enter
wait_re "│ [0-9.]+ tok/s" 20 || die "no answer to the continued message"
tm send-keys -t cmif C-d
st=$(wait_exit 10) || die "first run did not exit"
[ "$st" = 0 ] || die "first run exit status $st"
grep -qa "cont" "$ST/cmif/history" && die "the history file holds plaintext"
tm kill-server
rm -f "$TMPD/exit"

tm_start 100 30 "$RUN"
wait_for "Ctrl-D quits" || die "second run did not start"
tm send-keys -t cmif Up
wait_re "^(\.\.\. )?cont two *$" 5 || die "Up did not recall the message with its line break"
tm send-keys -t cmif Enter
wait_re "│ [0-9.]+ tok/s" 20 || die "no answer to the recalled message"
tm send-keys -t cmif "/save $TMPD/t.md" Enter
wait_for "transcript saved" 10 || die "/save failed"
awk '/^## You/{getline; getline; print; getline; print; exit}' "$TMPD/t.md" > "$TMPD/msg"
printf 'cont one \ncont two\n' | cmp -s - "$TMPD/msg" \
  || { cat "$TMPD/t.md"; die "the recalled message was not sent with its line break"; }
tm send-keys -t cmif C-d
wait_exit 10 >/dev/null || die "second run did not exit"
echo "ok: a multi-line message survives the history file and is resent with its line breaks"
