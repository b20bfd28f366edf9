#!/bin/sh
# --autosave FILE: at exit (/quit, SIGTERM) the session is written as /save FILE.json
# writes it, mode 0600, and --resume FILE restores the conversation; an existing FILE is
# refused unless it is the one being resumed (then it grows by the new turns); --autosave
# alone writes a new file in $XDG_STATE_HOME/cmif/sessions; an empty session writes nothing.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
ST=$TMPD/state
mkdir -p "$ST"
RUN="XDG_STATE_HOME=$ST $CMIF -m $MODEL --temp 0 -n 8 --no-ledger --no-color"
F=$TMPD/a.json

tm_start 120 30 "$RUN --autosave $F"
wait_for "/help lists commands" || die "the chat did not start"
tm send-keys -t cmif "Once upon a time" Enter
wait_re "│ [0-9.]+ tok/s" 30 || die "the answer did not finish"
tm send-keys -t cmif "/quit" Enter
st=$(wait_exit 10) || die "/quit did not exit"
[ "$st" = 0 ] || die "exit status $st"
wait_for "session saved to $F" 5 || die "the chat did not say where the session went"
[ -f "$F" ] || die "no session file after /quit"
[ "$(stat -c %a "$F")" = 600 ] || die "the session file is not 0600"
head -c 1 "$F" | grep -q '{' && grep -q '"format": "cmif-session-1"' "$F" \
  && grep -q '"text": "Once upon a time"' "$F" || { cat "$F"; die "the session file is not the session's JSON"; }
tm kill-server
rm -f "$TMPD/exit"

# The file exists: a new session does not overwrite it.
eval "$RUN --autosave $F --script /dev/null" > "$TMPD/o" 2>&1 && die "an existing --autosave file was accepted"
grep -q "already exists; not overwritten" "$TMPD/o" || { cat "$TMPD/o"; die "no clear refusal"; }
grep -q '"text": "Once upon a time"' "$F" || die "the refused run changed the file"

# Resumed, with the same file: the conversation is back, and the file grows by the new turn.
printf '/save %s\nThe dog ran\n' "$TMPD/r.md" > "$TMPD/in.txt"
eval "$RUN --resume $F --autosave $F -q --script $TMPD/in.txt" > "$TMPD/o" 2>&1 \
  || { cat "$TMPD/o"; die "--resume with --autosave failed"; }
grep -q "resumed .*1 message replayed" "$TMPD/o" || { cat "$TMPD/o"; die "the session was not resumed"; }
grep -q "^Once upon a time$" "$TMPD/r.md" || { cat "$TMPD/r.md"; die "the resumed conversation lacks the message"; }
[ "$(grep -c '"role": "user"' "$F")" = 2 ] || { cat "$F"; die "the autosaved file lacks the new turn"; }
[ "$(stat -c %a "$F")" = 600 ] || die "the rewritten session file is not 0600"

# SIGTERM: the full-screen chat leaves cleanly and saves.
G=$TMPD/b.json
tm_start 120 30 "$RUN --autosave $G"
wait_for "/help lists commands" || die "the chat did not start (SIGTERM run)"
tm send-keys -t cmif "Once upon a time" Enter
wait_re "│ [0-9.]+ tok/s" 30 || die "the answer did not finish (SIGTERM run)"
pid=$(pgrep -P "$(tm list-panes -t cmif -F '#{pane_pid}')" | head -n 1)
[ -n "$pid" ] || die "no chat process"
kill -TERM "$pid"
wait_exit 10 >/dev/null || die "SIGTERM did not end the chat"
[ -f "$G" ] && [ "$(stat -c %a "$G")" = 600 ] || die "SIGTERM: no 0600 session file"
grep -q '"text": "Once upon a time"' "$G" || die "SIGTERM: the session file lacks the message"

# --autosave alone: a new file in the state directory; nothing for an empty session.
printf 'Once upon a time\n' | eval "$RUN --autosave -q --script -" > "$TMPD/o" 2>&1 \
  || { cat "$TMPD/o"; die "--autosave alone failed"; }
n=$(ls "$ST/cmif/sessions" | grep -c '^session-.*\.json$')
[ "$n" = 1 ] || die "--autosave alone: $n files in $ST/cmif/sessions"
[ "$(stat -c %a "$ST/cmif/sessions"/session-*.json)" = 600 ] || die "the default session file is not 0600"
eval "$RUN --autosave -q --script /dev/null" > "$TMPD/o" 2>&1 || die "an empty autosaved session failed"
[ "$(ls "$ST/cmif/sessions" | wc -l)" = 1 ] || die "an empty session was saved"
echo "ok: --autosave writes the session at /quit and SIGTERM (0600), --resume restores it, never over an unrelated file"
