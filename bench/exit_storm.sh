#!/usr/bin/env bash
# bench/exit_storm.sh - the exit-storm benchmark (issue 5): how long a service that holds a big
# heap in many threads takes from SIGTERM to reaped, under tcm, glibc, gperftools (plain and with
# TCMALLOC_AGGRESSIVE_DECOMMIT=true, the incident's mechanism), jemalloc, mimalloc, the
# do-nothing allocator (bench/noop_alloc.c: the floor) and kill -9 (the kernel's own teardown).
# Runs bench/exit_storm for T x size in {2 x 1 GiB, 32 x 64 MiB, 256 x 8 MiB}, in --sigwait,
# --handler and --signalfd modes (--signalfd: a SIGTERM no allocator sees), allocators interleaved (rotated) within each round; the driver (python3 below)
# waits for "ready", sends SIGTERM and times kill -> wait4 with CLOCK_MONOTONIC. Then: one run of
# tcm per configuration with TCM_STATS_ON_EXIT=stderr (its "tcm shutdown:" line), one under
# libtcm-debug.so (lock checks) per configuration, and one strace of tcm's madvise calls
# (handler, 32 x 64 MiB). Finally bench/drain.sh (unless --no-drain).
# Writes bench/exit_storm.raw (TSV, every run) and the storm part of bench/EXIT_STORM.md.
# Usage: bench/exit_storm.sh [--quick] [--rounds N] [--modes LIST] [--no-build] [--no-drain]
#                            [--build-dir DIR]
#   --quick      2 rounds and sizes / 8 (a smoke test, ~2 minutes)
#   --rounds N   rounds (default 5; quick 2)
#   --modes LIST comma-separated, of sigwait, handler, signalfd (default: all three)
#   --no-build   use what is already built in the build directory
#   --no-drain   skip bench/drain.sh
#   --build-dir  default: <repo>/build-bench (bench/run's)
# Exit status: 0 when every run behaved (targets missed are reported, not failures); 1 if a run
# crashed, hung or was served by the wrong library (the repro commands are printed).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=$REPO/build-bench
MODE=full
ROUNDS=
MODES=sigwait,handler,signalfd
DO_BUILD=1
DO_DRAIN=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) MODE=quick ;;
	--rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
	--modes) MODES=${2:?--modes needs a list}; shift ;;
	--no-build) DO_BUILD=0 ;;
	--no-drain) DO_DRAIN=0 ;;
	--build-dir) BUILD_DIR=$(realpath -m "${2:?--build-dir needs a path}"); shift ;;
	-h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "exit_storm.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
	shift
done
case ",$MODES," in
*,,*|*[!a-z,]*) echo "exit_storm.sh: --modes: a comma-separated list of sigwait, handler, signalfd" >&2; exit 2 ;;
esac
for m in ${MODES//,/ }; do
	case $m in sigwait|handler|signalfd) ;; *) echo "exit_storm.sh: --modes: unknown mode '$m'" >&2; exit 2 ;; esac
done
[ "$MODE" = quick ] && ROUNDS=${ROUNDS:-2} || ROUNDS=${ROUNDS:-5}

die() { echo "exit_storm.sh: ERROR: $*" >&2; exit 1; }
MULTIARCH=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
LIBDIR=/usr/lib/$MULTIARCH
for tool in cmake python3 strace gnuplot; do
	command -v $tool >/dev/null || die "$tool missing (bench/run installs cmake, python3, gnuplot-nox; strace: apt-get install strace)"
done

PROGRAMS=(exit_storm drain_service noop_alloc)
if [ $DO_BUILD = 1 ]; then
	mkdir -p "$BUILD_DIR"
	log=$BUILD_DIR/exit-storm-build.log
	echo "exit_storm.sh: building in $BUILD_DIR (Release; log $log)" >&2
	cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DTCM_BUILD_TESTS=OFF \
		-DTCM_BUILD_BENCH=ON >"$log" 2>&1 || { tail -30 "$log" >&2; die "cmake configure failed"; }
	cmake --build "$BUILD_DIR" --target tcm tcm_debug "${PROGRAMS[@]}" -j "$(nproc)" >>"$log" 2>&1 ||
		{ tail -30 "$log" >&2; die "build failed (log: $log)"; }
fi
for f in bench/exit_storm bench/drain_service bench/libnoop_alloc.so libtcm.so libtcm-debug.so; do
	[ -e "$BUILD_DIR/$f" ] || die "$BUILD_DIR/$f missing (build first, or drop --no-build)"
done
for lib in libtcmalloc_minimal.so.4 libjemalloc.so.2 libmimalloc.so.2; do
	[ -f "$LIBDIR/$lib" ] || die "$LIBDIR/$lib missing (bench/run installs the peers)"
done

export ES_BENCH_DIR=$BENCH_DIR ES_BUILD_DIR=$BUILD_DIR ES_LIBDIR=$LIBDIR ES_MODE=$MODE ES_ROUNDS=$ROUNDS ES_MODES=$MODES
export ES_SOURCE=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')
status=0
python3 - <<'PY' || status=$?
import os, re, signal, statistics, subprocess, sys, tempfile, threading, time

B = os.environ["ES_BENCH_DIR"]; BD = os.environ["ES_BUILD_DIR"]; LIBDIR = os.environ["ES_LIBDIR"]
MODE = os.environ["ES_MODE"]; ROUNDS = int(os.environ["ES_ROUNDS"])
PROG = f"{BD}/bench/exit_storm"
TCM, TCM_DEBUG, NOOP = f"{BD}/libtcm.so", f"{BD}/libtcm-debug.so", f"{BD}/bench/libnoop_alloc.so"
GPERF = f"{LIBDIR}/libtcmalloc_minimal.so.4"
# allocator -> (preload, extra environment, signal)
ALLOC = {
    "tcm":        (TCM, {}, signal.SIGTERM),
    "glibc":      ("", {}, signal.SIGTERM),
    "gperftools": (GPERF, {}, signal.SIGTERM),
    "gperf_aggr": (GPERF, {"TCMALLOC_AGGRESSIVE_DECOMMIT": "true"}, signal.SIGTERM),
    "jemalloc":   (f"{LIBDIR}/libjemalloc.so.2", {}, signal.SIGTERM),
    "mimalloc":   (f"{LIBDIR}/libmimalloc.so.2", {}, signal.SIGTERM),
    "noop":       (NOOP, {}, signal.SIGTERM),
    "sigkill":    (NOOP, {}, signal.SIGKILL),
}
PEERS = ["glibc", "gperftools", "gperf_aggr", "jemalloc", "mimalloc"]
CONFIGS = [(2, 1024), (32, 64), (256, 8)] if MODE == "full" else [(2, 128), (32, 8), (256, 1)]
MODES = os.environ["ES_MODES"].split(",")
SETTLE_S = 0.2          # after "ready": let page faulting and background threads settle
READY_TIMEOUT_S = 120
EXIT_TIMEOUT_S = 60     # SIGTERM -> reaped longer than this is a hang

failures = []

def log(msg):
    print(f"exit_storm.sh: {msg}", file=sys.stderr, flush=True)

def base_env(preload, extra):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("TCM_")
           and not k.startswith("TCMALLOC_") and not k.startswith("ES_")}
    if preload:
        env["LD_PRELOAD"] = preload
    env.update(extra)
    return env

def repro_of(env, argv, sig):
    keep = " ".join(f"{k}={v}" for k, v in env.items() if k == "LD_PRELOAD" or k.startswith(("TCM_", "TCMALLOC_")))
    return f"env {keep} {' '.join(argv)}  # then kill -{int(sig)} it after it prints ready"

def find_child(pid):
    """strace's tracee: the first child of pid (strace forks it)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except OSError:
        return None

def run_one(argv, env, sig, wrapper=None):
    """Start, wait for "ready", settle, send sig, time kill -> reaped. Returns a dict."""
    full = (wrapper or []) + argv
    t_start = time.monotonic_ns()
    err = tempfile.TemporaryFile()   # a file, not a pipe: a chatty stderr cannot block the program
    p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=err, env=env, start_new_session=True)
    r = {"status": "ok"}
    def read_err():
        err.seek(0)
        return err.read().decode(errors="replace")
    ready_timer = threading.Timer(READY_TIMEOUT_S, lambda: os.killpg(p.pid, signal.SIGKILL))
    ready_timer.start()
    line = p.stdout.readline().decode(errors="replace").strip()
    ready_timer.cancel()
    if line != "ready":
        p.wait()
        r["status"] = f"no-ready(rc={p.returncode})"
        r["stderr"] = read_err()
        return r
    r["build_s"] = (time.monotonic_ns() - t_start) / 1e9
    time.sleep(SETTLE_S)
    target = p.pid if wrapper is None else find_child(p.pid)
    t0 = time.monotonic_ns()
    os.kill(target, sig)
    # Blocking wait4 (exact reap time); a timer kills the process group if it hangs.
    hung = []
    def on_hang():
        hung.append(1)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    timer = threading.Timer(EXIT_TIMEOUT_S, on_hang)
    timer.start()
    _, st, ru = os.wait4(p.pid, 0)
    t1 = time.monotonic_ns()
    timer.cancel()
    p.returncode = 0   # reaped here; keep Popen from waiting again
    if hung:
        r["status"] = "hang"
    elif wrapper is not None:
        ru = None      # strace's own usage, not the program's
    r["exit_ms"] = (t1 - t0) / 1e6
    out = p.stdout.read().decode(errors="replace")
    r["stderr"] = read_err()
    if ru is not None:
        r["maxrss_kib"] = ru.ru_maxrss
        r["child_cpu_s"] = ru.ru_utime + ru.ru_stime
    if r["status"] == "ok":
        if os.WIFSIGNALED(st):
            r["status"] = f"signal{os.WTERMSIG(st)}"
        elif os.WEXITSTATUS(st) != 0:
            r["status"] = f"exit{os.WEXITSTATUS(st)}"
    m = re.search(r"^result (.*)$", out, re.M)
    if m:
        for kv in m.group(1).split():
            k, _, v = kv.partition("=")
            r[k] = v
    return r

def served_ok(alloc, r):
    lib = ALLOC[alloc][0]
    got = r.get("malloc_from", "?")
    if r.get("free_from") != got:
        return False
    if not lib:
        return got.endswith("/libc.so.6")
    return os.path.realpath(got) == os.path.realpath(lib)

# --- the timed matrix ---------------------------------------------------------------------
RAW = f"{B}/exit_storm.raw"
COLS = ["round", "threads", "size_mib", "mode", "allocator", "status", "exit_ms", "storm_s",
        "free_max_us", "frees_over_1ms", "frees_over_100us", "frees", "cpu_s", "nvcsw", "nivcsw",
        "build_s", "maxrss_kib", "child_cpu_s", "served_by"]
rows = []
names = list(ALLOC)
t_begin = time.time()
log(f"{MODE} run: {ROUNDS} rounds x {len(CONFIGS)} configurations x {len(MODES)} modes x {len(names)} allocators; "
    f"load {open('/proc/loadavg').read().split()[:3]}")
# Warm-up, not recorded (clock ramp-up, page cache).
for a in ("glibc", "tcm"):
    run_one([PROG, "--handler", "2", str(CONFIGS[1][1])], base_env(ALLOC[a][0], {}), signal.SIGTERM)
for rnd in range(1, ROUNDS + 1):
    for ci, (T, size) in enumerate(CONFIGS):
        for mi, mode in enumerate(MODES):
            k = (rnd - 1 + ci * len(MODES) + mi) % len(names)
            order = names[k:] + names[:k]
            for a in order:
                lib, extra, sig = ALLOC[a]
                argv = [PROG, f"--{mode}", str(T), str(size)]
                env = base_env(lib, extra)
                r = run_one(argv, env, sig)
                if a == "sigkill":
                    ok = r["status"] == "signal9"
                    if ok:
                        r["status"] = "ok"
                else:
                    ok = r["status"] == "ok" and "storm_s" in r
                    if ok and not served_ok(a, r):
                        r["status"] = "wrong-library"
                        ok = False
                if not ok:
                    failures.append(f"{a} {mode} {T}x{size}MiB: {r['status']}; stderr: "
                                    f"{r.get('stderr', '').strip()[-300:]!r}; repro: {repro_of(env, argv, sig)}")
                    log("FAILED: " + failures[-1])
                row = {"round": rnd, "threads": T, "size_mib": size, "mode": mode, "allocator": a,
                       **{c: r.get(c, "") for c in COLS[5:-1]},
                       "served_by": r.get("malloc_from", "-")}
                row["status"] = r["status"]
                rows.append(row)
                log(f"r{rnd} {T:>3}x{size:<4} {mode:<7} {a:<10} {r['status']:<6} exit {r.get('exit_ms', 0):8.1f} ms"
                    f"  storm {float(r.get('storm_s') or 0) * 1e3:7.1f} ms  >1ms {r.get('frees_over_1ms', '-')}")
log(f"matrix done in {time.time() - t_begin:.0f} s")

# --- extras: tcm's timeline, the lock-checking build, strace of madvise -------------------------
extras = []
for (T, size) in CONFIGS:
    for mode in MODES:
        env = base_env(TCM, {"TCM_STATS_ON_EXIT": "stderr"})
        argv = [PROG, f"--{mode}", str(T), str(size)]
        r = run_one(argv, env, signal.SIGTERM)
        tl = re.search(r"^tcm shutdown:.*$", r.get("stderr", ""), re.M)
        locks = [" ".join(line.split()) for line in
                 re.findall(r"^ *lock_\w+_(?:hold|wait)_max\w*_seconds .*$", r.get("stderr", ""), re.M)]
        extras.append(("stats", T, size, mode, r["status"], r.get("exit_ms"),
                       tl.group(0) if tl else "(no tcm shutdown line)", locks))
        if r["status"] != "ok":
            failures.append(f"tcm stats run {mode} {T}x{size}: {r['status']}; repro: {repro_of(env, argv, signal.SIGTERM)}")
for (T, size) in CONFIGS:
    env = base_env(TCM_DEBUG, {"TCM_STATS_ON_EXIT": "stderr"})
    argv = [PROG, "--handler", str(T), str(size)]
    r = run_one(argv, env, signal.SIGTERM)
    if r["status"] == "ok" and os.path.realpath(r.get("malloc_from", "?")) != os.path.realpath(TCM_DEBUG):
        r["status"] = "wrong-library"
    tl = re.search(r"^tcm shutdown:.*$", r.get("stderr", ""), re.M)
    extras.append(("debug", T, size, "handler", r["status"], r.get("exit_ms"),
                   tl.group(0) if tl else "(no tcm shutdown line)", r.get("stderr", "").strip().splitlines()[-1:] if r["status"] != "ok" else []))
    if r["status"] != "ok":
        failures.append(f"libtcm-debug.so handler {T}x{size}: {r['status']}; stderr: {r.get('stderr', '')[-400:]!r}; "
                        f"repro: {repro_of(env, argv, signal.SIGTERM)}")
strace_T, strace_size = CONFIGS[1]
strace_file = f"{BD}/exit_storm.strace"
env = base_env("", {})
argv = [PROG, "--handler", str(strace_T), str(strace_size)]
r = run_one(argv, env, signal.SIGTERM,
            wrapper=["strace", "-f", "-e", "trace=madvise,process_madvise", "-E", f"LD_PRELOAD={TCM}", "-o", strace_file])
strace = {"status": r["status"], "exit_ms": r.get("exit_ms"), "served": r.get("malloc_from", "?")}
calls, after, max_len, max_len_after, by_advice = 0, 0, 0, 0, {}
seen_term = False
with open(strace_file, errors="replace") as f:
    for line in f:
        if "--- SIGTERM" in line:
            seen_term = True
        # madvise(addr, length, advice), or process_madvise(pidfd, [iovecs], count, advice, 0) = bytes
        m = re.search(r"\bmadvise\((?:0x[0-9a-f]+|NULL), (\d+), (\w+)\)", line)
        pm = re.search(r"process_madvise\(.*\], \d+, (\w+), \d+\)\s+=\s+(\d+)", line)
        if m:
            n, advice = int(m.group(1)), m.group(2)
        elif pm:
            n, advice = int(pm.group(2)), "process_madvise " + pm.group(1)
        else:
            continue
        calls += 1
        max_len = max(max_len, n)
        by_advice[advice] = by_advice.get(advice, 0) + 1
        if seen_term:
            after += 1
            max_len_after = max(max_len_after, n)
strace.update(calls=calls, after=after, max_len=max_len, max_len_after=max_len_after,
              by_advice=by_advice, seen_term=seen_term)
if os.path.realpath(strace["served"]) != os.path.realpath(TCM):
    failures.append(f"strace run not served by tcm ({strace['served']}): repro: strace -f -e trace=madvise,process_madvise "
                    f"-E LD_PRELOAD={TCM} -o /tmp/s {' '.join(argv)}")

# --- raw -------------------------------------------------------------------------------------
with open(RAW, "w") as f:
    f.write("# bench/exit_storm.raw - every timed run of bench/exit_storm.sh (TSV); exit_ms = SIGTERM "
            "(SIGKILL for sigkill) -> reaped, measured by the driver; the rest from the program's result line\n")
    facts = {"mode": MODE, "rounds": ROUNDS, "nproc": os.cpu_count(),
             "model": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
             "kernel": os.uname().release, "tcm_source": os.environ["ES_SOURCE"],
             "date_end": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
             "load_end": " ".join(open("/proc/loadavg").read().split()[:3])}
    for k, v in facts.items():
        f.write(f"#fact\t{k}\t{v}\n")
    f.write("\t".join(COLS) + "\n")
    for row in rows:
        f.write("\t".join(str(row[c]) for c in COLS) + "\n")

# --- report ----------------------------------------------------------------------------------
def med(T, size, mode, a, key):
    xs = [float(r[key]) for r in rows if r["threads"] == T and r["size_mib"] == size and r["mode"] == mode
          and r["allocator"] == a and r["status"] == "ok" and r[key] != ""]
    return statistics.median(xs) if xs else None

def f1(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"

def ratio(x, y):
    return "-" if x is None or y is None or y == 0 else f"{x / y:.2f}"

md = []
p = md.append
p(f"Written by `bench/exit_storm.sh{' --quick' if MODE == 'quick' else ''}` ({facts['date_end']}, tcm "
  f"`{facts['tcm_source']}`, {facts['nproc']} CPUs {facts['model']}, kernel {facts['kernel']}, load at end "
  f"{facts['load_end']}). {ROUNDS} rounds; every number is the median over rounds; allocators rotate "
  f"within each round. Raw: `bench/exit_storm.raw`.\n")
p("Columns: **exit** = SIGTERM -> reaped as the parent sees it (wait4), ms; **/noop** and **/best peer** = "
  "exit divided by the do-nothing allocator's and by the fastest peer's (glibc, gperftools, gperftools with "
  "TCMALLOC_AGGRESSIVE_DECOMMIT, jemalloc, mimalloc); **storm** = first free to last join, inside; "
  "**max free** = longest single free() in any thread, us; **>1ms / >100us** = frees that took longer "
  "(summed over threads); **CPU** = process CPU seconds during the storm; **vcsw / ivcsw** = voluntary / "
  "involuntary context switches during the storm; **RSS** = peak, MiB. The noop row is the floor: its "
  "frees do nothing, so its slow frees are the scheduler preempting a thread between two clock reads "
  "(T threads on 2 CPUs), not allocator work. sigkill = the noop heap killed with kill -9 (the kernel's "
  "teardown alone; no inside numbers).\n")
verdicts = []
for (T, size) in CONFIGS:
    for mode in MODES:
        p(f"### {T} threads x {size} MiB, --{mode}\n")
        p("| allocator | exit ms | /noop | /best peer | storm ms | max free us | >1ms | >100us | CPU s | vcsw | ivcsw | RSS MiB |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|")
        noop = med(T, size, mode, "noop", "exit_ms")
        peer_exit = {a: med(T, size, mode, a, "exit_ms") for a in PEERS}
        peer_exit = {a: v for a, v in peer_exit.items() if v is not None}
        best_peer = min(peer_exit, key=peer_exit.get) if peer_exit else None
        best = peer_exit.get(best_peer)
        for a in names:
            e = med(T, size, mode, a, "exit_ms")
            st = med(T, size, mode, a, "storm_s")
            rss = med(T, size, mode, a, "maxrss_kib")
            nfail = sum(1 for r in rows if r["threads"] == T and r["size_mib"] == size and r["mode"] == mode
                        and r["allocator"] == a and r["status"] != "ok")
            name = f"**{a}**" if a == "tcm" else a
            if nfail:
                name += f" ({nfail} failed)"
            p(f"| {name} | {f1(e)} | {ratio(e, noop)} | {ratio(e, best)} | {f1(st * 1e3 if st is not None else None)} | "
              f"{f1(med(T, size, mode, a, 'free_max_us'))} | {f1(med(T, size, mode, a, 'frees_over_1ms'), 0)} | "
              f"{f1(med(T, size, mode, a, 'frees_over_100us'), 0)} | {f1(med(T, size, mode, a, 'cpu_s'), 2)} | "
              f"{f1(med(T, size, mode, a, 'nvcsw'), 0)} | {f1(med(T, size, mode, a, 'nivcsw'), 0)} | "
              f"{f1(rss / 1024 if rss is not None else None, 0)} |")
        p(f"\nBest peer on exit time: {best_peer}.\n")
        tcm_e = med(T, size, mode, "tcm", "exit_ms")
        tcm_slow = med(T, size, mode, "tcm", "frees_over_1ms")
        peer_slow = {a: med(T, size, mode, a, "frees_over_1ms") for a in PEERS}
        peer_slow = {a: v for a, v in peer_slow.items() if v is not None}
        best_slow_peer = min(peer_slow, key=peer_slow.get) if peer_slow else None
        verdicts.append((T, size, mode, tcm_e, noop, best, best_peer, tcm_slow,
                         peer_slow.get(best_slow_peer), best_slow_peer,
                         [a for a, v in peer_exit.items() if tcm_e is not None and v <= tcm_e]))

def yes(b):
    return "**met**" if b else "**not met**"

p("### Targets\n")
p("| config | mode | tcm exit / noop (<= 1.1) | ahead of every peer | tcm frees > 1 ms | target | verdict |")
p("|---|---|---|---|---|---|---|")
for (T, size, mode, tcm_e, noop, best, best_peer, tcm_slow, best_slow, best_slow_peer, beaten_by) in verdicts:
    r_noop = tcm_e / noop if tcm_e and noop else None
    t1 = r_noop is not None and r_noop <= 1.1
    t2 = tcm_e is not None and not beaten_by
    if T == min(c[0] for c in CONFIGS):
        tgt, t3 = "0", tcm_slow == 0
    elif T == max(c[0] for c in CONFIGS):
        tgt = f"<= {best_slow / 10:g} (best peer {best_slow_peer}: {best_slow:g})" if best_slow is not None else "-"
        t3 = tcm_slow is not None and best_slow is not None and tcm_slow <= best_slow / 10
    else:
        tgt, t3 = "(none)", True
    p(f"| {T} x {size} MiB | {mode} | {f1(r_noop, 2)} {yes(t1)} | "
      f"{yes(t2)}{'' if t2 else ' (behind ' + ', '.join(beaten_by) + ')'} | {f1(tcm_slow, 0)} | {tgt} | "
      f"{yes(t3) if tgt != '(none)' else '-'} |")
p("")
p("### tcm's own account (one run each, TCM_STATS_ON_EXIT=stderr)\n")
p("| config | mode | status | exit ms | tcm shutdown line | locks |")
p("|---|---|---|---|---|---|")
for (kind, T, size, mode, status, e, tl, locks) in extras:
    if kind == "stats":
        p(f"| {T} x {size} MiB | {mode} | {status} | {f1(e)} | `{tl}` | {'<br>'.join('`' + l + '`' for l in locks)} |")
p("\n### Lock-checking build (libtcm-debug.so, TCM_DEBUG=2), --handler\n")
p("| config | status | exit ms | tcm shutdown line |")
p("|---|---|---|---|")
for (kind, T, size, mode, status, e, tl, last) in extras:
    if kind == "debug":
        p(f"| {T} x {size} MiB | {status}{(' ' + repr(last)) if last else ''} | {f1(e)} | `{tl}` |")
p(f"\n### madvise calls of tcm (strace -f -e trace=madvise,process_madvise, --handler, {strace_T} x {strace_size} MiB)\n")
lim = 2048 * 1024
p(f"Run status {strace['status']} (exit under strace {f1(strace['exit_ms'])} ms; ptrace slows it, so not a timing). "
  f"madvise calls: {strace['calls']} in the whole run, {strace['after']} after SIGTERM"
  f"{'' if strace['seen_term'] else ' (SIGTERM not seen in the trace)'}; by advice: "
  f"{', '.join(f'{k} {v}' for k, v in sorted(strace['by_advice'].items())) or 'none'}. Largest length: "
  f"{strace['max_len']} bytes in one call ({strace['max_len'] / 1048576:.2f} MiB; after SIGTERM "
  f"{strace['max_len_after'] / 1048576:.2f} MiB). Limit release.chunk_kib = 2048 KiB: "
  f"{yes(strace['max_len'] <= lim)}.\n")
if failures:
    p("### Failed runs\n")
    for fl in failures:
        p(f"- {fl}")
    p("")

section = "\n".join(md)
path = f"{B}/EXIT_STORM.md"
skeleton = ("<!-- bench/EXIT_STORM.md - generated by bench/exit_storm.sh and bench/drain.sh; do not edit by hand -->\n"
            "# Exit storm and drain: tcm against its peers and the floor\n\n"
            "## Exit storm (bench/exit_storm.c)\n\n<!-- BEGIN storm -->\n<!-- END storm -->\n\n"
            "## Drain (bench/drain_service.c)\n\n<!-- BEGIN drain -->\n<!-- END drain -->\n")
text = open(path).read() if os.path.exists(path) else skeleton
if "<!-- BEGIN storm -->" not in text:
    text = skeleton
text = re.sub(r"<!-- BEGIN storm -->.*<!-- END storm -->",
              lambda m: "<!-- BEGIN storm -->\n" + section + "\n<!-- END storm -->", text, flags=re.S)
open(path, "w").write(text)
print(section)
if failures:
    log("some runs failed:")
    for fl in failures:
        print("  " + fl, file=sys.stderr)
    sys.exit(1)
PY
if [ $DO_DRAIN = 1 ]; then
	drain_args=(--no-build --build-dir "$BUILD_DIR")
	[ "$MODE" = quick ] && drain_args+=(--quick)
	"$BENCH_DIR/drain.sh" "${drain_args[@]}" || status=1
fi
exit $status
