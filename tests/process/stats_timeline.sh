#!/bin/sh
# tests/process/stats_timeline.sh - the exit report's shutdown timeline, from a real service
# under the shim that frees most of its heap at SIGTERM and serves on: the JSON report carries
# samples from T0 to T1 in time order, resident memory falling and released memory rising, and
# the deadline it was given; tcmctl stats --plot draws them into a PNG (case plot: needs
# gnuplot, exit 77 = skipped without it). Case sigwait: the service runs no handler and takes
# SIGTERM with signal.sigwait on its main thread; the shutdown starts there all the same.
#
# Usage: stats_timeline.sh LIBTCM TCMCTL timeline|plot|sigwait
#        (exit 0 pass, 1 fail, 2 usage, 77 skipped)
set -u
lib=${1:-} tcmctl=${2:-} case_name=${3:-}
case $case_name in timeline|plot|sigwait) ;; *) case_name= ;; esac
[ -f "$lib" ] && [ -x "$tcmctl" ] && [ -n "$case_name" ] ||
	{ echo "usage: stats_timeline.sh LIBTCM TCMCTL timeline|plot|sigwait" >&2; exit 2; }
if [ "$case_name" = plot ] && ! command -v gnuplot > /dev/null; then
	echo "SKIP: no gnuplot (apt-get install gnuplot-nox)"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-timeline.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(TCM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
python=$(python3 -c 'import sys; print(sys.executable)')

fail() {
	echo "FAIL [stats_timeline]: $*"
	exit 1
}

cat > "$tmp/service.py" <<'PY'
import os, signal, sys, time
stop = []
if sys.argv[1] == "sigwait":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
else:
    signal.signal(signal.SIGTERM, lambda signo, frame: stop.append(1))
heap = [bytearray(64 * 1024) for _ in range(3000)]   # about 190 MiB
print(os.getpid(), flush=True)
if sys.argv[1] == "sigwait":
    signal.sigwait({signal.SIGTERM})
while not stop and sys.argv[1] != "sigwait":
    time.sleep(0.01)
del heap[::2]                                           # free half at SIGTERM
for _ in range(60):                                     # serve on for 0.6 s
    blob = bytearray(4096)
    time.sleep(0.01)
PY
TCM_STATS_ON_EXIT=$tmp/exit.json TCM_EXIT_DEADLINE_MS=3000 LD_PRELOAD=$lib "$python" "$tmp/service.py" "$case_name" > "$tmp/pid" 2> "$tmp/err" &
service=$!
for _ in $(seq 100); do [ -s "$tmp/pid" ] && break; sleep 0.05; done
[ -s "$tmp/pid" ] || fail "the service did not start: $(cat "$tmp/err")"
kill -TERM "$service"
wait "$service" || fail "the service exited $?: $(cat "$tmp/err")"

"$python" - "$tmp/exit.json" <<'PY' || exit 1
import json, sys
report = json.load(open(sys.argv[1]))
def fail(message):
    print(f"FAIL [stats_timeline]: {message}")
    sys.exit(1)
timeline = report.get("timeline")
if report["shutdown_trigger"] != "sigterm" or not timeline or len(timeline) < 3:
    fail(f"trigger {report['shutdown_trigger']}, timeline {timeline}")
if report["timeline_deadline_seconds"] != 3.0:
    fail(f"deadline {report['timeline_deadline_seconds']}")
times = [t for t, resident, released in timeline]
if times != sorted(times) or times[-1] > report["shutdown_t0_to_t1_seconds"] + 0.5:
    fail(f"times {times} against T0 -> T1 {report['shutdown_t0_to_t1_seconds']}")
if not (timeline[-1][2] > timeline[0][2] and timeline[-1][1] < max(r for _, r, _ in timeline)):
    fail(f"released does not rise or resident does not fall: {timeline}")
print(f"ok: timeline of {len(timeline)} samples over {times[-1]:.2f} s, {timeline[-1][2] >> 20} MiB released")
PY
if [ "$case_name" = plot ]; then
	"$tcmctl" stats --plot "$tmp/exit.json" "$tmp/timeline.png" 2> "$tmp/err" || fail "tcmctl stats --plot: $(cat "$tmp/err")"
	[ "$(head -c 8 "$tmp/timeline.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "not a PNG"
	# a report without a timeline (a live file's) is refused, not drawn empty
	printf '{\n  "tcm_version": "0.1.0",\n  "heap_allocated_bytes": 1\n}\n' > "$tmp/plain.json"
	"$tcmctl" stats --plot "$tmp/plain.json" "$tmp/plain.png" 2> "$tmp/err" && fail "a report without a timeline was drawn"
	grep -q 'has no timeline' "$tmp/err" || fail "stderr: $(cat "$tmp/err")"
	echo "ok: plot"
fi
