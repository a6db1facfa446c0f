#!/usr/bin/env bash
# tests/aarch64/service_exit.sh - a service's shutdown under tcm, for the aarch64 suites: runs a
# program that prints "ready" once its heap is built (bench/exit_storm, bench/drain_service),
# sends it SIGTERM, and checks that it then exits 0 by itself, that its result line says malloc
# and free were the preloaded tcm library's, and that tcm's exit report names the expected
# shutdown trigger.
#
# Usage: service_exit.sh TRIGGER LIBRARY COMMAND...
#   TRIGGER: what tcm's "tcm shutdown: trigger ..." line must name (sigterm, or exit when the
#            program reads SIGTERM from a signalfd);
#   LIBRARY: the file name of the tcm library that must serve malloc and free (libtcm.so);
#   COMMAND: runs the program with LIBRARY preloaded and TCM_STATS_ON_EXIT=stderr (under qemu:
#            qemu's -E).
set -euo pipefail

if (($# < 3)); then
  echo "usage: $0 TRIGGER LIBRARY COMMAND..." >&2
  exit 2
fi
trigger=$1 library=$2
shift 2

output=$(mktemp)
"$@" >"$output" 2>&1 &
pid=$!
trap 'kill -KILL "$pid" 2>/dev/null || true; rm -f "$output"' EXIT

fail() {
  cat "$output"
  echo "service_exit: FAIL: $*" >&2
  exit 1
}

# Waits up to $1 tenths of a second while the program runs and has not printed "ready".
wait_for_ready() {
  for ((tenth = 0; tenth < $1; tenth++)); do
    grep -qx ready "$output" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

wait_for_ready 1200 || fail "no 'ready' within 120 s (or the program ended first)"
kill -TERM "$pid"
for ((tenth = 0; tenth < 1200; tenth++)); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "still running 120 s after SIGTERM"
status=0
wait "$pid" || status=$?
((status == 0)) || fail "exit status $status after SIGTERM"
served="[^ ]*/${library//./\\.}"
grep -Eq "^result .* malloc_from=$served free_from=$served\$" "$output" ||
  fail "no result line with malloc and free served by $library"
grep -q "^tcm shutdown: trigger $trigger," "$output" ||
  fail "no 'tcm shutdown: trigger $trigger,' line (TCM_STATS_ON_EXIT=stderr)"
cat "$output"
echo "service_exit: exited 0 after SIGTERM, served by $library, shutdown trigger $trigger"
