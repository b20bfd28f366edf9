#!/bin/sh
# The chat's privacy, as a user meets it in tmux (stories260K, --temp 0, --dp-seed for a
# reproducible draw, the ledger in a temporary state directory):
# - the panel previews each word's treatment while the line is typed, before Enter;
# - an answer that repeats a substitute shows the user's own word, marked ⟨word⟩, and
#   /restore off shows exactly what the model wrote;
# - /mechanism none asks first, then the status line says NOT SANITIZED;
# - a message too long for the context is not sent and costs nothing;
# - the system prompt, charged with the next message, is labelled as such.
. tests/e2e/lib.sh
need_shared models/stories260K.gguf
MODEL=$SHARED/models/stories260K.gguf
. tests/e2e/chat_tmux.inc
ST=$TMPD/state; mkdir -p "$ST"
# Seed 3 replaces "mom" by "day" (sanitize all), and the model's answer starts "One day,".
MSG="Once upon a time there was a little girl. She went to the park with her mom."
ARGS="-m $MODEL --temp 0 -n 12 --no-history --dp-seed 3 --sanitize all"

tm_start 110 30 "XDG_STATE_HOME=$ST $CMIF $ARGS"
wait_for "Ctrl-D quits" 20 || die "chat did not start"
wait_re "ε 1/word · today 0/200" 5 || die "status line does not show ε per word and today's spend"
# Preview before Enter: typed, not sent; in "all" mode every word will be sanitized.
tm send-keys -t cmif "Call Bob at 555"
wait_for "preview: " 5 || die "no preview while typing"
screen | grep -q "Bob .*(sanitized) *S" || { screen; die "preview does not say Bob will be sanitized"; }
screen | grep -q "555 .*(random) *N" || { screen; die "preview does not say 555 is random"; }
screen | grep -q "today 0/200" || die "the preview charged something"
tm send-keys -t cmif C-u
send_wait "$MSG" "One ⟨mom⟩, Lily" 30 || die "the repeated substitute was not shown as the user's word"
wait_stable
tm send-keys -t cmif C-d
[ "$(wait_exit 10)" = 0 ] || die "first session did not exit 0"

# /restore off: the same draw, shown exactly as the model wrote it.
rm -f "$TMPD/exit"
tm_start 110 30 "XDG_STATE_HOME=$TMPD/st2 $CMIF $ARGS"
wait_for "Ctrl-D quits" 20 || die "chat did not start (restore off)"
send_wait "/restore off" "restore off" 5 || die "/restore off did not answer"
tm send-keys -t cmif "$MSG" Enter
wait_re "One day, Lily's mom" 30 || die "/restore off did not show the model's word"
screen | grep -q "⟨" && die "/restore off still marks words"
# /mechanism none asks first; confirmed, the status line says NOT SANITIZED.
send_wait "/mechanism none" "Type /mechanism none! to do it" 5 || die "/mechanism none did not ask first"
screen | grep -q "NOT SANITIZED ·" && die "NOT SANITIZED before the confirmation"
send_wait "/mechanism none!" "NOT SANITIZED ·" 5 || die "status line does not say NOT SANITIZED"
tm send-keys -t cmif C-d
wait_exit 10 >/dev/null || die "second session did not exit"

# Too long for the context: not sent, nothing charged (today's figure stays as it was).
rm -f "$TMPD/exit"
LONG=$(printf 'Alice %.0s' $(seq 1 80))
tm_start 110 30 "XDG_STATE_HOME=$TMPD/st3 $CMIF -m $MODEL --temp 0 -n 4 -c 32 --no-history"
wait_for "Ctrl-D quits" 20 || die "chat did not start (long message)"
send_wait "$LONG" "message too long" 20 || die "a message too long for the context was not refused"
screen | grep -q "not sent," && screen | grep -q "charged)" || die "the refusal does not say nothing was charged"
send_wait "/budget" "budget: ε 0 spent of 200 today" 5 || die "the refused message was charged"
wait_re "today 0/200" 5 || die "the status line shows a charge for the refused message"
tm send-keys -t cmif C-d
wait_exit 10 >/dev/null || die "third session did not exit"

# /budget N sets the limit; /budget reset asks first, /budget reset! forgets the ledger and
# the session goes on charging the new one.
printf 'Hello {{Alice}}\n/budget 100\n/budget reset\n/budget reset!\nhi {{Bob}}\n/budget\n' > "$TMPD/b"
XDG_STATE_HOME=$TMPD/st4 $CMIF -m $MODEL --temp 0 -n 2 --sanitize marked --script "$TMPD/b" > "$TMPD/bo" 2>&1 \
  || { cat "$TMPD/bo"; die "budget script failed"; }
grep -q "the limit is now ε 100" "$TMPD/bo" || die "/budget 100 did not set the limit"
grep -q "Type /budget reset! to reset" "$TMPD/bo" || die "/budget reset did not ask first"
grep -q "ledger reset: every charge forgotten" "$TMPD/bo" || die "/budget reset! did not reset"
grep -q "ε 1 spent of 100 today" "$TMPD/bo" || { cat "$TMPD/bo"; die "after the reset the session does not charge the new ledger"; }
# /system text is sanitized and charged with the next message: the panel and the
# transcript say so, and only for that message.
tm_start 110 30 "XDG_STATE_HOME=$TMPD/st5 $CMIF -m $MODEL --temp 0 -n 2 --no-history"
wait_for "Ctrl-D quits" 20 || die "chat did not start (system)"
send_wait "/system be brief and kind" "system prompt set" 5 || die "/system did not answer"
send_wait "/clear" "new conversation" 5 || die "/clear did not answer"
tm send-keys -t cmif "Hi" Enter
wait_re "system prompt \\([0-9]+ words?\\) was sanitized and charged" 30 \
  || { screen; die "the transcript does not say the system prompt was charged"; }
wait_re "message: [0-9]+ tok \\([0-9]+ system prompt\\), ε" 5 || { screen; die "the panel does not label the system prompt's rows"; }
wait_stable
tm send-keys -t cmif "Hello" Enter
wait_re "message: [0-9]+ tok, ε" 30 || { screen; die "the next message's panel still labels a system prompt"; }
tm send-keys -t cmif C-d
wait_exit 10 >/dev/null || die "system session did not exit"
echo "ok: preview, restoration, /restore off, NOT SANITIZED, too long costs nothing, /budget N and reset"
