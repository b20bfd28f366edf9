#!/bin/sh
# cmif info: the report on a real model, a random quantized model with a chat template,
# a vocabulary-only file, --tensors, and the exit codes for corrupt files and bad usage.
. tests/e2e/lib.sh
need_shared models/stories260K.gguf
MKMODEL=${MKMODEL:-$BUILD/tools/mkmodel}
[ -x "$CMIF" ] || die "$CMIF not built"
[ -x "$MKMODEL" ] || die "$MKMODEL not built"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
M=$SHARED/models/stories260K.gguf

"$CMIF" info -m "$M" >"$T/out" 2>"$T/err" || die "info failed: $(cat "$T/err")"
for want in 'GGUF v3' 'architecture:  llama' 'dim            64' 'layers         5' \
            'heads          8' 'kv heads       4' 'head dim       8' 'ffn            172' \
            'vocab          512' 'context        2048' 'rms norm eps   1e-05' \
            'tensors:       48' 'F32          48' 'total weight bytes: 1171200' \
            'model          llama' "bos            1 '<s>'" "eos            2 '</s>'" \
            'chat template: none' 'load check:    ok'; do
  grep -qF "$want" "$T/out" || die "missing '$want' in: $(cat "$T/out")"
done
grep -q 'token_embd.weight' "$T/out" && die "tensor list printed without --tensors"

"$CMIF" info -m "$M" --tensors >"$T/out" || die "--tensors failed"
n=$(grep -c '^ *[0-9][0-9]*  [a-z_.0-9]*weight  *F32 ' "$T/out")
[ "$n" -eq 48 ] || die "--tensors listed $n tensors, want 48"
grep -q 'blk.3.ffn_down.weight *F32 *\[172, 64\] *44032' "$T/out" || die "ffn_down row wrong"

# A random Q8_0 model with a tied output and a chat template.
printf '{%% for m in messages %%}\n<|{{ m.role }}|>\n{{ m.content }}</s>\n{%% endfor %%}\n' >"$T/tmpl"
"$MKMODEL" "$T/q.gguf" --dim 128 --ffn 256 --heads 4 --kv-heads 2 --type q8_0 --tied \
  --vocab 300 --chat-template "$T/tmpl" 2>"$T/err" || die "mkmodel: $(cat "$T/err")"
"$CMIF" info -m "$T/q.gguf" >"$T/out" || die "info on random model failed"
for want in 'Q8_0         15' 'chat template: 74 bytes, 4 lines' '  | <|{{ m.role }}|>' \
            'load check:    ok (tied output' 'vocab          300'; do
  grep -qF "$want" "$T/out" || die "missing '$want' in: $(cat "$T/out")"
done

# Every weight type mkmodel writes loads; a type without kernels is named in the type table
# before any load (a Q3_K file with one tensor relabelled IQ3_S, the same block geometry).
for ty in q4_1 q5_0 q5_1 q2_k q3_k iq4_nl iq4_xs; do
  "$MKMODEL" "$T/$ty.gguf" --dim 256 --ffn 512 --heads 4 --kv-heads 2 --type $ty --vocab 300 \
    2>"$T/err" || die "mkmodel $ty: $(cat "$T/err")"
  "$CMIF" info -m "$T/$ty.gguf" >"$T/out" || die "info on $ty failed"
  grep -qF 'load check:    ok' "$T/out" || die "$ty does not load: $(cat "$T/out")"
  grep -qF 'cannot run' "$T/out" && die "$ty named as unrunnable"
done
python3 - "$T/q3_k.gguf" "$T/iq3s.gguf" <<'PY' || die "relabelling failed"
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
name = b'blk.0.attn_q.weight'
i = b.index(len(name).to_bytes(8, 'little') + name) + 8 + len(name)
nd = int.from_bytes(b[i:i + 4], 'little')
t = i + 4 + 8 * nd
assert int.from_bytes(b[t:t + 4], 'little') == 11   # Q3_K
b[t:t + 4] = (21).to_bytes(4, 'little')              # IQ3_S: 256 elements in 110 bytes too
open(sys.argv[2], 'wb').write(b)
PY
"$CMIF" info -m "$T/iq3s.gguf" >"$T/out" || die "info on the IQ3_S file failed"
grep -q '^  IQ3_S  *1 .*(cmif cannot run this type)$' "$T/out" || die "IQ3_S row: $(cat "$T/out")"
grep -qF 'types cmif cannot run: IQ3_S' "$T/out" || die "summary: $(cat "$T/out")"
grep -qF 'load check:    cannot run: tensor blk.0.attn_q.weight has type IQ3_S' "$T/out" || die "load check: $(cat "$T/out")"

# A vocabulary-only file has no tensors and no load check, but is not an error.
if [ -e "$SHARED/models/ggml-vocab-llama-spm.gguf" ]; then
  "$CMIF" info -m "$SHARED/models/ggml-vocab-llama-spm.gguf" >"$T/out" || die "vocab file failed"
  grep -qF 'vocab          32000 tokens' "$T/out" || die "vocab count missing"
  grep -qF 'add_bos        yes' "$T/out" || die "add_bos missing"
fi

# Corrupt files: exit 1 with the reader's message naming the field.
head -c 5000 "$M" >"$T/trunc.gguf"
"$CMIF" info -m "$T/trunc.gguf" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || die "truncated file: exit $rc, want 1"
grep -q "truncated reading element .* of key 0 'tokenizer.ggml.tokens'" "$T/err" || die "message: $(cat "$T/err")"
printf 'GGUF\001\000\000\000' >"$T/v1.gguf"
"$CMIF" info -m "$T/v1.gguf" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'version 1' "$T/err" || die "v1 file: exit $rc, $(cat "$T/err")"
"$CMIF" info -m "$T/missing.gguf" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'cannot open' "$T/err" || die "missing file: exit $rc"

# Usage errors: exit 2.
# (no -m and no model to fall back on: a copy of the binary away from the bundled model)
mkdir "$T/bin" && cp "$CMIF" "$T/bin/cmif"
(cd "$T" && env -u CMIF_MODEL bin/cmif info >/dev/null 2>"$T/err"); rc=$?
[ $rc -eq 2 ] && grep -q 'usage' "$T/err" || die "no -m: exit $rc"
"$CMIF" info -m "$M" --bogus >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || die "unknown flag: exit $rc"
"$CMIF" info --help >"$T/out"; rc=$?
[ $rc -eq 0 ] && grep -q -- '--tensors' "$T/out" || die "--help: exit $rc"
echo "ok"
