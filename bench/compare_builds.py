#!/usr/bin/env python3
"""bench/compare_builds.py - two builds of libtcm.so side by side on the bench programs: each
workload under BEFORE and AFTER in interleaved rounds (the order flips every round), printing a
Markdown table of median seconds, the paired median of after/before, and median peak RSS. For a
change that should not move speed or memory (a restructuring), on a shared machine where only
paired, interleaved figures mean anything.

Usage: bench/compare_builds.py BEFORE_LIBTCM AFTER_LIBTCM [--rounds N] [--bench-dir DIR]
  --bench-dir   where the bench programs are (default: build/bench of this checkout)
Sizes are bench/run --quick's, fragmentation's its full one (peak RSS is its point)."""
import argparse
import os
import re
import statistics
import subprocess
import sys

WORKLOADS = {
    "churn_single": "4000000",
    "churn_threads": "4000000 4",
    "larson": "8000000 4 2048 16",
    "producer_consumer": "6000000 2",
    "false_sharing": f"1000000 {os.cpu_count()} 64",
    "realloc_growth": "60000 64 1024",
    "large_blocks": "1500 4",
    "fragmentation": "1000000 8",
}


def run(program, args, lib):
    out = subprocess.run([program] + args.split(), env={"LD_PRELOAD": lib}, capture_output=True, text=True,
                         check=True).stdout
    seconds = re.search(r"seconds=([0-9.]+)", out)
    rss = re.search(r"maxrss_kib=([0-9]+)", out)
    served_by = re.search(r"malloc_from=(\S+)", out)
    if seconds is None or rss is None or served_by is None or \
            os.path.realpath(served_by.group(1)) != os.path.realpath(lib):
        sys.exit(f"compare_builds: {program} under {lib} was not served by it, or did not report: {out!r}")
    return float(seconds.group(1)), int(rss.group(1))


def main():
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--bench-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                            "build", "bench"))
    options = parser.parse_args()
    libs = {"before": os.path.abspath(options.before), "after": os.path.abspath(options.after)}
    results = {(workload, name): [] for workload in WORKLOADS for name in libs}
    for round_number in range(options.rounds):
        order = list(libs) if round_number % 2 == 0 else list(reversed(libs))
        for workload, args in WORKLOADS.items():
            for name in order:
                results[(workload, name)].append(run(os.path.join(options.bench_dir, workload), args, libs[name]))
    print(f"{options.rounds} interleaved rounds; before = {libs['before']}, after = {libs['after']}\n")
    print("| workload | before s | after s | after/before time (paired median) | peak RSS before -> after (MiB) |")
    print("|---|---:|---:|---:|---|")
    for workload in WORKLOADS:
        before, after = results[(workload, "before")], results[(workload, "after")]
        ratio = statistics.median(a[0] / b[0] for a, b in zip(after, before))
        print(f"| {workload} | {statistics.median(b[0] for b in before):.3f} | "
              f"{statistics.median(a[0] for a in after):.3f} | {ratio:.3f} | "
              f"{statistics.median(b[1] for b in before) / 1024:.0f} -> {statistics.median(a[1] for a in after) / 1024:.0f} |")


main()
