#!/bin/sh
# A scripted session of 5 messages and 3 commands gives the same
# transcript twice with the same seeds; piping it on stdin gives the same as --script; the
# JSON report's ε totals equal the budget accountant's. /save and /save-history work.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
T=$(mktemp -d /tmp/cmif-script-XXXXXX)
trap 'rm -rf "$T"' EXIT
S=assets/scripts/demo.txt
[ "$(grep -v '^#' $S | grep -c '^/')" -eq 3 ] || die "demo script should hold 3 commands"
# --no-ledger: the two runs must not see each other's charges in /budget.
ARGS="-m $MODEL -s 42 --dp-seed 7 --temp 0.8 -n 24 --no-ledger"

$CMIF $ARGS --script $S > "$T/a" 2>"$T/a.err" || { cat "$T/a.err"; die "--script run failed"; }
$CMIF $ARGS --script $S > "$T/b" 2>/dev/null || die "second --script run failed"
cmp -s "$T/a" "$T/b" || { diff "$T/a" "$T/b"; die "same seeds gave different transcripts"; }
[ "$(grep -c '^> [^/]' "$T/a")" -eq 6 ] || { cat "$T/a"; die "expected 5 messages (one of two lines)"; }
grep -q "^\* budget: " "$T/a" || die "/budget output missing"
grep -q "^\* mechanism is now rnm-exp" "$T/a" || die "/mechanism output missing"

$CMIF $ARGS < $S > "$T/c" 2>/dev/null || die "stdin run failed"
cmp -s "$T/a" "$T/c" || { diff "$T/a" "$T/c"; die "stdin-pipe mode differs from --script"; }

$CMIF $ARGS --script $S --report json > "$T/r.json" 2>/dev/null || die "--report json failed"
$CMIF $ARGS --script $S --report-file "$T/r2.json" > "$T/d" 2>/dev/null || die "--report-file failed"
cmp -s "$T/a" "$T/d" || die "--report-file changed the transcript"
cmp -s "$T/r.json" "$T/r2.json" || die "--report json and --report-file differ"
if command -v python3 >/dev/null 2>&1; then
  python3 - "$T/r.json" <<'PY' || die "JSON report totals do not match the accountant"
import json, sys
r = json.load(open(sys.argv[1]))
msgs = r["messages"]
assert len(msgs) == 5, len(msgs)
tok = sum(t["eps"] for m in msgs for t in m["tokens"])
per = sum(m["eps"] for m in msgs)
assert abs(per - r["eps_total"]) < 1e-9, (per, r["eps_total"])
assert abs(tok - r["eps_total"]) < 1e-9, (tok, r["eps_total"])
assert abs(r["eps_total"] - r["budget_spent"]) < 1e-9, (r["eps_total"], r["budget_spent"])
assert all(m["n_tokens"] == len(m["tokens"]) > 0 for m in msgs)
# /eps 0.5 after the first message: later sanitized tokens cost 0.5
assert all(t["eps"] in (0, 0.5) for m in msgs[1:] for t in m["tokens"]), msgs[1]
assert r["exit_status"] == 0
PY
else
  echo "note: python3 missing, JSON totals not checked"
fi

# /save writes Markdown with the per-token report; /save-history writes a replayable script.
printf 'Once upon a time\n/save %s\n/save-history %s\n' "$T/t.md" "$T/h.txt" > "$T/s2"
$CMIF $ARGS --script "$T/s2" > /dev/null 2>&1 || die "/save session failed"
grep -q "^## You" "$T/t.md" && grep -q "| # | typed | sent | treatment | ε |" "$T/t.md" \
  || { cat "$T/t.md"; die "/save Markdown lacks the report"; }
grep -qx "Once upon a time" "$T/h.txt" || die "/save-history misses the message"
for f in t.md h.txt r2.json; do   # they hold the user's words in clear: owner only
  [ "$(stat -c %a "$T/$f")" = 600 ] || die "$f has mode $(stat -c %a "$T/$f"), not 600"
done
# An answer cut by -n says so (it is not the model's own end).
printf 'Once upon a time\n' | $CMIF -m $MODEL --temp 0 -n 2 --mechanism none > "$T/cut" 2>/dev/null \
  || die "-n 2 run failed"
grep -qx "\* answer cut at 2 tokens (-n)" "$T/cut" || { cat "$T/cut"; die "no notice that -n cut the answer"; }
# A small context fills: the oldest turns are dropped and the user is told, never silently.
printf 'Once upon a time there was a dog\nThe cat sat on the mat\nLily went to the park\n' |
  $CMIF -m $MODEL --temp 0 -n 30 -c 64 > "$T/ctx" 2>&1 || { cat "$T/ctx"; die "small-context run failed"; }
grep -q "^\* context full (.*dropped the 1 oldest turn" "$T/ctx" || { cat "$T/ctx"; die "no notice when the context filled"; }
[ "$(grep -c '^> ' "$T/ctx")" -eq 3 ] || die "a message was lost when the context filled"
again_on_bundled
echo "ok: scripted sessions reproducible, stdin = --script, report totals match"
