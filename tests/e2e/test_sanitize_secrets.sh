#!/bin/sh
# The default word mode on personal requests (names, card and phone numbers, e-mails, dates,
# cities): every secret is sanitized or randomized (never public), is sent unchanged no more
# often than the mechanism allows (on average at most e^eps/K over repeated runs; a random
# treatment counts as unchanged only when identical), and at least 80% of the ordinary words
# are sent as typed. Requests: tests/e2e/data/personal-requests.txt (secrets inside [ ]).
. "$(dirname "$0")/lib.sh"
need_shared models/glove-llama3.gguf
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }
DATA=$(dirname "$0")/data/personal-requests.txt
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
grep -v '^#' "$DATA" | tr -d '[]' > "$T/text"
RUNS=${SECRETS_RUNS:-4}
i=0
while [ $i -lt "$RUNS" ]; do
  "$CMIF" sanitize --json --no-ledger -q --cache-dir "$T/cache" -m "$SHARED/models/glove-llama3.gguf" \
    -f "$T/text" > "$T/run$i.json" 2> "$T/err" || { cat "$T/err"; die "cmif sanitize failed"; }
  i=$((i + 1))
done
python3 - "$DATA" "$T" "$RUNS" <<'PY' || exit 1
import json, math, re, sys
data, tmp, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
secret = set()
for line in open(data):
    if line.startswith('#'):
        continue
    for span in re.findall(r'\[([^\]]*)\]', line):
        secret.update(w.lower() for w in re.findall(r'[A-Za-z0-9]+', span))
K, eps = 20, 1.0
n_sec = unchanged = n_ord = ord_kept = 0
public_secrets = set()
for r in range(runs):
    units = json.load(open('%s/run%d.json' % (tmp, r)))['units']
    for u in units:
        o = u['original'].strip()
        if not re.fullmatch(r"[A-Za-z0-9']+", o):
            continue
        if o.lower() in secret:
            n_sec += 1
            if u['treatment'] not in ('kept', 'replaced', 'random'):
                public_secrets.add('%s (%s)' % (o, u['treatment']))
            unchanged += u['sent'].strip() == o
        elif re.fullmatch(r"[A-Za-z']+", o):
            n_ord += 1
            ord_kept += u['sent'] == u['original']
bound = math.exp(eps) / K
rate, kept = unchanged / n_sec, ord_kept / n_ord
print('secrets: %d units over %d runs, unchanged %.3f (bound e^eps/K = %.3f); ordinary words kept %.3f of %d'
      % (n_sec, runs, rate, bound, kept, n_ord))
ok = True
if public_secrets:
    print('FAIL: secrets treated as public: ' + ', '.join(sorted(public_secrets)))
    ok = False
if rate > bound:
    print('FAIL: secrets sent unchanged %.3f of the time, above e^eps/K = %.3f' % (rate, bound))
    ok = False
if kept < 0.8:
    print('FAIL: only %.3f of the ordinary words sent as typed (want >= 0.8)' % kept)
    ok = False
sys.exit(0 if ok else 1)
PY
echo "PASS: test_sanitize_secrets"
