#!/bin/sh
# cmif sanitize end to end: report shape, seeded reproducibility and its warning, budget
# refusal (exit 3), bad ε (exit 2), the public set in --help and in the report.
. tests/e2e/lib.sh
need_shared models/stories260K.gguf
M=$SHARED/models/stories260K.gguf
T=$(mktemp -d /tmp/cmif-e2e-san-XXXXXX) || die "mktemp"
trap 'rm -rf "$T"' EXIT
S="$CMIF sanitize -m $M --cache-dir $T/cache -q"

$S --seed 7 "my card number is 4921, Lily said." >"$T/a" 2>"$T/a.err" || die "sanitize failed: $(cat "$T/a.err")"
$S --seed 7 "my card number is 4921, Lily said." >"$T/b" 2>/dev/null || die "second run failed"
cmp -s "$T/a" "$T/b" || die "seeded runs differ"
grep -q "NOT private" "$T/a.err" || die "seeded run did not warn"
grep -q "^#  *original  *sent  *treatment" "$T/a" || die "no report header"
grep -q "'4'  *'.*'  *\(replaced\|kept\)  *1  *20" "$T/a" || die "digit not sanitized at eps 1, K 20"
grep -q "','  *','  *public  *0" "$T/a" || die "comma not public"
grep -q "message ε 17 " "$T/a" || die "message cost is not n x eps: $(tail -2 "$T/a")"
grep -q "^public set in force" "$T/a" || die "report does not name the public set"

$S "hello" 2>"$T/u.err" >/dev/null || die "unseeded run failed"
grep -q "NOT private" "$T/u.err" && die "unseeded run warned as seeded"

$S --budget 3 "hello there friend" >/dev/null 2>"$T/c.err"
[ $? -eq 3 ] || die "over-budget message was not refused with exit 3"
grep -q "would cost ε = 5 but only 3" "$T/c.err" || die "refusal does not say cost and remainder"

for e in nan -1 0 inf; do
  $S --eps $e x >/dev/null 2>&1
  [ $? -eq 2 ] || die "--eps $e accepted"
done
$CMIF sanitize --help | grep -q "public set in force" || die "--help does not print the public set"
for m in rnm-exp santext+ custext+; do
  $S --seed 1 --mechanism $m "the cat sat on the mat" >/dev/null 2>&1 || die "mechanism $m failed"
done
echo "ok"
