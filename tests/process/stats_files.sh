#!/bin/sh
# tests/process/stats_files.sh - stats.on_exit to a file, as a real program writes it: a .prom
# path gets the Prometheus text format, which a strict parser accepts (HELP and TYPE before each
# sample, legal names, counters ending in _total, numeric values; and promtool check metrics
# where Debian's prometheus package is installed); a .json path JSON (python's json module);
# malloc_info(3) the XML (xmllint where installed, python's parser always); malloc_stats(3) the
# text. All four carry the same figures under the same names, each figure's window where the
# format has room for it, the same size classes with the same figures each, and say tcm's
# version and the pid. tcmctl stats shows the JSON and the Prometheus file as that same text,
# with the files' values.
#
# Usage: stats_files.sh LIBTCM TCMCTL   (exit 0 pass, 1 fail, 2 usage)
set -u
lib=${1:-}
tcmctl=${2:-}
[ -f "$lib" ] && [ -x "$tcmctl" ] || { echo "usage: stats_files.sh LIBTCM TCMCTL" >&2; exit 2; }
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
# malloc_stats() prints the text report on stderr
LD_PRELOAD=$lib python3 -c 'import ctypes; blocks = [bytearray(4096) for _ in range(1000)]; ctypes.CDLL(None).malloc_stats()' \
	2> "$tmp/stats.txt" || fail "malloc_stats under libtcm.so: $(cat "$tmp/stats.txt")"
for format in json prom; do
	"$tcmctl" stats "$tmp/tcm.$format" > "$tmp/shown.$format" 2> "$tmp/err" ||
		fail "tcmctl stats tcm.$format: $(cat "$tmp/err")"
done
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
# The Prometheus text format, strictly (the exposition format's grammar for what tcm writes): a
# metric's HELP and TYPE lines just before its first sample, its samples together, one per label
# set.
samples, help_of, type_of, labelled = {}, {}, {}, {}
last_name = None
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
        if name in samples and name == last_name and m.group(2) is not None:
            if m.group(2) in labelled[name]:
                fail(f"line {number}: a second sample of {name}{m.group(2)}")
            labelled[name][m.group(2)] = float(m.group(3))
            continue
        if name in samples:
            fail(f"line {number}: a second sample of {name}")
        if help_of.get(name) != number - 2 or type_of.get(name, (0,))[0] != number - 1:
            fail(f"line {number}: {name} without its HELP and TYPE lines just before")
        if (type_of[name][1] == "counter") != name.endswith("_total"):
            fail(f"line {number}: {name} is a {type_of[name][1]}")
        samples[name] = (m.group(2), float(m.group(3)))
        labelled[name] = {m.group(2): float(m.group(3))}
        last_name = name
    else:
        fail(f"line {number} is not Prometheus text: {line!r}")
info = samples.get("tcm_info")
if info is None or not re.fullmatch(r'\{version="[0-9]+\.[0-9]+\.[0-9]+",pid="' + prom_pid + r'"\}', info[0] or ""):
    fail(f"tcm_info {info} (pid {prom_pid})")
if samples["tcm_heap_allocated_bytes"][1] <= 0 or samples["tcm_os_mapped_bytes"][1] <= 0:
    fail("no memory reported")
if abs(samples["tcm_report_time_seconds"][1] - time.time()) > 600:
    fail("report time is not now")
# The size classes' figures: a sample per class, labelled with its object size.
class_figures = {name[4:] for name in samples if name.startswith("tcm_size_class_")}
prom_classes = {}
for name in class_figures:
    for labels, value in labelled["tcm_" + name].items():
        m = re.fullmatch(r'\{object_bytes="([0-9]+)"\}', labels or "")
        if m is None:
            fail(f"tcm_{name} labelled {labels}")
        prom_classes.setdefault(int(m.group(1)), {})[name] = value
if not prom_classes or any(set(figures) != class_figures for figures in prom_classes.values()):
    fail(f"size classes in the .prom file: {prom_classes}")
# JSON: the same names (without the tcm_ prefix), the same kinds of value.
report = json.load(open(f"{tmp}/tcm.json"))
figures = {name[4:] for name in samples} - {"info", "shutdown_info"} - class_figures
# (the exit report's shutdown timeline is JSON's alone: tcmctl stats --plot draws it)
keys = set(report) - {"tcm_version", "pid", "shutdown_trigger", "timeline", "timeline_deadline_seconds",
                      "size_classes", "figure_windows"}
if figures != keys:
    fail(f"JSON and Prometheus figures differ: {sorted(figures ^ keys)}")
json_classes = {c["object_bytes"]: set(c) - {"object_bytes", "span_bytes"} for c in report["size_classes"]}
if not json_classes or any(names != class_figures for names in json_classes.values()):
    fail(f"JSON size classes {json_classes} against Prometheus's figures {class_figures}")
windows = report["figure_windows"]
table = keys - {"report_time_seconds", "shutdown_t0_to_t1_seconds"}
if set(windows) != table | class_figures or set(windows.values()) != {"now", "process_life", "since_t0"}:
    fail(f"JSON figure_windows {windows}")
if report["pid"] != int(json_pid) or not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", report["tcm_version"]):
    fail(f"JSON pid {report['pid']} (want {json_pid}) or version {report['tcm_version']}")
if report["shutdown_trigger"] != "exit":
    fail(f"trigger {report['shutdown_trigger']}")
# malloc_info's XML: well-formed, and the table's figures again
import xml.etree.ElementTree as ET
root = ET.parse(f"{tmp}/malloc_info.xml").getroot()
if root.tag != "malloc" or root.get("version") != "tcm-2" or not root.get("pid", "").isdigit():
    fail(f"malloc_info root {root.tag} {root.attrib}")
xml_figures = {figure.get("name") for figure in root.iter("figure")}
if xml_figures != table:
    fail(f"malloc_info and JSON figures differ: {sorted(xml_figures ^ table)}")
if any(windows[f.get("name")] != f.get("window") for f in root.iter("figure")):
    fail("malloc_info and JSON give a figure different windows")
xml_classes = list(root.iter("size_class"))
if not xml_classes or any(set(c.attrib) - {"object_bytes", "span_bytes"} != class_figures for c in xml_classes):
    fail(f"malloc_info size classes {[c.attrib for c in xml_classes]}")
# The text: each figure under its window's heading, then the size classes' table, its columns
# the class figures' names less size_class_ and _objects.
def read_text(path, what):
    headings = {"now:": "now", "over the process's life:": "process_life",
                "since the shutdown began (T0):": "since_t0"}
    windows, values, window, columns, classes = {}, {}, None, None, {}
    lines = open(path).read().splitlines()
    if not lines or not re.fullmatch(r"tcm [0-9.]+, pid [0-9]+, written at [0-9.]+ \(Unix time\); shutdown: [a-z]+, "
                                     r"T0 -> T1 [0-9.]+ s", lines[0]):
        fail(f"{what}: first line {lines[:1]}")
    for line in lines[1:]:
        if line in headings:
            window = headings[line]
        elif line.startswith("size classes, now (objects):"):
            window = "classes"
        elif window == "classes" and columns is None:
            columns = line.split()
        elif window == "classes":
            row = [int(v) for v in line.split()]
            classes[row[0]] = row[1:]
        elif window is not None and (m := re.fullmatch(r"  ([a-z0-9_]+) +([0-9.]+)( \([0-9.]+ MiB\))?", line)):
            windows[m.group(1)] = window
            values[m.group(1)] = m.group(2)
        else:
            fail(f"{what}: line {line!r}")
    return lines[0], windows, values, columns, classes
_, text_windows, _, columns, text_classes = read_text(f"{tmp}/stats.txt", "malloc_stats")
if text_windows != {name: windows[name] for name in table}:
    fail(f"malloc_stats figures and windows differ from JSON's: {set(text_windows.items()) ^ {(n, windows[n]) for n in table}}")
want_columns = ["object_bytes"] + [re.sub(r"^size_class_|_objects$", "", f) for f in sorted(class_figures)]
if columns is None or sorted(columns) != sorted(want_columns) or not text_classes:
    fail(f"malloc_stats size-class table columns {columns}, want {want_columns}")
# malloc_stats ran while the program held 1000 blocks of 4 KiB (one class: bytearray adds a few bytes)
in_use = columns.index("in_use") - 1
if max(values[in_use] for size, values in text_classes.items() if size > 4096) < 1000:
    fail(f"the program's 1000 blocks are not in the size classes' table: {text_classes}")
# tcmctl stats shows the JSON and the Prometheus file as the same text, with their values.
for fmt in ("json", "prom"):
    first, shown_windows, shown_values, shown_columns, shown_classes = read_text(f"{tmp}/shown.{fmt}", f"tcmctl stats tcm.{fmt}")
    pid = json_pid if fmt == "json" else prom_pid
    if f", pid {pid}, " not in first:
        fail(f"tcmctl stats tcm.{fmt}: {first} (pid {pid})")
    if shown_windows != text_windows or shown_columns != columns:
        fail(f"tcmctl stats tcm.{fmt} shows other figures than malloc_stats: {set(shown_windows) ^ set(text_windows)}")
    for name in table:
        want = (str(report[name]) if fmt == "json" else None)
        if fmt == "prom":
            got_float, want_float = float(shown_values[name]), samples["tcm_" + name][1]
            if abs(got_float - want_float) > 1e-9 * max(1.0, abs(want_float)):
                fail(f"tcmctl stats tcm.prom: {name} {shown_values[name]}, the file says {want_float}")
        elif float(shown_values[name]) != float(want):
            fail(f"tcmctl stats tcm.json: {name} {shown_values[name]}, the file says {want}")
    want_classes = ({c["object_bytes"]: c for c in report["size_classes"]} if fmt == "json" else
                    {size: figures for size, figures in prom_classes.items()})
    if set(shown_classes) != set(want_classes):
        fail(f"tcmctl stats tcm.{fmt}: size classes {sorted(shown_classes)}, the file has {sorted(want_classes)}")
    for size, row in shown_classes.items():
        for column, value in zip(shown_columns[1:], row):
            figure = next(f for f in class_figures if re.sub(r"^size_class_|_objects$", "", f) == column)
            if value != want_classes[size][figure]:
                fail(f"tcmctl stats tcm.{fmt}: class {size} {column} {value}, the file says {want_classes[size][figure]}")
print(f"ok: stats files ({len(samples)} Prometheus metrics, {len(report)} JSON fields, {len(xml_figures)} malloc_info "
      f"figures, {len(text_windows)} malloc_stats figures; {len(json_classes)} size classes)")
PY
