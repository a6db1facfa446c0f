#!/usr/bin/env python3
# bench/report.py - turns bench/results.raw (TSV written by bench/run) into bench/RESULTS.md and
# the gnuplot data for bench/results.png, rss.png and sweep.png (time.dat, rss.dat and sweep.dat
# in PLOT_DIR). Stdlib only. Every number in RESULTS.md comes from the raw file, except the exit
# storm section, quoted from EXIT_STORM.md when given:
#   python3 bench/report.py bench/results.raw OUT.md PLOT_DIR [bench/EXIT_STORM.md]
# Raw format: a "# " head comment, "#fact<TAB>key<TAB>value" lines, one header line, then one row per run:
#   round workload allocator seconds ops maxrss_kib malloc_from extra
# (extra: the workload's own key=value fields, space-separated).
import math
import os
import re
import statistics
import sys
from collections import OrderedDict

# The stress workloads, in report order; each is one row of the summary and its geometric mean.
STRESS = OrderedDict([
    ("churn_single",
     "Single-thread small-object churn: a ring of live slots; each step frees a random slot and "
     "mallocs a new size (15/16 uniform in 16-512 B, 1/16 in 513 B-4 KiB), stamping both ends."),
    ("churn_threads",
     "T threads, each with a window of live objects (same size mix); one freed object in four is "
     "handed to the next thread through a bounded SPSC queue and freed there (cross-thread "
     "frees); time includes draining, teardown and join."),
    ("larson",
     "Larson-style server: T lanes of live slots; each step frees a random slot and mallocs a "
     "random size (15/16 in 16-1024 B, 1/16 up to 8 KiB). Each lane is served by a chain of "
     "threads: after its share a thread starts a successor, hands it the slots and exits, so "
     "frees hit objects of exited threads and every generation builds and drops a thread cache."),
    ("producer_consumer",
     "Producer/consumer: producers malloc (churn size mix) and pass objects through a bounded "
     "lock-free SPSC ring to their consumer, which checks and frees them; every free is remote "
     "and memory flows one way."),
    ("false_sharing",
     "Passive false sharing (cache-scratch shape): main mallocs one 16 B object per thread back "
     "to back and hands them out; each thread frees its object, then repeats malloc 16 B, 64 "
     "writes, check, free. An allocator that gives the freed object back to the freeing thread "
     "keeps the threads writing one cache line. sharing threads = threads whose first object "
     "shared a 64 B line with another thread's."),
    ("realloc_growth",
     "Realloc growth: 64 buffers, each grown by realloc from 16 B to 1 MiB in small steps "
     "(up to 1/8 of the size), a random buffer per step; content checked after every realloc "
     "and sampled in full before each free and restart."),
    ("large_blocks",
     "Large blocks: a few live slots; each step frees a random one and mallocs a new block, "
     "log-uniform in 64 KiB-8 MiB, touching every page (map/unmap/madvise and page-fault path)."),
    ("fragmentation",
     "Fragmentation: malloc N small objects (churn size mix), free all but a random one in 8, "
     "then malloc 1-16 KiB objects adding up to half the bytes freed. Besides the peak, the table "
     "gives VmRSS after the frees and at the end (final), and final RSS / live bytes."),
])
REF = "tcm"


def read_raw(path):
    facts, rows = OrderedDict(), []
    header = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            cols = line.split("\t")
            if line.startswith("# "):
                continue                      # the file's own head comment
            if cols[0] == "#fact":
                facts[cols[1]] = cols[2] if len(cols) > 2 else ""
            elif header is None:
                header = cols
            else:
                row = dict(zip(header, cols))
                row["round"] = int(row["round"])
                row["seconds"] = float(row["seconds"])
                row["ops"] = int(row["ops"])
                row["maxrss_kib"] = int(row["maxrss_kib"])
                row["fields"] = dict(kv.split("=", 1) for kv in row.get("extra", "").split())
                rows.append(row)
    return facts, rows


def fmt(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def sweep_threads(workload):
    """Thread count of a thread-sweep row (sweep_t8 -> 8), else None."""
    m = re.fullmatch(r"sweep_t(\d+)", workload)
    return int(m.group(1)) if m else None


def exit_storm_targets(path):
    """The date and the "### Targets" table of EXIT_STORM.md, or (None, []) if absent."""
    if not path or not os.path.exists(path):
        return None, []
    with open(path) as f:
        text = f.read()
    date = re.search(r"Written by `bench/exit_storm.sh` \(([^,]+),", text)
    table, inside = [], False
    for line in text.splitlines():
        if line.startswith("### Targets"):
            inside = True
        elif inside and line.startswith("|"):
            table.append(line)
        elif inside and table:
            break
    return (date.group(1) if date else None), table


def write_dat(path, allocators, rows):
    """rows: (label, {allocator: value}); gnuplot reads NaN as missing."""
    with open(path, "w") as f:
        f.write("workload\t" + "\t".join(allocators) + "\n")
        for label, values in rows:
            f.write(label + "\t" + "\t".join(fmt(values.get(a), 4) if values.get(a) is not None
                                             else "NaN" for a in allocators) + "\n")


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: report.py RESULTS.raw OUT.md PLOT_DIR [EXIT_STORM.md]")
    raw_path, md_path, plot_dir = sys.argv[1:4]
    storm_path = sys.argv[4] if len(sys.argv) == 5 else None
    facts, rows = read_raw(raw_path)
    allocators = facts["allocators"].split()
    labels = {a: facts.get("label." + a, "") for a in allocators}
    ref = REF if REF in allocators else "glibc"

    # by[workload][allocator] = list of rows (all rounds)
    by = OrderedDict()
    for r in rows:
        by.setdefault(r["workload"], OrderedDict()).setdefault(r["allocator"], []).append(r)

    def med(w, a, key="seconds"):
        rs = by.get(w, {}).get(a, [])
        return statistics.median(r[key] for r in rs) if rs else None

    def med_field(w, a, key):
        rs = by.get(w, {}).get(a, [])
        vals = [float(r["fields"][key]) for r in rs if key in r["fields"]]
        return statistics.median(vals) if vals else None

    def medians(w, key="seconds"):
        return {a: med(w, a, key) for a in allocators if med(w, a, key) is not None}

    def constant_fields(w):
        """The extra fields equal in every run of w: the workload's parameters."""
        runs = [r for rs in by[w].values() for r in rs]
        return {k: v for k, v in runs[0]["fields"].items()
                if all(r["fields"].get(k) == v for r in runs)}

    out = []
    p = out.append
    mode = facts.get("mode", "full")
    p("<!-- bench/RESULTS.md - generated by bench/run (bench/report.py) from bench/results.raw; "
      "do not edit by hand -->")
    p("# tcm benchmark results\n")
    p(f"Written by `bench/run{' --quick' if mode == 'quick' else ''}` on {facts.get('date_end', '?')}. "
      f"Raw data: `bench/results.raw` (one TSV row per run; `python3 bench/report.py` re-derives "
      f"this file from it). Plots: `bench/results.png` (time), `bench/rss.png` (peak RSS), "
      f"`bench/sweep.png` (thread sweep).\n")
    if mode == "quick":
        p(f"**Quick mode**: {facts.get('rounds', '?')} rounds and small op counts, a smoke test. "
          "Quote only full runs.\n")
    if ref != REF:
        p(f"**libtcm.so was missing: tcm was not measured; ratios are to {ref}.**\n")

    nproc = int(facts.get("nproc", "0") or 0)
    try:
        busy = float(facts["load_before"].split()[0]) > 0.5 * nproc
    except (KeyError, ValueError, IndexError):
        busy = False
    if busy:
        p(f"**The machine was busy** (1-min load {facts['load_before'].split()[0]} at start on "
          f"{nproc} CPUs): expect wide min-max ranges; compare medians only.\n")

    p("## Machine\n")
    p("| fact | value |\n|---|---|")
    for key, name in (("nproc", "nproc"), ("model", "model name"), ("kernel", "uname -r"),
                      ("date_start", "started"), ("date_end", "finished"),
                      ("load_before", "load average before"), ("load_after", "load average after"),
                      ("rounds", "rounds"), ("tcm_source", "tcm source (git)")):
        if key in facts:
            p(f"| {name} | {facts[key]} |")
    for a in allocators:
        p(f"| {a} | {labels.get(a, '')} |")
    p("")

    p("## Method\n")
    p("- Every round runs each workload under each allocator back to back (interleaved); the "
      "starting allocator rotates each round, so no allocator always runs first or last.")
    p("- glibc = no LD_PRELOAD; the others are preloaded. Each run prints, via "
      "`dladdr(dlsym(RTLD_DEFAULT, \"malloc\"))`, the file that served malloc and free; bench/run "
      "aborts unless it is the intended library.")
    p("- Seconds are CLOCK_MONOTONIC around the timed section only. Tables give the median over "
      f"rounds, the min-max range, the ratios of the median to {ref}'s median and to the best "
      "median of all five (lower is faster; 1.00 = the fastest), and the median peak RSS "
      "(ru_maxrss, whole process).")
    p("- The geometric-mean row is over the stress workloads of the summary (not the thread "
      "sweep, which repeats larson at other thread counts, nor start-up, a per-exec cost).")
    p("- Every workload is seeded (the same sequence under every allocator) and checks its data "
      "before it frees (stamps, patterns, counters), so an allocator that hands out overlapping "
      "memory or loses content fails the run instead of being timed.\n")

    stress = [w for w in STRESS if w in by]
    time_best = {w: {a: m / min(medians(w).values()) for a, m in medians(w).items()}
                 for w in stress}
    rss_best = {w: {a: m / min(medians(w, "maxrss_kib").values())
                    for a, m in medians(w, "maxrss_kib").items()} for w in stress}

    def geomean_row(ratios):
        return {a: geomean([ratios[w][a] for w in stress if a in ratios[w]]) for a in allocators
                if any(a in ratios[w] for w in stress)}

    def summary_table(title, note, ratios):
        p(f"### {title}\n")
        p(note + "\n")
        p("| workload | " + " | ".join(allocators) + " |")
        p("|---|" + "---:|" * len(allocators))
        for w in stress:
            p(f"| [{w}](#{w}) | " + " | ".join(
                (f"**{fmt(ratios[w][a], 2)}**" if ratios[w][a] == 1.0 else fmt(ratios[w][a], 2))
                if a in ratios[w] else "-" for a in allocators) + " |")
        g = geomean_row(ratios)
        p("| **geometric mean** | " + " | ".join(fmt(g.get(a), 2) for a in allocators) + " |")
        p("")
        return g

    if stress:
        p("## Summary\n")
        time_geo = summary_table(
            "Time: median / best median", "1.00 (bold) = the fastest allocator on that workload.",
            time_best)
        p("![time / best time per workload](results.png)\n")
        rss_geo = summary_table(
            "Peak RSS: median / smallest median",
            "1.00 (bold) = the smallest peak resident set on that workload.", rss_best)
        p("![peak RSS / smallest per workload](rss.png)\n")

    for w in stress:
        meds = medians(w)
        best = min(meds.values())
        params = " ".join(f"{k}={v}" for k, v in constant_fields(w).items())
        sample_ops = next(iter(by[w].values()))[0]["ops"]
        p(f"## {w}\n")
        p(f"{STRESS[w]} Per run: ops={sample_ops} {params}.\n")
        head = f"| allocator | median s | min-max s | ratio to {ref} | ratio to best | peak RSS MiB |"
        rule = "|---|---:|---:|---:|---:|---:|"
        if w == "false_sharing":
            head += " sharing threads |"
            rule += "---:|"
        if w == "fragmentation":
            head += " RSS after free MiB | final RSS MiB | final RSS / live |"
            rule += "---:|---:|---:|"
        p(head)
        p(rule)
        for a in allocators:
            if a not in meds:
                continue
            secs = [r["seconds"] for r in by[w][a]]
            r_ref = meds[a] / meds[ref] if ref in meds else None
            line = (f"| {a} | {fmt(meds[a])} | {fmt(min(secs))}-{fmt(max(secs))} | "
                    f"{fmt(r_ref, 2)} | {fmt(meds[a] / best, 2)} | "
                    f"{fmt(med(w, a, 'maxrss_kib') / 1024.0, 1)} |")
            if w == "false_sharing":
                line += f" {fmt(med_field(w, a, 'sharing_threads'), 0)} |"
            if w == "fragmentation":
                after = med_field(w, a, "rss_after_free_kib")
                final = med_field(w, a, "rss_final_kib")
                live = med_field(w, a, "live_final_kib")
                line += (f" {fmt(after / 1024.0 if after else None, 1)} |"
                         f" {fmt(final / 1024.0 if final else None, 1)} |"
                         f" {fmt(final / live if final and live else None, 2)} |")
            p(line)
        p("")

    sweep = sorted((sweep_threads(w), w) for w in by if sweep_threads(w) is not None)
    sweep_rows = []
    if sweep:
        sample = next(iter(by[sweep[0][1]].values()))[0]
        params = " ".join(f"{k}={v}" for k, v in constant_fields(sweep[0][1]).items()
                          if k not in ("threads", "threads_started"))
        p("## Thread sweep\n")
        p(f"larson (see above) with the same total ops={sample['ops']} ({params}) split over 1 "
          f"thread and 1x, 2x, 4x the {nproc} CPUs. Cells: median million ops per second (higher "
          "is better) and, in brackets, median time / best median at that thread count.\n")
        p("| threads | " + " | ".join(allocators) + " |")
        p("|---:|" + "---:|" * len(allocators))
        for threads, w in sweep:
            meds = medians(w)
            best = min(meds.values())
            rate = {a: by[w][a][0]["ops"] / meds[a] / 1e6 for a in meds}
            p(f"| {threads} | " + " | ".join(
                f"{fmt(rate[a], 2)} ({fmt(meds[a] / best, 2)})" if a in meds else "-"
                for a in allocators) + " |")
            sweep_rows.append((str(threads), rate))
        p("\n![thread sweep: million ops per second against threads](sweep.png)\n")

    if "startup" in by:
        w = "startup"
        runs = by[w]
        sample = next(iter(runs.values()))[0]
        n = sample["ops"]
        p("## Start-up: /bin/true\n")
        p(f"`spawn_true` runs /bin/true {n} times per run (posix_spawn + waitpid in a tight loop, "
          "LD_PRELOAD set for the children only). ms/exec = run seconds / count; added and ratio "
          "are paired: the median over rounds of (allocator - no preload) and of (allocator / "
          "no preload) within the same round, which cancels slow phases of a shared machine; "
          "peak RSS = the largest child's ru_maxrss.\n")
        p("| allocator | median ms/exec | min-max ms/exec | added ms/exec | ratio to no preload | "
          "peak RSS MiB |")
        p("|---|---:|---:|---:|---:|---:|")
        base = {r["round"]: r["seconds"] / r["ops"] for r in runs.get("glibc", [])}
        added_tcm = None
        for a in allocators:
            if a not in runs:
                continue
            per = [r["seconds"] / r["ops"] * 1e3 for r in runs[a]]
            added = [(r["seconds"] / r["ops"] - base[r["round"]]) * 1e3
                     for r in runs[a] if r["round"] in base]
            m = statistics.median(per)
            paired = [r["seconds"] / r["ops"] / base[r["round"]] for r in runs[a] if r["round"] in base]
            ratio = statistics.median(paired) if paired else None
            add_m = statistics.median(added) if added else None
            if a == "tcm":
                added_tcm = add_m
            rss = med(w, a, "maxrss_kib") / 1024.0
            name = "glibc (no preload)" if a == "glibc" else a
            p(f"| {name} | {fmt(m)} | {fmt(min(per))}-{fmt(max(per))} | {fmt(add_m)} | "
              f"{fmt(ratio, 2)} | {fmt(rss, 1)} |")
        if added_tcm is not None:
            verdict = "met" if added_tcm < 0.3 else "NOT met"
            p(f"\ntcm adds {added_tcm:.3f} ms per exec (target: under 0.3 ms): **{verdict}**.")
        p("")

    p("## Noise-free counts\n")
    p("Wall times on a shared machine move 2-5x between runs of the same binary. Two scripts count "
      "instead, with valgrind: `bench/fast_path.sh` (instructions per malloc+free pair, "
      "[FAST_PATH.md](FAST_PATH.md)) and `bench/cache_sim.sh` (instructions and simulated cache misses "
      "of the single-threaded workloads, [CACHE_SIM.md](CACHE_SIM.md)).\n")

    p("## Exit storm\n")
    storm_date, storm_table = exit_storm_targets(storm_path)
    p("The exit storm (many threads freeing their heaps at SIGTERM, time to reaped) and the drain "
      "are measured by `bench/exit_storm.sh` and `bench/drain.sh`, not by this run: see "
      "[EXIT_STORM.md](EXIT_STORM.md).")
    if storm_table:
        p(f"Its targets table{f' (written {storm_date})' if storm_date else ''}:\n")
        out.extend(storm_table)
    p("")

    with open(md_path, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")

    # Plot data: one row per workload (and the geometric mean), one column per allocator.
    if stress:
        write_dat(os.path.join(plot_dir, "time.dat"), allocators,
                  [(w, time_best[w]) for w in stress] + [("geomean", time_geo)])
        frag_final = {}
        if "fragmentation" in stress:
            finals = {a: med_field("fragmentation", a, "rss_final_kib") for a in allocators}
            finals = {a: v for a, v in finals.items() if v}
            frag_final = {a: v / min(finals.values()) for a, v in finals.items()}
        write_dat(os.path.join(plot_dir, "rss.dat"), allocators,
                  [(w, rss_best[w]) for w in stress] +
                  ([("fragmentation_final", frag_final)] if frag_final else []) +
                  [("geomean", rss_geo)])
    write_dat(os.path.join(plot_dir, "sweep.dat"), allocators, sweep_rows)


if __name__ == "__main__":
    main()
