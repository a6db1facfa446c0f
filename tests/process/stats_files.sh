#!/bin/sh
# tests/process/stats_files.sh - stats.on_exit to a file, as a real program writes it: a .prom
# path gets the Prometheus text format, which a strict parser accepts (HELP and TYPE before each
# sample, legal names, counters ending in _total, numeric values; and promtool check metrics
# where Debian's prometheus package is installed); a .json path JSON (python's json module);
# malloc_info(3) the XML (xmllint where installed, python's parser always). All three carry the
# same figures under the same names and say tcm's version and the pid.
#
# Usage: stats_files.sh LIBTCM   (exit 0 pass, 1 fail, 2 usage)
set -u
lib=${1:-}
[ -f "$lib" ] || { echo "usage: stats_files.sh LIBTCM" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcm-stats.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(TCM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

fail() {
	echo "FAIL [stats_files]: $*"
	exit 1
}

# a program that allocates, exits through exit(), and prints its pid
program='import os; blocks = [bytearray(4096) for _ in range(1000)]; print(os.getpid())'
TCM_STATS_ON_EXIT=$tmp/tcm.prom LD_PRELOAD=$lib python3 -c "$program" > "$tmp/pid.prom" 2> "$tmp/err" ||
	fail "python3 under libtcm.so: $(cat "$tmp/err")"
TCM_STATS_ON_EXIT=$tmp/tcm.json LD_PRELOAD=$lib python3 -c "$program" > "$tmp/pid.json" 2> "$tmp/err" ||
	fail "python3 under libtcm.so: $(cat "$tmp/err")"
[ -s "$tmp/err" ] && fail "stderr: $(cat "$tmp/err")"
# malloc_info(0, fp) from a program under the shim: the same figures as XML
info='import ctypes
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
stream = libc.fopen(b"'"$tmp"'/malloc_info.xml", b"w")
assert libc.malloc_info(0, stream) == 0
libc.fclose(stream)'
LD_PRELOAD=$lib python3 -c "$info" 2> "$tmp/err" || fail "malloc_info under libtcm.so: $(cat "$tmp/err")"
if command -v xmllint > /dev/null; then
	xmllint --noout "$tmp/malloc_info.xml" > "$tmp/xmllint" 2>&1 || fail "xmllint: $(cat "$tmp/xmllint")"
fi
# Prometheus's own linter, where it is installed (Debian's prometheus package)
if command -v promtool > /dev/null; then
	promtool check metrics < "$tmp/tcm.prom" > "$tmp/promtool" 2>&1 || fail "promtool: $(cat "$tmp/promtool")"
	[ -s "$tmp/promtool" ] && fail "promtool: $(cat "$tmp/promtool")"
fi

python3 - "$tmp" "$(cat "$tmp/pid.prom")" "$(cat "$tmp/pid.json")" <<'PY' || exit 1
import json, re, sys, time
tmp, prom_pid, json_pid = sys.argv[1:]
def fail(message):
    print(f"FAIL [stats_files]: {message}")
    sys.exit(1)
# The Prometheus text format, strictly (the exposition format's grammar for what tcm writes).
samples, help_of, type_of = {}, {}, {}
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label_re = rf'{name_re}="(?:[^"\\\n]|\\.)*"'
lines = open(f"{tmp}/tcm.prom").read().split("\n")
if lines[-1] != "":
    fail("the .prom file does not end with a newline")
for number, line in enumerate(lines[:-1], 1):
    if m := re.fullmatch(rf"# HELP ({name_re}) (.+)", line):
        help_of[m.group(1)] = number
    elif m := re.fullmatch(rf"# TYPE ({name_re}) (counter|gauge)", line):
        type_of[m.group(1)] = (number, m.group(2))
    elif m := re.fullmatch(rf"({name_re})(\{{{label_re}(?:,{label_re})*\}})? (-?[0-9]+(?:\.[0-9]+)?)", line):
        name = m.group(1)
        if name in samples:
            fail(f"line {number}: a second sample of {name}")
        if help_of.get(name) != number - 2 or type_of.get(name, (0,))[0] != number - 1:
            fail(f"line {number}: {name} without its HELP and TYPE lines just before")
        if (type_of[name][1] == "counter") != name.endswith("_total"):
            fail(f"line {number}: {name} is a {type_of[name][1]}")
        samples[name] = (m.group(2), float(m.group(3)))
    else:
        fail(f"line {number} is not Prometheus text: {line!r}")
info = samples.get("tcm_info")
if info is None or not re.fullmatch(r'\{version="[0-9]+\.[0-9]+\.[0-9]+",pid="' + prom_pid + r'"\}', info[0] or ""):
    fail(f"tcm_info {info} (pid {prom_pid})")
if samples["tcm_heap_allocated_bytes"][1] <= 0 or samples["tcm_os_mapped_bytes"][1] <= 0:
    fail("no memory reported")
if abs(samples["tcm_report_time_seconds"][1] - time.time()) > 600:
    fail("report time is not now")
# JSON: the same names (without the tcm_ prefix), the same kinds of value.
report = json.load(open(f"{tmp}/tcm.json"))
figures = {name[4:] for name in samples} - {"info", "shutdown_info"}
# (the exit report's shutdown timeline is JSON's alone: tcmctl stats --plot draws it)
keys = set(report) - {"tcm_version", "pid", "shutdown_trigger", "timeline", "timeline_deadline_seconds"}
if figures != keys:
    fail(f"JSON and Prometheus figures differ: {sorted(figures ^ keys)}")
if report["pid"] != int(json_pid) or not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", report["tcm_version"]):
    fail(f"JSON pid {report['pid']} (want {json_pid}) or version {report['tcm_version']}")
if report["shutdown_trigger"] != "exit":
    fail(f"trigger {report['shutdown_trigger']}")
# malloc_info's XML: well-formed, and the table's figures again
import xml.etree.ElementTree as ET
root = ET.parse(f"{tmp}/malloc_info.xml").getroot()
if root.tag != "malloc" or root.get("version") != "tcm-2" or not root.get("pid", "").isdigit():
    fail(f"malloc_info root {root.tag} {root.attrib}")
table = keys - {"report_time_seconds", "shutdown_t0_to_t1_seconds"}
xml_figures = {figure.get("name") for figure in root.iter("figure")}
if xml_figures != table:
    fail(f"malloc_info and JSON figures differ: {sorted(xml_figures ^ table)}")
print(f"ok: stats files ({len(samples)} Prometheus samples, {len(report)} JSON fields, {len(xml_figures)} malloc_info figures)")
PY
