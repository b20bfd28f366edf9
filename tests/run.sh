#!/bin/sh
# Runs every cmocka test binary and every end-to-end script, then prints one summary line.
# A test binary's cases are counted from cmocka's own summary lines; an e2e script counts
# as one case (exit 0 pass, 77 skip, anything else fail).
BUILD=${BUILD:-build}
pass=0; fail=0; skip=0; failed_names=""
log=$(mktemp); trap 'rm -f "$log"' EXIT
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  case "$t" in *.o|*.d) continue;; esac
  echo "== $(basename "$t")"
  "$t" >"$log" 2>&1; rc=$?
  cat "$log"
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+s))
  [ "$f" -gt 0 ] && failed_names="$failed_names $(basename "$t")"
done
for e in tests/e2e/test_*.sh; do
  [ -f "$e" ] || continue
  echo "== $(basename "$e")"
  BUILD=$BUILD sh "$e" >"$log" 2>&1; rc=$?
  cat "$log"
  if [ "$rc" -eq 0 ]; then pass=$((pass+1)); echo "[       OK ] $(basename "$e")"
  elif [ "$rc" -eq 77 ]; then skip=$((skip+1)); echo "[  SKIPPED ] $(basename "$e")"
  else fail=$((fail+1)); failed_names="$failed_names $(basename "$e")"; echo "[  FAILED  ] $(basename "$e") (exit $rc)"; fi
done
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
