#!/bin/sh
# A Llama 3 base model ends its text with <|end_of_text|> (128001), which is not the
# vocabulary's eos (<|eot_id|>, 128009): generation must stop there as llama.cpp does, not
# run on to -n. A tiny random model with the real Llama 3 vocabulary whose output row for
# 128001 is scaled up (mkmodel --boost-token) picks it after a few tokens (seed 3: 14).
. tests/e2e/lib.sh
need_shared models/llama3-vocab.gguf
MKMODEL=${MKMODEL:-$BUILD/tools/mkmodel}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$MKMODEL" "$tmp/base.gguf" --tokenizer-from "$SHARED/models/llama3-vocab.gguf" --rope-base 500000 \
  --seed 3 --boost-token 128001 >/dev/null 2>"$tmp/err" || die "mkmodel: $(cat "$tmp/err")"
"$CMIF" generate -m "$tmp/base.gguf" -p "Once upon a time" -n 64 --temp 0 >"$tmp/out" 2>"$tmp/err" \
  || { cat "$tmp/err"; die "generate failed"; }
grep -q "stopped: end of generation (<|end_of_text|>, token 128001)" "$tmp/err" \
  || { cat "$tmp/err"; die "generation did not stop at <|end_of_text|>"; }
n=$(sed -n 's/.*eval *= .* \/ *\([0-9]*\) tokens.*/\1/p' "$tmp/err" | tail -1)
[ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -lt 64 ] || { cat "$tmp/err"; die "stopped after '$n' tokens, not within -n 64 after a few"; }
grep -q "end_of_text" "$tmp/out" && die "the end-of-text token was printed"
echo "ok: a Llama 3 base model stops at <|end_of_text|> after $n tokens"
