#!/bin/sh
# tests/process/startup_signals.sh - what tcm's SIGTERM interposition costs a process that starts
# (orchestrator/sigterm.c), seen with strace as a user would: a program with no SIGTERM handler
# (/bin/true) gets one read of SIGTERM's action at tcm's start and no setting lock (no
# rt_sigprocmask); a shell that sets SIGTERM to its default (dash does, as it starts) gets that
# change as one system call that also reads the action it replaces, not a read and then a set,
# and with no setting lock (no rt_sigprocmask): no setting has needed the record yet.
#
# Usage: startup_signals.sh LIBTCM   (exit 0 pass, 1 fail, 2 usage)
set -u
lib=${1:-}
[ -f "$lib" ] || { echo "usage: startup_signals.sh LIBTCM" >&2; exit 2; }
command -v strace > /dev/null || { echo "startup_signals.sh: strace is missing (tools/build installs it)" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-startup.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(TCM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export TCM_CONF="$tmp/none.conf"   # no file: nothing else of tcm's start-up in the trace
: > "$TCM_CONF"

fail() {
	echo "FAIL [startup_signals]: $*"
	exit 1
}

# strace's own exec comes first; the trace is the program's from its execve on
strace -o "$tmp/true" -e trace=execve,rt_sigaction,rt_sigprocmask env LD_PRELOAD="$lib" /bin/true ||
	fail "strace of /bin/true under libtcm.so failed"
sed -n '/^execve("\/bin\/true"/,$p' "$tmp/true" > "$tmp/true.after"
[ -s "$tmp/true.after" ] || fail "no execve of /bin/true in the trace: $(cat "$tmp/true")"
grep -q rt_sigprocmask "$tmp/true.after" && fail "/bin/true took the setting lock: $(cat "$tmp/true.after")"
reads=$(grep -c '^rt_sigaction(SIGTERM, NULL' "$tmp/true.after")
[ "$reads" -eq 1 ] || fail "/bin/true read SIGTERM's action $reads times: $(cat "$tmp/true.after")"

printf 'exit 0\n' > "$tmp/script"
strace -o "$tmp/sh" -e trace=execve,rt_sigaction,rt_sigprocmask env LD_PRELOAD="$lib" /bin/sh "$tmp/script" ||
	fail "strace of /bin/sh under libtcm.so failed"
sed -n '/^execve("\/bin\/sh"/,$p' "$tmp/sh" > "$tmp/sh.after"
sets=$(grep -c '^rt_sigaction(SIGTERM, {sa_handler=SIG_DFL' "$tmp/sh.after")
[ "$sets" -ge 1 ] || fail "dash set no SIGTERM action (the test's premise): $(cat "$tmp/sh.after")"
grep '^rt_sigaction(SIGTERM, {sa_handler=SIG_DFL' "$tmp/sh.after" | grep -q ', NULL, 8)' &&
	fail "setting SIGTERM did not read the action it replaced in the same call: $(cat "$tmp/sh.after")"
grep -q rt_sigprocmask "$tmp/sh.after" && fail "/bin/sh's set of SIGTERM took the setting lock: $(cat "$tmp/sh.after")"
# dash reads the action itself first (one read, passed through), and tcm adds only its own at start
reads=$(grep -c '^rt_sigaction(SIGTERM, NULL' "$tmp/sh.after")
[ "$reads" -eq 2 ] || fail "/bin/sh: $reads reads of SIGTERM's action, want dash's and tcm's: $(cat "$tmp/sh.after")"
echo "ok: startup_signals"
