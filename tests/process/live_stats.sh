#!/bin/sh
# tests/process/live_stats.sh - the live statistics file (stats.interval_ms, stats.path) of a
# running program under the shim: it appears with the program's pid in its name (%p), a reader
# polling it as fast as it can never sees part of a report (each read parses whole), the
# reports advance (their time and the program's allocations), a program that lives less than
# one period writes none, and a path that cannot be written is said once on stderr. tcmctl stats
# PID finds and shows the running program's file; a process without one is an error.
#
# Usage: live_stats.sh LIBTCM TCMCTL   (exit 0 pass, 1 fail, 2 usage)
set -u
lib=${1:-} tcmctl=${2:-}
[ -f "$lib" ] && [ -x "$tcmctl" ] || { echo "usage: live_stats.sh LIBTCM TCMCTL" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-live.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(TCM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
# the interpreter itself, not a wrapper (pyenv's shims are shell scripts) whose processes would
# write files and lines of their own
python=$(python3 -c 'import sys; print(sys.executable)')

fail() {
	echo "FAIL [live_stats]: $*"
	exit 1
}

# A service that allocates a little more every 10 ms for 1.5 s, its pid on stdout first; a
# reader (plain python, no preload) polls its live JSON file meanwhile.
cat > "$tmp/service.py" <<'PY'
import os, sys, time
print(os.getpid(), flush=True)
blocks = []
for _ in range(150):
    blocks.append(bytearray(64 * 1024))
    time.sleep(0.01)
PY
cat > "$tmp/reader.py" <<'PY'
import json, os, subprocess, sys, time
tmp, python, lib, tcmctl = sys.argv[1:]
env = {k: v for k, v in os.environ.items() if not k.startswith("TCM_")}
env.update(LD_PRELOAD=lib, TCM_STATS_INTERVAL_MS="20", TCM_STATS_PATH=f"{tmp}/live.%p.json")
service = subprocess.Popen([python, f"{tmp}/service.py"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
pid = int(service.stdout.readline())
path = f"{tmp}/live.{pid}.json"
reads, times, allocated = 0, [], []
while service.poll() is None:
    try:
        text = open(path).read()
    except FileNotFoundError:
        continue
    report = json.loads(text)   # a partial file would not parse
    reads += 1
    if report["pid"] != pid:
        sys.exit(f"FAIL [live_stats]: pid {report['pid']} in {path}")
    if not times or report["report_time_seconds"] != times[-1]:
        times.append(report["report_time_seconds"])
        allocated.append(report["heap_allocated_bytes"])
        if len(times) == 5:   # tcmctl stats PID: the running service's live file, for people
            shown = subprocess.run([tcmctl, "stats", str(pid)], capture_output=True, text=True)
            if shown.returncode != 0 or not shown.stdout.startswith("tcm ") or f", pid {pid}, " not in shown.stdout \
                    or "\n  heap_allocated_bytes " not in shown.stdout:
                sys.exit(f"FAIL [live_stats]: tcmctl stats {pid}: {shown.returncode} {shown.stdout} {shown.stderr}")
err = service.stderr.read().decode()
if service.returncode != 0 or err:
    sys.exit(f"FAIL [live_stats]: service exited {service.returncode}: {err}")
if len(times) < 5:   # about 75 are due; a loaded machine may starve the worker, not stop it
    sys.exit(f"FAIL [live_stats]: {len(times)} distinct reports in 1.5 s at 20 ms ({reads} reads)")
# (the last report may come while the interpreter frees everything on its way out)
if times != sorted(times) or max(allocated) <= allocated[0]:
    sys.exit(f"FAIL [live_stats]: reports do not advance: {times} {allocated}")
leftovers = [name for name in os.listdir(tmp) if ".tmp." in name]
print(f"ok: live stats ({reads} whole reads, {len(times)} distinct reports, {len(leftovers)} leftover temporary files)")
PY
"$python" "$tmp/reader.py" "$tmp" "$python" "$lib" "$tcmctl" || exit 1

# a process that writes no live file: tcmctl stats says so
"$tcmctl" stats $$ > /dev/null 2> "$tmp/err" && fail "tcmctl stats of a process without a live file succeeded"
grep -q "writes no live statistics" "$tmp/err" || fail "tcmctl stats $$: $(cat "$tmp/err")"

# a program shorter than one period writes no file
TCM_STATS_INTERVAL_MS=10000 TCM_STATS_PATH=$tmp/short.%p.prom LD_PRELOAD=$lib "$python" -c pass ||
	fail "short program"
ls "$tmp" | grep -q '^short\.' && fail "a program shorter than one period wrote $(ls "$tmp" | grep '^short\.')"

# an unwritable path: one line on stderr, the program unharmed
TCM_STATS_INTERVAL_MS=10 TCM_STATS_PATH=/nonexistent-dir/live.json LD_PRELOAD=$lib "$python" -c 'import time; time.sleep(0.2)' \
	2> "$tmp/err" || fail "program with an unwritable live path"
[ "$(grep -c 'stats.path: cannot write /nonexistent-dir/live.json' "$tmp/err")" = 1 ] || fail "stderr: $(cat "$tmp/err")"
[ "$(wc -l < "$tmp/err")" = 1 ] || fail "stderr has more than the one line: $(cat "$tmp/err")"
