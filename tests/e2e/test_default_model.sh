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
echo "ok"
