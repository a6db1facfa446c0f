#!/bin/sh
# tests/process/install_tree.sh - `cmake --install` into a scratch prefix gives a working tree:
# exactly the expected files; pkg-config --cflags --libs tcm (against the tree) builds and
# links a program that calls tcm_* directly; the installed tcmctl finds the installed
# libtcm.so by itself for `run`; the example tcm.conf checks clean; and the systemd drop-in
# preloads the installed library and sets no stop timeout or NotifyAccess.
#
# Usage: install_tree.sh CMAKE BUILD_DIR CC   (exit 0 pass, 1 fail, 2 usage)
set -u
cmake=${1:-} build=${2:-} cc=${3:-}
[ -n "$cmake" ] && [ -d "$build" ] && [ -n "$cc" ] || { echo "usage: install_tree.sh CMAKE BUILD_DIR CC" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-install.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
unset TCM_CONF TCM_LIB LD_PRELOAD
for v in $(env | sed -n 's/^\(TCM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

fail() {
	echo "FAIL [install_tree]: $*"
	exit 1
}

prefix=$tmp/prefix
"$cmake" --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 || fail "cmake --install: $(cat "$tmp/install.log")"
libdir=$(cd "$prefix" && ls -d lib*/ 2>/dev/null | head -1)
libdir=${libdir%/}
[ -f "$prefix/$libdir/libtcm.so" ] || libdir=$(cd "$prefix" && dirname "$(find . -name libtcm.so | head -1)" | sed 's|^\./||')
(cd "$prefix" && find . -type f | sed 's|^\./||' | sort) > "$tmp/files"
cat > "$tmp/want" <<FILES
bin/tcmctl
include/tcm.h
$libdir/libtcm.so
$libdir/pkgconfig/tcm.pc
share/doc/tcm/README.md
share/doc/tcm/examples/systemd-tcm.conf
share/doc/tcm/examples/tcm.conf
FILES
sort -o "$tmp/want" "$tmp/want"
diff -u "$tmp/want" "$tmp/files" || fail "install tree differs"

# pkg-config against the tree, then a program linked with libtcm.so (no preload)
flags=$(PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" pkg-config --cflags --libs tcm) || fail "pkg-config --libs tcm"
flags=${flags% }
[ "$flags" = "-I$prefix/include -L$prefix/$libdir -ltcm" ] || fail "pkg-config printed '$flags'"
cat > "$tmp/linked.c" <<'C'
#include <stdio.h>
#include <tcm.h>
int main(void)
{
	void *p = tcm_malloc(1000);
	struct tcm_stats stats;
	tcm_stats(&stats);
	tcm_free(p);
	printf("%s\n", stats.allocated_bytes >= 1000 ? "ok" : "no");
	return 0;
}
C
# shellcheck disable=SC2086 # pkg-config output is meant to split
"$cc" -o "$tmp/linked" "$tmp/linked.c" $flags -Wl,-rpath,"$prefix/$libdir" || fail "compile against pkg-config flags"
[ "$("$tmp/linked")" = ok ] || fail "program linked with libtcm.so"

# the installed tcmctl preloads the installed library without --lib
"$prefix/bin/tcmctl" run -- sh -c 'printf "%s\n" "$LD_PRELOAD"' > "$tmp/preload" || fail "installed tcmctl run"
[ "$(cat "$tmp/preload")" = "$(realpath "$prefix/$libdir/libtcm.so")" ] || fail "tcmctl run preloaded $(cat "$tmp/preload")"
"$prefix/bin/tcmctl" check "$prefix/share/doc/tcm/examples/tcm.conf" > "$tmp/check" 2>&1 || fail "example tcm.conf: $(cat "$tmp/check")"

# drop-in: the installed library, and nothing that could shorten a unit's stop or narrow its
# NotifyAccess (tcmctl dropin works those out per unit); the deadline it names is tcmctl's
dropin=$prefix/share/doc/tcm/examples/systemd-tcm.conf
grep -qx "Environment=LD_PRELOAD=$prefix/$libdir/libtcm.so" "$dropin" || fail "drop-in LD_PRELOAD: $(grep LD_PRELOAD "$dropin")"
grep -Eq '^(TimeoutStopSec|TimeoutSec|NotifyAccess)' "$dropin" && fail "drop-in sets $(grep -E '^(Timeout|Notify)' "$dropin")"
deadline=$(TCM_CONF=/dev/null "$prefix/bin/tcmctl" show | sed -n 's/^  deadline_ms = \([0-9]*\);.*/\1/p')
grep -q "default $deadline ms" "$dropin" || fail "drop-in does not name the default deadline ${deadline} ms"
echo "ok: install tree at $prefix"
cat "$tmp/files"
exit 0
