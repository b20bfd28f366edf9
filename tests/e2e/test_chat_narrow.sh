#!/bin/sh
# The full-screen chat at 40 columns: the status line drops and shortens its other fields
# before it cuts the budget, so the ε spent and the limit are always shown in full, during
# an answer and after it.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
mkdir -p "$TMPD/state"
# A few tokens at ε 0.0625 spend a fraction below 1: the figure is "0.xx/1000000000".
FIG='(^| )0\.[0-9]*[1-9]/1000000000( |$)'
tm_start 40 20 "XDG_STATE_HOME=$TMPD/state $CMIF -m $MODEL --temp 0 -n 200 --delay-ms 20 --no-color --unit token --eps 0.0625 --budget 1000000000 --no-ledger"
wait_for "Ctrl-D" 10 || die "the chat did not start"
status() { screen | sed -n 19p; }
status | grep -qF "0/1000000000" || { screen; die "no budget in the status line at 40 columns"; }
tm send-keys -t cmif "Once upon a time" Enter
wait_for "> Once upon a time" 10 || die "the message is not in the transcript"
wait_re "$FIG" 10 || die "the budget is cut while generating: $(status)"
wait_stable || die "the answer did not finish"
status | grep -qE "$FIG" || { screen; die "the budget is cut after the answer: $(status)"; }
status | grep -qF "…" && die "the status line is cut: $(status)"
tm send-keys -t cmif C-d
[ "$(wait_exit 10)" = 0 ] || die "Ctrl-D did not quit cleanly"
exit 0
