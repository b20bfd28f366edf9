#!/bin/sh
# Answers written in Markdown are drawn as such in the full-screen chat: a bullet for a
# list item, bold without its ** markers, a code block's text untouched (its ** kept, the
# fences hidden, the language label shown); /copy and /save still hand over the text as the
# model wrote it; --plain and /set markdown off show it exactly as written. A deterministic Markdown answer comes
# from a resumed session whose saved answer is set to it (the models here do not write
# Markdown on their own).
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not installed"; exit 77; }
mkdir -p "$TMPD/state"
RUN="$CMIF -m $MODEL --temp 0 -n 8 --no-ledger -q"
printf 'Once upon a time\n/save %s\n' "$TMPD/s.json" > "$TMPD/p1.txt"
$RUN --script "$TMPD/p1.txt" > "$TMPD/p1.out" 2>&1 || { cat "$TMPD/p1.out"; die "the first session failed"; }
ANSWER='Steps:
- first **bold** item
```sh
ls **
```
done'
ANSWER="$ANSWER" python3 - "$TMPD/s.json" <<'PY' || die "cannot edit the saved session"
import json, os, sys
d = json.load(open(sys.argv[1]))
a = [e for e in d["transcript"] if e["role"] == "assistant"]
a[-1]["text"] = os.environ["ANSWER"]
json.dump(d, open(sys.argv[1], "w"))
PY
chmod 600 "$TMPD/s.json"

tm_start 100 30 "XDG_STATE_HOME=$TMPD/state $RUN --no-color --resume $TMPD/s.json"
wait_for "Ctrl-D quits" || die "the chat did not start"
wait_for "resumed" 30 || die "the session was not resumed"
wait_stable
screen > "$TMPD/md"
has "$TMPD/md" "^  • first bold item" "no bullet or bold drawn for the list item"
lacks "$TMPD/md" '\*\*bold\*\*' "** markers drawn around bold"
has "$TMPD/md" "^    ls \*\*" "the code block's text is not shown as written"
lacks "$TMPD/md" '```' "a code fence line is drawn"
has "$TMPD/md" "^  sh( +│| *\$)" "the code block's language label is missing"
# Display only: what is copied and saved is the model's text.
tm send-keys -t cmif "/copy $TMPD/copy.txt" Enter
wait_for "copy.txt" 10 || die "/copy FILE did not answer"
tm send-keys -t cmif "/save $TMPD/t.md" Enter
wait_for "transcript saved" 10 || die "/save failed"
printf '%s' "$ANSWER" | cmp -s - "$TMPD/copy.txt" || { cat "$TMPD/copy.txt"; die "/copy is not the answer as written"; }
grep -q '^- first \*\*bold\*\* item' "$TMPD/t.md" && grep -q '^```sh' "$TMPD/t.md" \
  || { cat "$TMPD/t.md"; die "/save does not keep the answer as written"; }
# /set markdown off and on: the same answer shown as written, then drawn again.
tm send-keys -t cmif C-l "/set markdown off" Enter
wait_for "markdown off" 10 || die "/set markdown off did not answer"
wait_for "- first **bold** item" 10 || die "/set markdown off did not show the answer as written"
tm send-keys -t cmif "/set markdown on" Enter
wait_for "markdown on" 10 || die "/set markdown on did not answer"
wait_for "• first bold item" 10 || die "/set markdown on did not draw the answer again"
tm send-keys -t cmif "/set markdown maybe" Enter
wait_for "/set markdown: on or off" 10 || die "/set markdown accepted a bad value"
tm send-keys -t cmif "/show" Enter
wait_re "^ *markdown on" 10 || die "/show does not list the markdown setting"
tm send-keys -t cmif C-d
[ "$(wait_exit 15)" = 0 ] || die "the chat did not exit cleanly"

tm_start 100 30 "XDG_STATE_HOME=$TMPD/state $RUN --no-color --plain --resume $TMPD/s.json"
wait_for "Ctrl-D quits" || die "the chat with --plain did not start"
wait_for "resumed" 30 || die "the session was not resumed with --plain"
wait_stable
screen > "$TMPD/plain"
grep -q "^  - first \*\*bold\*\* item" "$TMPD/plain" && grep -q '^  ```sh' "$TMPD/plain" \
  || { cat "$TMPD/plain"; die "--plain does not show the answer as written"; }
lacks "$TMPD/plain" "•" "--plain drew a bullet"
tm send-keys -t cmif C-d
[ "$(wait_exit 15)" = 0 ] || die "the chat with --plain did not exit cleanly"
echo "ok: Markdown answers drawn (bullet, bold, code block), /copy and /save raw, --plain as written"
