#!/bin/sh
# tests/process/man_pages.sh - the man pages the build writes (tools/man.py) render without a
# warning (groff -ww) and say what the program says: tcm.conf(5) has every key `tcmctl keys`
# lists with its variable, tcmctl(1) every SYNOPSIS line of `tcmctl --help`, tcm(3) every tcm_
# function include/tcm.h declares; `man -l` shows each.
#
# Usage: man_pages.sh TCMCTL MAN_DIR TCM_H   (exit 0 pass, 1 fail, 2 usage, 77 no groff/man)
set -u
tcmctl=${1:-} man_dir=${2:-} tcm_h=${3:-}
[ -x "$tcmctl" ] && [ -d "$man_dir" ] && [ -f "$tcm_h" ] || { echo "usage: man_pages.sh TCMCTL MAN_DIR TCM_H" >&2; exit 2; }
command -v groff > /dev/null && command -v man > /dev/null || { echo "SKIP: no groff or man (apt-get install man-db)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-man.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL [man_pages]: $*"
	exit 1
}

for page in tcmctl.1 tcm.conf.5 tcm.3; do
	[ -s "$man_dir/$page" ] || fail "$page missing"
	groff -man -Tutf8 -ww -z "$man_dir/$page" > "$tmp/warnings" 2>&1
	[ -s "$tmp/warnings" ] && fail "$page: $(cat "$tmp/warnings")"
	MANWIDTH=200 man -l "$man_dir/$page" 2> "$tmp/err" | col -b > "$tmp/$page.txt"
	[ -s "$tmp/err" ] && fail "man -l $page: $(cat "$tmp/err")"
	head -1 "$tmp/$page.txt" | grep -q "^$(echo "${page%.*}" | tr a-z A-Z)(${page##*.})" || fail "$page: header $(head -1 "$tmp/$page.txt")"
done

"$tcmctl" keys | sed -n 's/^| `\([a-z_.]*\)` |.*| `\(TCM_[A-Z_]*\)` |.*/\1 \2/p' > "$tmp/keys"
[ -s "$tmp/keys" ] || fail "tcmctl keys listed nothing"
while read -r key variable; do
	grep -q "^ *$key (" "$tmp/tcm.conf.5.txt" || fail "tcm.conf(5) lacks $key"
	grep -q "Variable: $variable\." "$tmp/tcm.conf.5.txt" || fail "tcm.conf(5) lacks $variable"
done < "$tmp/keys"

"$tcmctl" --help | sed -n '/^SYNOPSIS/,/^$/p' | sed '1d;/^$/d;s/^ *//' > "$tmp/synopsis"
while read -r line; do
	grep -qF "$line" "$tmp/tcmctl.1.txt" || fail "tcmctl(1) lacks '$line'"
done < "$tmp/synopsis"

sed -n 's/.*\b\(tcm_[a-z_]*\)(.*/\1/p' "$tcm_h" | sort -u > "$tmp/functions"
[ -s "$tmp/functions" ] || fail "no tcm_ function in $tcm_h"
while read -r function; do
	grep -q "$function(" "$tmp/tcm.3.txt" || fail "tcm(3) lacks $function"
done < "$tmp/functions"
echo "ok: man pages"
