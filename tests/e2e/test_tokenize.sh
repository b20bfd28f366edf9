#!/bin/sh
# cmif tokenize: ids, pieces, stdin/file input, special tokens and exit codes.
. tests/e2e/lib.sh
need_shared models/ggml-vocab-llama-spm.gguf
M=$SHARED/models/ggml-vocab-llama-spm.gguf
tmp=$(mktemp -d) || die "mktemp"
trap 'rm -rf "$tmp"' EXIT

out=$("$CMIF" tokenize -m "$M" "Hello world") || die "tokenize failed"
[ "$out" = "1 15043 3186" ] || die "ids: got '$out'"

out=$("$CMIF" tokenize -m "$M" --no-bos "Hello world") || die "--no-bos failed"
[ "$out" = "15043 3186" ] || die "--no-bos: got '$out'"

printf 'x y\n' > "$tmp/in.txt"
out=$("$CMIF" tokenize -m "$M" -f "$tmp/in.txt") || die "-f failed"
[ "$out" = "1 921 343 13" ] || die "-f: got '$out'"
out=$("$CMIF" tokenize -m "$M" - < "$tmp/in.txt") || die "stdin failed"
[ "$out" = "1 921 343 13" ] || die "stdin: got '$out'"

"$CMIF" tokenize -m "$M" --pieces "Hi
" > "$tmp/pieces" || die "--pieces failed"
printf "1\t'<s>'\n6324\t' Hi'\n13\t'\\\\n'\n" > "$tmp/want"
cmp -s "$tmp/pieces" "$tmp/want" || { cat "$tmp/pieces"; die "--pieces output differs"; }

out=$("$CMIF" tokenize -m "$M" --no-bos --special "<s>Hi</s>") || die "--special failed"
[ "$out" = "1 6324 2" ] || die "--special: got '$out'"
out=$("$CMIF" tokenize -m "$M" --no-bos "<s>") || die "plain <s> failed"
case " $out " in *" 1 "*) die "<s> without --special gave BOS: '$out'";; esac

"$CMIF" tokenize -m "$M" >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] || die "no text: exit $rc, want 2"
"$CMIF" tokenize -m "$M" --bogus x >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] || die "bad flag: exit $rc, want 2"
"$CMIF" tokenize -m "$tmp/missing.gguf" x 2>"$tmp/err"; rc=$?
[ "$rc" -eq 1 ] || die "missing model: exit $rc, want 1"
grep -q missing.gguf "$tmp/err" || die "error does not name the file: $(cat "$tmp/err")"
printf 'not a gguf' > "$tmp/bad.gguf"
"$CMIF" tokenize -m "$tmp/bad.gguf" x 2>/dev/null; rc=$?
[ "$rc" -eq 1 ] || die "bad model: exit $rc, want 1"
echo "ok"
