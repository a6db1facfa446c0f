#!/bin/sh
# tests/process/startup_system_calls.sh - the system calls tcm adds to a shell that starts,
# allocates and forks (dash running a command substitution), seen with strace as a user would:
#   - no futex call in a process that never had a second thread: the configuration is loaded
#     without pthread_once (whose wake is a system call), and the fork handlers take the locks
#     the way tcm_lock does, so giving them back wakes no one (it was 54 wakes per fork);
#   - a forked child with no SIGTERM handler to adopt takes no setting lock (no rt_sigprocmask
#     beyond those of the same child with no preload: glibc's own fork may make some) and sets
#     no SIGTERM action (it set SIG_DFL again);
#   - the heap's set-up (metadata region, first heap region, its page-map leaf) is one
#     reservation (MAP_NORESERVE): one mmap, nothing of it unmapped again (no over-map and trim);
#   - MADV_POPULATE_WRITE is learnt from its first real call (no empty probe call);
#   - with no statistics file to write, exit() reads no /proc/self/statm (the timeline's T1
#     sample is taken only for a report): /bin/true, as dash leaves with _exit.
# Issue 12's start-up cost.
#
# Usage: startup_system_calls.sh LIBTCM   (exit 0 pass, 1 fail, 2 usage)
set -u
lib=${1:-}
[ -f "$lib" ] || { echo "usage: startup_system_calls.sh LIBTCM" >&2; exit 2; }
command -v strace > /dev/null || { echo "startup_system_calls.sh: strace is missing (tools/build installs it)" >&2; exit 2; }
command -v python3 > /dev/null || { echo "startup_system_calls.sh: python3 is missing" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-startup-calls.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(TCM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
# A missing file: reported on stderr, nothing parsed, libconfig never loaded (its loader's
# mappings would be in the trace).
export TCM_CONF="$tmp/missing.conf"

printf 'x=$(echo a b c); exit 0\n' > "$tmp/script"
# one file per process (-ff): no call is split across lines by another process's
strace -ff -o "$tmp/trace" env LD_PRELOAD="$lib" /bin/sh "$tmp/script" 2> "$tmp/err" ||
	{ echo "FAIL [startup_system_calls]: strace of /bin/sh under libtcm.so failed: $(cat "$tmp/err")"; exit 1; }

# the same shell with no preload, for what glibc's own fork does in a child
mkdir "$tmp/plain"
strace -ff -o "$tmp/plain/trace" /bin/sh "$tmp/script" 2> "$tmp/err" ||
	{ echo "FAIL [startup_system_calls]: strace of /bin/sh failed: $(cat "$tmp/err")"; exit 1; }

strace -o "$tmp/true" env LD_PRELOAD="$lib" /bin/true 2> "$tmp/err" ||
	{ echo "FAIL [startup_system_calls]: strace of /bin/true under libtcm.so failed: $(cat "$tmp/err")"; exit 1; }
sed -n '/^execve("\/bin\/true"/,$p' "$tmp/true" > "$tmp/true.after"
grep -q '^exit_group' "$tmp/true.after" || { echo "FAIL [startup_system_calls]: no exit in /bin/true's trace: $(cat "$tmp/true")"; exit 1; }
if grep -q '/proc/self/statm' "$tmp/true.after"; then
	echo "FAIL [startup_system_calls]: /bin/true's exit read the resident set with no statistics file to write:"
	cat "$tmp/true.after"
	exit 1
fi

exec python3 - "$tmp"/trace.* -- "$tmp"/plain/trace.* <<'PY'
import re, sys
split = sys.argv.index("--")
traces = [open(path).read().splitlines() for path in sys.argv[1:split]]
plain = [open(path).read().splitlines() for path in sys.argv[split + 1:]]
plain_child_masks = sum(1 for t in plain if not any('execve("/bin/sh"' in l for l in t)
                        for l in t if l.startswith("rt_sigprocmask("))
shell = [t for t in traces if any('execve("/bin/sh"' in l for l in t)]
if len(shell) != 1:
    print("FAIL [startup_system_calls]: %d traces with the shell's execve" % len(shell))
    sys.exit(1)
shell = shell[0]
start = max(i for i, l in enumerate(shell) if 'execve("/bin/sh"' in l)
child_calls = [l for t in traces if t is not shell for l in t]
calls = shell[start + 1:] + child_calls
def fail(why):
    print("FAIL [startup_system_calls]: " + why + "\n" + "\n".join(calls))
    sys.exit(1)
reserved = []
for c in calls:
    m = re.match(r"mmap\((\w+), (\d+), [^,]+, [^,]*MAP_NORESERVE[^,]*, -1, 0\) = (0x[0-9a-f]+)", c)
    if m:
        reserved.append((int(m.group(3), 16), int(m.group(2))))
if not any(c.startswith("clone(") or c.startswith("fork(") or c.startswith("vfork(") for c in calls):
    fail("the shell did not fork (the test's premise)")
if not child_calls:
    fail("no system call of a forked child in the trace (the test's premise)")
child_masks = [c for c in child_calls if c.startswith("rt_sigprocmask(")]
if len(child_masks) > plain_child_masks:
    fail("a forked child took the setting lock: %d rt_sigprocmask, %d with no preload: %s"
         % (len(child_masks), plain_child_masks, child_masks))
for c in child_calls:
    if re.match(r"rt_sigaction\(SIGTERM, \{", c):
        fail("a forked child set SIGTERM's action: " + c)
if not reserved:
    fail("no MAP_NORESERVE mapping after execve: tcm set up no heap (the test's premise)")
if len(reserved) != 1:
    fail("the heap's set-up took %d mmaps, not one reservation" % len(reserved))
for c in calls:
    m = re.match(r"munmap\((0x[0-9a-f]+), (\d+)\)", c)
    if m:
        at = int(m.group(1), 16)
        if any(base <= at < base + size for base, size in reserved):
            fail("part of a reservation was unmapped again: " + c)
    if c.startswith("futex("):
        fail("a futex call in a process with one thread: " + c)
    if re.match(r"madvise\(0x[0-9a-f]+, 0, MADV_POPULATE_WRITE\)", c):
        fail("an empty MADV_POPULATE_WRITE probe: " + c)
if not any("MADV_POPULATE_WRITE" in c for c in calls):
    fail("no MADV_POPULATE_WRITE at all: the first span was not populated (the test's premise)")
print("ok: startup_system_calls")
PY
