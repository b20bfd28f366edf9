#!/bin/sh
# Enter while an answer streams never writes into the answer: the message is queued, the
# transcript says so when the answer ends, and it is sent then. The history keeps a
# multi-line message as one entry that Up recalls with its line breaks; a """ block is
# one message with its line breaks.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
tm_start 100 40 "$CMIF -m $MODEL --temp 0 -n 40 --delay-ms 60 --no-color --no-ledger"
wait_for "Ctrl-D quits" || die "the chat did not start"
tm send-keys -t cmif "Once upon a time" Enter
wait_for "generating" 10 || die "no answer started"
sleep 0.5
tm send-keys -t cmif "zebra queue" Enter
sleep 0.5
screen | grep -q "zebra" && { screen; die "the queued message was written while the answer streamed"; }
wait_for "queued while the answer streamed: sent when it ended" 30 || die "the transcript does not say the message was queued"
wait_for "sending your queued message" 10 || die "the queued message was not sent"
wait_re "answer cut.*" 30
sleep 0.3
wait_re "│ [0-9.]+ tok/s" 30 || die "the queued message got no answer"
wait_stable
screen > "$TMPD/s"
# The first answer runs from its message to its end notice with nothing inside it.
awk '/^> Once upon a time/{f=1; next} f && /^\* answer cut/{exit} f' "$TMPD/s" > "$TMPD/a1"
grep -q "[a-z]" "$TMPD/a1" || { cat "$TMPD/s"; die "no first answer"; }
grep -qE "^(>|\*|!) " "$TMPD/a1" && { cat "$TMPD/s"; die "something was written inside the answer"; }
has "$TMPD/s" "^> zebra queue" "the queued message is not in the transcript"

tm send-keys -t cmif "/clear" Enter
wait_for "new conversation" 10 || die "/clear did not answer"
tm send-keys -t cmif "/set n 4" Enter
wait_for "n is now 4" 10 || die "/set n failed"
tm send-keys -t cmif 'line one\' Enter "line two" Enter
wait_re "│ [0-9.]+ tok/s" 30 || die "the multi-line message got no answer"
wait_stable
tm send-keys -t cmif Up
wait_re "^\.*>? *line two *$" 5 || { screen; die "Up did not recall the message with its line break"; }
screen | grep -qE "^(> |\.\.\. )?line one *$" || { screen; die "the recalled message lost its first line"; }
tm send-keys -t cmif C-u C-u C-c
tm send-keys -t cmif '"""' Enter "alpha" Enter "beta" Enter '"""' Enter
wait_re "^> alpha  " 10 || { screen; die "the \"\"\" block was not sent as one message"; }
wait_re "^  beta  " 10 || { screen; die "the block lost its line break"; }
n=0; while [ $n -lt 100 ] && [ "$(screen | grep -c '^\* answer cut')" -lt 2 ]; do sleep 0.2; n=$((n+1)); done
wait_stable
tm send-keys -t cmif "/save $TMPD/t.md" Enter
wait_for "transcript saved" 10 || die "/save failed"
grep -q "^line one$" "$TMPD/t.md" && grep -q "^line two$" "$TMPD/t.md" || { cat "$TMPD/t.md"; die "the message lost its line break"; }
grep -q "^alpha$" "$TMPD/t.md" && grep -q "^beta$" "$TMPD/t.md" || { cat "$TMPD/t.md"; die "the block is not one message"; }
tm send-keys -t cmif C-d
st=$(wait_exit 10) || die "Ctrl-D did not exit"
[ "$st" = 0 ] || die "exit status $st"
echo "ok: Enter while streaming is queued, multi-line history, \"\"\" blocks"
