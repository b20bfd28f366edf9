#!/bin/sh
# `cmif-bench --quick` runs every section on a tiny model and prints its tables. Only the
# run and the shape of the report are checked: timing never decides a test.
. tests/e2e/lib.sh
BENCH=$BUILD/bench/cmif-bench
# The sanitizer build passes its flags to make itself; the benchmark is not part of it.
if [ -n "${CMIF_ASAN:-}" ]; then echo "SKIP: cmif-bench is not built under ASan"; exit 77; fi
if [ ! -x "$BENCH" ]; then
  make --no-print-directory -s BUILD="$BUILD" "$BENCH" >/dev/null 2>&1 || die "cannot build $BENCH"
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
CMIF_BENCH_DIR=$tmp "$BENCH" --quick >"$tmp/out" 2>&1 || { cat "$tmp/out"; die "cmif-bench --quick failed"; }
cat "$tmp/out"
for s in "== bandwidth" "== load" "== engine" "BW util" "adj util" "tiny Q8_0"; do
  grep -q "$s" "$tmp/out" || die "report lacks '$s'"
done
[ -f "$tmp/tiny-q8_0.gguf" ] || die "benchmark model not written to CMIF_BENCH_DIR"
"$BENCH" --list | grep -q "^engine" || die "--list lacks the engine section"
"$BENCH" --only nosuch >/dev/null 2>&1; [ $? -eq 2 ] || die "--only with no match should exit 2"
echo "bench quick: ok"
