#!/bin/sh
# The confidential core under a 64 KiB RLIMIT_MEMLOCK: cmif generate and
# cmif info --core say plainly that its memory is not locked, --require-locked refuses
# (exit 1, naming the limit), and a core capped below the limit still produces the golden
# text with the table in the encrypted swap.
. tests/e2e/lib.sh
need_shared models/stories260K.gguf
need_shared docs/golden-stories260K.txt
M=$SHARED/models/stories260K.gguf
G=$SHARED/docs/golden-stories260K.txt
command -v prlimit >/dev/null || { echo "SKIP: prlimit (util-linux) not installed"; exit 77; }
# root ignores RLIMIT_MEMLOCK through CAP_IPC_LOCK: drop it for the child
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null || { echo "SKIP: running as root without setpriv"; exit 77; }
  LIM="setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock prlimit --memlock=65536:65536"
else
  LIM="prlimit --memlock=65536:65536"
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

$LIM "$CMIF" generate -m "$M" -p "" -n 20 --temp 0 >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; die "generate under 64 KiB memlock failed"; }
grep -q "core .*NOT LOCKED (RLIMIT_MEMLOCK 64 KiB)" "$tmp/err" || { cat "$tmp/err"; die "no plain 'NOT LOCKED' report"; }

$LIM "$CMIF" generate -m "$M" -p "" -n 20 --temp 0 --require-locked >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || die "--require-locked should refuse with exit 1 (got $rc)"
grep -q "require-locked" "$tmp/err" && grep -q "64 KiB" "$tmp/err" || { cat "$tmp/err"; die "refusal does not explain itself"; }
[ -s "$tmp/out" ] && die "--require-locked refused but printed output"

# 48 KiB fits under the limit: locked, and the 128 KiB table goes through the swap
$LIM "$CMIF" generate -m "$M" -p "" -n 200 --temp 0 --core-mem 48K --require-locked >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; die "a small locked core should run"; }
cmp "$tmp/out" "$G" || die "output through the swap differs from the golden text"
grep -q "core .* locked, swap [1-9][0-9]* pages out/[1-9][0-9]* in" "$tmp/err" || { cat "$tmp/err"; die "table was not served through the swap"; }
grep -q "NOT LOCKED" "$tmp/err" && die "48 KiB under a 64 KiB limit should be locked"

# cmif info --core reports the same, in full
"$CMIF" info -m "$M" --core >"$tmp/info" 2>&1 || { cat "$tmp/info"; die "info --core failed"; }
grep -q "^core:" "$tmp/info" && grep -q "dumpable *no" "$tmp/info" || die "info --core lacks its section"
# what is where: the noise state is in a region of the table's kind (memfd_secret here when
# the kernel has it), never in ordinary heap memory
grep -q "^    noise state  *\(memfd_secret, locked\|guarded mmap\)" "$tmp/info" || { cat "$tmp/info"; die "info --core does not say where the noise state is"; }
if grep -q "region *memfd_secret" "$tmp/info"; then
  grep -q "^    noise state  *memfd_secret" "$tmp/info" || { cat "$tmp/info"; die "the noise state is not in memfd_secret memory"; }
fi
grep -q "^    mechanism scratch" "$tmp/info" || die "info --core does not list the mechanism's scratch"
$LIM "$CMIF" info -m "$M" --core >"$tmp/info" 2>&1 || { cat "$tmp/info"; die "info --core under 64 KiB failed"; }
grep -q "locked *NOT LOCKED" "$tmp/info" && grep -q "RLIMIT_MEMLOCK 64" "$tmp/info" || { cat "$tmp/info"; die "info --core does not say NOT LOCKED"; }
$LIM "$CMIF" info -m "$M" --core --require-locked >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "require-locked" "$tmp/err" || die "info --core --require-locked should refuse (got $rc)"
$LIM "$CMIF" info -m "$M" --core --core-mem 48K >"$tmp/info" 2>&1 || die "info --core --core-mem 48K failed"
grep -q "locked *yes" "$tmp/info" && grep -q "partly in the encrypted swap" "$tmp/info" || { cat "$tmp/info"; die "48 KiB core: not locked or table not in the swap"; }

# bad --core-mem values are usage errors
"$CMIF" generate -m "$M" --core-mem lots >/dev/null 2>&1; [ $? -eq 2 ] || die "--core-mem lots should exit 2"
"$CMIF" info -m "$M" --core --core-mem 0 >/dev/null 2>&1; [ $? -eq 2 ] || die "--core-mem 0 should exit 2"
echo "core locked/not-locked: ok"
