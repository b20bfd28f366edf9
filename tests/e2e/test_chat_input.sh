#!/bin/sh
# Invalid UTF-8, a 100 kB pasted line and control characters in the
# input neither crash the chat nor corrupt the screen: what is drawn equals a from-scratch
# repaint, and the chat still answers afterwards. Also the headless virtual screen.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc

check_screen() { # the current screen must equal a repaint from scratch (Ctrl-L)
  wait_stable || die "screen never settled ($1)"
  screen > "$TMPD/a"
  tm send-keys -t cmif C-l
  wait_stable
  screen > "$TMPD/b"
  cmp -s "$TMPD/a" "$TMPD/b" || { diff "$TMPD/a" "$TMPD/b"; die "screen corrupted after $1"; }
  [ "$(wc -l < "$TMPD/b")" -eq 30 ] || die "screen height changed after $1"
  grep -q "tok/s" "$TMPD/b" || { cat "$TMPD/b"; die "status line lost after $1"; }
}

tm_start 100 30 "$CMIF -m $MODEL --temp 0 -n 8 --no-history --budget 100000"
wait_for "Ctrl-D quits" || die "chat did not start"

# Invalid UTF-8 (lone continuation, overlong, truncated) typed and sent.
tm send-keys -t cmif -H 61 80 62 c0 af 63 e2 82 0d
wait_for "> a" 10 || die "invalid UTF-8 message not shown"
wait_re "│ [0-9.]+ tok/s" 20 || die "no answer after invalid UTF-8"
check_screen "invalid UTF-8"

# Control characters (BEL, ESC sequences that would move the cursor, quoted Ctrl-A).
tm send-keys -t cmif "ctl" C-v C-a C-v Escape "[2J" C-v C-g "zz" Enter
wait_for "ctl^A^[[2J^Gzz" 10 || { screen; die "control characters not shown as ^X"; }
wait_stable
check_screen "control characters"

# A 100 kB single line pasted (bracketed paste), then sent.
python3 -c 'print(("lorem ipsum dolor " * 6000)[:100000], end="")' > "$TMPD/big" 2>/dev/null \
  || awk 'BEGIN { for (i = 0; i < 6000; i++) printf "lorem ipsum dolor "; }' | head -c 100000 > "$TMPD/big"
[ "$(wc -c < "$TMPD/big")" -eq 100000 ] || die "could not build the 100 kB line"
tm load-buffer -b big "$TMPD/big"
tm paste-buffer -p -b big -t cmif
wait_re "^(> |\\.\\.\\. )?.*lorem ipsum" 20 || die "paste not in the input line"
check_screen "a 100 kB paste in the input line"
tm send-keys -t cmif Enter
wait_for "longer than 64 KiB" 60 || die "no clear error for the 100 kB message"
wait_stable
check_screen "sending 100 kB"

# A message continued with a trailing backslash: the earlier lines stay visible above the
# line being edited, and the message is sent as one.
tm send-keys -t cmif "cont one \\" Enter "cont two"
wait_re "^> cont one *$" 5 || die "the continued line is not shown while typing the next"
wait_re "^\.\.\. cont two *$" 5 || die "the continuation line is not shown"
tm send-keys -t cmif Enter
wait_re "^  cont two +│" 10 || die "the two lines were not sent as one message"
wait_re "│ [0-9.]+ tok/s" 20 || die "no answer to the continued message"
check_screen "a continued message"

# Still alive and answering.
tm send-keys -t cmif "The end" Enter
wait_for "> The end" 10 || die "chat stopped taking messages"
tm send-keys -t cmif C-d
st=$(wait_exit 20) || die "did not exit"
[ "$st" = 0 ] || die "exit status $st after hostile input"

# Headless: the same chat on a virtual 60x16 screen, keys from a pipe, dumped to a file.
printf '\033[200~Once\001\033[H\377 upon\033[201~\r/panel\r' | $CMIF -m $MODEL --temp 0 -n 6 --no-history \
  --headless 60x16 --screen-dump "$TMPD/dump" 2>"$TMPD/err" || { cat "$TMPD/err"; die "headless run failed"; }
[ "$(wc -l < "$TMPD/dump")" -eq 16 ] || { cat "$TMPD/dump"; die "dump is not 16 rows"; }
grep -q "^> Once^A^\[\[H� upon" "$TMPD/dump" || { cat "$TMPD/dump"; die "headless dump lacks the sanitized message"; }
grep -q "tok/s" "$TMPD/dump" || die "headless dump lacks the status line"
echo "ok: hostile input drawn safely; headless dump"
