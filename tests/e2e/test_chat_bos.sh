#!/bin/sh
# The first turn starts with BOS where the model's own template writes it (Llama 2, Llama 3,
# Mistral) or its vocabulary asks for it (tokenizer.ggml.add_bos_token); ChatML, Zephyr and
# plain completion on a vocabulary that does not add BOS (SmolLM2's, Qwen's) get none, as
# llama.cpp renders them. Checked through /prompt in a scripted session on two tiny models
# that differ only in add_bos_token.
. tests/e2e/lib.sh
MKMODEL=${MKMODEL:-$BUILD/tools/mkmodel}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$MKMODEL" "$tmp/bos.gguf" --preset tiny >/dev/null 2>"$tmp/err" || die "mkmodel: $(cat "$tmp/err")"
"$MKMODEL" "$tmp/nobos.gguf" --preset tiny --no-add-bos >/dev/null 2>"$tmp/err" \
  || die "mkmodel: $(cat "$tmp/err")"
for m in bos nobos; do
  for t in llama2 llama3 mistral chatml zephyr plain; do
    printf 'hello there\n/prompt\n' | "$CMIF" chat -m "$tmp/$m.gguf" --template "$t" --temp 0 \
      -n 2 --no-ledger --sanitize marked -q --script - >"$tmp/out" 2>&1 || { cat "$tmp/out"; die "$m $t: chat failed"; }
    sed -n '/prompt of the last turn/,$p' "$tmp/out" >"$tmp/p"
    grep -q "hello" "$tmp/p" || { cat "$tmp/out"; die "$m $t: /prompt lacks the message"; }
    want=yes
    case $m.$t in nobos.chatml | nobos.zephyr | nobos.plain) want=no ;; esac
    got=no
    grep -qF "⟦<s>⟧" "$tmp/p" && got=yes
    [ "$got" = "$want" ] || { cat "$tmp/p"; die "$m $t: BOS in the prompt: $got, expected $want"; }
  done
  echo "ok: $m: BOS as llama.cpp renders each template"
done
