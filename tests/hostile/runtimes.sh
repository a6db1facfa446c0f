#!/bin/sh
# tests/hostile/runtimes.sh - real runtimes under LD_PRELOAD=libtcm.so with a SIGTERM
# handler, spawning children, then terminated by SIGTERM from outside (DESIGN
# invariant 6: tcm never changes what SIGTERM does to the application).
#
# Usage: runtimes.sh /path/to/libtcm.so|none python|perl|cxx [program]
#   python  runtime.py under $PYTHON (default python3)
#   perl    runtime.pl under $PERL (default perl)
#   cxx     program = the built runtime_cxx binary
# "none" runs the same program without the preload and with HOSTILE_BASELINE=1 (the
# reference: the program then requires tcm to be absent).
# The program proves it runs under tcm itself, spawns its children, prints
# "READY <pid>"; this script then sends SIGTERM to that pid and requires exit status 0
# and "HANDLER RAN" in the output. Hang detection: READY must come within 40 s and
# the program must end within 20 s after the SIGTERM, otherwise it is killed (FAIL).
# Exit 0 pass, 1 fail, 2 usage.
set -u

lib=${1:-}
runtime=${2:-}
program=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
PERL=${PERL:-perl}

usage() {
	echo "usage: runtimes.sh /path/to/libtcm.so|none python|perl|cxx [program]" >&2
	exit 2
}
[ -n "$lib" ] || usage
[ "$lib" = none ] || [ -f "$lib" ] || usage
case "$runtime" in
python) set -- "$PYTHON" "$here/runtime.py" ;;
perl) set -- "$PERL" "$here/runtime.pl" ;;
cxx) [ -x "$program" ] || usage; set -- "$program" ;;
*) usage ;;
esac
command -v "$1" >/dev/null 2>&1 || { echo "FAIL [$runtime]: '$1' not found"; exit 1; }

out=$(mktemp "${TMPDIR:-/tmp}/tcm-hostile-$runtime.XXXXXX") || exit 2
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -f "$out"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL [$runtime]: $*"
	echo "--- output:"
	cat "$out"
	exit 1
}

if [ "$lib" = none ]; then
	env -u LD_PRELOAD HOSTILE_BASELINE=1 "$@" >"$out" 2>&1 &
else
	env LD_PRELOAD="$lib" "$@" >"$out" 2>&1 &
fi
pid=$!

# Polls every 0.1 s, at most 40 s, until the program has printed READY or ended.
tenths=0
while ! grep -q '^READY ' "$out" && kill -0 "$pid" 2>/dev/null && [ "$tenths" -lt 400 ]; do
	sleep 0.1
	tenths=$((tenths + 1))
done
grep -q '^READY ' "$out" || {
	kill -0 "$pid" 2>/dev/null && fail "no READY within 40 s (hang while spawning children?)"
	wait "$pid"
	fail "ended with status $? before READY"
}
ready_pid=$(sed -n 's/^READY \([0-9][0-9]*\)$/\1/p' "$out" | head -1)
[ "$ready_pid" = "$pid" ] || fail "READY names pid '$ready_pid', started $pid"
kill -TERM "$pid" || fail "kill -TERM $pid"

tenths=0
while kill -0 "$pid" 2>/dev/null && [ "$tenths" -lt 200 ]; do
	# a zombie still answers kill -0: stop when it is no longer running
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
	[ "$state" = Z ] && break
	sleep 0.1
	tenths=$((tenths + 1))
done
if [ "$tenths" -ge 200 ]; then
	fail "still running 20 s after SIGTERM (the handler did not run, or a hang)"
fi
wait "$pid"
status=$?
pid=
[ "$status" -eq 0 ] || fail "exit status $status after SIGTERM (143 = killed by SIGTERM: the handler was lost)"
grep -q '^HANDLER RAN' "$out" || fail "exit 0 but no 'HANDLER RAN' line"
echo "ok [$runtime]: exit 0 after SIGTERM; output:"
sed 's/^/  /' "$out"
exit 0
