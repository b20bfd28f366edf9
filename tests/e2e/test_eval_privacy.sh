#!/bin/sh
# cmif eval-privacy end to end on stories260K and a slice of SST-2: table shape, ranges,
# more replacement at lower ε, the inversion rate equal to 1 - replaced (substitution
# mechanisms), reproducible with --seed, and clear usage errors. The token unit (--unit token);
# the word unit, the default, is measured on glove-llama3 in BENCHMARKS.md.
. tests/e2e/lib.sh
need_shared models/stories260K.gguf
need_shared data/sst2/glue_sst2_dev.tsv
need_shared data/sst2/stsa.binary.train
T=$(mktemp -d /tmp/cmif-e2e-evp-XXXXXX) || die "mktemp"
trap 'rm -rf "$T"' EXIT
E="$CMIF eval-privacy -m $SHARED/models/stories260K.gguf --data $SHARED/data/sst2/glue_sst2_dev.tsv --train $SHARED/data/sst2/stsa.binary.train --limit 120 -q --seed 3 --unit token"

$E --eps 0.5,8 >"$T/a" 2>"$T/a.err" || die "eval-privacy failed: $(cat "$T/a.err")"
$E --eps 0.5,8 >"$T/b" 2>/dev/null || die "second run failed"
cmp -s "$T/a" "$T/b" || die "seeded runs differ"
grep -q "^clean dev accuracy (ceiling): 0\.[0-9]*$" "$T/a" || die "no ceiling line"
grep -q "^mechanism  *eps  *replaced  *mean_cos  *nn_invert  *accuracy$" "$T/a" || die "no header"
n=$(grep -cE "^(rnm|rnm-exp|santext|custext) " "$T/a")
[ "$n" -eq 8 ] || die "expected 8 rows (4 mechanisms x 2 eps), got $n"
awk '$1 ~ /^(rnm|rnm-exp|santext|custext)$/ {
       for (i = 3; i <= 6; i++) if ($i < -1 || $i > 1) { print "range: " $0; bad = 1 }
       if ($1 != "santext" && ($5 + $3 < 0.99 || $5 + $3 > 1.01)) { print "inversion: " $0; bad = 1 }
       rep[$1 " " $2] = $3
     }
     END {
       if (!(rep["rnm 0.5"] > rep["rnm 8"])) { print "rnm: eps 8 replaces as much as 0.5"; bad = 1 }
       if (!(rep["custext 0.5"] > rep["custext 8"])) { print "custext: no eps effect"; bad = 1 }
       exit bad
     }' "$T/a" || die "table check failed: $(cat "$T/a")"

$CMIF eval-privacy -m x >/dev/null 2>&1; [ $? -eq 2 ] || die "missing --data/--train not a usage error"
$E --eps 0,1 >/dev/null 2>&1; [ $? -eq 2 ] || die "--eps 0 accepted"
$E --mechanisms rnm,bogus >/dev/null 2>&1; [ $? -eq 2 ] || die "unknown mechanism accepted"
echo "ok"
