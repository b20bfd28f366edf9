#!/bin/sh
# The OpenCL backend through the command line (PoCL here): the golden stories260K text with
# --device cl and cl:0; the same text after switching to cpu and back; an unknown device
# index is an error; a missing OpenCL platform (OCL_ICD_VENDORS=/nonexistent) falls back to
# the CPU with a message for both cl and auto, and the text is still the golden one.
. tests/e2e/lib.sh
need_shared models/stories260K.gguf
need_shared docs/golden-stories260K.txt
if ! ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1 && [ -z "${OCL_ICD_VENDORS:-}" ]; then
  [ "${CI:-}" = true ] && die "CI=true but no OpenCL ICD is installed (pocl-opencl-icd)"
  echo "SKIP: no OpenCL platform installed"; exit 77
fi
M=$SHARED/models/stories260K.gguf
G=$SHARED/docs/golden-stories260K.txt
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# compiled kernels persist across runs (PoCL compiles slowly): a cache under the build dir
case $BUILD in /*) bdir=$BUILD ;; *) bdir=$(pwd)/$BUILD ;; esac
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$bdir/xdg-cache}"

for dev in cl cl:0 cpu cl; do
  "$CMIF" generate -m "$M" -p "" -n 200 --temp 0 --device "$dev" >"$tmp/out" 2>"$tmp/err" \
    || { cat "$tmp/err"; die "generate --device $dev failed"; }
  cmp -s "$tmp/out" "$G" || { diff "$tmp/out" "$G" | head; die "--device $dev: output differs from the golden text"; }
  case $dev in
    cl*) grep -q "backend *= *opencl" "$tmp/err" || { cat "$tmp/err"; die "--device $dev did not run on OpenCL"; } ;;
    cpu) grep -q "backend *= *cpu" "$tmp/err" || die "--device cpu did not run on the CPU" ;;
  esac
done

"$CMIF" generate -m "$M" -p "" -n 5 --device cl:9 >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -ne 0 ] || die "--device cl:9 should fail"
grep -q "OpenCL device 9 does not exist" "$tmp/err" || { cat "$tmp/err"; die "no clear message for cl:9"; }

for dev in cl auto; do
  OCL_ICD_VENDORS=/nonexistent "$CMIF" generate -m "$M" -p "" -n 200 --temp 0 --device $dev \
    >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; die "missing platform, --device $dev: failed"; }
  cmp -s "$tmp/out" "$G" || die "missing platform, --device $dev: output differs"
  grep -q "backend *= *cpu" "$tmp/err" || die "missing platform, --device $dev: not on the CPU"
  grep -q "no OpenCL platform found" "$tmp/err" || { cat "$tmp/err"; die "missing platform, --device $dev: no message"; }
done
echo "device cl: ok"
