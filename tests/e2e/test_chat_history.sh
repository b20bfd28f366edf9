#!/bin/sh
# The input history: by default nothing is written; with --history it persists across two
# runs in a temporary XDG_STATE_HOME, sealed (no plaintext in the file), mode 0600, and Up
# recalls it without consecutive duplicates; a multi-line message comes back with its line
# breaks. /clear forgets this session's recall.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
# Up, then the input line holds just $1 (a regex): what the history recalls.
up_recalls() { tm send-keys -t cmif Up; wait_re "^> $1 *\$" 5; }
ST=$TMPD/state
mkdir -p "$ST"
RUN="XDG_STATE_HOME=$ST $CMIF -m $MODEL --temp 0 -n 8 --history"
# Ends the tmux server of the run before and starts the next run of $RUN.
next_run() { # name
  tm kill-server
  rm -f "$TMPD/exit"
  tm_start 100 30 "$RUN"
  wait_for "Ctrl-D quits" || die "$1 run did not start"
}

# Default: a session writes nothing it was told: the privacy ledger (charges, no text) is
# the only file.
tm_start 100 30 "XDG_STATE_HOME=$ST $CMIF -m $MODEL --temp 0 -n 4"
wait_for "Ctrl-D quits" || die "default run did not start"
tm send-keys -t cmif "delta secret" Enter
wait_re "tok/s" 20 || die "default run did not answer"
tm send-keys -t cmif C-d
wait_exit 10 >/dev/null || die "default run did not exit"
[ -z "$(find "$ST" -type f ! -name 'ledger*')" ] || die "a default session wrote $(ls -AR "$ST")"
grep -rqa "delta secret" "$ST" && die "a default session left the typed text on disk"
tm kill-server
rm -f "$TMPD/exit"

tm_start 100 30 "$RUN"
wait_for "Ctrl-D quits" || die "first run did not start"
wait_for "sealed" 5 || die "the chat does not say the history is sealed"
for msg in "alpha one" "alpha one" "beta two" "/budget" "/budget"; do
  tm send-keys -t cmif "$msg" Enter
  wait_re "tok/s|budget:" 20 || die "no reaction to '$msg'"
done
wait_for "about" 10 || die "/budget did not answer"
tm send-keys -t cmif C-d
st=$(wait_exit 10) || die "first run did not exit"
[ "$st" = 0 ] || die "first run exit status $st"
H=$ST/cmif/history
[ -f "$H" ] || die "no history file at $H"
[ "$(stat -c %a "$H")" = 600 ] || die "history mode is $(stat -c %a "$H"), not 600"
[ "$(stat -c %a "$ST/cmif/history.key")" = 600 ] || die "history key is not 0600"
grep -qa "alpha\|beta\|budget" "$H" && die "the history file holds plaintext"
head -c 8 "$H" | grep -q CMIFHIS2 || die "the history file is not sealed"

next_run second
up_recalls "/budget" || die "Up did not recall the last input of the first run"
up_recalls "beta two" || die "second Up did not recall 'beta two'"
up_recalls "alpha one" || die "third Up did not recall 'alpha one'"
tm send-keys -t cmif Up
sleep 0.5
wait_re "^> alpha one *$" 5 || die "the history holds 'alpha one' twice or more than three entries"
tm send-keys -t cmif C-u "gamma" Enter
wait_for "> gamma" 10 || die "second run did not take a message"
tm send-keys -t cmif C-d
wait_exit 10 >/dev/null || die "second run did not exit"
grep -qa "gamma" "$H" && die "the history file holds plaintext after the second run"
[ "$(stat -c %a "$H")" = 600 ] || die "history mode changed"
next_run third
up_recalls "gamma" || die "the second run's input was not kept"
# A multi-line message (trailing-backslash continuation) is one entry that keeps its line
# break in the file: recalled in the next run and sent again, it is the same message.
tm send-keys -t cmif C-u "cont one \\" Enter "cont two" Enter
wait_re "│ [0-9.]+ tok/s" 20 || die "no answer to the continued message"
tm send-keys -t cmif C-d
wait_exit 10 >/dev/null || die "third run did not exit"
grep -qa "cont" "$H" && die "the history file holds plaintext after the third run"
next_run fourth
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
wait_exit 10 >/dev/null || die "fourth run did not exit"
# --no-history: nothing is read or written, yet Up recalls this session's inputs.
mkdir -p "$TMPD/st2"
# (--no-ledger too: the privacy ledger is state of its own, kept unless asked not to.)
tm_start 100 30 "XDG_STATE_HOME=$TMPD/st2 $CMIF -m $MODEL --temp 0 -n 4 --no-history --no-ledger"
wait_for "Ctrl-D quits" || die "--no-history run did not start"
tm send-keys -t cmif "zeta" Enter
wait_re "│ [0-9.]+ tok/s" 20 || die "--no-history run did not answer"
up_recalls "zeta" || die "--no-history: Up does not recall this session's input"
# /clear forgets what this session recalls.
tm send-keys -t cmif C-u "/clear" Enter
wait_for "new conversation" 10 || die "/clear did not answer"
tm send-keys -t cmif Up
sleep 0.5
wait_re "^> *$" 5 || die "Up still recalls an input after /clear"
# Tab completes a /command; Tab twice on an ambiguous one lists the matches (readline
# prints them on a stream the screen does not show, so they go to the transcript).
tm send-keys -t cmif C-u "/sav" Tab
wait_re "^> /save *$" 5 || die "Tab did not complete /sav"
tm send-keys -t cmif Tab Tab
wait_for "* /save  /save-history" 5 || die "Tab Tab did not list the matches"
# Tab completes the argument of /mechanism, /sanitize and /set
tm send-keys -t cmif C-u "/mechanism cu" Tab
wait_re "^> /mechanism custext *$" 5 || die "Tab did not complete a mechanism name"
tm send-keys -t cmif C-u "/sanitize ma" Tab
wait_re "^> /sanitize marked *$" 5 || die "Tab did not complete a sanitize mode"
tm send-keys -t cmif C-u "/set repe" Tab
wait_re "^> /set repeat-penalty *$" 5 || die "Tab did not complete a /set name"
tm send-keys -t cmif C-u C-d
wait_exit 10 >/dev/null || die "--no-history run did not exit"
[ -z "$(ls -A "$TMPD/st2")" ] || die "--no-history wrote $(ls -A "$TMPD/st2")"
again_on_bundled
echo "ok: no history by default; --history persists sealed, 0600, no consecutive duplicates, line breaks kept; /clear forgets"
