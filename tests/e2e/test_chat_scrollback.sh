#!/bin/sh
# Scrolling back while an answer streams: after PgUp the view stays put as new rows arrive
# (the marker's count grows instead), the "↑ N rows back" marker has a row of its own over
# the text, the end of the answer does not jump to the bottom, and PgDn returns to following
# the answer.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
mkdir -p "$TMPD/state"
# The transcript pane: rows 1-10, left of the panel's border.
pane() { screen | sed -n '1,10p' | sed 's/│[^│]*$//'; }
tm_start 80 12 "XDG_STATE_HOME=$TMPD/state $CMIF -m $MODEL --temp 0 -n 300 --delay-ms 40 --no-color --mechanism none"
wait_for "Ctrl-D" 10 || die "the chat did not start"
tm send-keys -t cmif "Tell me a long story about a dog and a ball." Enter
wait_for "generating" 10 || die "no answer started"
# Enough rows to scroll back over, then PgUp while the answer still streams.
n=0
while [ $n -lt 150 ]; do
  [ "$(pane | grep -c '[a-z]')" -ge 10 ] && sleep 1.5 && break
  sleep 0.1; n=$((n + 1))
done
tm send-keys -t cmif PPage
wait_for "rows back" 5 || die "PgUp showed no marker"
sleep 0.3
pane > "$TMPD/v1"
sleep 1.5
screen | grep -q "generating" || die "the answer ended before the second look (too short to test)"
pane > "$TMPD/v2"
# The marker is on a row of its own: nothing but the marker on that row.
m=$(grep "rows back" "$TMPD/v2")
echo "$m" | grep -qE '^ *↑ [0-9]+ rows back[^a-z]*(PgDn[^a-z]*)?(End[^a-z]*)?$' \
  || { cat "$TMPD/v2"; die "the marker shares its row with text: '$m'"; }
# The text under the marker did not move while the answer went on.
grep -v "rows back" "$TMPD/v1" > "$TMPD/t1"; grep -v "rows back" "$TMPD/v2" > "$TMPD/t2"
cmp -s "$TMPD/t1" "$TMPD/t2" || { diff "$TMPD/t1" "$TMPD/t2"; die "the view moved while scrolled back"; }
wait_re "(│ [0-9.]+ tok/s|answer cut at)" 60 || die "the answer did not finish"
sleep 0.3
pane | grep -v "rows back" > "$TMPD/t3"
cmp -s "$TMPD/t1" "$TMPD/t3" || { diff "$TMPD/t1" "$TMPD/t3"; die "the view jumped when the answer ended"; }
screen | grep -q "rows back" || die "the marker went away at the end of the answer"
tm send-keys -t cmif NPage NPage NPage NPage NPage NPage NPage NPage
n=0
while screen | grep -q "rows back"; do
  sleep 0.1; n=$((n + 1)); [ $n -lt 50 ] || die "PgDn did not return to the bottom"
done
tm send-keys -t cmif C-d
[ "$(wait_exit 10)" = 0 ] || die "Ctrl-D did not quit cleanly"
exit 0
