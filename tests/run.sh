#!/bin/sh
# Runs every cmocka test binary and every end-to-end script, then prints one summary line.
# A test binary's cases are counted from cmocka's own summary lines; an e2e script counts
# as one case (exit 0 pass, 77 skip, anything else fail).
BUILD=${BUILD:-build}
# Tests never touch the user's home: caches (cluster cache and its per-user secret, the
# OpenCL binary cache), state (chat history) and the runtime dir (swap files) all go under
# $BUILD/test-home, which survives between runs so compiled kernels stay cached.
mkdir -p "$BUILD/test-home" || exit 1
# The privacy ledger lives in the state directory: each run starts with an empty day.
rm -rf "$BUILD/test-home/state"
TEST_HOME=$(cd "$BUILD/test-home" && pwd) || exit 1
mkdir -p "$TEST_HOME/home" "$TEST_HOME/cache" "$TEST_HOME/state" "$TEST_HOME/config" \
  "$TEST_HOME/data" "$TEST_HOME/runtime" "$TEST_HOME/tmp" || exit 1
chmod 700 "$TEST_HOME/runtime" "$TEST_HOME/cache" "$TEST_HOME/state"
export HOME="$TEST_HOME/home" XDG_CACHE_HOME="$TEST_HOME/cache" XDG_STATE_HOME="$TEST_HOME/state"
export XDG_CONFIG_HOME="$TEST_HOME/config" XDG_DATA_HOME="$TEST_HOME/data"
export XDG_RUNTIME_DIR="$TEST_HOME/runtime" TMPDIR="$TEST_HOME/tmp"
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
