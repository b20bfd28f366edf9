#!/bin/sh
# What the chat keeps of a typed secret in its memory, read as root through /proc/PID/mem
# of every readable mapping (memscan): after an answer, only the copies the README's
# "Where your text lives" lists (the conversation, the transcript and panel, the recall
# and /save-history lists: at most one each in the UI thread, the conversation and its
# report in the generation thread); after /clear, none at all. Then the same after Ctrl-D:
# the process is gone and nothing of the secret is on disk under its state directory.
. tests/e2e/lib.sh
# ASan maps terabytes of shadow memory into the process: a scan of every mapping is not
# feasible there (the normal build runs this test).
if [ -n "${CMIF_ASAN:-}" ]; then echo "SKIP: not under ASan (shadow memory)"; exit 77; fi
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
SCAN=$BUILD/tools/memscan
[ -x "$SCAN" ] || die "$SCAN not built"
MARK=qzvsecret$$k
ST=$TMPD/state
mkdir -p "$ST"
tm_start 100 30 "XDG_STATE_HOME=$ST $CMIF -m $MODEL --temp 0 -n 8"
wait_for "Ctrl-D quits" 30 || die "chat did not start"
PID=$(pgrep -P "$(tm display -p -t cmif '#{pane_pid}')" | head -1)
[ -n "$PID" ] || die "no cmif process under the pane"
"$SCAN" "$PID" "$MARK" >"$TMPD/scan0" 2>&1; rc=$?
[ $rc -eq 2 ] && { echo "SKIP: cannot read /proc/$PID/mem (not root?)"; exit 77; }
grep -q "^total 0 copies" "$TMPD/scan0" || { cat "$TMPD/scan0"; die "the secret is in memory before it was typed?"; }

tm send-keys -t cmif "my code is $MARK ok" Enter
wait_re "tok/s" 30 || die "no answer"
wait_stable
"$SCAN" "$PID" "$MARK" >"$TMPD/scan1" || die "scan failed"
n=$(sed -n 's/^total \([0-9]*\) copies.*/\1/p' "$TMPD/scan1")
echo "idle after the answer: $n copies"
sed '$d' "$TMPD/scan1" | cut -c1-100
# Listed in the README: the line in readline's history (recall) and the /save-history
# list, the transcript, the panel's word rows, the conversation and its report (/save)
# and the restoration map. Each is one copy of the line or of the word; more means a
# buffer was copied and left behind.
[ "$n" -le 12 ] || die "more copies of the secret than the README lists ($n)"

tm send-keys -t cmif "/clear" Enter
wait_for "new conversation" 10 || die "/clear did not answer"
wait_stable
"$SCAN" "$PID" "$MARK" >"$TMPD/scan2" || die "scan failed"
grep -q "^total 0 copies" "$TMPD/scan2" || { cat "$TMPD/scan2"; die "copies of the secret survive /clear"; }
echo "after /clear: no copy"

tm send-keys -t cmif C-d
wait_exit 15 >/dev/null || die "chat did not exit"
if [ -d "$ST" ] && grep -rqF "$MARK" "$ST" 2>/dev/null; then die "the secret is on disk under $ST"; fi
echo "ok: after /clear no copy of the secret in the chat's memory; none on disk after exit"
