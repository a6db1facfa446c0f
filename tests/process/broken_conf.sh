#!/bin/sh
# tests/process/broken_conf.sh - a broken tcm.conf never breaks the host (DESIGN invariant 6):
# a real program (sort) under LD_PRELOAD=libtcm.so with TCM_CONF naming a broken file runs to
# completion with the right output and exit status 0, and its stderr holds exactly the
# documented "tcm: ..." lines; malloc was really tcm's (LD_DEBUG=bindings).
#
# Usage: broken_conf.sh /path/to/libtcm.so syntax|values|missing|flood|env|valid
# Exit 0 pass, 1 fail, 2 usage.
set -u

lib=${1:-}
case_name=${2:-}
[ -f "$lib" ] || { echo "usage: broken_conf.sh LIBTCM CASE" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-broken-conf.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2
unset TCM_CONF LD_PRELOAD
for v in $(env | sed -n 's/^\(TCM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
mkdir ld

fail() {
	echo "FAIL [$case_name]: $*"
	exit 1
}

# run_sort [VAR=value...]: sort of a 20000-line file under the shim, env as given.
run_sort() {
	awk 'BEGIN { for (i = 0; i < 20000; i++) printf "%08d line\n", (i * 7919) % 20000 }' > input.txt
	LC_ALL=C sort input.txt > want.txt
	env "$@" LC_ALL=C LD_PRELOAD="$lib" LD_DEBUG=bindings LD_DEBUG_OUTPUT="$tmp/ld/debug" \
		sort input.txt > out.txt 2> err.txt
	status=$?
	[ "$status" -eq 0 ] || fail "sort exited $status; stderr: $(cat err.txt)"
	cmp -s want.txt out.txt || fail "sort under the shim printed different output"
	lib_name=$(basename "$lib")
	cat ld/debug.* | grep -Eq "binding file [^ ]*sort \\[[0-9]+\\] to [^ ]*/$lib_name \\[[0-9]+\\]: normal symbol \`malloc'" ||
		fail "malloc of sort was not bound to $lib_name"
}

expect_stderr() {
	diff -u want_err err.txt || fail "stderr differs from the documented lines"
}

case "$case_name" in
syntax)
	printf 'exit: { deadline_ms = 1500; };\ncache: { thread_max_kib = 64 \n' > tcm.conf
	run_sort TCM_CONF="$tmp/tcm.conf"
	echo "tcm: $tmp/tcm.conf:3: syntax error; the whole file is ignored" > want_err
	expect_stderr
	;;
values)
	cat > tcm.conf <<'CONF'
exit: { dedline_ms = 1500; margin_ms = "abc"; };
cache: { thread_max_kib = 1; total_max_mib = 1; };
CONF
	run_sort TCM_CONF="$tmp/tcm.conf"
	cat > want_err <<ERR
tcm: $tmp/tcm.conf:1: unknown key exit.dedline_ms (did you mean exit.deadline_ms?)
tcm: $tmp/tcm.conf:1: exit.margin_ms: expected an integer from 0 to 599999 (milliseconds), got "abc"
tcm: $tmp/tcm.conf:2: cache.thread_max_kib: expected an integer from 64 to 1048576 (KiB), got 1
ERR
	expect_stderr
	;;
missing)
	run_sort TCM_CONF="$tmp/none.conf"
	echo "tcm: $tmp/none.conf: cannot read: No such file or directory; using defaults" > want_err
	expect_stderr
	;;
flood)
	i=0
	: > tcm.conf
	while [ $i -lt 20 ]; do echo "bogus_$i = 1;" >> tcm.conf; i=$((i + 1)); done
	run_sort TCM_CONF="$tmp/tcm.conf"
	i=0
	: > want_err
	while [ $i -lt 16 ]; do echo "tcm: $tmp/tcm.conf:$((i + 1)): unknown key bogus_$i" >> want_err; i=$((i + 1)); done
	echo "tcm: more configuration errors not shown" >> want_err
	expect_stderr
	;;
env)
	run_sort TCM_EXIT_DEADLINE_MS=soon TCM_CONF=
	echo 'tcm: TCM_EXIT_DEADLINE_MS: expected an integer from 1 to 600000 (milliseconds), got "soon"' > want_err
	expect_stderr
	;;
valid)
	printf 'exit: { deadline_ms = 1500; };\ncache: { thread_max_kib = 64; total_max_mib = 1; };\n' > tcm.conf
	run_sort TCM_CONF="$tmp/tcm.conf" TCM_RELEASE_CHUNK_KIB=1024
	[ -s err.txt ] && fail "a valid configuration printed: $(cat err.txt)"
	;;
*)
	echo "usage: broken_conf.sh LIBTCM syntax|values|missing|flood|env|valid" >&2
	exit 2
	;;
esac
echo "ok: $case_name"
exit 0
