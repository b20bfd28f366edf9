#!/bin/sh
# Files that hold what the user typed (/save, /save-history, --report-file, --screen-dump)
# are never written through a symbolic link and never left readable by others; in the chat
# an existing file is kept unless the user says /save! or /save-history!.
. tests/e2e/lib.sh
. tests/e2e/chat_model.inc
T=$(mktemp -d /tmp/cmif-files-XXXXXX)
trap 'rm -rf "$T"' EXIT
ARGS="-m $MODEL -s 1 --temp 0 -n 4 --no-history"
mode() { stat -c %a "$1"; }

# An existing 0644 file: /save and /save-history refuse it and leave it as it was...
for c in save save-history; do
  echo old > "$T/$c.out"; chmod 644 "$T/$c.out"
  printf 'Once upon a time\n/%s %s\n' "$c" "$T/$c.out" > "$T/s"
  $CMIF $ARGS --script "$T/s" > "$T/o" 2>&1 && { cat "$T/o"; die "/$c over an existing file succeeded"; }
  grep -q "already exists.*/$c! " "$T/o" || { cat "$T/o"; die "/$c did not say how to overwrite"; }
  [ "$(cat "$T/$c.out")" = old ] && [ "$(mode "$T/$c.out")" = 644 ] || die "/$c changed the file it refused"
  # ...and /save! and /save-history! overwrite it as 0600.
  printf 'Once upon a time\n/%s! %s\n' "$c" "$T/$c.out" > "$T/s"
  $CMIF $ARGS --script "$T/s" > "$T/o" 2>&1 || { cat "$T/o"; die "/$c! failed"; }
  [ "$(mode "$T/$c.out")" = 600 ] || die "/$c! left mode $(mode "$T/$c.out")"
  grep -q "Once upon a time" "$T/$c.out" || die "/$c! did not write the file"
  # A link is refused, with or without '!', and its target not created.
  ln -s "$T/$c.target" "$T/$c.link"
  for b in "" "!"; do
    printf 'Once\n/%s%s %s\n' "$c" "$b" "$T/$c.link" > "$T/s"
    $CMIF $ARGS --script "$T/s" > "$T/o" 2>&1 && die "/$c$b through a link succeeded"
    grep -q "symbolic link" "$T/o" || { cat "$T/o"; die "/$c$b: no clear message for a link"; }
    [ -e "$T/$c.target" ] && die "/$c$b created the link's target"
  done
done
echo "ok: /save and /save-history refuse links and existing files; ! overwrites as 0600"

# /save ~/FILE goes to $HOME.
mkdir "$T/home"
printf 'Once\n/save ~/t.md\n' > "$T/s"
HOME="$T/home" $CMIF $ARGS --script "$T/s" > /dev/null 2>&1 || die "/save ~/t.md failed"
[ -s "$T/home/t.md" ] || die "/save ~/t.md did not write to HOME"

# --report-file: an existing 0644 file becomes 0600; a link is refused.
echo old > "$T/r.json"; chmod 644 "$T/r.json"
printf 'Once\n' > "$T/s"
$CMIF $ARGS --script "$T/s" --report-file "$T/r.json" > /dev/null 2>&1 || die "--report-file failed"
[ "$(mode "$T/r.json")" = 600 ] || die "--report-file left mode $(mode "$T/r.json")"
ln -s "$T/r.target" "$T/r.link"
$CMIF $ARGS --script "$T/s" --report-file "$T/r.link" > "$T/o" 2>&1 && die "--report-file through a link succeeded"
grep -q "symbolic link" "$T/o" || { cat "$T/o"; die "--report-file: no clear message for a link"; }
[ -e "$T/r.target" ] && die "--report-file created the link's target"

# --screen-dump: the same.
echo old > "$T/dump"; chmod 644 "$T/dump"
printf 'Once\r' | $CMIF $ARGS --headless 40x10 --screen-dump "$T/dump" > /dev/null 2>&1 || die "headless run failed"
[ "$(mode "$T/dump")" = 600 ] && grep -q "Once" "$T/dump" || die "--screen-dump left mode $(mode "$T/dump") or no screen"
ln -s "$T/d.target" "$T/d.link"
printf 'Once\r' | $CMIF $ARGS --headless 40x10 --screen-dump "$T/d.link" > /dev/null 2>&1
[ -e "$T/d.target" ] && die "--screen-dump wrote through a link"
echo "ok: --report-file and --screen-dump refuse links and leave 0600 files"
