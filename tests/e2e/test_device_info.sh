#!/bin/sh
# cmif info --devices: lists the OpenCL platforms and devices (index for --device cl:N,
# memory, usable), works without -m, and says clearly when no OpenCL platform exists.
. tests/e2e/lib.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

OCL_ICD_VENDORS=/nonexistent "$CMIF" info --devices >"$tmp/none" 2>&1 || die "info --devices failed without a platform"
grep -q "no OpenCL platform found" "$tmp/none" || { cat "$tmp/none"; die "no message for a missing platform"; }
grep -q "device auto  *cpu" "$tmp/none" || die "auto should be the CPU without a platform"

if ! ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1 && [ -z "${OCL_ICD_VENDORS:-}" ]; then
  [ "${CI:-}" = true ] && die "CI=true but no OpenCL ICD is installed (pocl-opencl-icd)"
  echo "SKIP: no OpenCL platform installed"; exit 77
fi
"$CMIF" info --devices >"$tmp/out" 2>&1 || { cat "$tmp/out"; die "info --devices failed"; }
cat "$tmp/out"
grep -q "^  platform " "$tmp/out" || die "no platform listed"
grep -q "cl:0 " "$tmp/out" || die "no device cl:0 listed"
grep -q "memory .*MiB global" "$tmp/out" || die "no device memory listed"
grep -q "usable  *yes" "$tmp/out" || die "no usable device (PoCL should be)"
"$CMIF" info --devices --bogus >/dev/null 2>&1; [ $? -eq 2 ] || die "unknown flag should exit 2"
echo "info --devices: ok"
