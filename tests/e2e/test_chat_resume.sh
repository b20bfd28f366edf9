#!/bin/sh
# /save FILE.json and --resume FILE: a two-turn conversation saved and resumed in a new
# process gives, with --temp 0, the same transcript and the same next answer as the
# uninterrupted session, and the replay charges no ε (the context is rebuilt from the
# saved sanitized inputs, not from the user's text). The file is 0600.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
T=$(mktemp -d /tmp/cmif-resume-XXXXXX); trap 'rm -rf "$T"' EXIT
# The same noise in both runs (--dp-seed): the two first messages are sanitized alike.
RUN="$CMIF -m $MODEL --temp 0 -n 24 --no-ledger --sanitize all --dp-seed 5 -q"
printf 'Once upon a time\nThe dog ran to the park\n/sanitize marked\nShe was happy\n/save %s\n' \
  "$T/full.md" > "$T/full.txt"
printf 'Once upon a time\nThe dog ran to the park\n/save %s\n' "$T/s.json" > "$T/part1.txt"
printf '/budget\n/sanitize marked\nShe was happy\n/save %s\n' "$T/res.md" > "$T/part2.txt"
$RUN --script "$T/full.txt" > "$T/full.out" 2>&1 || { cat "$T/full.out"; die "the whole session failed"; }
$RUN --script "$T/part1.txt" > "$T/p1.out" 2>&1 || { cat "$T/p1.out"; die "the first part failed"; }
[ "$(stat -c %a "$T/s.json")" = 600 ] || die "the session file is not 0600"
grep -q '"transcript"' "$T/s.json" && grep -q '"settings"' "$T/s.json" && grep -q '"sent"' "$T/s.json" \
  && grep -q '"report"' "$T/s.json" || die "the session file lacks transcript, settings, sanitized inputs or report"
$RUN --resume "$T/s.json" --script "$T/part2.txt" > "$T/p2.out" 2>"$T/p2.err" \
  || { cat "$T/p2.out" "$T/p2.err"; die "the resumed part failed"; }
grep -q "resumed .*2 messages replayed .*no ε charged" "$T/p2.err" || { cat "$T/p2.err"; die "no resume notice"; }
grep -q "this session: ε 0;" "$T/p2.out" || { cat "$T/p2.out"; die "the replay charged ε"; }
grep -q "^- budget: 0 spent" "$T/res.md" || { cat "$T/res.md"; die "the resumed session spent ε"; }
grep -v "^- budget:" "$T/full.md" > "$T/a"
grep -v "^- budget:" "$T/res.md" > "$T/b"
cmp -s "$T/a" "$T/b" || { diff "$T/a" "$T/b"; die "the resumed transcript or its next answer differs"; }
# Another model's session is refused, not replayed into the wrong embedding space.
if [ "$MODEL" != "$BUNDLED" ] && [ -e "$BUNDLED" ]; then
  $CMIF -m "$BUNDLED" --no-ledger -q --resume "$T/s.json" --script /dev/null 2>"$T/e" && die "another model's session was accepted"
  grep -q "another model" "$T/e" || { cat "$T/e"; die "no clear error for another model's session"; }
fi
echo "ok: /save FILE.json and --resume equal the uninterrupted session, no ε for the replay"
