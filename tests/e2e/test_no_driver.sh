#!/bin/sh
# The OpenCL driver stays out of the process unless an OpenCL device is used: with
# --device cpu, and with --device auto falling back to the CPU (no GPU here, or no OpenCL
# at all), /proc/PID/maps of a running chat lists no libOpenCL, PoCL, LLVM or CLBlast;
# with --device cl (where an OpenCL device exists) it does.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
printf 'Once upon a time\n' > "$TMPD/one"
# The chat opens its model and decoder, then waits for the script on stdin: look then.
maps_count() {   # DEVICE [ENV...]: number of driver mappings while the chat runs
  dev=$1; shift
  (sleep 4; cat "$TMPD/one") | env "$@" $CMIF -m $MODEL -n 2 --no-ledger --no-history \
    --device $dev --script - >/dev/null 2>"$TMPD/err.$dev" &
  sleep 2.5
  pid=$(pgrep -n -f -- "--device $dev --script -")
  [ -n "$pid" ] || { echo "no pid"; return; }
  grep -c -i -E 'libopencl|pocl|libllvm|clblast' /proc/$pid/maps
  wait
}
n=$(maps_count cpu XDG_STATE_HOME="$TMPD/st")
[ "$n" = 0 ] || die "--device cpu: $n driver mappings in the process"
n=$(maps_count auto XDG_STATE_HOME="$TMPD/st")
[ "$n" = 0 ] || die "--device auto (CPU fallback): $n driver mappings in the process"
mkdir -p "$TMPD/empty"
n=$(maps_count auto XDG_STATE_HOME="$TMPD/st" OCL_ICD_VENDORS="$TMPD/empty")
[ "$n" = 0 ] || die "--device auto without any OpenCL platform: $n driver mappings"
if $CMIF info --devices 2>/dev/null | grep -q 'cl:0'; then
  n=$(maps_count cl XDG_STATE_HOME="$TMPD/st")
  [ "$n" -gt 0 ] || die "--device cl: the driver is not mapped, so this test cannot see it"
fi
echo "ok: no OpenCL driver in the process with --device cpu or an auto fallback"
