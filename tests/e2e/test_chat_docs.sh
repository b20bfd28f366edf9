#!/bin/sh
# Issue 5 scope: `cmif --help` lists every subcommand and flag; assets/cmif.1 renders and
# covers every subcommand, every flag, the keys, the /commands, files and exit statuses.
. tests/e2e/lib.sh
T=$(mktemp -d /tmp/cmif-docs-XXXXXX)
trap 'rm -rf "$T"' EXIT
$CMIF --help > "$T/help" 2>&1 || die "cmif --help failed"
$CMIF --version | grep -qE '^cmif [0-9]+\.[0-9]+' || die "--version"
command -v man >/dev/null 2>&1 || { echo "SKIP: man not installed"; exit 77; }
MANWIDTH=100 man -l assets/cmif.1 > "$T/man" 2> "$T/man.err" || die "man page does not render"
[ -s "$T/man.err" ] && { cat "$T/man.err"; die "man page warnings"; }
subs=$(sed -n '/^Subcommands/,/^$/p' "$T/help" | awk 'NF > 1 && $1 != "Subcommands" {print $1}')
[ "$(echo "$subs" | wc -w)" -ge 7 ] || die "cmif --help lists too few subcommands: $subs"
for c in $subs; do
  grep -qE "^ +$c( |$)" "$T/man" || die "man page lacks the subcommand $c"
  $CMIF $c --help > "$T/h.$c" 2>&1 || die "cmif $c --help failed"
  for f in $(grep -oE -- '--[a-z][a-z0-9+-]*[a-z0-9]' "$T/h.$c" | sort -u); do
    grep -qF -- "$f" "$T/help" || die "cmif --help lacks $c's flag $f"
    grep -qF -- "$f" "$T/man" || die "the man page lacks $c's flag $f"
  done
done
for k in Ctrl-C Ctrl-D Ctrl-R PgUp F2 Tab; do grep -qF "$k" "$T/man" || die "man page lacks the key $k"; done
for c in $(grep -oE '^  /[a-z-]+' "$T/h.chat"); do
  grep -qE -- "^ +$c( |$)" "$T/man" || die "man page lacks the command $c"
done
for s in FILES "EXIT STATUS" ENVIRONMENT history CMIF_MODEL NO_COLOR cmif-tiny.gguf; do
  grep -qF "$s" "$T/man" || die "man page lacks $s"
done
for st in 0 1 2 3; do grep -qE "^ +$st( |$)" "$T/man" || die "man page lacks exit status $st"; done
echo "ok: --help and the man page cover $(echo $subs | wc -w) subcommands and all their flags"
