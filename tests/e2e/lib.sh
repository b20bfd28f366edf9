# Sourced by e2e scripts: common paths and the ../shared skip-or-fail rule.
BUILD=${BUILD:-build}
CMIF=${CMIF:-$BUILD/cmif}
SHARED=${CMIF_SHARED:-../shared}
need_shared() {
  if [ ! -e "$SHARED/$1" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: CI=true and $SHARED/$1 missing"; exit 1; fi
    echo "SKIP: $SHARED/$1 not found"; exit 77
  fi
}
die() { echo "FAIL: $*"; exit 1; }
