#!/bin/sh
# `cmif train` end to end: bad usage exits 2; a tiny corpus trains into a GGUF
# that `cmif info` and `cmif generate` load; an interrupted run (--stop-after) resumed from
# its checkpoint prints the same progress lines as an uninterrupted one; Ctrl-C saves a
# checkpoint that --resume continues from; --ppl scores text.
# The committed default model, when present, is at most 8 MB, loads, and answers a ChatML
# request with text (needs no ../shared).
. tests/e2e/lib.sh
T=$(mktemp -d /tmp/cmif-train-XXXXXX)
trap 'rm -rf "$T"' EXIT

$CMIF train > /dev/null 2>&1; [ $? -eq 2 ] || die "train without --corpus should exit 2"
$CMIF train --corpus x --steps abc > /dev/null 2>&1; [ $? -eq 2 ] || die "bad --steps should exit 2"
$CMIF train --corpus "$T/none.txt" > /dev/null 2>"$T/err"; [ $? -eq 1 ] || die "missing corpus should exit 1"
grep -q "none.txt" "$T/err" || die "missing corpus message should name the file"

i=0
while [ $i -lt 150 ]; do
  for who in Tom Lily Sam; do
    printf '<|im_start|>user\nTell me a story about %s and a ball.<|im_end|>\n<|im_start|>assistant\n%s had a red ball. %s liked the ball.\nThe end.<|im_end|>\n\n' "$who" "$who" "$who"
    printf '%s saw a big dog. The dog was happy.\n\n' "$who"
  done
  i=$((i + 1))
done > "$T/c.txt"

ARGS="--corpus $T/c.txt --vocab 300 --dim 16 --layers 1 --heads 2 --kv-heads 1 --ffn 32 --ctx 32 --batch 2 --steps 30 --warmup 3 --lr 1e-2 -t 1 -s 3 --log-every 5"
$CMIF train $ARGS --out "$T/m.gguf" --checkpoint "$T/a.ckpt" > "$T/a.log" 2>&1 || { cat "$T/a.log"; die "training failed"; }
grep -q "^step    30/30" "$T/a.log" || { cat "$T/a.log"; die "no progress line for the last step"; }
grep -q "tok/s  ETA" "$T/a.log" || die "progress lines lack tokens/s and ETA"
$CMIF info -m "$T/m.gguf" > "$T/info" 2>&1 || die "cmif info cannot read the trained model"
grep -q "llama" "$T/info" || die "trained model is not llama architecture"
$CMIF generate -m "$T/m.gguf" -p "Tom" -n 8 --temp 0 > /dev/null 2>&1 || die "generate on the trained model failed"

$CMIF train $ARGS --checkpoint "$T/b.ckpt" --stop-after 15 > "$T/b1.log" 2>&1 || die "first half failed"
$CMIF train $ARGS --checkpoint "$T/b.ckpt" --resume > "$T/b2.log" 2>&1 || die "resume failed"
grep -q "resumed from" "$T/b2.log" || die "resume did not load the checkpoint"
grep "^step" "$T/a.log" | sed 's/ *[0-9]* tok\/s.*//' > "$T/a.steps"
cat "$T/b1.log" "$T/b2.log" | grep "^step" | sed 's/ *[0-9]* tok\/s.*//' > "$T/b.steps"
cmp -s "$T/a.steps" "$T/b.steps" || { diff "$T/a.steps" "$T/b.steps"; die "resumed loss curve differs"; }

# Ctrl-C (SIGINT) finishes the step, saves the checkpoint and exits 1 saying where it
# stopped; --resume continues from that step. (A million steps would take minutes, so the
# signal always lands mid-run; the test polls for the first progress line, never sleeps
# a fixed time to decide anything.)
$CMIF train $ARGS --steps 1000000 --log-every 100 --checkpoint "$T/i.ckpt" > "$T/i.log" 2>"$T/i.err" &
pid=$!
n=0
until grep -q "^step" "$T/i.log" 2>/dev/null; do
  n=$((n + 1)); [ $n -lt 600 ] || { kill $pid; die "no progress line within 60 s"; }
  sleep 0.1
done
kill -INT $pid
wait $pid; rc=$?
[ $rc -eq 1 ] || die "interrupted training exited $rc, not 1"
grep -q "interrupted after step [0-9]*; checkpoint saved to .*i.ckpt, rerun with --resume" "$T/i.err" || { cat "$T/i.err"; die "no interruption message"; }
at=$(sed -n 's/.*interrupted after step \([0-9]*\).*/\1/p' "$T/i.err")
$CMIF train $ARGS --steps 1000000 --log-every 100 --checkpoint "$T/i.ckpt" --resume --stop-after $((at + 3)) > "$T/r.log" 2>&1 || { cat "$T/r.log"; die "resume after interrupt failed"; }
grep -q "resumed from $T/i.ckpt at step $at\$" "$T/r.log" || { cat "$T/r.log"; die "resume did not start at step $at"; }
grep -q "trained steps $((at + 1))..$((at + 3))" "$T/r.log" || { cat "$T/r.log"; die "resume did not run steps $((at + 1))..$((at + 3))"; }

$CMIF train --ppl "$T/c.txt" -m "$T/m.gguf" -t 1 > "$T/ppl" 2>&1 || { cat "$T/ppl"; die "--ppl failed"; }
grep -q "^bits/byte" "$T/ppl" || die "--ppl printed no bits/byte"

M=assets/models/cmif-tiny.gguf
if [ -f "$M" ]; then
  [ "$(wc -c < "$M")" -le 8388608 ] || die "$M is larger than 8 MB"
  $CMIF info -m "$M" 2>/dev/null | grep -q "chatml\|im_start" || die "$M has no ChatML template"
  # Greedy answers to a chat request (sanitizer off, so the model sees the request as
  # typed) are stories about what was asked for.
  printf 'Tell me a story about a dog and a ball.\n' > "$T/s1"
  $CMIF -m "$M" --script "$T/s1" --mechanism none --temp 0 -n 120 -t 1 > "$T/g" 2>"$T/g.err" || { cat "$T/g.err"; die "default model failed to chat"; }
  [ "$(wc -w < "$T/g")" -ge 40 ] || { cat "$T/g"; die "default model answered with fewer than 40 words"; }
  grep -v '^>' "$T/g" | grep -q "ball" || { cat "$T/g"; die "answer does not mention the ball"; }
  printf 'Tell me a story about Lily and a cake.\n' > "$T/s2"
  $CMIF -m "$M" --script "$T/s2" --mechanism none --temp 0 -n 120 -t 1 > "$T/h" 2>/dev/null || die "second chat failed"
  grep -v '^>' "$T/h" | grep -q "Lily" || { cat "$T/h"; die "answer does not mention Lily"; }
fi
echo "ok"
