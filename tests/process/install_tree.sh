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
# one version everywhere: tcmctl's, pkg-config's, the library's file name and tcm_version()
version=$("$prefix/bin/tcmctl" --version | sed -n 's/^tcmctl (tcm) \([0-9.]*\)$/\1/p')
[ -n "$version" ] || fail "tcmctl --version printed $("$prefix/bin/tcmctl" --version)"
[ "$(PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" pkg-config --modversion tcm)" = "$version" ] || fail "pkg-config --modversion"
cat > "$tmp/want" <<FILES
bin/tcmctl
include/tcm.h
$libdir/cmake/tcm/tcmConfig.cmake
$libdir/cmake/tcm/tcmConfigVersion.cmake
$libdir/cmake/tcm/tcmTargets.cmake
$libdir/libtcm.so.$version
$libdir/pkgconfig/tcm.pc
share/doc/tcm/README.md
share/doc/tcm/examples/systemd-tcm.conf
share/doc/tcm/examples/tcm.conf
share/man/man1/tcmctl.1
share/man/man3/tcm.3
share/man/man5/tcm.conf.5
FILES
sort -o "$tmp/want" "$tmp/want"
# the per-build-type half of the CMake export (tcmTargets-relwithdebinfo.cmake, ...) varies
grep -v '/tcmTargets-[a-z]*\.cmake$' "$tmp/files" > "$tmp/files.fixed"
diff -u "$tmp/want" "$tmp/files.fixed" || fail "install tree differs"
grep -q "^$libdir/cmake/tcm/tcmTargets-[a-z]*\.cmake$" "$tmp/files" || fail "no per-build-type tcmTargets file"
# the SONAME is libtcm.so.MAJOR, with the usual links
[ "$(readlink "$prefix/$libdir/libtcm.so.${version%%.*}")" = "libtcm.so.$version" ] || fail "libtcm.so.${version%%.*} link"
[ "$(readlink "$prefix/$libdir/libtcm.so")" = "libtcm.so.${version%%.*}" ] || fail "libtcm.so link"
soname=$(LC_ALL=C readelf -d "$prefix/$libdir/libtcm.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libtcm.so.${version%%.*}" ] || fail "SONAME is '$soname'"

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
	printf("%s %s\n", stats.allocated_bytes >= 1000 ? "ok" : "no", tcm_version());
	return 0;
}
C
# shellcheck disable=SC2086 # pkg-config output is meant to split
"$cc" -o "$tmp/linked" "$tmp/linked.c" $flags -Wl,-rpath,"$prefix/$libdir" || fail "compile against pkg-config flags"
[ "$("$tmp/linked")" = "ok $version" ] || fail "program linked with libtcm.so printed $("$tmp/linked")"
# the program records the SONAME, so a newer 0.x library serves it
LC_ALL=C readelf -d "$tmp/linked" | grep -q "NEEDED.*\[libtcm.so.${version%%.*}\]" || fail "linked program does not need the SONAME"

# find_package(tcm) in a CMake project against the tree: tcm::tcm carries the include dir
mkdir -p "$tmp/cmake-user"
cp "$tmp/linked.c" "$tmp/cmake-user/linked.c"
cat > "$tmp/cmake-user/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(tcm_user C)
find_package(tcm 0.1 REQUIRED)
add_executable(linked linked.c)
target_link_libraries(linked PRIVATE tcm::tcm)
CMAKE
"$cmake" -S "$tmp/cmake-user" -B "$tmp/cmake-user/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_BUILD_RPATH="$prefix/$libdir" > "$tmp/cmake-user.log" 2>&1 &&
	"$cmake" --build "$tmp/cmake-user/build" >> "$tmp/cmake-user.log" 2>&1 ||
	fail "find_package(tcm) project: $(tail -20 "$tmp/cmake-user.log")"
[ "$("$tmp/cmake-user/build/linked")" = "ok $version" ] || fail "find_package(tcm) program printed $("$tmp/cmake-user/build/linked")"
# and a version the package cannot satisfy is refused
sed -i 's/find_package(tcm 0.1 REQUIRED)/find_package(tcm 1 REQUIRED)/' "$tmp/cmake-user/CMakeLists.txt"
"$cmake" -S "$tmp/cmake-user" -B "$tmp/cmake-user/build1" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null 2>&1 &&
	fail "find_package(tcm 1) accepted version $version"

# the installed tcmctl preloads the installed library without --lib
"$prefix/bin/tcmctl" run -- sh -c 'printf "%s\n" "$LD_PRELOAD"' > "$tmp/preload" || fail "installed tcmctl run"
[ "$(cat "$tmp/preload")" = "$(realpath "$prefix/$libdir/libtcm.so")" ] || fail "tcmctl run preloaded $(cat "$tmp/preload")"
"$prefix/bin/tcmctl" check "$prefix/share/doc/tcm/examples/tcm.conf" > "$tmp/check" 2>&1 || fail "example tcm.conf: $(cat "$tmp/check")"

# drop-in: the installed library, and nothing that could shorten a unit's stop or narrow its
# NotifyAccess (tcmctl dropin works those out per unit); the deadline it names is tcmctl's
dropin=$prefix/share/doc/tcm/examples/systemd-tcm.conf
grep -qx "Environment=LD_PRELOAD=$prefix/$libdir/libtcm.so.${version%%.*}" "$dropin" || fail "drop-in LD_PRELOAD: $(grep LD_PRELOAD "$dropin")"
grep -Eq '^(TimeoutStopSec|TimeoutSec|NotifyAccess)' "$dropin" && fail "drop-in sets $(grep -E '^(Timeout|Notify)' "$dropin")"
deadline=$(TCM_CONF=/dev/null "$prefix/bin/tcmctl" show | sed -n 's/^  deadline_ms = \([0-9]*\);.*/\1/p')
grep -q "default $deadline ms" "$dropin" || fail "drop-in does not name the default deadline ${deadline} ms"
echo "ok: install tree at $prefix"
cat "$tmp/files"
exit 0
