#!/bin/sh
# Every weight type cmif added beyond llama.cpp's first ones (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K,
# IQ4_NL, IQ4_XS) decodes as llama.cpp does: a random model of each type in a Llama 3 shape
# (the real 128,256-token vocabulary, rope base 500000, grouped KV heads; dim 256, two
# layers; token_embd Q8_0 and tied, to keep the 128k-row table quick to write; every
# layer matrix the type) follows llama.cpp's 16-token greedy decoding step by step, where
# random weights make near-ties: a step where the engines pick different tokens passes
# only if those two tokens' logits are within NEAR_TIE_TOL in both (tests/e2e/llamacpp.inc).
# Skips when llama.cpp is not installed (make bench-deps).
. tests/e2e/lib.sh
. tests/e2e/llamacpp.inc
if ! have_llamacpp; then
  echo "SKIP: llama.cpp reference not installed (make bench-deps installs it into build/llamacpp)"
  exit 77
fi
MKMODEL=${MKMODEL:-$BUILD/tools/mkmodel}
VOCAB="$SHARED/models/llama3-vocab.gguf"
[ -e "$VOCAB" ] || { echo "SKIP: $VOCAB missing"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf 'The capital of France is' >"$tmp/prompt"
types="q4_1 q5_0 q5_1 q2_k q3_k iq4_nl iq4_xs"
for ty in $types; do
  "$MKMODEL" "$tmp/$ty.gguf" --dim 256 --layers 2 --heads 8 --kv-heads 2 --ffn 768 --type $ty \
    --embd-type q8_0 --tied --rope-base 500000 --tokenizer-from "$VOCAB" 2>"$tmp/err" \
    || die "mkmodel $ty: $(cat "$tmp/err")"
  "$CMIF" generate -m "$tmp/$ty.gguf" -f "$tmp/prompt" -n 16 --temp 0 >"$tmp/$ty.out" 2>/dev/null \
    || die "cmif generate failed on $ty"
done
llamacpp_compare 16 "$tmp" $types || exit 1
