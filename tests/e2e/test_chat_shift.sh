#!/bin/sh
# A scripted session of 60 messages on a 96-token context fills it again and again: each
# time the oldest turns leave the model's context (cache shifted, nothing replayed), the
# user is told, every message is answered, and the ε spent is the sum of the messages'
# charges (nothing is charged again when turns are dropped). A message that cannot fit the
# context by its byte length alone is refused, naming its size and the context's, before
# anything is charged; a 10 MB one is refused too.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
T=$(mktemp -d /tmp/cmif-shift-XXXXXX)
trap 'rm -rf "$T"' EXIT
W="the cat sat on mat Lily went park happy dog big red ball"
i=0
while [ $i -lt 60 ]; do
  set -- $W; shift $((i % 7)); echo "$1 $2 $3 $4 $5 $6"; i=$((i + 1))
done > "$T/s"
$CMIF -m $MODEL --temp 0 -n 16 -c 96 --no-ledger --script "$T/s" --report-file "$T/r.json" \
  > "$T/out" 2>&1 || { tail -20 "$T/out"; die "60-message session on a 96-token context failed"; }
[ "$(grep -c '^> ' "$T/out")" -eq 60 ] || die "a message was lost when the context filled"
n=$(grep -c "^\* context full (.*dropped the .* oldest turn.* from the model's context" "$T/out")
[ "$n" -ge 3 ] || { cat "$T/out"; die "the context filled only $n times (expected several)"; }
if command -v python3 >/dev/null 2>&1; then
  python3 - "$T/out" "$T/r.json" <<'PY' || die "answers or ε totals wrong after context shifts"
import json, re, sys
out = open(sys.argv[1]).read().split("\n")
# Every message gets an answer with words in it, shifts or not.
blocks, cur = [], None
for line in out:
    if line.startswith("> "):
        cur = []
        blocks.append(cur)
    elif cur is not None and not line.startswith("* "):
        cur.append(line)
assert len(blocks) == 60, len(blocks)
for i, b in enumerate(blocks):
    assert re.search(r"[A-Za-z]{2}", " ".join(b)), (i, b)
r = json.load(open(sys.argv[2]))
msgs = r["messages"]
assert len(msgs) == 60, len(msgs)
per = sum(m["eps"] for m in msgs)
tok = sum(t["eps"] for m in msgs for t in m["tokens"])
assert per > 0
assert abs(per - tok) < 1e-9 and abs(per - r["eps_total"]) < 1e-9, (per, tok, r["eps_total"])
assert abs(r["eps_total"] - r["budget_spent"]) < 1e-9, (r["eps_total"], r["budget_spent"])
PY
else
  echo "note: python3 missing, answers and ε totals not checked"
fi

# Too long for the context by its byte length: refused before tokenizing, nothing charged.
head -c 40000 /dev/zero | tr '\0' 'a' > "$T/long"; echo >> "$T/long"
printf '/budget\n' >> "$T/long"
$CMIF -m $MODEL --temp 0 -n 4 -c 32 --no-ledger --script "$T/long" > "$T/lo" 2>&1 && die "the long message was not refused"
grep -q "message too long: 40000 bytes cannot fit the context of 32 tokens (not sent, nothing charged)" "$T/lo" \
  || { cat "$T/lo"; die "no clear refusal of a message longer than the context"; }
# 10 MB: refused as a whole, never tokenized.
head -c 10000000 /dev/zero | tr '\0' 'b' > "$T/big"; echo >> "$T/big"
$CMIF -m $MODEL --temp 0 -n 4 -c 512 --no-ledger --script "$T/big" > "$T/bo" 2>&1 && die "the 10 MB message was not refused"
grep -q "message refused: longer than 64 KiB" "$T/bo" || { cat "$T/bo"; die "no clear refusal of a 10 MB message"; }
again_on_bundled
echo "ok: context shifts keep every message answered, ε charged once, long messages refused"
