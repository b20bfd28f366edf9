#!/bin/sh
# Text that may be secret on the command line: --system and generate -p warn that argv is
# visible to other users and are wiped from /proc/PID/cmdline while cmif runs; the file and
# stdin forms (--system-file, -f -) keep the text off argv.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
T=$(mktemp -d /tmp/cmif-argv-XXXXXX)
trap 'rm -rf "$T"' EXIT

printf 'hi\n/show\n' | $CMIF -m $MODEL -n 2 --no-history --system "argv marker zq" > "$T/o" 2> "$T/e" \
  || { cat "$T/e"; die "--system run failed"; }
grep -q "visible\|can read" "$T/e" && grep -q -- "--system-file" "$T/e" || { cat "$T/e"; die "--system gave no argv warning"; }
grep -q "system: argv marker zq" "$T/o" || die "--system text not used"

printf 'a pirate from a file\n' > "$T/sys"
printf 'hi\n/show\n' | $CMIF -m $MODEL -n 2 --no-history --system-file "$T/sys" > "$T/o" 2> "$T/e" \
  || { cat "$T/e"; die "--system-file run failed"; }
grep -q "system: a pirate from a file" "$T/o" || { cat "$T/o"; die "--system-file text not used"; }
grep -q "warning" "$T/e" && die "--system-file warned about argv"

echo "Once upon" | $CMIF generate -m $MODEL -f - -n 2 > "$T/o" 2> "$T/e" || die "generate -f - failed"
grep -q "^Once upon" "$T/o" || die "generate -f - did not read stdin"
$CMIF generate -m $MODEL -p "Once" -n 2 > /dev/null 2> "$T/e" || die "generate -p failed"
grep -q -- "-f -" "$T/e" || die "generate -p gave no argv warning"

# While it runs, /proc/PID/cmdline no longer holds the text.
printf 'hi\nagain\nand again\n' > "$T/s"
$CMIF -m $MODEL -n 40 --delay-ms 50 --no-history --system "argv marker zq" --script "$T/s" > /dev/null 2>&1 &
pid=$!
# Options are parsed (and the text wiped) before the model is loaded; look once it runs.
sleep 1.5
kill -0 $pid 2>/dev/null || die "the chat ended before argv could be looked at"
seen=""
tr '\0' ' ' < /proc/$pid/cmdline | grep -q "argv marker" && seen=1
tr '\0' ' ' < /proc/$pid/cmdline | grep -q -- "--system" || die "cmdline unreadable"
wait $pid
[ -z "$seen" ] || die "--system text still in /proc/PID/cmdline while the chat runs"
echo "ok: --system and -p warn and are wiped from argv; --system-file and -f - work"
