#!/bin/sh
# What a daily user reaches for, in the full-screen chat: /set changes sampling and is
# acknowledged and listed by /show; /retry gives a new answer to the same sanitized input
# and the session's spent ε does not move; /edit puts the last message in the input line;
# /copy hands the answer to the terminal's clipboard (OSC 52, seen in tmux's buffer) or,
# with a FILE, writes it readable only by the user; /bye leaves.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
mkdir -p "$TMPD/state"
tm_start 120 34 "XDG_STATE_HOME=$TMPD/state $CMIF -m $MODEL --temp 0 -n 16 --no-color --sanitize all"
tm set -g set-clipboard on
wait_for "Ctrl-D quits" || die "the chat did not start"
tm send-keys -t cmif "Once upon a time" Enter
wait_re "│ [0-9.]+ tok/s" 30 || die "the answer did not finish"
tm send-keys -t cmif "/budget" Enter
wait_re "this session: ε [0-9.]+" 10 || die "/budget did not answer"
spent1=$(screen | sed -n 's/.*this session: ε \([0-9.]*\).*/\1/p' | tail -n 1)
[ -n "$spent1" ] && [ "$spent1" != 0 ] || die "the message cost nothing (spent '$spent1')"

send_wait "/save $TMPD/t0.md" "transcript saved" 10 || die "/save failed"
ans0=$(awk '/^## cmif/{getline; getline; print; exit}' "$TMPD/t0.md")
send_wait "/set temp 5" "temp is now 5 (from the next answer)" 10 || die "/set temp was not acknowledged"
send_wait "/set seed 7" "seed is now 7" 10 || die "/set seed was not acknowledged"
send_wait "/set temp x" "/set temp: 'x' is not a valid value" 10 || die "/set accepted a bad value"
tm send-keys -t cmif "/show" Enter
wait_re "^ +temp 5 " 10 || die "/show does not list temp 5"
screen | grep -qE "^ +seed 7 " || die "/show does not list the seed"
screen | grep -qE "^ +mechanism rnm " || die "/show does not list the mechanism"
tm send-keys -t cmif C-l

send_wait "/retry" "costs no ε" 10 || die "/retry did not say it costs no ε"
sleep 0.5
wait_re "│ [0-9.]+ tok/s" 30 || die "the new answer did not finish"
wait_stable
tm send-keys -t cmif "/budget" Enter
sleep 0.5
wait_re "this session: ε [0-9.]+" 10 || die "/budget did not answer after /retry"
spent2=$(screen | sed -n 's/.*this session: ε \([0-9.]*\).*/\1/p' | tail -n 1)
[ "$spent1" = "$spent2" ] || die "/retry charged ε: $spent1 before, $spent2 after"
tm send-keys -t cmif "/save $TMPD/t.md" Enter
wait_re "transcript saved to .*t.md" 10 || die "/save failed"
[ "$(grep -c '^## cmif' "$TMPD/t.md")" -eq 1 ] || die "the transcript keeps the old answer"
# temp 5 (seed 7) answers otherwise than temp 0 did: the setting is used.
ans=$(awk '/^## cmif/{getline; getline; print; exit}' "$TMPD/t.md")
[ -n "$ans" ] || die "empty answer after /retry"
[ "$ans" != "$ans0" ] || die "/retry at temp 5 gave the temp 0 answer again: '$ans'"

tm send-keys -t cmif "/edit" Enter
wait_re "^> Once upon a time *$" 10 || die "/edit did not recall the last message"
tm send-keys -t cmif C-u

send_wait "/copy" "terminal's clipboard" 10 || die "/copy did not answer"
n=0; while [ $n -lt 30 ] && ! tm show-buffer >/dev/null 2>&1; do sleep 0.1; n=$((n+1)); done
# /copy hands over what the model wrote; /save marks restored words [[word]]: compare the
# part of the answer before the first restored word.
first=$(printf '%s' "$ans" | sed 's/\[\[.*//' | cut -c1-12)
tm show-buffer >/dev/null 2>&1 || die "OSC 52 did not reach tmux's buffer (empty)"
[ -z "$first" ] || tm show-buffer | grep -qF -- "$first" \
  || { tm show-buffer; die "OSC 52 did not reach tmux's buffer ('$first')"; }
send_wait "/copy $TMPD/a.txt" "the last answer is in" 10 || die "/copy FILE failed"
[ "$(stat -c %a "$TMPD/a.txt")" = 600 ] || die "/copy FILE is not 0600"
[ -z "$first" ] || grep -qF -- "$first" "$TMPD/a.txt" || die "/copy FILE does not hold the answer"

tm send-keys -t cmif "/bye" Enter
st=$(wait_exit 10) || die "/bye did not exit"
[ "$st" = 0 ] || die "exit status $st"
echo "ok: /set, /show, /retry at no ε, /edit, /copy (OSC 52 and file), /bye"
