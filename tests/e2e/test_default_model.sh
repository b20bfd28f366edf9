#!/bin/sh
# Golden test of the bundled default model, which needs no ../shared: greedy
# decoding of assets/models/cmif-tiny.gguf gives tests/e2e/golden-cmif-tiny.txt byte for
# byte, with the default threads and with one CPU thread. Regenerate the golden file when
# the model is retrained:
#   build/cmif generate -m assets/models/cmif-tiny.gguf -p "Once upon a time" -n 200 --temp 0
. tests/e2e/lib.sh
M=assets/models/cmif-tiny.gguf
G=tests/e2e/golden-cmif-tiny.txt
[ -f "$M" ] || die "$M is missing (make default-model rebuilds it)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$CMIF" generate -m "$M" -p "Once upon a time" -n 200 --temp 0 >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; die "generate failed"; }
cmp "$tmp/out" "$G" || die "output differs from the golden text"
"$CMIF" generate -m "$M" -p "Once upon a time" -n 200 --temp 0 -t 1 --device cpu >"$tmp/out1" 2>/dev/null || die "-t 1 failed"
cmp "$tmp/out1" "$G" || die "-t 1 output differs from the golden text"
# from BOS alone the model, trained mostly on ChatML dialogues, opens a user turn
"$CMIF" generate -m "$M" -p "" -n 40 --temp 0 >"$tmp/bos" 2>/dev/null || die "BOS run failed"
grep -q "Tell me a story" "$tmp/bos" || { cat "$tmp/bos"; die "from BOS the model does not write a request"; }
# without -m, generate and info fall back to the bundled model as the chat does:
# from the source tree, from elsewhere through the binary's location, and through $CMIF_MODEL
"$CMIF" generate -p "Once upon a time" -n 200 --temp 0 >"$tmp/nom" 2>"$tmp/err" || { cat "$tmp/err"; die "generate without -m failed"; }
cmp "$tmp/nom" "$G" || die "generate without -m did not run the bundled model"
"$CMIF" info >"$tmp/info" 2>"$tmp/err" || { cat "$tmp/err"; die "info without -m failed"; }
grep -q "cmif-tiny.gguf" "$tmp/info" || { cat "$tmp/info"; die "info without -m did not describe the bundled model"; }
abs=$(cd "$(dirname "$CMIF")" && pwd)/$(basename "$CMIF")
(cd "$tmp" && env -u CMIF_MODEL "$abs" info >"$tmp/info2" 2>"$tmp/err") || { cat "$tmp/err"; die "info without -m outside the tree failed"; }
grep -q "cmif-tiny.gguf" "$tmp/info2" || die "info outside the tree did not find the model next to the binary"
cp "$M" "$tmp/other.gguf"
(cd "$tmp" && CMIF_MODEL="$tmp/other.gguf" "$abs" info >"$tmp/info3" 2>"$tmp/err") || die "info with CMIF_MODEL failed"
grep -q "other.gguf" "$tmp/info3" || die "info ignored CMIF_MODEL"
# -c past the trained context (512 tokens) is clamped with a notice, not taken silently:
# a 1,200-token prompt is refused as too long for 512 positions, not evaluated in 8192
awk 'BEGIN { for (i = 0; i < 120; i++) printf "the cat sat on the mat. " }' >"$tmp/long"
"$CMIF" generate -m "$M" -c 8192 -n 2 -f "$tmp/long" >/dev/null 2>"$tmp/cerr"
grep -q "8192 is more than the 512 tokens" "$tmp/cerr" || { cat "$tmp/cerr"; die "-c 8192 on a 512-token model was accepted silently"; }
grep -q "more than the context (512)" "$tmp/cerr" || { cat "$tmp/cerr"; die "-c 8192 was not clamped to 512"; }
echo "ok"
