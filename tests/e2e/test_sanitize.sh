#!/bin/sh
# cmif sanitize end to end: report shape, seeded reproducibility and its warning, budget
# refusal (exit 3), bad ε (exit 2), the public set in --help and in the report; the word
# unit (default) and --json; the per-user ledger across runs (exit 3 when today's budget is
# spent, 0600, a tampered ledger refused).
. tests/e2e/lib.sh
need_shared models/stories260K.gguf
M=$SHARED/models/stories260K.gguf
T=$(mktemp -d /tmp/cmif-e2e-san-XXXXXX) || die "mktemp"
trap 'rm -rf "$T"' EXIT
export XDG_STATE_HOME="$T/state"
S="$CMIF sanitize -m $M --cache-dir $T/cache -q --no-ledger --unit token"
W="$CMIF sanitize -m $M --cache-dir $T/cache -q"

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
# The word unit: a name is sanitized into a whole word (ε once), a number randomized (ε 0),
# common words and punctuation sent as typed.
$W --no-ledger --seed 3 "my card number is 4921, Lily said." >"$T/w" 2>/dev/null || die "word unit failed"
grep -q "' 4921'  *'.*'  *random  *0" "$T/w" || die "number not randomized: $(cat "$T/w")"
grep -q "' Lily'  *'.*'  *\(replaced\|kept\)  *1 " "$T/w" || die "name not sanitized: $(cat "$T/w")"
grep -q "' card'  *' card'  *public  *0" "$T/w" || die "common word not public: $(cat "$T/w")"
grep -q "message ε 1 (1 words" "$T/w" || die "word cost is not words x eps: $(tail -2 "$T/w")"
$W --no-ledger --seed 3 --json "my card number is 4921, Lily said." >"$T/j" 2>/dev/null || die "--json failed"
python3 - "$T/j" <<'PY' || die "--json object wrong: $(cat "$T/j")"
import json, sys
o = json.load(open(sys.argv[1]))
assert set(['sent', 'eps_message', 'eps_left_today', 'units']) <= set(o), o.keys()
assert o['eps_message'] == 1 and o['unit'] == 'word' and o['ledger'] is False, o
u = {x['original'].strip(): x for x in o['units']}
assert u['4921']['treatment'] == 'random' and u['Lily']['treatment'] in ('replaced', 'kept')
assert u['card']['treatment'] == 'public' and u['card']['sent'] == ' card'
assert o['sent'].startswith('my card number is ') and o['sent'].endswith(' said.'), o['sent']
PY

# Wide characters: a CJK word and an emoji print as themselves (not as byte escapes) and
# every row's columns start at the same display column; with the token unit an emoji split
# into byte tokens is shown as the character on each of its byte rows.
for u in word token; do
  LC_ALL=C.UTF-8 $W --no-ledger --seed 3 --unit $u "猫が好き 🐶 dog" >"$T/cjk.$u" 2>/dev/null || die "CJK text failed"
  python3 - "$T/cjk.$u" $u <<'PY' || die "CJK/emoji report wrong ($u): $(cat "$T/cjk.$u")"
import sys, unicodedata
# line 1 is the sent text as bytes (byte tokens drawn at random need not be UTF-8)
rows = open(sys.argv[1], encoding='utf-8', errors='replace').read().splitlines()
def width(s):
    return sum(2 if unicodedata.east_asian_width(c) in 'WF' else 0 if unicodedata.combining(c) else 1 for c in s)
head = rows[1]
cols = [width(head[:head.index(k)]) for k in ('sent', 'treatment')]
body = [r for r in rows[2:] if r[:1].isdigit()]
assert body, rows
import re
for r in body:
    # row = "N    'orig'<pad> 'sent'<pad> kind ...": the sent cell and the kind start where
    # the header's "sent" and "treatment" do, in display columns
    m = re.match(r"^(\d+ +)('[^']*'(?: \d/\d)?) +('[^']*'(?: \d/\d)?) +(\S+)", r)
    assert m, r
    assert width(r[:m.start(3)]) == cols[0], (r, width(r[:m.start(3)]), cols)
    assert width(r[:m.start(4)]) == cols[1], (r, width(r[:m.start(4)]), cols)
origs = [r.split("'")[1] for r in body]
assert any('🐶' in o for o in origs), origs
assert not any(o in ('\\xf0', '\\x9f', '\\x90', '\\xb6') for o in origs), origs
if sys.argv[2] == 'word':
    assert any(o == '猫が好き' for o in origs), origs
PY
done

# The ledger: the day's budget holds across runs (3 words x ε 1 twice does not fit in 5).
$W --budget 5 --sanitize all "big red dog" >/dev/null 2>"$T/l1.err" || die "first charged run failed: $(cat "$T/l1.err")"
$W --budget 5 --sanitize all "big red dog" >/dev/null 2>"$T/l2.err"
[ $? -eq 3 ] || die "second run over the day's budget was not refused with exit 3"
grep -q "only 2 of today's budget 5 is left" "$T/l2.err" || die "refusal does not say what is left today: $(cat "$T/l2.err")"
L="$XDG_STATE_HOME/cmif/ledger"
[ "$(stat -c %a "$L")" = 600 ] || die "ledger mode is $(stat -c %a "$L"), not 600"
printf 'X' | dd of="$L" bs=1 seek=20 conv=notrunc 2>/dev/null
$W --budget 5 "hello" >/dev/null 2>"$T/l3.err"
[ $? -eq 1 ] || die "a tampered ledger was not refused"
grep -q "ledger" "$T/l3.err" || die "the refusal does not name the ledger: $(cat "$T/l3.err")"
echo "ok"
