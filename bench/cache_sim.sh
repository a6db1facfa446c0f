#!/usr/bin/env bash
# bench/cache_sim.sh - the single-threaded workloads of bench/run under cachegrind's simulated
# caches and branch predictor, for glibc, gperftools, jemalloc, mimalloc and tcm: instructions,
# D1 misses, last-level misses and mispredicted branches of the whole program (the
# workload's own work included). A mispredicted branch also throws away the cache misses the CPU
# had started past it, which is what made tcm's size-class branch cost more than its count
# suggests (core/size_class.h). Simulated counts
# do not move with the machine's load, so they separate an allocator's cost from the noise of a
# shared machine, where the same binary's wall time varies 2-5x between runs. They model one
# core's caches (cachegrind takes the host's sizes): no coherence traffic, no TLB, no page faults.
# Usage: bench/cache_sim.sh [build_dir]   (default build-bench, as bench/run builds it)
# Prints the table and writes it to bench/CACHE_SIM.md. Takes about 3 minutes on 2 CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build-bench}"
bin="$build_dir/bench"
for program in churn_single larson fragmentation; do
	[ -x "$bin/$program" ] || { echo "bench/cache_sim.sh: $bin/$program missing: run bench/run first" >&2; exit 1; }
done
[ -f "$build_dir/libtcm.so" ] || { echo "bench/cache_sim.sh: $build_dir/libtcm.so missing: run bench/run first" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "bench/cache_sim.sh: valgrind is missing" >&2; exit 1; }
libdir=/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Workloads: name and arguments (op counts a tenth of bench/run's full mode or less; larson on
# one thread, because valgrind runs threads one at a time).
workloads=("churn_single 2000000" "larson 2000000 1" "fragmentation 300000 8")
allocators=("glibc:" "gperftools:$libdir/libtcmalloc_minimal.so.4" "jemalloc:$libdir/libjemalloc.so.2"
	    "mimalloc:$libdir/libmimalloc.so.2" "tcm:$PWD/$build_dir/libtcm.so")

# One job per line: allocator, preload, workload words. Two at a time.
for w in "${workloads[@]}"; do
	for entry in "${allocators[@]}"; do
		echo "${entry%%:*} ${entry#*:} $w"
	done
done | sed 's/^\([a-z]*\)  /\1 - /' | xargs -P 2 -L 1 bash -c '
	name=$0 preload=$1 program=$2; shift 2
	[ "$preload" = - ] && preload=
	log='"$out"'/$program.$name
	LD_PRELOAD=$preload valgrind --tool=cachegrind --cache-sim=yes --branch-sim=yes --cachegrind-out-file=/dev/null \
		'"$bin"'/$program "$@" >"$log" 2>&1 || { echo "bench/cache_sim.sh: $name $program failed (log below)" >&2; tail -5 "$log" >&2; exit 255; }
	served=$(sed -n "s/.*malloc_from=\([^ ]*\).*/\1/p" "$log")
	case $name:$served in
	glibc:*/libc.so.6|gperftools:*tcmalloc*|jemalloc:*jemalloc*|mimalloc:*mimalloc*|tcm:*libtcm.so) ;;
	*) echo "bench/cache_sim.sh: $name $program: malloc served by \"$served\"" >&2; exit 255 ;;
	esac'

number() {   # number LOG LABEL -> the total count on cachegrind's summary line LABEL
	sed -n "s/.*$2: *\([0-9,]*\).*/\1/p" "$1" | head -n 1 | tr -d ,
}
table() {
	for w in "${workloads[@]}"; do
		program=${w%% *}
		echo "### $program ($w)"
		echo
		echo "| allocator | instructions (M) | D1 misses (M) | LL misses (k) | mispredicted branches (k) | instructions / tcm | D1 misses / tcm |"
		echo "|---|---:|---:|---:|---:|---:|---:|"
		tcm_i=$(number "$out/$program.tcm" "I *refs")
		tcm_d=$(number "$out/$program.tcm" "D1  misses")
		for entry in "${allocators[@]}"; do
			name=${entry%%:*}
			log=$out/$program.$name
			i=$(number "$log" "I *refs")
			d=$(number "$log" "D1  misses")
			ll=$(number "$log" "LL misses")
			b=$(number "$log" "Mispredicts")
			awk -v n="$name" -v i="$i" -v d="$d" -v ll="$ll" -v b="$b" -v ti="$tcm_i" -v td="$tcm_d" 'BEGIN {
				printf "| %s | %.1f | %.2f | %.0f | %.0f | %.2f | %.2f |\n", n, i / 1e6, d / 1e6, ll / 1e3, b / 1e3, i / ti, d / td }'
		done
		echo
	done
}
rows=$(table)
echo "$rows"
{
	echo "# Simulated cache costs (cachegrind)"
	echo
	echo "Written by \`bench/cache_sim.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), tcm $(git rev-parse --short HEAD)."
	echo "Whole-program counts under \`valgrind --tool=cachegrind --cache-sim=yes --branch-sim=yes\` (one simulated"
	echo "core with the host's cache sizes and a simple branch predictor), each workload as bench/run runs it but"
	echo "with fewer operations. They do not move with the machine's load; they leave out coherence traffic"
	echo "between cores, the TLB and page faults, and a real predictor does better on patterned branches."
	echo "Mispredicted branches: conditional and indirect, the workload's own included."
	echo
	echo "$rows"
} > bench/CACHE_SIM.md
