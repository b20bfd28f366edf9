#!/bin/sh
# A terminal that cannot hold the full-screen layout (TERM=dumb, TERM unset) and stdout
# that is not a terminal get the chat as plain lines: a prompt, the streamed answer and a
# privacy summary per message, and never the screen's layout (panel, status bar).
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
RUN="$CMIF -m $MODEL --temp 0 -n 12 --no-ledger"
for how in "TERM=dumb" "-u TERM"; do
  tm_start 100 30 "env $how $RUN"
  wait_re "^>>>" 20 || die "$how: no prompt"
  tm send-keys -t cmif "Once upon a time" Enter
  wait_re "privacy: [0-9]+ words?: " 30 || die "$how: no privacy summary"
  wait_re "^>>> *$" 30 || die "$how: no prompt after the answer"
  screen > "$TMPD/s"
  # The answer is on the lines after the summary, before the next prompt.
  awk '/privacy: /{f=1; next} /^>>>/{f=0} f && /[a-z]/' "$TMPD/s" | grep -q . \
    || { cat "$TMPD/s"; die "$how: no answer after the summary"; }
  grep -q "Once upon a time.*>>>\|generating\|│\|Privacy" "$TMPD/s" \
    && { cat "$TMPD/s"; die "$how: the full-screen layout was drawn"; }
  # A """ block is one message with its line breaks.
  tm send-keys -t cmif '"""' Enter "first line" Enter "second line" Enter '"""' Enter
  wait_re "privacy: [0-9]+ words?: .*" 30 || die "$how: the block was not sent"
  # a /system text is charged with the next message, and the summary says so
  tm send-keys -t cmif "/system be brief and kind" Enter "/clear" Enter "Hi" Enter
  wait_re "the system prompt \\([0-9]+ words?\\) was sanitized and charged" 30 \
    || { screen; die "$how: the summary does not say the system prompt was charged"; }
  tm send-keys -t cmif "/bye" Enter
  st=$(wait_exit 10) || die "$how: /bye did not leave"
  [ "$st" = 0 ] || die "$how: exit status $st"
  tm kill-server
done

# stdout a file, stdin the terminal: the transcript lands in the file, the prompt on the
# terminal, the user's lines repeated in the file.
tm_start 100 30 "$RUN > $TMPD/out"
wait_re "^>>>" 20 || die "stdout a file: no prompt on the terminal"
tm send-keys -t cmif "Once upon a time" Enter
# Wait for the whole answer (its summary in the file, the prompt back) before Ctrl-D, so
# a loaded machine does not turn this into a test of leaving mid-answer.
n=0; while [ $n -lt 300 ] && ! grep -q "privacy: " "$TMPD/out"; do sleep 0.2; n=$((n+1)); done
wait_re "^>>> *$" 60 || die "stdout a file: the prompt did not come back after the answer"
tm send-keys -t cmif C-d
st=$(wait_exit 60) || die "stdout a file: Ctrl-D did not leave"
[ "$st" = 0 ] || die "stdout a file: exit status $st"
grep -q "^> Once upon a time$" "$TMPD/out" || { cat "$TMPD/out"; die "the message is not in the file"; }
grep -q "^\* privacy: " "$TMPD/out" || { cat "$TMPD/out"; die "no privacy summary in the file"; }
grep -q "$(printf '\033')" "$TMPD/out" && die "escape sequences in the file"
echo "ok: TERM=dumb, TERM unset and stdout a file give a plain line chat"
