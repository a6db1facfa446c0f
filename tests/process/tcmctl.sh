#!/bin/sh
# tests/process/tcmctl.sh - tcmctl as an operator uses it: exit codes 0/1/2 and the exact
# output of check, show and usage errors; run executing a program whose malloc is bound to
# libtcm.so (the loader's own record, LD_DEBUG=bindings); dropin's drop-ins for three kinds of
# unit, each key set only where the unit falls short (dropin_verify: systemd-analyze verify on
# them, exit 77 = skipped without systemd); the setuid rule with the real secure_getenv (a
# setuid copy of tcmctl ignores TCM_*; needs root, else exit 77 = skipped).
#
# keys: the README's table of keys is exactly `tcmctl keys` (the schema), between its markers.
#
# Usage: tcmctl.sh /path/to/tcmctl /path/to/libtcm.so check|show|usage|run|dropin|dropin_verify|setuid|keys
# Exit 0 pass, 1 fail, 2 usage of this script, 77 skipped.
set -u

tcmctl=${1:-}
lib=${2:-}
case_name=${3:-}
[ -x "$tcmctl" ] && [ -f "$lib" ] || { echo "usage: tcmctl.sh TCMCTL LIBTCM CASE" >&2; exit 2; }

readme=$(cd "$(dirname "$0")/../.." && pwd)/README.md
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-tcmctl.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2
# What the host set must not leak in: only the variables each case sets.
unset TCM_CONF TCM_LIB LD_PRELOAD
for v in $(env | sed -n 's/^\(TCM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

fail() {
	echo "FAIL [$case_name]: $*"
	exit 1
}

# expect_run STATUS STDOUT_FILE STDERR_FILE -- command...: runs the command, compares the
# exit status and both outputs with the expected files ("-" = must be empty).
expect_run() {
	want_status=$1 want_out=$2 want_err=$3
	shift 4
	"$@" > out.txt 2> err.txt
	status=$?
	[ "$status" -eq "$want_status" ] || { cat err.txt; fail "$* exited $status, expected $want_status"; }
	for pair in "out.txt:$want_out" "err.txt:$want_err"; do
		got=${pair%%:*} want=${pair#*:}
		if [ "$want" = "-" ]; then
			[ -s "$got" ] && { cat "$got"; fail "$*: $got should be empty"; }
		elif [ "$want" != "*" ]; then
			diff -u "$want" "$got" || fail "$*: $got differs from $want"
		fi
	done
	return 0
}

cat > valid.conf <<'CONF'
exit: { deadline_ms = 1500; margin_ms = 100; };
cache: {
  total_max_mib = 128;
};
stats: { on_exit = "/var/log/tcm \"x\".json"; };
CONF
cat > broken.conf <<'CONF'
exit: {
  dedline_ms = 1500;
  margin_ms = "abc";
};
release: { chunk_kib = 100; };
CONF

case "$case_name" in
check)
	cat > want_out <<OUT
# effective tcm configuration; file valid.conf (named on the command line)
# precedence: TCM_<GROUP>_<KEY> variable, then file, then default
exit: {
  deadline_ms = 1500;  # valid.conf:1
  margin_ms = 100;  # valid.conf:1
  release_on_shutdown = true;  # default
};
release: {
  rate_mib_s = 0;  # default
  chunk_kib = 2048;  # default
  worker_duty_percent = 50;  # default
};
cache: {
  thread_max_kib = 512;  # default
  total_max_mib = 128;  # valid.conf:3
};
notify: {
  ready = "off";  # default
  stopping = true;  # default
  status = true;  # default
};
stats: {
  on_exit = "/var/log/tcm \\"x\\".json";  # valid.conf:5
  interval_ms = 0;  # default
  path = "";  # default
};
OUT
	expect_run 0 want_out - -- "$tcmctl" check valid.conf
	# the printed configuration is itself a valid tcm.conf with the same values
	cp out.txt printed.conf
	"$tcmctl" check printed.conf > reprinted.txt || fail "printed configuration does not check"
	sed 1d out.txt | sed 's/  # .*//' > a; sed 1d reprinted.txt | sed 's/  # .*//' > b
	diff -u a b || fail "printed configuration does not read back the same"

	cat > want_err <<ERR
broken.conf:2: unknown key exit.dedline_ms (did you mean exit.deadline_ms?)
broken.conf:3: exit.margin_ms: expected an integer from 0 to 599999 (milliseconds), got "abc"
broken.conf:5: release.chunk_kib: expected a multiple of 8 from 8 to 1048576 (KiB), got 100
ERR
	expect_run 1 '*' want_err -- "$tcmctl" check broken.conf
	grep -qx '  chunk_kib = 2048;  # default' out.txt || fail "invalid key not shown at its default"

	# a misspelt override would have no effect: check says so and fails
	echo 'TCM_EXIT_DEDLINE_MS: no such tcm variable, ignored (did you mean TCM_EXIT_DEADLINE_MS?)' > want_err
	expect_run 1 want_out want_err -- env TCM_EXIT_DEDLINE_MS=5 "$tcmctl" check valid.conf
	# an integer libconfig would wrap to a valid value is refused as written
	printf 'exit: { deadline_ms = 4294968296; };\n' > wrapped.conf
	echo 'wrapped.conf:1: exit.deadline_ms: expected an integer from 1 to 600000 (milliseconds), got 4294968296' > want_err
	expect_run 1 '*' want_err -- "$tcmctl" check wrapped.conf

	printf 'exit: { deadline_ms = 1500 \n' > syntax.conf
	echo 'syntax.conf:2: syntax error; the whole file is ignored' > want_err
	expect_run 1 '*' want_err -- "$tcmctl" check syntax.conf
	echo 'missing.conf: cannot read: No such file or directory; using defaults' > want_err
	expect_run 1 '*' want_err -- "$tcmctl" check missing.conf
	# without FILE: the file a process would read, and the overrides count too
	echo 'TCM_EXIT_DEADLINE_MS: expected an integer from 1 to 600000 (milliseconds), got "soon"' > want_err
	expect_run 1 '*' want_err -- env TCM_CONF=valid.conf TCM_EXIT_DEADLINE_MS=soon "$tcmctl" check
	grep -qx '  deadline_ms = 1500;  # valid.conf:1' out.txt || fail "bad override replaced the file value"
	;;
show)
	cat > want_out <<OUT
# effective tcm configuration; file valid.conf (from TCM_CONF)
# precedence: TCM_<GROUP>_<KEY> variable, then file, then default
exit: {
  deadline_ms = 2500;  # TCM_EXIT_DEADLINE_MS
  margin_ms = 100;  # valid.conf:1
  release_on_shutdown = true;  # default
};
release: {
  rate_mib_s = 0;  # default
  chunk_kib = 2048;  # default
  worker_duty_percent = 50;  # default
};
cache: {
  thread_max_kib = 512;  # default
  total_max_mib = 128;  # valid.conf:3
};
notify: {
  ready = "init";  # TCM_NOTIFY_READY
  stopping = true;  # default
  status = true;  # default
};
stats: {
  on_exit = "stderr";  # TCM_STATS_ON_EXIT
  interval_ms = 0;  # default
  path = "";  # default
};
OUT
	expect_run 0 want_out - -- env TCM_CONF=valid.conf TCM_EXIT_DEADLINE_MS=2500 \
		TCM_NOTIFY_READY=init TCM_STATS_ON_EXIT=stderr "$tcmctl" show
	# show reports errors but still shows, and succeeds
	echo 'TCM_NOTIFY_READY: expected "off" or "init", got "yes"' > want_err
	expect_run 0 '*' want_err -- env TCM_CONF=valid.conf TCM_NOTIFY_READY=yes "$tcmctl" show
	grep -qx '  ready = "off";  # default' out.txt || fail "bad override not shown as default"
	;;
usage)
	expect_run 0 '*' - -- "$tcmctl" --help
	grep -q '^SYNOPSIS' out.txt && grep -q 'tcmctl run \[-c FILE\]' out.txt || fail "--help lacks SYNOPSIS"
	cp out.txt usage.txt
	for command in check show keys run dropin stats; do
		expect_run 0 usage.txt - -- "$tcmctl" $command --help
	done
	expect_run 0 '*' - -- "$tcmctl" --version
	grep -Eqx 'tcmctl \(tcm\) [0-9]+\.[0-9]+\.[0-9]+' out.txt || fail "--version printed $(cat out.txt)"
	# A usage error is one line naming it, then where help is; never the whole help.
	while IFS='|' read -r args message; do
		printf "tcmctl: %s\nTry 'tcmctl --help' for more information.\n" "$message" > want_err
		# shellcheck disable=SC2086 # word splitting of args is the point
		expect_run 2 - want_err -- "$tcmctl" $args
	done <<'CASES'
|no command (check, show, keys, run, dropin or stats)
frobnicate|unknown command 'frobnicate'
--bogus|unknown option '--bogus'
check a.conf b.conf|check: unexpected argument 'b.conf'
check --frob|check: unknown option '--frob'
show extra|show: unexpected argument 'extra'
keys extra|keys: unexpected argument 'extra'
run|run: put -- before the program (tcmctl run [-c FILE] [--lib PATH] -- PROGRAM)
run true|run: put -- before the program (tcmctl run [-c FILE] [--lib PATH] -- PROGRAM)
run --|run: no program after --
run -c|run: option '-c' needs an argument
run --lib|run: option '--lib' needs an argument
run -x -- true|run: unknown option '-x'
dropin|dropin: no unit named
dropin a.service b.service|dropin: unexpected argument 'b.service'
dropin a;reboot|dropin: 'a;reboot' is not a unit name
stats|stats: no FILE or PID
stats a b|stats: unexpected argument 'b'
--help extra|--help takes no arguments
CASES
	;;
run)
	mkdir ld
	printf 'b\nc\na\n' > input.txt
	LD_DEBUG=bindings LD_DEBUG_OUTPUT="$tmp/ld/debug" \
		"$tcmctl" run --lib "$lib" -c valid.conf -- sort input.txt > out.txt 2> err.txt ||
		fail "tcmctl run sort failed: $(cat err.txt)"
	printf 'a\nb\nc\n' | cmp -s - out.txt || fail "sort under tcmctl run printed $(cat out.txt)"
	[ -s err.txt ] && fail "unexpected stderr: $(cat err.txt)"
	lib_name=$(basename "$lib")
	cat ld/debug.* | grep -Eq "binding file [^ ]*sort \\[[0-9]+\\] to [^ ]*/$lib_name \\[[0-9]+\\]: normal symbol \`malloc'" ||
		fail "malloc of sort was not bound to $lib_name: $(cat ld/debug.* | grep "symbol \`malloc'" | head -3)"
	# the program sees the absolute config path and libtcm.so first in LD_PRELOAD
	LD_PRELOAD=/nonexistent-other.so "$tcmctl" run --lib "$lib" -c valid.conf -- \
		sh -c 'printf "%s\n%s\n" "$TCM_CONF" "$LD_PRELOAD"' > out.txt 2> /dev/null || fail "run sh failed"
	printf '%s\n%s\n' "$tmp/valid.conf" "$(realpath "$lib") /nonexistent-other.so" > want_out
	diff -u want_out out.txt || fail "environment of the program"
	# TCM_LIB instead of --lib; the program's exit status passes through
	TCM_LIB=$lib "$tcmctl" run -- sh -c 'exit 7'
	[ $? -eq 7 ] || fail "exit status of the program not passed through"
	expect_run 1 - '*' -- "$tcmctl" run --lib "$tmp/none.so" -- true
	grep -q "cannot read libtcm.so at $tmp/none.so" err.txt || fail "missing lib message: $(cat err.txt)"
	expect_run 127 - '*' -- "$tcmctl" run --lib "$lib" -- "$tmp/no-such-program"
	;;
dropin|dropin_verify)
	# The unit's own settings as systemctl show prints them, for three kinds of unit.
	printf 'Type=simple\nNotifyAccess=none\nTimeoutStopUSec=1min 30s\nEnvironment=\n' > simple.properties
	printf 'Type=notify\nNotifyAccess=all\nTimeoutStopUSec=500ms\nEnvironment=FOO=1 LD_PRELOAD=/opt/x.so "BAR=a b"\n' \
		> notify.properties
	printf 'Type=forking\nNotifyAccess=none\nTimeoutStopUSec=infinity\nEnvironment=\n' > forking.properties
	# the drop-in names the SONAME link beside the library, which outlives upgrades
	soname_link=$(dirname "$(realpath "$lib")")/$(LC_ALL=C readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	[ "$(realpath "$soname_link")" = "$(realpath "$lib")" ] || fail "no SONAME link beside $lib"
	abs_lib=$soname_link
	for kind in simple notify forking; do
		mkdir -p "demo-$kind.service.d"
		printf '[Unit]\nDescription=demo\n[Service]\nType=%s\nExecStart=/bin/true\n' "$kind" > "demo-$kind.service"
		expect_run 0 '*' - -- "$tcmctl" dropin --lib "$lib" --properties "$kind.properties" "demo-$kind.service"
		cp out.txt "demo-$kind.service.d/tcm.conf"
	done
	if [ "$case_name" = dropin_verify ]; then
		command -v systemd-analyze > /dev/null || { echo "SKIP: no systemd-analyze (apt-get install systemd)"; exit 77; }
		for kind in simple notify forking; do
			# warnings (unknown keys, bad values) only show at this level; none may appear
			SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "./demo-$kind.service" > out.txt 2>&1 ||
				fail "systemd-analyze verify demo-$kind.service: $(cat out.txt)"
			[ -s out.txt ] && fail "systemd-analyze verify demo-$kind.service warned: $(cat out.txt)"
		done
		echo "ok: tcmctl dropin_verify"
		exit 0
	fi
	# simple: preloads, admits the main process's messages, leaves the longer 90 s stop alone
	d=demo-simple.service.d/tcm.conf
	grep -qx "Environment=LD_PRELOAD=$abs_lib" $d || fail "simple: LD_PRELOAD: $(cat $d)"
	grep -qx 'NotifyAccess=main' $d || fail "simple: no NotifyAccess=main"
	grep -q '^TimeoutStopSec' $d && fail "simple: a 90 s stop was touched: $(grep TimeoutStopSec $d)"
	# notify with NotifyAccess=all and a 500 ms stop: its preload kept after tcm's, its
	# NotifyAccess not narrowed, the stop lengthened to the deadline (1000 ms) plus a second
	d=demo-notify.service.d/tcm.conf
	grep -qx "Environment=\"LD_PRELOAD=$abs_lib /opt/x.so\"" $d || fail "notify: LD_PRELOAD: $(cat $d)"
	grep -q '^NotifyAccess' $d && fail "notify: NotifyAccess=all was overridden"
	grep -qx 'TimeoutStopSec=2000ms' $d || fail "notify: TimeoutStopSec: $(cat $d)"
	# a longer deadline in -c FILE asks for more, and the file goes to TCM_CONF
	expect_run 0 '*' - -- "$tcmctl" dropin --lib "$lib" -c valid.conf --properties notify.properties demo.service
	grep -qx 'TimeoutStopSec=2500ms' out.txt || fail "notify -c: TimeoutStopSec: $(cat out.txt)"
	grep -qx "Environment=TCM_CONF=$tmp/valid.conf" out.txt || fail "notify -c: TCM_CONF: $(cat out.txt)"
	# forking: no NotifyAccess (tcm cannot speak from the daemon), infinity left alone
	d=demo-forking.service.d/tcm.conf
	grep -q '^NotifyAccess\|^TimeoutStopSec' $d && fail "forking: $(cat $d)"
	grep -q '^# Type=forking' $d || fail "forking: no note"
	# settings it cannot read are an error, not a guess
	printf 'Type=simple\n' > partial.properties
	expect_run 1 - '*' -- "$tcmctl" dropin --lib "$lib" --properties partial.properties demo.service
	;;
setuid)
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to make a setuid copy of tcmctl"; exit 77; }
	id nobody > /dev/null 2>&1 || { echo "SKIP: no user nobody"; exit 77; }
	cp "$tcmctl" ./tcmctl-setuid && chown nobody ./tcmctl-setuid && chmod 4755 ./tcmctl-setuid
	TCM_CONF=$tmp/valid.conf TCM_EXIT_DEADLINE_MS=2500 "$tcmctl" show > plain.txt 2>&1
	grep -qx '  deadline_ms = 2500;  # TCM_EXIT_DEADLINE_MS' plain.txt &&
		grep -qx "  total_max_mib = 128;  # $tmp/valid.conf:3" plain.txt || fail "plain copy: $(cat plain.txt)"
	# euid nobody != ruid root: the kernel sets AT_SECURE and secure_getenv returns NULL
	TCM_CONF=$tmp/valid.conf TCM_EXIT_DEADLINE_MS=2500 ./tcmctl-setuid show > setuid.txt 2>&1 ||
		fail "setuid copy failed: $(cat setuid.txt)"
	grep -q 'valid.conf' setuid.txt && fail "setuid copy read TCM_CONF: $(cat setuid.txt)"
	grep -q '# TCM_EXIT_DEADLINE_MS' setuid.txt && fail "setuid copy applied TCM_EXIT_DEADLINE_MS"
	grep -q '^  deadline_ms = ' setuid.txt || fail "setuid copy printed no configuration: $(cat setuid.txt)"
	;;
keys)
	sed -n '/^<!-- tcmctl keys -->$/,/^<!-- end tcmctl keys -->$/p' "$readme" | sed '1d;$d' > readme_keys.md
	[ -s readme_keys.md ] || fail "no <!-- tcmctl keys --> table in $readme"
	expect_run 0 readme_keys.md - -- "$tcmctl" keys
	;;
*)
	echo "usage: tcmctl.sh TCMCTL LIBTCM check|show|usage|run|dropin|dropin_verify|setuid|keys" >&2
	exit 2
	;;
esac
echo "ok: tcmctl $case_name"
exit 0
