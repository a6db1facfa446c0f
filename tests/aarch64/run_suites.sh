#!/usr/bin/env bash
# tests/aarch64/run_suites.sh - test_aarch64_qemu_suites of the native build: brings the
# aarch64 cross build up to date and runs its suites under qemu-aarch64 with ctest.
#
# Usage: run_suites.sh CMAKE CTEST CROSS_BUILD_DIR LABELS EXCLUDED_LABELS EXCLUDED_TESTS
#   LABELS, EXCLUDED_LABELS, EXCLUDED_TESTS: ctest -L / -LE / -E regular expressions (chosen,
#   with the reasons, in tests/aarch64/CMakeLists.txt); the tests excluded are named in the output.
# Fails, saying why, when qemu-aarch64-static or the cross build is missing (tools/build-aarch64
# makes it; tools/build runs that), when the cross build does not build, when any test fails, and
# when no test ran.
set -euo pipefail

if (($# != 6)); then
  echo "usage: $0 CMAKE CTEST CROSS_BUILD_DIR LABELS EXCLUDED_LABELS EXCLUDED_TESTS" >&2
  exit 2
fi
cmake=$1 ctest=$2 build_dir=$3 labels=$4 excluded=$5 excluded_tests=$6

fail() {
  echo "test_aarch64_qemu_suites: FAIL: $*" >&2
  exit 1
}

command -v qemu-aarch64-static >/dev/null ||
  fail "qemu-aarch64-static is not installed: run tools/build-aarch64 (tools/build runs it)"
[ -f "$build_dir/CTestTestfile.cmake" ] ||
  fail "no aarch64 cross build in $build_dir: run tools/build-aarch64 (tools/build runs it)"
grep -q '^CMAKE_TOOLCHAIN_FILE:.*/aarch64-linux-gnu\.cmake$' "$build_dir/CMakeCache.txt" ||
  fail "$build_dir is not an aarch64 cross build (configure it with tools/build-aarch64)"

# The sources may have changed since tools/build ran: test what they build now.
"$cmake" --build "$build_dir" || fail "the aarch64 cross build in $build_dir does not build"

selection=(-L "$labels" -LE "$excluded")
left_out=$("$ctest" --test-dir "$build_dir" "${selection[@]}" -N |
           sed -n 's/^ *Test *#[0-9]*: //p' | grep -E "$excluded_tests" | paste -sd ' ' || true)
echo "test_aarch64_qemu_suites: left out (see tests/aarch64/CMakeLists.txt): ${left_out:-none}"

# --no-tests=error: a selection that matches nothing fails, and prints no summary.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"$ctest" --test-dir "$build_dir" "${selection[@]}" -E "$excluded_tests" --no-tests=error \
         --output-on-failure -j2 2>&1 | tee "$log" || status=$?
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" || true)
[ -n "$summary" ] || fail "no test ran in $build_dir (ctest exit status $status)"
((status == 0)) || fail "under qemu-aarch64: $summary"
echo "test_aarch64_qemu_suites: ${summary##* out of } tests passed under qemu-aarch64 ($build_dir)"
