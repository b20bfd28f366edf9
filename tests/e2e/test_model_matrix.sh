#!/bin/sh
# The shapes people download: random-weight models with the geometry of each family (width,
# heads and grouped KV heads, FFN size, vocabulary, rope base, tied or separate output), in
# the weight types of their common GGUF files, each with the real tokenizer where it is
# available here. Each one loads and generates in cmif, and where llama.cpp is installed
# (make bench-deps) cmif follows llama.cpp's 16-token greedy decoding step by step; a
# step where the two pick different tokens passes only if those two tokens' logits are
# within NEAR_TIE_TOL of each other in both engines (tests/e2e/llamacpp.inc).
#
# Every model has two layers (the per-layer shapes are real; depth only multiplies the
# time) and a 512-token context, so the matrix fits a few minutes on two cores. Rope
# scaling (Llama 3.1/3.2) is not written. Each model carries its family's chat template
# (tests/e2e/data/templates; Llama 3's comes with its vocabulary). Tokenizers:
#   Llama 3.x                   ../shared/models/llama3-vocab.gguf, the real one
#   Llama 2, TinyLlama          ../shared/models/ggml-vocab-llama-spm.gguf, the real one
#   Mistral 7B v0.3             its SentencePiece vocabulary is not here: the Llama 2 one
#                               (the closest: SentencePiece, 32,000 tokens) extended to
#                               32,768 with v0.3's control tokens ([INST], [/INST],
#                               [TOOL_CALLS], ..., [control_N]), appended rather than at
#                               ids 3-770
#   SmolLM2 1.7B and 360M       its GPT-2-style BPE vocabulary (49,152) is not here: the
#                               Llama 2 one extended to 49,152 with the ChatML tokens
#                               first (<|im_start|>, <|im_end|>), for the real table
#                               shape and ChatML markers that are special tokens
# Without ../shared the test skips (fails when CI=true); without llama.cpp only the
# load-and-generate part runs.
. tests/e2e/lib.sh
. tests/e2e/llamacpp.inc
need_shared models/llama3-vocab.gguf
need_shared models/ggml-vocab-llama-spm.gguf
MKMODEL=${MKMODEL:-$BUILD/tools/mkmodel}
L3="$SHARED/models/llama3-vocab.gguf"
L2="$SHARED/models/ggml-vocab-llama-spm.gguf"
T=tests/e2e/data/templates   # the models' own chat templates (test_chat_templates.sh)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf 'The capital of France is' >"$tmp/prompt"

# name | mkmodel options (all: 2 layers, context 512)
MISTRAL_TOKENS="--add-token [INST] --add-token [/INST] --add-token [TOOL_CALLS]
  --add-token [AVAILABLE_TOOLS] --add-token [/AVAILABLE_TOOLS] --add-token [TOOL_RESULTS]
  --add-token [/TOOL_RESULTS]"
CHATML_TOKENS="--add-token <|im_start|> --add-token <|im_end|>"
models="llama-3.2-1b llama-3.2-3b llama-3.1-8b llama-2-7b mistral-7b-v0.3 tinyllama-1.1b
  smollm2-1.7b smollm2-360m"
opts() {
  case $1 in
    # Q4_K_M as downloaded: Q4_K matrices; the tied table Q6_K (1B) or Q8_0 (3B), or a
    # separate Q4_K table and output (8B, 7B)
    llama-3.2-1b) echo "--dim 2048 --heads 32 --kv-heads 8 --ffn 8192 --rope-base 500000
      --tied --type q4_k --embd-type q6_k --tokenizer-from $L3" ;;
    llama-3.2-3b) echo "--dim 3072 --heads 24 --kv-heads 8 --ffn 8192 --rope-base 500000
      --tied --type q4_k --embd-type q8_0 --tokenizer-from $L3" ;;
    llama-3.1-8b) echo "--dim 4096 --heads 32 --kv-heads 8 --ffn 14336 --rope-base 500000
      --type q4_k --embd-type q4_k --tokenizer-from $L3" ;;
    llama-2-7b) echo "--dim 4096 --heads 32 --kv-heads 32 --ffn 11008
      --type q4_k --embd-type q4_k --tokenizer-from $L2 --chat-template $T/llama2.jinja" ;;
    mistral-7b-v0.3) echo "--dim 4096 --heads 32 --kv-heads 8 --ffn 14336 --rope-base 1000000
      --type q5_k --embd-type q6_k --tokenizer-from $L2 --vocab 32768 $MISTRAL_TOKENS
      --chat-template $T/mistral.jinja" ;;
    # TinyLlama's popular Q4_0 and Q8_0 files
    tinyllama-1.1b) echo "--dim 2048 --heads 32 --kv-heads 4 --ffn 5632
      --type q4_0 --embd-type q8_0 --tokenizer-from $L2 --chat-template $T/zephyr.jinja" ;;
    smollm2-1.7b) echo "--dim 2048 --heads 32 --kv-heads 32 --ffn 8192 --rope-base 130000
      --tied --type q8_0 --embd-type q8_0 --tokenizer-from $L2 --vocab 49152 $CHATML_TOKENS
      --chat-template $T/chatml.jinja" ;;
    # 960 columns are not a multiple of 256: its Q4_K_M files fall back to Q5_0 for them
    smollm2-360m) echo "--dim 960 --heads 15 --kv-heads 5 --ffn 2560 --rope-base 100000
      --tied --type q5_0 --embd-type q8_0 --tokenizer-from $L2 --vocab 49152 $CHATML_TOKENS
      --chat-template $T/chatml.jinja" ;;
  esac
}

for m in $models; do
  # shellcheck disable=SC2046
  "$MKMODEL" "$tmp/$m.gguf" --layers 2 --ctx 512 $(opts $m) 2>"$tmp/err" \
    || die "mkmodel $m: $(cat "$tmp/err")"
  "$CMIF" generate -m "$tmp/$m.gguf" -f "$tmp/prompt" -n 16 --temp 0 >"$tmp/$m.out" 2>"$tmp/err" \
    || { cat "$tmp/err"; die "$m: cmif generate failed"; }
  [ "$(wc -c <"$tmp/$m.out")" -gt "$(wc -c <"$tmp/prompt")" ] \
    || { cat "$tmp/err"; die "$m: cmif generated nothing"; }
  grep -q "eval *= .* / *16 tokens" "$tmp/err" || grep -q "stopped: end of generation" "$tmp/err" \
    || { cat "$tmp/err"; die "$m: neither 16 tokens nor an end of generation"; }
  echo "loaded and generated: $m ($(tr '\n' ' ' <"$tmp/$m.out"))"
done

if ! have_llamacpp; then
  echo "note: llama.cpp reference not installed (make bench-deps): greedy decoding not compared"
  exit 0
fi
llamacpp_compare 16 "$tmp" $models || exit 1
