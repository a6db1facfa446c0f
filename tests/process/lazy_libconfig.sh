#!/bin/sh
# tests/process/lazy_libconfig.sh - libtcm.so maps libconfig only when there is a tcm.conf to
# parse (conf/libconfig_functions.c): a process with no file has no libconfig in its maps and
# libtcm.so does not need it; with a file, it is loaded and the file's settings apply.
#
# Usage: lazy_libconfig.sh LIBTCM   (exit 0 pass, 1 fail, 2 usage)
set -u
lib=${1:-}
[ -f "$lib" ] || { echo "usage: lazy_libconfig.sh LIBTCM" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-lazy.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(TCM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

fail() {
	echo "FAIL [lazy_libconfig]: $*"
	exit 1
}

LC_ALL=C readelf -d "$lib" | grep -q 'NEEDED.*libconfig' && fail "libtcm.so needs libconfig: $(readelf -d "$lib" | grep NEEDED)"

# no file to parse (a missing one is reported): libconfig is never mapped
# (python, which exits through exit(): coreutils close stderr before tcm's exit report, and
# dash ends with _exit)
maps='import sys; sys.stdout.write(open("/proc/self/maps").read())'
TCM_CONF=$tmp/missing.conf LD_PRELOAD=$lib python3 -c "$maps" > "$tmp/maps" 2> "$tmp/err" || fail "python3 under libtcm.so"
grep -q libconfig "$tmp/maps" && fail "libconfig mapped with no file to parse"
grep -q "missing.conf: cannot read" "$tmp/err" || fail "missing file not reported: $(cat "$tmp/err")"

# a file: libconfig is loaded, and what the file says is done (stats at exit on stderr)
printf 'stats: { on_exit = "stderr"; };\n' > "$tmp/stats.conf"
TCM_CONF=$tmp/stats.conf LD_PRELOAD=$lib python3 -c "$maps" > "$tmp/maps" 2> "$tmp/err" || fail "python3 with a file"
grep -q libconfig "$tmp/maps" || fail "libconfig not mapped with a file to parse"
grep -q '^  heap_allocated_bytes ' "$tmp/err" || fail "stats.on_exit from the file not applied: $(cat "$tmp/err")"
echo "ok: lazy libconfig"
