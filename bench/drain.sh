#!/usr/bin/env bash
# bench/drain.sh - the drain benchmark: bench/drain_service (8 threads, a 1 GiB heap; at SIGTERM
# it frees nine tenths and keeps serving for 2 s, timing every malloc, then exits) under tcm
# (TCM_EXIT_DEADLINE_MS=3000, so tcm keeps releasing through the whole drain), glibc, gperftools
# (plain and TCMALLOC_AGGRESSIVE_DECOMMIT=true), jemalloc and mimalloc, allocators rotated within
# each round. The driver samples /proc/PID/status VmRSS every 10 ms from "ready" to reaped.
# Reports, per allocator (medians over rounds): how much of the freed memory went back to the
# kernel before exit() (1 - (RSS at exit - live) / (peak - live), with RSS at exit read by the
# service itself after its last join), and malloc latency p50/p99/p99.9/max during the drain.
# Writes the drain part of bench/EXIT_STORM.md and bench/drain_rss.png (the median run of each
# allocator); samples of every run go to <build-dir>/drain/.
# Usage: bench/drain.sh [--quick] [--rounds N] [--no-build] [--build-dir DIR]
#   --quick 1 round, 256 MiB;  default 3 rounds, 1024 MiB.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=$REPO/build-bench
MODE=full
ROUNDS=
DO_BUILD=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) MODE=quick ;;
	--rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
	--no-build) DO_BUILD=0 ;;
	--build-dir) BUILD_DIR=$(realpath -m "${2:?--build-dir needs a path}"); shift ;;
	-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "drain.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
	shift
done
[ "$MODE" = quick ] && ROUNDS=${ROUNDS:-1} || ROUNDS=${ROUNDS:-3}
die() { echo "drain.sh: ERROR: $*" >&2; exit 1; }
MULTIARCH=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
LIBDIR=/usr/lib/$MULTIARCH
if [ $DO_BUILD = 1 ]; then
	mkdir -p "$BUILD_DIR"
	log=$BUILD_DIR/drain-build.log
	cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DTCM_BUILD_TESTS=OFF \
		-DTCM_BUILD_BENCH=ON >"$log" 2>&1 || { tail -30 "$log" >&2; die "cmake configure failed"; }
	cmake --build "$BUILD_DIR" --target tcm drain_service -j "$(nproc)" >>"$log" 2>&1 ||
		{ tail -30 "$log" >&2; die "build failed (log: $log)"; }
fi
for f in bench/drain_service libtcm.so; do
	[ -e "$BUILD_DIR/$f" ] || die "$BUILD_DIR/$f missing (build first, or drop --no-build)"
done
command -v gnuplot >/dev/null || die "gnuplot missing (apt-get install gnuplot-nox)"

export DR_BENCH_DIR=$BENCH_DIR DR_BUILD_DIR=$BUILD_DIR DR_LIBDIR=$LIBDIR DR_MODE=$MODE DR_ROUNDS=$ROUNDS
status=0
python3 - <<'PY' || status=$?
import os, re, signal, statistics, subprocess, sys, tempfile, threading, time

B = os.environ["DR_BENCH_DIR"]; BD = os.environ["DR_BUILD_DIR"]; LIBDIR = os.environ["DR_LIBDIR"]
MODE = os.environ["DR_MODE"]; ROUNDS = int(os.environ["DR_ROUNDS"])
PROG = f"{BD}/bench/drain_service"
THREADS, TOTAL_MIB, DRAIN_MS = 8, (1024 if MODE == "full" else 256), 2000
GPERF = f"{LIBDIR}/libtcmalloc_minimal.so.4"
ALLOC = {
    "tcm":        (f"{BD}/libtcm.so", {"TCM_EXIT_DEADLINE_MS": "3000"}),
    "glibc":      ("", {}),
    "gperftools": (GPERF, {}),
    "gperf_aggr": (GPERF, {"TCMALLOC_AGGRESSIVE_DECOMMIT": "true"}),
    "jemalloc":   (f"{LIBDIR}/libjemalloc.so.2", {}),
    "mimalloc":   (f"{LIBDIR}/libmimalloc.so.2", {}),
}
SAMPLE_S = 0.010
OUT = f"{BD}/drain"
os.makedirs(OUT, exist_ok=True)
failures = []

def log(msg):
    print(f"drain.sh: {msg}", file=sys.stderr, flush=True)

def env_for(lib, extra):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith(("TCM_", "TCMALLOC_", "DR_"))}
    if lib:
        env["LD_PRELOAD"] = lib
    env.update(extra)
    return env

def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None

def run(alloc):
    lib, extra = ALLOC[alloc]
    env = env_for(lib, extra)
    argv = [PROG, str(THREADS), str(TOTAL_MIB), str(DRAIN_MS)]
    repro = f"env {' '.join(f'{k}={v}' for k, v in env.items() if k == 'LD_PRELOAD' or k.startswith(('TCM_', 'TCMALLOC_')))} {' '.join(argv)}  # kill -TERM after ready"
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
                         start_new_session=True)
    t = threading.Timer(120, lambda: os.killpg(p.pid, signal.SIGKILL)); t.start()
    line = p.stdout.readline().decode().strip()
    if line != "ready":
        p.wait(); t.cancel()
        return None, f"{alloc}: no ready (rc {p.returncode}); repro: {repro}"
    samples = []          # (ns since SIGTERM, KiB)
    t_ready = time.monotonic_ns()
    t0 = None
    done = threading.Event()
    reaped = {}
    def reaper():
        _, st, ru = os.wait4(p.pid, 0)
        reaped["t"] = time.monotonic_ns(); reaped["st"] = st
        done.set()
    # Sample 100 ms before SIGTERM, then until the process is gone (VmRSS disappears at exit).
    th = threading.Thread(target=reaper); th.start()
    while not done.is_set():
        now = time.monotonic_ns()
        if t0 is None and now - t_ready >= 100_000_000:
            t0 = time.monotonic_ns()
            os.kill(p.pid, signal.SIGTERM)
        v = rss_kib(p.pid)
        if v is not None and not done.is_set():
            samples.append((now - (t0 if t0 is not None else t_ready + 100_000_000), v))
        time.sleep(SAMPLE_S)
    th.join(); t.cancel()
    p.returncode = 0
    out = p.stdout.read().decode()
    st = reaped["st"]
    err.seek(0)
    errtext = err.read().decode(errors="replace")
    if not os.WIFEXITED(st) or os.WEXITSTATUS(st) != 0:
        return None, f"{alloc}: status {st:#x}; stderr {errtext[-300:]!r}; repro: {repro}"
    m = re.search(r"^result (.*)$", out, re.M)
    if not m:
        return None, f"{alloc}: no result line; repro: {repro}"
    r = dict(kv.partition("=")[::2] for kv in m.group(1).split())
    want = os.path.realpath(lib) if lib else None
    got = r.get("malloc_from", "?")
    if (want and os.path.realpath(got) != want) or (not want and not got.endswith("/libc.so.6")) or r.get("free_from") != got:
        return None, f"{alloc}: malloc served by {got}; repro: {repro}"
    r["reaped_ms"] = (reaped["t"] - t0) / 1e6
    r["samples"] = samples
    r["peak_sample_kib"] = max(v for _, v in samples)
    before_exit = [v for ts, v in samples if ts <= float(r["exit_after_sig_s"]) * 1e9]
    r["last_sample_kib"] = before_exit[-1] if before_exit else None
    live, hwm, rss_exit = int(r["live_kib"]), int(r["hwm_kib"]), int(r["rss_exit_kib"])
    r["returned"] = (hwm - rss_exit) / (hwm - live) if hwm > live else 0.0
    live_pages = int(r["live_pages_kib"])
    r["returnable"] = (hwm - live_pages) / (hwm - live) if hwm > live else 0.0
    return r, None

names = list(ALLOC)
runs = {a: [] for a in names}
log(f"{MODE} run: {ROUNDS} rounds x {len(names)} allocators, {THREADS} threads, {TOTAL_MIB} MiB, drain {DRAIN_MS} ms")
for rnd in range(1, ROUNDS + 1):
    k = (rnd - 1) % len(names)
    for a in names[k:] + names[:k]:
        r, fail = run(a)
        if fail:
            failures.append(fail); log("FAILED: " + fail); continue
        runs[a].append(r)
        with open(f"{OUT}/{a}.r{rnd}.tsv", "w") as f:
            f.write(f"# {a} round {rnd}: ms_since_sigterm\trss_kib\n")
            for ts, v in r["samples"]:
                f.write(f"{ts / 1e6:.1f}\t{v}\n")
        log(f"r{rnd} {a:<10} returned {r['returned'] * 100:5.1f}%  rss_exit {int(r['rss_exit_kib']) >> 10} MiB  "
            f"p99.9 {r['lat_p999_us']} us  max {r['lat_max_us']} us")

def med(a, key):
    xs = [float(r[key]) for r in runs[a] if r.get(key) not in (None, "")]
    return statistics.median(xs) if xs else None

def f(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"

md = []
p = md.append
p(f"Written by `bench/drain.sh{' --quick' if MODE == 'quick' else ''}` "
  f"({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load {' '.join(open('/proc/loadavg').read().split()[:3])}). "
  f"{THREADS} threads hold {TOTAL_MIB} MiB (exit_storm's size mix); at SIGTERM each frees nine objects in ten and "
  f"serves on for {DRAIN_MS} ms (malloc/free of 16-1024 B objects in batches of 64 with 1 ms sleeps, every "
  f"malloc timed), then exits. tcm runs with TCM_EXIT_DEADLINE_MS=3000. {ROUNDS} rounds, medians.\n")
p("**returned** = share of the freed memory given back before exit(): (peak RSS - RSS at exit) / (peak RSS - live), "
  "peak = VmHWM and RSS at exit = VmRSS, both read by the service after its last join; live = bytes it still "
  "holds. One object in ten stays live, so most small-object pages keep a live object and cannot be "
  "returned by any allocator. **returnable** = the most any allocator that does not move objects could "
  "return: (peak RSS - live pages) / (peak RSS - live), live pages = the distinct 4 KiB pages the live "
  "objects touch, counted by the service from their addresses under that allocator. **last sample** = the driver's last 10 ms VmRSS sample before exit (a cross-check). Latencies: "
  "mallocs of the service loop during the drain, all threads pooled.\n")
p("| allocator | peak MiB | live MiB | RSS at exit MiB | last sample MiB | returned | returnable | heap freed ms | p50 us | p99 us | p99.9 us | max us | mallocs > 100 us | mallocs | exit after SIGTERM ms |")
p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for a in names:
    if not runs[a]:
        p(f"| {a} | failed | | | | | | | | | | | | | |"); continue
    kib = lambda k: (med(a, k) or 0) / 1024
    p(f"| {'**tcm**' if a == 'tcm' else a} | {kib('hwm_kib'):.0f} | {kib('live_kib'):.0f} | {kib('rss_exit_kib'):.0f} | "
      f"{kib('last_sample_kib'):.0f} | {med(a, 'returned') * 100:.1f}% | {med(a, 'returnable') * 100:.1f}% | "
      f"{f(med(a, 'heap_freed_s') * 1e3)} | "
      f"{f(med(a, 'lat_p50_us'), 2)} | {f(med(a, 'lat_p99_us'), 2)} | {f(med(a, 'lat_p999_us'), 2)} | {f(med(a, 'lat_max_us'))} | "
      f"{f(med(a, 'mallocs_over_100us'), 0)} | {f(med(a, 'mallocs'), 0)} | {f(med(a, 'reaped_ms'))} |")
if runs["tcm"]:
    p999 = med("tcm", "lat_p999_us")
    peers = {a: med(a, "returned") for a in names if a != "tcm" and runs[a]}
    best = max(peers, key=peers.get) if peers else None
    p(f"\nTarget p99.9 < 100 us for tcm: {p999:.2f} us, **{'met' if p999 < 100 else 'not met'}**. tcm returned "
      f"{med('tcm', 'returned') * 100:.1f}% of the freed memory before exit (target 80%: "
      f"**{'met' if med('tcm', 'returned') >= 0.8 else 'not met'}**; at most {med('tcm', 'returnable') * 100:.1f}% was "
      f"returnable without moving objects); the best peer, {best}, {(peers.get(best) or 0) * 100:.1f}%.\n")
p("![RSS during the drain](drain_rss.png)\n")
p("`bench/drain_rss.png`: the median run (by returned share) of each allocator. Samples of every run: "
  f"`{os.path.relpath(OUT, os.path.dirname(B))}/<allocator>.r<round>.tsv`.\n")
if failures:
    p("Failed runs:\n")
    for fl in failures:
        p(f"- {fl}")

# plot: one block per allocator, its median run
dat = f"{OUT}/plot.dat"
blocks = 0
with open(dat, "w") as fo:
    for a in names:
        if not runs[a]:
            continue
        rs = sorted(runs[a], key=lambda r: r["returned"])
        r = rs[len(rs) // 2]
        fo.write(f'"{a}"\n')
        for ts, v in r["samples"]:
            fo.write(f"{ts / 1e6:.1f}\t{v / 1024:.1f}\n")
        fo.write("\n\n")
        blocks += 1
subprocess.run(["gnuplot", "-e", f"datafile='{dat}'; outfile='{B}/drain_rss.png'; nblocks={blocks}; exit_ms={DRAIN_MS}; "
                f"heading='Drain: RSS after SIGTERM ({THREADS} threads, {TOTAL_MIB} MiB heap, 9/10 freed at SIGTERM, "
                f"serving {DRAIN_MS} ms, then exit; median run each)'",
                f"{B}/drain.gp"], check=True)

section = "\n".join(md)
path = f"{B}/EXIT_STORM.md"
skeleton = ("<!-- bench/EXIT_STORM.md - generated by bench/exit_storm.sh and bench/drain.sh; do not edit by hand -->\n"
            "# Exit storm and drain: tcm against its peers and the floor\n\n"
            "## Exit storm (bench/exit_storm.c)\n\n<!-- BEGIN storm -->\n<!-- END storm -->\n\n"
            "## Drain (bench/drain_service.c)\n\n<!-- BEGIN drain -->\n<!-- END drain -->\n")
text = open(path).read() if os.path.exists(path) else skeleton
if "<!-- BEGIN drain -->" not in text:
    text = skeleton
text = re.sub(r"<!-- BEGIN drain -->.*<!-- END drain -->",
              lambda m: "<!-- BEGIN drain -->\n" + section + "\n<!-- END drain -->", text, flags=re.S)
open(path, "w").write(text)
print(section)
if failures:
    sys.exit(1)
PY
exit $status
