#!/bin/sh
# Budget exhaustion in a script exits 3 saying what was left; bad
# flags exit 2 with usage; a missing or corrupt model exits 1 with the GGUF reader's
# message; the terminal stays usable on every path, including signals.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
. tests/e2e/chat_tmux.inc

printf 'Once upon a time\nThe dog ran to the big tree\n' > "$TMPD/s"
XDG_STATE_HOME="$TMPD/state" $CMIF -m $MODEL --temp 0 -n 4 --sanitize all --budget 6 --script "$TMPD/s" > "$TMPD/o" 2> "$TMPD/e"; st=$?
[ $st -eq 3 ] || { cat "$TMPD/e"; die "budget exhaustion exit status $st, expected 3"; }
grep -q "budget" "$TMPD/e" && grep -q "left" "$TMPD/e" && grep -q "line 2" "$TMPD/e" \
  || { cat "$TMPD/e"; die "budget message does not say what was left"; }
grep -q "^> Once upon a time" "$TMPD/o" || die "the first message was not answered"

$CMIF -m $MODEL --bogus-flag > "$TMPD/o" 2> "$TMPD/e"; st=$?
[ $st -eq 2 ] || die "bad flag exit status $st, expected 2"
grep -q "bogus" "$TMPD/e" && grep -q "usage" "$TMPD/e" || { cat "$TMPD/e"; die "bad flag: no usage"; }
$CMIF -m $MODEL --eps abc --script "$TMPD/s" >/dev/null 2>&1; [ $? -eq 2 ] || die "--eps abc not a usage error"
$CMIF -m $MODEL --report xml --script "$TMPD/s" >/dev/null 2>&1; [ $? -eq 2 ] || die "--report xml not a usage error"
# No -m: $CMIF_MODEL, else the bundled model (found from the working directory or next to
# the executable, as from `make run`), else a message saying how to pass one (exit 2).
ABS=$(cd "$(dirname "$CMIF")" && pwd)/$(basename "$CMIF")
printf 'Once upon a time\n' > "$TMPD/one"
env -u CMIF_MODEL $CMIF --temp 0 -n 4 --no-history --script "$TMPD/one" > "$TMPD/o" 2> "$TMPD/e" \
  || { cat "$TMPD/e"; die "no -m in the repo root: the bundled model did not open"; }
grep -q "^> Once upon a time" "$TMPD/o" || die "no -m in the repo root: not answered"
(cd "$TMPD" && env -u CMIF_MODEL "$ABS" -n 4 --no-history --script one) > /dev/null 2> "$TMPD/e" \
  || { cat "$TMPD/e"; die "no -m elsewhere: the bundled model next to the binary was not found"; }
CMIF_MODEL="$TMPD/env.gguf" $CMIF --script "$TMPD/one" > /dev/null 2> "$TMPD/e"
grep -q "env.gguf" "$TMPD/e" || { cat "$TMPD/e"; die "\$CMIF_MODEL was not used"; }
# A copy of the binary away from the repo, run from a directory without assets/.
mkdir -p "$TMPD/bin" "$TMPD/wd" && cp "$ABS" "$TMPD/bin/cmif"
(cd "$TMPD/wd" && env -u CMIF_MODEL "$TMPD/bin/cmif" --script ../one) > /dev/null 2> "$TMPD/e"; st=$?
[ $st -eq 2 ] || { cat "$TMPD/e"; die "no model anywhere: exit $st, expected 2"; }
grep -q -- "-m MODEL" "$TMPD/e" && grep -q "CMIF_MODEL" "$TMPD/e" \
  || { cat "$TMPD/e"; die "no model: message does not say how to pass one"; }

$CMIF -m "$TMPD/missing.gguf" --script "$TMPD/s" > /dev/null 2> "$TMPD/e"; st=$?
[ $st -eq 1 ] || die "missing model exit status $st"
grep -q "missing.gguf" "$TMPD/e" || { cat "$TMPD/e"; die "missing model: message lacks the path"; }
head -c 4096 /dev/urandom > "$TMPD/bad.gguf"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\377' > "$TMPD/trunc.gguf"
for f in bad trunc; do
  $CMIF -m "$TMPD/$f.gguf" --script "$TMPD/s" > /dev/null 2> "$TMPD/e"; st=$?
  [ $st -eq 1 ] || die "corrupt model ($f) exit status $st"
  [ -s "$TMPD/e" ] || die "corrupt model ($f): no message"
done

# The full-screen path with a corrupt model: error, exit 1, terminal untouched.
cat > "$TMPD/run1.sh" <<EOS
$CMIF -m $TMPD/bad.gguf
EOS
tm_start 80 24 "sh $TMPD/run1.sh"
st=$(wait_exit 10) || die "corrupt model in a terminal did not exit"
[ "$st" = 1 ] || die "corrupt model in a terminal: exit $st"
wait_for "bad.gguf" 5 || die "the GGUF error is not shown"
wait_for "AFTER-EXIT" 5 || die "terminal unusable after the error"
tm kill-server; rm -f "$TMPD/exit"

# In the full-screen chat a message over the budget is refused with what is left and how
# to go on (/eps, not a command-line flag), and the chat goes on.
tm_start 80 24 "$CMIF -m $MODEL -n 4 --no-history --no-ledger --sanitize all --budget 1"
wait_for "Ctrl-D quits" 10 || die "chat did not start (budget)"
tm send-keys -t cmif "Once upon a time" Enter
wait_for "message not sent" 10 || die "no refusal over the budget"
screen | tr -d '\n' | grep -q "only 1 of .*/eps" || { screen; die "refusal does not say what is left or how"; }
tm send-keys -t cmif C-d
[ "$(wait_exit 10)" = 0 ] || die "chat did not quit after a refusal"
rm -f "$TMPD/exit"

# Signals: SIGTERM and SIGINT restore the terminal (cooked mode, normal screen).
for sig in TERM INT; do
  cat > "$TMPD/run2.sh" <<EOS
echo \$\$ > $TMPD/pid
exec $CMIF -m $MODEL -n 4 --no-history
EOS
  cat > "$TMPD/tty.sh" <<EOS
stty -a | grep -o -- ' -\\?icanon' > $TMPD/tty
EOS
  tm_start 80 24 "sh $TMPD/run2.sh; sh $TMPD/tty.sh"
  wait_for "Ctrl-D quits" 10 || die "chat did not start ($sig)"
  kill -$sig "$(cat "$TMPD/pid")"
  wait_exit 10 >/dev/null || die "SIG$sig did not end the chat"
  wait_for "AFTER-EXIT" 5 || die "screen not restored after SIG$sig"
  grep -qx " icanon" "$TMPD/tty" || { cat "$TMPD/tty"; die "terminal left in raw mode after SIG$sig"; }
  tm kill-server; rm -f "$TMPD/exit"
done
again_on_bundled
echo "ok: exit statuses 3/2/1 with messages; terminal restored on errors and signals"
