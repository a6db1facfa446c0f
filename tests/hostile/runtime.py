# tests/hostile/runtime.py - a Python service under LD_PRELOAD=libtcm.so with a
# SIGTERM handler (signal.signal) that spawns children every way Python does:
# subprocess.run (vfork/posix_spawn in _posixsubprocess), os.fork, and
# multiprocessing pools with the fork and spawn start methods. After each kind
# of child it sends itself SIGTERM, which must run the handler; then it prints
# "READY <pid>" and waits (at most 30 s) for the SIGTERM from runtimes.sh, prints
# "HANDLER RAN <n>" and exits 0. It first proves it runs under tcm: tcm_malloc is
# defined in the process and /proc/self/maps maps the library (skipped, and
# tcm required absent, with HOSTILE_BASELINE=1).
import ctypes
import multiprocessing
import os
import signal
import subprocess
import sys
import time

received = []


def on_sigterm(signo, frame):
    received.append(signo)


def fail(message):
    print("FAIL: runtime.py: " + message, flush=True)
    sys.exit(1)


def check_tcm():
    lib_name = os.environ.get("TCM_TESTING_EXPECT_LIB_NAME") or "libtcm.so"
    has_api = hasattr(ctypes.CDLL(None), "tcm_malloc")
    with open("/proc/self/maps") as maps:
        mapped = any(line.rstrip().endswith("/" + lib_name) for line in maps)
    if os.environ.get("HOSTILE_BASELINE") == "1":
        if has_api:
            fail("HOSTILE_BASELINE=1 but tcm is loaded")
        print("runtime.py: baseline run, no tcm", flush=True)
    elif not (has_api and mapped):
        fail("not running under tcm (tcm_malloc %s, %s %s in /proc/self/maps)"
             % ("found" if has_api else "missing", lib_name, "mapped" if mapped else "not"))
    else:
        print("runtime.py: running under " + lib_name, flush=True)


def square(x):
    return [str(x) * 100 for _ in range(100)] and x * x


def wait_for(count, seconds):
    deadline = time.monotonic() + seconds
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(received) >= count


def check_delivery(after):
    """SIGTERM to itself runs the handler (within 5 s) after each kind of child."""
    want = len(received) + 1
    os.kill(os.getpid(), signal.SIGTERM)
    if not wait_for(want, 5):
        fail("after %s, os.kill(os.getpid(), SIGTERM) did not run the handler within 5 s" % after)
    if signal.getsignal(signal.SIGTERM) is not on_sigterm:
        fail("after %s, the SIGTERM handler is %r" % (after, signal.getsignal(signal.SIGTERM)))


def main():
    check_tcm()
    signal.signal(signal.SIGTERM, on_sigterm)
    check_delivery("signal.signal")
    for _ in range(3):
        subprocess.run(["/bin/true"], check=True)
    check_delivery("subprocess.run(['/bin/true'])")
    pid = os.fork()
    if pid == 0:
        data = {i: str(i) * 50 for i in range(20000)}
        os._exit(0 if len(data) == 20000 else 1)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        fail("os.fork child ended with status %#x" % status)
    check_delivery("os.fork")
    for method in ("fork", "spawn"):
        pool = multiprocessing.get_context(method).Pool(2)
        result = pool.map(square, range(40))
        pool.close()
        pool.join()
        if result != [x * x for x in range(40)]:
            fail("multiprocessing (%s) returned %r" % (method, result))
        check_delivery("a multiprocessing pool (%s)" % method)
    handled = len(received)
    print("READY %d" % os.getpid(), flush=True)
    if not wait_for(handled + 1, 30):
        fail("the SIGTERM from the test driver did not run the handler within 30 s")
    print("HANDLER RAN %d" % len(received), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
