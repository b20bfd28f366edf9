#!/bin/sh
# /prompt shows what the decoder received for the last message: the template's tokens (BOS
# marked as special) and the message as sanitized. A secret marked {{Zanzibar}} never
# appears in it; its substitute (the one /save's report lists as sent) does. Checked in the
# full-screen chat, in line mode (TERM=dumb) and in a scripted session.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc
RUN="$CMIF -m $MODEL --temp 0 -n 4 --no-ledger --no-color --sanitize marked --template chatml"
MSG="I went to {{Zanzibar}} today"
# The substitute /save's report lists for Zanzibar (the "sent" cell of its row).
sub_of() { sed -n 's/^| [0-9]* | `[ ]*Zanzibar` | `[ ]*\([^`]*\)` |.*/\1/p' "$1" | head -n 1; }
# The part of the screen from /prompt's output on must hold the template and the
# substitute, and not the secret.
check_prompt() { # text-file substitute where
  grep -qF "⟦<s>⟧" "$1" || { cat "$1"; die "$3: /prompt does not mark BOS as special"; }
  # A model whose vocabulary has ChatML's markers shows them as special tokens too.
  grep -qE "(⟦)?<[|]im_start[|]>(⟧)?user" "$1" || { cat "$1"; die "$3: /prompt lacks the template's tokens"; }
  grep -qF "went to" "$1" || { cat "$1"; die "$3: /prompt lacks the message"; }
  grep -qF -- "$2" "$1" || { cat "$1"; die "$3: /prompt lacks the substitute '$2'"; }
  grep -q "Zanzibar" "$1" && { cat "$1"; die "$3: /prompt shows the secret"; }
  return 0
}

# In tmux: a message, /save (for the substitute), then /prompt (after KEYS, which hide
# what lists the typed words by design: the full screen's panel).
in_tmux() { # label env answer-done-regex keys...
  _l=$1; _env=$2; _done=$3; shift 3
  tm_start 200 40 "$_env $RUN"
  wait_for "/help lists commands" || die "$_l: the chat did not start"
  tm send-keys -t cmif "/prompt" Enter
  wait_for "no message sent in this conversation yet" 10 || die "$_l: /prompt before a message"
  tm send-keys -t cmif "$MSG" Enter
  wait_re "$_done" 30 || die "$_l: the answer did not finish"
  tm send-keys -t cmif "/save $TMPD/t.md" Enter
  wait_for "transcript saved" 10 || die "$_l: /save failed"
  for _k in "$@"; do tm send-keys -t cmif "$_k"; done
  tm send-keys -t cmif "/prompt" Enter
  wait_for "prompt of the last turn:" 10 || die "$_l: /prompt did not answer"
  wait_stable
  screen | sed -n '/prompt of the last turn/,$p' > "$TMPD/p.txt"
  check_prompt "$TMPD/p.txt" "$(sub_of "$TMPD/t.md")" "$_l"
  grep -qE "[0-9]+ tokens as the decoder received" "$TMPD/p.txt" || die "$_l: no token count"
  tm send-keys -t cmif C-d
  wait_exit 10 >/dev/null || die "$_l: the chat did not exit"
  tm kill-server
  rm -f "$TMPD/exit" "$TMPD/t.md"
}
in_tmux "full screen" "" "│ [0-9.]+ tok/s" "/panel" Enter C-l
in_tmux "line mode" "TERM=dumb" "answer cut at"

# Scripted.
printf '%s\n/save %s\n/prompt\n' "$MSG" "$TMPD/s.md" | $RUN -q --script - > "$TMPD/s.out" 2>&1 \
  || { cat "$TMPD/s.out"; die "the scripted session failed"; }
sed -n '/prompt of the last turn/,$p' "$TMPD/s.out" > "$TMPD/sp.txt"
check_prompt "$TMPD/sp.txt" "$(sub_of "$TMPD/s.md")" "scripted"
echo "ok: /prompt shows the template's tokens and the sanitized message, never the secret"
again_on_bundled
