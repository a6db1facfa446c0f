#!/usr/bin/env bash
# bench/busy_host.sh - shutdown on a busy host (issue 13): bench/drain_service (8 threads, a 1 GiB
# heap; at SIGTERM it frees nine tenths and serves 2 s more, timing every malloc) and
# bench/exit_storm (2 x 1 GiB, --handler) beside four bursty CPU hogs (bench/cpu_hog, 40 ms busy
# / 3 ms idle: a host in the middle of a rolling upgrade), under tcm, glibc, gperftools, jemalloc
# and mimalloc, allocators rotated within each round, hogs restarted for every run.
# Reports, per allocator (medians over rounds): for the drain, VmRSS at exit, how much of what the
# service freed went back before exit() (1 - (rss_exit - live_pages) / (hwm - live_pages)),
# malloc p99.9 and max, free p99.9 and max (the service loop's); for the storm, SIGTERM to reaped and the longest free(); for tcm, the
# exit report's lock maxima since T0 (TCM_STATS_ON_EXIT=stderr). Prints a Markdown table.
# The last figures are in bench/BUSY_HOST.md.
# Usage: bench/busy_host.sh [--rounds N] [--build-dir DIR] [--hogs N] [--busy-ms B --idle-ms I]
#                           [--allocators tcm,jemalloc,...] [--baseline LIBTCM]
#   defaults: 3 rounds, build/ (tools/build's), 4 hogs, 40/3 ms, all five allocators;
#   --baseline adds another build of libtcm.so as "tcm-baseline" (before and after, one run).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=$REPO/build
ROUNDS=3 HOGS=4 BUSY_MS=40 IDLE_MS=3 ALLOCATORS=tcm,glibc,gperftools,jemalloc,mimalloc BASELINE=
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=${2:?}; shift ;;
	--build-dir) BUILD_DIR=$(realpath -m "${2:?}"); shift ;;
	--hogs) HOGS=${2:?}; shift ;;
	--busy-ms) BUSY_MS=${2:?}; shift ;;
	--idle-ms) IDLE_MS=${2:?}; shift ;;
	--allocators) ALLOCATORS=${2:?}; shift ;;
	--baseline) BASELINE=$(realpath -m "${2:?}"); shift ;;
	-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "busy_host.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
	shift
done
for f in libtcm.so bench/drain_service bench/exit_storm bench/cpu_hog; do
	[ -e "$BUILD_DIR/$f" ] || { echo "busy_host.sh: $BUILD_DIR/$f missing (run tools/build)" >&2; exit 1; }
done
[ -z "$BASELINE" ] || [ -e "$BASELINE" ] || { echo "busy_host.sh: $BASELINE missing" >&2; exit 1; }
export BH_BUILD_DIR=$BUILD_DIR BH_ROUNDS=$ROUNDS BH_HOGS=$HOGS BH_BUSY=$BUSY_MS BH_IDLE=$IDLE_MS
export BH_ALLOCATORS=$ALLOCATORS BH_BASELINE=$BASELINE
export BH_LIBDIR=/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
exec python3 - <<'PY'
import os, re, signal, statistics, subprocess, sys, time
BD = os.environ["BH_BUILD_DIR"]; ROUNDS = int(os.environ["BH_ROUNDS"]); LIBDIR = os.environ["BH_LIBDIR"]
HOGS, BUSY, IDLE = int(os.environ["BH_HOGS"]), os.environ["BH_BUSY"], os.environ["BH_IDLE"]
ALLOC = {"tcm": f"{BD}/libtcm.so", "glibc": "", "gperftools": f"{LIBDIR}/libtcmalloc_minimal.so.4",
         "jemalloc": f"{LIBDIR}/libjemalloc.so.2", "mimalloc": f"{LIBDIR}/libmimalloc.so.2"}
if os.environ["BH_BASELINE"]:
    ALLOC["tcm-baseline"] = os.environ["BH_BASELINE"]
wanted = os.environ["BH_ALLOCATORS"].split(",") + (["tcm-baseline"] if os.environ["BH_BASELINE"] else [])
unknown = [a for a in wanted if a not in ALLOC]
if unknown:
    sys.exit(f"busy_host.sh: unknown allocator(s) {','.join(unknown)} (tcm, glibc, gperftools, jemalloc, mimalloc)")
missing = [k for k in wanted if ALLOC[k] and not os.path.exists(ALLOC[k])]
if missing:
    sys.exit(f"busy_host.sh: {', '.join(ALLOC[k] for k in missing)} missing (apt-get install libtcmalloc-minimal4 "
             f"libjemalloc2 libmimalloc2.0, or leave them out with --allocators)")
ALLOC = {k: v for k, v in ALLOC.items() if k in wanted}

def run(alloc, argv, extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TCM_", "BH_", "LD_PRELOAD"))}
    if ALLOC[alloc]:
        env["LD_PRELOAD"] = ALLOC[alloc]
    if alloc.startswith("tcm"):
        env.update({"TCM_EXIT_DEADLINE_MS": "3000", "TCM_STATS_ON_EXIT": "stderr"})
    env.update(extra_env)
    hogs = [subprocess.Popen([f"{BD}/bench/cpu_hog", BUSY, IDLE]) for _ in range(HOGS)]
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        if p.stdout.readline().strip() != b"ready":
            sys.exit(f"busy_host.sh: {alloc}: {argv[0]} did not get ready")
        time.sleep(0.1)
        t0 = time.monotonic(); p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120); reaped_s = time.monotonic() - t0
    finally:
        for h in hogs:
            h.kill(); h.wait()
    fields = dict(kv.split("=", 1) for kv in out.decode().split() if "=" in kv)
    if p.returncode != 0 or fields.get("malloc_from", "") != (ALLOC[alloc] or fields.get("malloc_from")):
        sys.exit(f"busy_host.sh: {alloc}: bad run (rc {p.returncode}): {out.decode()} {err.decode()[-500:]}")
    fields["reaped_s"] = reaped_s
    m = re.search(r"max lock hold (\d+) us, max lock wait (\d+) us since T0", err.decode())
    if m:
        fields["hold_us"], fields["wait_us"] = m.group(1), m.group(2)
    return fields

drain = {a: [] for a in ALLOC}; storm = {a: [] for a in ALLOC}
for r in range(ROUNDS):
    order = list(ALLOC)[r % len(ALLOC):] + list(ALLOC)[:r % len(ALLOC)]
    for a in order:
        drain[a].append(run(a, [f"{BD}/bench/drain_service", "8", "1024", "2000"], {}))
        storm[a].append(run(a, [f"{BD}/bench/exit_storm", "--handler", "2", "1024"], {}))
    print(f"busy_host.sh: round {r + 1} of {ROUNDS} done", file=sys.stderr, flush=True)

med = lambda xs: statistics.median(xs) if xs else float("nan")
print(f"Beside {HOGS} CPU hogs ({BUSY} ms busy / {IDLE} ms idle), {os.cpu_count()} CPUs, medians of {ROUNDS} rounds.\n")
print("| allocator | drain: RSS at exit (MiB) | freed memory back | malloc p99.9 (us) | malloc max (us) | free p99.9 (us) | free max (us) | storm: SIGTERM to reaped (ms) | storm: longest free (us) | tcm locks since T0: max hold / max wait (us), drain; storm |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for a in ALLOC:
    d, s = drain[a], storm[a]
    back = [1 - (int(x["rss_exit_kib"]) - int(x["live_pages_kib"])) / max(1, int(x["hwm_kib"]) - int(x["live_pages_kib"])) for x in d]
    locks = "-"
    if a.startswith("tcm"):
        locks = f"{med([int(x.get('hold_us', 0)) for x in d]):.0f} / {med([int(x.get('wait_us', 0)) for x in d]):.0f}; " \
                f"{med([int(x.get('hold_us', 0)) for x in s]):.0f} / {med([int(x.get('wait_us', 0)) for x in s]):.0f}"
    print(f"| {a} | {med([int(x['rss_exit_kib']) for x in d]) / 1024:.0f} | {100 * med(back):.0f}% | "
          f"{med([float(x['lat_p999_us']) for x in d]):.1f} | {med([float(x['lat_max_us']) for x in d]):.0f} | "
          f"{med([float(x['free_p999_us']) for x in d]):.1f} | {med([float(x['free_max_us']) for x in d]):.0f} | "
          f"{1000 * med([x['reaped_s'] for x in s]):.0f} | {med([float(x['free_max_us']) for x in s]):.0f} | {locks} |")
PY
