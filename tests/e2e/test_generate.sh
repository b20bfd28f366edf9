#!/bin/sh
# cmif generate end to end: the golden stories260K text byte for byte, the same text with
# one thread, a seeded sampling run that repeats exactly, and the exit codes of usage
# errors (2) and of a corrupt model (1).
. tests/e2e/lib.sh
need_shared models/stories260K.gguf
need_shared docs/golden-stories260K.txt
M=$SHARED/models/stories260K.gguf
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$CMIF" generate -m "$M" -p "" -n 200 --temp 0 >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; die "generate failed"; }
cmp "$tmp/out" "$SHARED/docs/golden-stories260K.txt" || die "output differs from the golden text"
grep -q "prompt eval" "$tmp/err" || die "no prompt timings on stderr"
grep -q "tokens per second" "$tmp/err" || die "no tokens/s on stderr"
grep -q "load time" "$tmp/err" || die "no load time on stderr"
grep -q "backend" "$tmp/err" || die "no backend on stderr"

"$CMIF" generate -m "$M" -p "" -n 200 --temp 0 -t 1 --device cpu >"$tmp/out1" 2>/dev/null || die "-t 1 failed"
cmp "$tmp/out1" "$SHARED/docs/golden-stories260K.txt" || die "-t 1 output differs"

# a prompt is echoed and continued
"$CMIF" generate -m "$M" -p "Once upon a time" -n 20 --temp 0 >"$tmp/p" 2>/dev/null || die "prompt run failed"
head -c 16 "$tmp/p" | grep -q "^Once upon a time" || die "prompt not echoed"
[ "$(wc -c <"$tmp/p")" -gt 30 ] || die "prompt run produced no continuation"

# same seed and options: same text; another seed: (almost surely) another text
"$CMIF" generate -m "$M" -p "Lily" -n 60 -s 42 --temp 1 --top-k 0 --top-p 1 --min-p 0 >"$tmp/s1" 2>/dev/null || die "seeded run failed"
"$CMIF" generate -m "$M" -p "Lily" -n 60 -s 42 --temp 1 --top-k 0 --top-p 1 --min-p 0 >"$tmp/s2" 2>/dev/null || die "seeded run failed"
"$CMIF" generate -m "$M" -p "Lily" -n 60 -s 43 --temp 1 --top-k 0 --top-p 1 --min-p 0 >"$tmp/s3" 2>/dev/null || die "seeded run failed"
cmp -s "$tmp/s1" "$tmp/s2" || die "same seed gave different text"
cmp -s "$tmp/s1" "$tmp/s3" && die "seeds 42 and 43 gave the same 60 tokens"

# usage errors exit 2
# (no -m and no model to fall back on: a copy of the binary away from the bundled model)
mkdir "$tmp/bin" && cp "$CMIF" "$tmp/bin/cmif"
(cd "$tmp" && env -u CMIF_MODEL bin/cmif generate -p hi >/dev/null 2>&1); [ $? -eq 2 ] || die "missing -m should exit 2"
"$CMIF" generate -m "$M" --temp abc >/dev/null 2>&1; [ $? -eq 2 ] || die "bad --temp should exit 2"
"$CMIF" generate -m "$M" --no-such-flag >/dev/null 2>&1; [ $? -eq 2 ] || die "unknown flag should exit 2"
"$CMIF" generate --help >/dev/null 2>&1 || die "--help should exit 0"

# a corrupt model exits 1 with the reader's message
head -c 1000 "$M" >"$tmp/trunc.gguf"
"$CMIF" generate -m "$tmp/trunc.gguf" -n 5 >/dev/null 2>"$tmp/e"; rc=$?
[ $rc -eq 1 ] || die "truncated model should exit 1 (got $rc)"
grep -q "trunc.gguf" "$tmp/e" || die "error does not name the file"
printf 'not a gguf file at all' >"$tmp/bad.gguf"
"$CMIF" generate -m "$tmp/bad.gguf" >/dev/null 2>&1; [ $? -eq 1 ] || die "bad magic should exit 1"
"$CMIF" generate -m "$tmp/missing.gguf" >/dev/null 2>&1; [ $? -eq 1 ] || die "missing file should exit 1"
echo "generate: ok"
