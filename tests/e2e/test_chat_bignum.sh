#!/bin/sh
# A large budget is written out in full (100000), never in scientific notation (1e+05),
# in the status line, the panel and the welcome notice.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
tm_start 160 30 "$CMIF -m $MODEL --no-ledger --budget 100000 --no-color"
wait_for "Ctrl-D quits" || die "the chat did not start"
wait_stable
screen > "$TMPD/s"
grep -q "e+0" "$TMPD/s" && { cat "$TMPD/s"; die "a budget in scientific notation"; }
grep -q "session 0/100000" "$TMPD/s" || { cat "$TMPD/s"; die "the status line lacks 0/100000"; }
grep -q "session: ε 0 of 100000" "$TMPD/s" || { cat "$TMPD/s"; die "the panel lacks 0 of 100000"; }
tm send-keys -t cmif C-d
st=$(wait_exit 10) || die "Ctrl-D did not exit"
[ "$st" = 0 ] || die "exit status $st"
echo "ok: large budgets in full"
