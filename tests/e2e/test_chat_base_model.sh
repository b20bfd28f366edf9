#!/bin/sh
# A base model without a chat template (stories260K): the message ends its line before the
# model answers, so the answer starts a word of its own instead of finishing the message's
# last word ("The dog ran to the par" must not be answered with "k with his mom").
. tests/e2e/lib.sh
need_shared models/stories260K.gguf
M=$SHARED/models/stories260K.gguf
for msg in "The dog ran to the par" "Once upon a ti"; do
  # Unsanitized, so the model sees the cut word as typed (--temp 0: the same answer each run).
  out=$(printf '%s\n' "$msg" | $CMIF -m "$M" --temp 0 -n 12 --no-ledger --mechanism none 2>&1) \
    || die "the chat failed: $out"
  first=$(printf '%s\n' "$out" | awk -v m="> $msg" '$0 == m {f=1; next} f && NF {print; exit}')
  [ -n "$first" ] || die "no answer after '$msg': $out"
  # The answer's first word: a fresh word starts with a capital, a quote or a digit.
  case "$first" in
    [a-z]*) die "the answer to '$msg' continues its last word: '$first'";;
  esac
done
echo "ok"
