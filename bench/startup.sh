#!/usr/bin/env bash
# bench/startup.sh - what preloading an allocator costs a short-lived program: bench/spawn_true
# runs /bin/true (which allocates nothing) and /bin/sh on an empty stdin (dash, which allocates
# as it starts) COUNT times (posix_spawn + waitpid, LD_PRELOAD for the children only) under
# no preload, tcm and the Debian peers, allocators rotated within each round. Prints, per
# allocator, the median ms per exec and the median of (allocator - no preload) paired within a
# round (a shared machine's slow phases cancel), and the system calls the program makes after
# its execve (strace -f, one run). Figures for the issue notes and bench/STARTUP.md.
# Usage: bench/startup.sh [--rounds N] [--count N] [--build-dir DIR] [--baseline LIBTCM]
#   defaults: 9 rounds of 1000 execs, build-bench/ (bench/run's Release build, built if missing);
#   --baseline adds another libtcm.so as "tcm-baseline" (before and after, one run).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=$REPO/build-bench ROUNDS=9 COUNT=1000 BASELINE=
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=${2:?}; shift ;;
	--count) COUNT=${2:?}; shift ;;
	--build-dir) BUILD_DIR=$(realpath -m "${2:?}"); shift ;;
	--baseline) BASELINE=$(realpath -m "${2:?}"); shift ;;
	-h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "startup.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ ! -e "$BUILD_DIR/bench/spawn_true" ] || [ ! -e "$BUILD_DIR/libtcm.so" ]; then
	cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DTCM_BUILD_TESTS=OFF -DTCM_BUILD_BENCH=ON >/dev/null
	cmake --build "$BUILD_DIR" --target tcm spawn_true >/dev/null
fi
LIBDIR=/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
for lib in libtcmalloc_minimal.so.4 libjemalloc.so.2 libmimalloc.so.2; do
	[ -f "$LIBDIR/$lib" ] || { echo "startup.sh: $LIBDIR/$lib missing (apt-get install libtcmalloc-minimal4 libjemalloc2 libmimalloc2.0)" >&2; exit 1; }
done
command -v strace >/dev/null || { echo "startup.sh: strace missing (apt-get install strace)" >&2; exit 1; }
export SU_BUILD=$BUILD_DIR SU_ROUNDS=$ROUNDS SU_COUNT=$COUNT SU_BASELINE=$BASELINE SU_LIBDIR=$LIBDIR
exec python3 - <<'PY'
import os, re, statistics, subprocess
B, L = os.environ["SU_BUILD"], os.environ["SU_LIBDIR"]
ALLOC = {"glibc": "-", "tcm": f"{B}/libtcm.so", "mimalloc": f"{L}/libmimalloc.so.2",
         "jemalloc": f"{L}/libjemalloc.so.2", "gperftools": f"{L}/libtcmalloc_minimal.so.4"}
if os.environ["SU_BASELINE"]:
    ALLOC["tcm-baseline"] = os.environ["SU_BASELINE"]
env = {k: v for k, v in os.environ.items() if not k.startswith(("TCM_", "LD_PRELOAD"))}
rounds, count = int(os.environ["SU_ROUNDS"]), os.environ["SU_COUNT"]
# /bin/true allocates nothing; dash (/bin/sh, reading an empty stdin) allocates as it starts.
PROGRAMS = ["/bin/true", "/bin/sh"]
ms = {(p, a): [] for p in PROGRAMS for a in ALLOC}
for r in range(rounds):
    order = list(ALLOC)[r % len(ALLOC):] + list(ALLOC)[:r % len(ALLOC)]
    for p in PROGRAMS:
        for a in order:
            out = subprocess.run([f"{B}/bench/spawn_true", count, ALLOC[a], p], env=env, check=True,
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True).stdout
            seconds = float(re.search(r"seconds=([0-9.]+)", out).group(1))
            ms[(p, a)].append(1000 * seconds / int(count))
def syscalls(lib, program):
    e = dict(env)
    if lib != "-":
        e["LD_PRELOAD"] = lib
    trace = subprocess.run(["strace", "-f", "-o", "/dev/stdout", program], env=e, check=True,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True).stdout.splitlines()
    start = max(i for i, l in enumerate(trace) if f'execve("{program}"' in l)
    return sum(1 for l in trace[start + 1:] if not l.split(" ", 1)[-1].startswith("+++"))
med = statistics.median
print(f"{count} execs per run, {rounds} rounds, allocators rotated; {os.cpu_count()} CPUs.\n")
print("| program | allocator | median ms/exec | added ms/exec (paired median) | system calls after execve |")
print("|---|---|---:|---:|---:|")
for p in PROGRAMS:
    for a in ALLOC:
        added = med([x - g for x, g in zip(ms[(p, a)], ms[(p, "glibc")])])
        print(f"| {p} | {a} | {med(ms[(p, a)]):.3f} | {added:+.3f} | {syscalls(ALLOC[a], p)} |")
PY
