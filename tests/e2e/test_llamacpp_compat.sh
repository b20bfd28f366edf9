#!/bin/sh
# The GGUFs cmif reads and writes are standard: llama.cpp (through node-llama-cpp's prebuilt
# CPU binaries, installed by `make bench-deps` into build/llamacpp) loads the bundled model
# and stories260K, and its greedy continuation equals cmif's. Skips when llama.cpp is not
# installed (it comes from npm, not from Debian).
. tests/e2e/lib.sh
LL=${CMIF_LLAMACPP_DIR:-build/llamacpp}
if ! command -v node >/dev/null 2>&1 || [ ! -d "$LL/node_modules/node-llama-cpp" ]; then
  echo "SKIP: llama.cpp reference not installed (make bench-deps installs it into build/llamacpp)"
  exit 77
fi
script=$(pwd)/tests/tools/llamacpp_greedy.mjs
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp "$script" "$LL/greedy.mjs"
models="assets/models/cmif-tiny.gguf"
[ -e "$SHARED/models/stories260K.gguf" ] && models="$models $SHARED/models/stories260K.gguf"
for m in $models; do
  abs=$(cd "$(dirname "$m")" && pwd)/$(basename "$m")
  (cd "$LL" && node greedy.mjs "$abs" "Once upon a time" 64) > "$tmp/ref.txt" 2>"$tmp/ref.err" \
    || die "llama.cpp failed on $m: $(tail -3 "$tmp/ref.err")"
  "$CMIF" generate -m "$m" -p "Once upon a time" -n 64 --temp 0 > "$tmp/out.txt" 2>/dev/null \
    || die "cmif generate failed on $m"
  # Same tokens give the same text; compare the common prefix (llama.cpp stops at 64 tokens
  # of its own count, cmif may print a final newline).
  n=$(wc -c < "$tmp/ref.txt")
  [ "$n" -gt 100 ] || die "llama.cpp produced only $n bytes on $m"
  head -c "$n" "$tmp/out.txt" | cmp -s - "$tmp/ref.txt" \
    || { echo "llama.cpp:"; cat "$tmp/ref.txt"; echo; echo "cmif:"; head -c "$n" "$tmp/out.txt"; die "outputs differ on $m"; }
  echo "ok: $m ($n bytes identical to llama.cpp)"
done
