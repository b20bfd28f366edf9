#!/bin/sh
# cmif's chat templates (app/template) render a conversation as the models' own Jinja
# templates do: Llama 3 (header tokens; the template of ../shared's Llama 3 vocabulary),
# Llama 2 ([INST] <<SYS>>, Llama-2-7b-chat-hf), Mistral ([INST], Mistral-7B-Instruct-v0.3),
# Zephyr (TinyLlama-1.1B-Chat-v1.0) and ChatML (SmolLM2-1.7B-Instruct), all in
# tests/e2e/data/templates. For a system prompt and two user turns, the first prompt and the
# whole second prompt (the model's answer in between as the template writes it, with its
# end-of-generation token) must be byte for byte what @huggingface/jinja renders, BOS
# written as its text wherever the vocabulary or template puts it. The kind is the one the
# chat detects from each template. Mistral's template moves the system prompt to the last
# user message, which cmif cannot do without rewriting the start of the context at every
# turn: its two-turn check is without a system prompt (the first turn has one).
#
# The renderings are checked in (tests/e2e/data/templates/expected); where node and
# @huggingface/jinja are installed (make bench-deps) they are rendered again and must be
# the same. BOS/EOS texts and add_bos are those of the vocabulary each model ships with
# (tests/tools/jinja_render.mjs); SmolLM2's ChatML is checked with a vocabulary that adds
# BOS (as the stand-in in test_model_matrix.sh), not SmolLM2's own, which does not.
. tests/e2e/lib.sh
. tests/e2e/llamacpp.inc
RENDER=${TMPLRENDER:-$BUILD/tools/tmplrender}
T=tests/e2e/data/templates
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ANSWER="I am a language model."
names="llama3 llama2 mistral zephyr chatml"
show() { printf '%s' "$(cat "$1")" | sed -n l | sed 's/^/    /'; }
fails=0

# check DIR SYSTEM USER1 USER2: one conversation against its renderings in $T/DIR.
check() {
  exp=$T/$1 SYSTEM=$2 USER1=$3 USER2=$4
  if command -v node >/dev/null 2>&1 && [ -d "$LL/node_modules/@huggingface/jinja" ]; then
    mkdir "$tmp/jinja-$1"
    CMIF_LLAMACPP_DIR=$LL node tests/tools/jinja_render.mjs "$T" "$tmp/jinja-$1" "$SYSTEM" \
      "$USER1" "$ANSWER" "$USER2" 2>"$tmp/err" || die "jinja_render: $(cat "$tmp/err")"
    for f in "$exp"/*; do
      cmp -s "$f" "$tmp/jinja-$1/$(basename "$f")" \
        || die "$f is not what @huggingface/jinja renders now (see tests/tools/jinja_render.mjs)"
    done
    echo "ok: $1: the checked-in renderings are what @huggingface/jinja renders"
  else
    echo "note: @huggingface/jinja not installed (make bench-deps): using the checked-in renderings"
  fi
  for n in $names; do
    case $n in llama3) bos="<|begin_of_text|>" ;; *) bos="<s>" ;; esac
    sys2=$SYSTEM
    [ "$(cat "$exp/$n.system")" = 1 ] || sys2=""
    "$RENDER" "@$T/$n.jinja" "$bos" "$SYSTEM" "$USER1" "$exp/$n.answer" "$USER2" "$tmp/$n.turn1" \
      "$tmp/$n.unused" || die "tmplrender $n failed"
    "$RENDER" "@$T/$n.jinja" "$bos" "$sys2" "$USER1" "$exp/$n.answer" "$USER2" "$tmp/$n.unused" \
      "$tmp/$n.conv" || die "tmplrender $n failed"
    for part in turn1 conv; do
      if ! cmp -s "$tmp/$n.$part" "$exp/$n.$part"; then
        echo "FAIL: $1: $n: the $part prompt differs from the Jinja template's"
        echo "  Jinja:"; show "$exp/$n.$part"
        echo "  cmif:"; show "$tmp/$n.$part"
        fails=$((fails + 1))
      fi
    done
    echo "ok: $1: $n ($(wc -c <"$exp/$n.conv") bytes$([ -z "$sys2" ] && echo ", two turns without the system prompt"))"
  done
}

check expected "You are a terse assistant." "Hello, who are you?" "What is 2+2?"
# Whitespace around the messages: Llama 3 trims every message, Llama 2 strips its [INST]
# content (the user's tail, and its lead when no system block comes first); the others
# keep it. U+00A0 and U+3000 are whitespace to the templates' trim.
sp_sys=$(printf '  You are a terse assistant.\nx'); sp_sys=${sp_sys%x}
sp_u1=$(printf ' \tHello, who are you?  \nx'); sp_u1=${sp_u1%x}
sp_u2=$(printf 'What is 2+2?\302\240\343\200\200 x'); sp_u2=${sp_u2%x}
check expected-space "$sp_sys" "$sp_u1" "$sp_u2"
[ "$fails" -eq 0 ] || die "$fails renderings differ"
