#!/usr/bin/env bash
# bench/fast_path.sh - instructions per malloc+free pair of a small object, counted by callgrind
# (stable on a noisy machine, unlike time), for glibc, gperftools, jemalloc, mimalloc and tcm.
# Usage: bench/fast_path.sh [build_dir]   (default build-bench, as bench/run builds it)
# Prints the table and writes it to bench/FAST_PATH.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build-bench}"
program="$build_dir/bench/malloc_free_pair"
[ -x "$program" ] && [ -f "$build_dir/libtcm.so" ] || { echo "bench/fast_path.sh: build $build_dir first (bench/run)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "bench/fast_path.sh: valgrind is missing" >&2; exit 1; }
libdir=/usr/lib/x86_64-linux-gnu
count() {   # count PRELOAD PAIRS SIZE -> total instructions
	LD_PRELOAD="$1" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$program" "$2" "$3" 2>&1 \
		| sed -n 's/.*Collected : *\([0-9]*\).*/\1/p; s/.*refs: *\([0-9,]*\).*/\1/p' | tr -d , | head -n 1
}
table() {
printf '| allocator | 16 B | 64 B | 512 B | 4 KiB |\n|---|---:|---:|---:|---:|\n'
for entry in "glibc:" "gperftools:$libdir/libtcmalloc_minimal.so.4" "jemalloc:$libdir/libjemalloc.so.2" \
             "mimalloc:$libdir/libmimalloc.so.2" "tcm:$PWD/$build_dir/libtcm.so"; do
	name=${entry%%:*}
	preload=${entry#*:}
	row="| $name |"
	for size in 16 64 512 4096; do
		base=$(count "$preload" 0 "$size")
		total=$(count "$preload" 100000 "$size")
		row="$row $(( (total - base) / 100000 )) |"
	done
	echo "$row"
done
}
rows=$(table)
echo "$rows"
{
	echo "# Fast path: instructions per malloc+free pair"
	echo
	echo "Written by \`bench/fast_path.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), tcm $(git rev-parse --short HEAD)."
	echo "callgrind counts of \`malloc_free_pair 100000 SIZE\` minus \`malloc_free_pair 0 SIZE\`, divided by"
	echo "100000: one malloc and one free of the same size in a loop, the loop itself included (about 10"
	echo "instructions). Instruction counts do not move with the machine's load; they say nothing about"
	echo "cache misses, which dominate real workloads (see RESULTS.md)."
	echo
	echo "$rows"
} > bench/FAST_PATH.md
