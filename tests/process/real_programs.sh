#!/bin/sh
# tests/process/real_programs.sh - real programs under LD_PRELOAD=libtcm.so give correct output.
#
# Usage: real_programs.sh /path/to/libtcm.so python|gcc|git|sort
# Each check runs a real program with the library preloaded and verifies two things:
#  1. its output is right: python (8 threads of dicts/lists/strings, PYTHONMALLOC=malloc)
#     prints the checksum the same script prints without preload; gcc compiles and links a
#     C program that prints the expected text; git commits 200 files, then log, gc and
#     fsck --strict agree; sort of a deterministic 100 MB file is byte-identical (cmp) to
#     sort without preload (LC_ALL=C, same -S and --parallel);
#  2. the library really served malloc: the dynamic loader's own record
#     (LD_DEBUG=bindings, LD_DEBUG_OUTPUT=<file>.<pid>) has a line binding `malloc' from
#     the program to the preloaded library, whose file name must be libtcm.so
#     (TCM_TESTING_EXPECT_LIB_NAME overrides it to try another allocator).
# Environment: PYTHON (default python3), CC (default gcc). Exit 0 pass, 1 fail, 2 usage.
set -u

lib=${1:-}
check=${2:-}
expect_name=${TCM_TESTING_EXPECT_LIB_NAME:-libtcm.so}
PYTHON=${PYTHON:-python3}
CC=${CC:-gcc}

usage() {
	echo "usage: real_programs.sh /path/to/libtcm.so python|gcc|git|sort" >&2
	exit 2
}
[ -n "$lib" ] && [ -f "$lib" ] || usage
case "$check" in python|gcc|git|sort) ;; *) usage ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-real-$check.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
mkdir "$tmp/ld"

fail() {
	echo "FAIL [$check]: $*"
	exit 1
}

# Runs "$@" with the library preloaded and the loader logging symbol bindings.
preloaded() {
	env LD_PRELOAD="$lib" LD_DEBUG=bindings LD_DEBUG_OUTPUT="$tmp/ld/debug" "$@"
}

# expect_malloc_bound REGEX: some object whose path matches REGEX had `malloc' bound to
# a file named $expect_name. Prints where malloc went otherwise.
expect_malloc_bound() {
	prog_re=$1
	lib_re=$(printf '%s\n' "$expect_name" | sed 's/[].[^$*+?(){}|\\]/\\&/g')
	# binding file /usr/bin/sort [0] to /x/libtcm.so [0]: normal symbol `malloc' [GLIBC_2.2.5]
	pattern="binding file [^ ]*($prog_re)[^ /]* \\[[0-9]+\\] to ([^ ]*/)?$lib_re \\[[0-9]+\\]: normal symbol \`malloc'"
	if ! ls "$tmp/ld"/debug.* >/dev/null 2>&1; then
		fail "LD_DEBUG_OUTPUT produced no files in $tmp/ld (is LD_DEBUG honoured?)"
	fi
	if cat "$tmp/ld"/debug.* | grep -Eq "$pattern"; then
		echo "ok: malloc of /$prog_re/ bound to $expect_name:"
		cat "$tmp/ld"/debug.* | grep -E "$pattern" | sed 's/^ *[0-9]*:[[:space:]]*/  /' | sort -u | head -3
		return 0
	fi
	echo "FAIL [$check]: no binding of \`malloc' from /$prog_re/ to $expect_name; loader says:"
	cat "$tmp/ld"/debug.* | grep -E "normal symbol \`malloc'" | sed 's/^ *[0-9]*:[[:space:]]*/  /' |
		sort -u | head -10
	exit 1
}

check_python() {
	command -v "$PYTHON" >/dev/null 2>&1 || fail "python interpreter '$PYTHON' not found"
	cat >"$tmp/work.py" <<'EOF'
# 8 threads build dicts, lists, strings and bytes; the checksum depends only on the data.
import hashlib
import threading

N_THREADS = 8
results = [None] * N_THREADS

def work(t):
    h = hashlib.sha256()
    d = {}
    for i in range(40000):
        k = "k%d_%d" % (t, i % 7919)
        v = d.get(k)
        if v is None:
            v = d[k] = []
        v.append(str(i * (t + 1)) + "x" * (i % 61))
        if len(v) > 8:
            del v[:4]
        if i % 2000 == 0:
            h.update("".join(sorted(d)[:64]).encode())
    for k in sorted(d):
        h.update(k.encode())
        h.update("|".join(d[k]).encode())
    chunks = [bytes(range(256)) * (i % 64 + 1) for i in range(1500)]
    h.update(b"".join(chunks))
    nested = {i: {"a": [i] * (i % 17), "b": {"s": "y" * (i % 300)}} for i in range(20000)}
    h.update(repr(sorted(nested.items())[:500]).encode())
    results[t] = h.hexdigest()

threads = [threading.Thread(target=work, args=(t,)) for t in range(N_THREADS)]
for th in threads:
    th.start()
for th in threads:
    th.join()
assert all(r is not None for r in results), "a thread did not finish"
print("checksum", hashlib.sha256("".join(results).encode()).hexdigest())
EOF
	env PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$PYTHON" "$tmp/work.py" >"$tmp/ref.out" 2>"$tmp/ref.err" ||
		fail "python without preload failed: $(cat "$tmp/ref.err")"
	preloaded env PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$PYTHON" "$tmp/work.py" \
		>"$tmp/tcm.out" 2>"$tmp/tcm.err" ||
		fail "python under preload exited $?: $(tail -5 "$tmp/tcm.err")"
	grep -q '^checksum [0-9a-f]\{64\}$' "$tmp/ref.out" || fail "reference output malformed: $(cat "$tmp/ref.out")"
	cmp -s "$tmp/ref.out" "$tmp/tcm.out" ||
		fail "checksum differs: without preload '$(cat "$tmp/ref.out")', with '$(cat "$tmp/tcm.out")'"
	echo "ok: python output matches: $(cat "$tmp/tcm.out")"
	expect_malloc_bound 'python'
}

check_gcc() {
	command -v "$CC" >/dev/null 2>&1 || fail "C compiler '$CC' not found"
	cat >"$tmp/prog.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* Sieve of Eratosthenes on the heap: prints the count and sum of primes below 100000. */
int main(void)
{
	enum { N = 100000 };
	char *composite = calloc(N, 1);
	if (composite == NULL)
		return 1;
	long count = 0, sum = 0;
	for (long i = 2; i < N; i++) {
		if (composite[i])
			continue;
		count++;
		sum += i;
		for (long j = i * i; j < N; j += i)
			composite[j] = 1;
	}
	char *msg = malloc(64);
	snprintf(msg, 64, "primes %ld sum %ld", count, sum);
	puts(msg);
	free(msg);
	free(composite);
	return 0;
}
EOF
	preloaded "$CC" -O2 -Wall -o "$tmp/prog" "$tmp/prog.c" >"$tmp/cc.out" 2>&1 ||
		fail "$CC under preload failed: $(tail -20 "$tmp/cc.out")"
	[ -x "$tmp/prog" ] || fail "$CC produced no executable"
	out=$(env LD_PRELOAD="$lib" "$tmp/prog") || fail "compiled program exited $?"
	[ "$out" = "primes 9592 sum 454396537" ] || fail "compiled program printed '$out'"
	echo "ok: compiled program printed '$out'"
	expect_malloc_bound 'gcc'
	expect_malloc_bound 'cc1'
}

check_git() {
	command -v git >/dev/null 2>&1 || fail "git not found"
	repo=$tmp/repo
	mkdir "$repo"
	i=0
	while [ "$i" -lt 200 ]; do
		mkdir -p "$repo/dir$((i % 10))"
		seq "$i" $((i + 300)) | sed "s/^/file $i line /" >"$repo/dir$((i % 10))/f$i.txt"
		i=$((i + 1))
	done
	# Isolated from the user's and the system's git configuration.
	g() {
		preloaded env HOME="$tmp" GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=tcm \
			GIT_AUTHOR_EMAIL=tcm@test GIT_COMMITTER_NAME=tcm GIT_COMMITTER_EMAIL=tcm@test \
			GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z' \
			git -C "$repo" "$@"
	}
	g init -q -b main >"$tmp/git.out" 2>&1 || fail "git init: $(cat "$tmp/git.out")"
	g add . >"$tmp/git.out" 2>&1 || fail "git add: $(cat "$tmp/git.out")"
	g commit -q -m "200 files" >"$tmp/git.out" 2>&1 || fail "git commit: $(cat "$tmp/git.out")"
	files=$(g ls-files | wc -l)
	[ "$files" -eq 200 ] || fail "git ls-files lists $files files, expected 200"
	# A second commit touching 50 files, then gc (threaded pack-objects) and fsck.
	i=0
	while [ "$i" -lt 200 ]; do
		echo "changed $i" >>"$repo/dir$((i % 10))/f$i.txt"
		i=$((i + 4))
	done
	g commit -q -a -m "50 changes" >"$tmp/git.out" 2>&1 || fail "git commit -a: $(cat "$tmp/git.out")"
	log=$(g log --format=%s) || fail "git log failed"
	[ "$log" = "$(printf '50 changes\n200 files')" ] || fail "git log printed '$log'"
	changed=$(g diff --name-only HEAD~1 HEAD | wc -l)
	[ "$changed" -eq 50 ] || fail "git diff lists $changed changed files, expected 50"
	g gc -q >"$tmp/git.out" 2>&1 || fail "git gc: $(cat "$tmp/git.out")"
	g fsck --full --strict >"$tmp/git.out" 2>&1 || fail "git fsck: $(cat "$tmp/git.out")"
	# f16 was changed (16 % 4 == 0), f17 was not: check both exactly.
	[ "$(g show HEAD:dir6/f16.txt | tail -1)" = "changed 16" ] || fail "f16 lost its change"
	[ "$(g show HEAD:dir7/f17.txt | tail -1)" = "file 17 line 317" ] || fail "f17 content wrong"
	echo "ok: git init/add/commit x2/log/diff/gc/fsck --strict on 200 files"
	expect_malloc_bound 'git'
}

check_sort() {
	# About 100 MB of lines in a fixed pseudo-random order (an LCG, exact in awk's doubles).
	awk 'BEGIN {
		x = 12345
		for (i = 0; i < 3200000; i++) {
			x = (x * 69069 + 1) % 4294967296
			printf "%08x %d %s\n", x, i, substr("abcdefghijklmnopqrstuvwxyz0123456789", 1 + x % 30, 6 + x % 21)
		}
	}' >"$tmp/in" || fail "could not generate the input"
	bytes=$(wc -c <"$tmp/in")
	[ "$bytes" -gt 95000000 ] || fail "input is only $bytes bytes"
	mkdir "$tmp/sorttmp"
	env LC_ALL=C sort -S 32M --parallel=2 -T "$tmp/sorttmp" -o "$tmp/ref" "$tmp/in" ||
		fail "sort without preload failed"
	preloaded env LC_ALL=C sort -S 32M --parallel=2 -T "$tmp/sorttmp" -o "$tmp/tcm" "$tmp/in" ||
		fail "sort under preload exited $?"
	env LC_ALL=C sort -c "$tmp/ref" || fail "reference output is not sorted"
	cmp "$tmp/ref" "$tmp/tcm" || fail "sorted output differs from sort without preload"
	[ "$(wc -l <"$tmp/tcm")" -eq 3200000 ] || fail "sorted output has $(wc -l <"$tmp/tcm") lines"
	echo "ok: sort of $bytes bytes identical with and without preload"
	expect_malloc_bound 'sort'
}

"check_$check"
echo "PASS [$check]"
exit 0
