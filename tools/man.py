#!/usr/bin/env python3
"""tools/man.py - writes the man pages tcmctl(1), tcm.conf(5) and tcm(3) from what the program
itself says, so that they cannot drift from it: tcmctl(1) from `tcmctl --help`, the keys of
tcm.conf(5) from `tcmctl keys` (the schema in conf/schema.c), tcm(3) from the declarations and
comments of include/tcm.h. The build runs it (tools/CMakeLists.txt); `cmake --install` puts the
pages under share/man.

Usage: man.py TCMCTL TCM_H OUTPUT_DIR
"""
import re
import subprocess
import sys


def escape(text):
    """Text safe in a roff line: backslashes doubled, dashes literal, no leading control char."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def header(name, section, version, title):
    return [f'.TH "{name.upper()}" "{section}" "" "tcm {version}" "{title}"']


def tcmctl_page(tcmctl, version):
    """tcmctl(1): the sections of `tcmctl --help`, their text kept as laid out."""
    help_text = subprocess.run([tcmctl, "--help"], check=True, capture_output=True, text=True).stdout
    lines = header("tcmctl", 1, version, "tcm manual")
    section = None
    for line in help_text.splitlines():
        if line and not line[0].isspace():
            if section not in (None, "NAME"):
                lines.append(".fi")
            section = line.strip()
            lines.append(f".SH {section}")
            if section != "NAME":
                lines.append(".nf")
        elif section == "NAME":
            if not line.strip():
                continue
            name, _, what = line.strip().partition(" - ")
            lines.append(f"{escape(name)} \\- {escape(what)}")
        else:
            lines.append(escape(line[4:] if line.startswith("    ") else line.strip()))
    lines += [".fi", ".SH SEE ALSO", "tcm.conf(5), tcm(3)"]
    return lines


def keys(tcmctl):
    """The rows of `tcmctl keys`: name, type, default, range, unit, variable, meaning."""
    table = subprocess.run([tcmctl, "keys"], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in table.splitlines()[2:]:
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7:
            rows.append(cells)
    if not rows:
        sys.exit("man.py: tcmctl keys printed no keys")
    return rows


def tcm_conf_page(tcmctl, version):
    lines = header("tcm.conf", 5, version, "tcm manual")
    lines += [".SH NAME", "tcm.conf \\- configuration of tcm, the allocator preloaded as libtcm.so",
              ".SH SYNOPSIS", "\\fB/etc/tcm.conf\\fR, or the file \\fB$TCM_CONF\\fR names",
              ".SH DESCRIPTION",
              escape("libconfig syntax: groups of keys, e.g. exit: { deadline_ms = 1500; };. "
                     "Each key can be overridden by its environment variable. Precedence: the "
                     "variable, then the file, then the default. A bad value is reported on "
                     "stderr (one line, naming file, line and key) and the key keeps its "
                     "default; the program never stops over configuration. "
                     "tcmctl check FILE gives the same verdict with an exit status."),
              ".SH KEYS"]
    for name, kind, default, accepted, unit, variable, meaning in keys(tcmctl):
        lines += [".TP", f"\\fB{escape(name)}\\fR ({escape(kind)}, default {escape(default)})",
                  escape(meaning),
                  ".br", f"Accepted: {escape(accepted)}" + ("" if unit == "-" else f" ({escape(unit)})") +
                  f". Variable: \\fB{escape(variable)}\\fR."]
    lines += [".SH ENVIRONMENT", ".TP", "\\fBTCM_CONF\\fR", "the configuration file, instead of /etc/tcm.conf",
              ".TP", "\\fBTCM_\\fIGROUP\\fB_\\fIKEY\\fR", escape("overrides one key (listed above); a TCM_ "
                                                              "variable that names no key is reported"),
              ".PP", escape("setuid and setgid programs read neither."),
              ".SH FILES", "/etc/tcm.conf", ".SH SEE ALSO", "tcmctl(1), tcm(3)"]
    return lines


def declarations(tcm_h):
    """tcm.h's file comment, its functions in order, each with the comment just above it (or
    ""), and its struct definitions."""
    text = open(tcm_h).read()
    file_comment = re.match(r"/\*(.*?)\*/", text, re.S).group(1)
    functions = []
    for match in re.finditer(r"^[A-Za-z][^;#\n]*\btcm_\w+\([^;]*\);", text, re.M):
        before = text[:match.start()].rstrip()
        comment = ""
        if before.endswith("*/"):
            comment = before[before.rindex("/*") + 2:-2]
        functions.append((comment, " ".join(match.group(0).split())))
    structs = re.findall(r"^struct tcm_\w+ \{.*?^\};", text, re.M | re.S)
    return file_comment, functions, structs


def comment_text(comment):
    """A comment as one paragraph, its first letter capital unless it starts with a name."""
    text = " ".join(line.strip().lstrip("*").strip() for line in comment.strip().splitlines()).strip()
    return text if re.match(r"\w*_", text) else text[:1].upper() + text[1:]


def tcm_page(tcm_h, version):
    file_comment, functions, structs = declarations(tcm_h)
    lines = header("tcm", 3, version, "tcm manual")
    lines += [".SH NAME", "tcm \\- the C API of tcm, a tcmalloc\\-style allocator for Linux services",
              ".SH SYNOPSIS", ".nf", "\\fB#include <tcm.h>\\fR", ""]
    lines += [f"\\fB{escape(d)}\\fR" for _, d in functions]
    lines += [".fi", ".PP", "Link with \\fI\\-ltcm\\fR (pkg-config tcm), or find_package(tcm) and tcm::tcm.",
              ".SH DESCRIPTION", escape(comment_text(re.sub(r"^\s*include/tcm\.h - ", "", file_comment)))]
    for comment, declaration in functions:
        name = re.search(r"\btcm_(\w+)\(", declaration).group(1)
        lines += [".TP", f"\\fB{escape(declaration)}\\fR",
                  escape(comment_text(comment)) if comment else f"As {name}(3), from tcm's heap."]
    if structs:
        lines += [".SH STRUCTURES", ".nf"] + [escape(line) for struct in structs for line in struct.splitlines() + [""]]
        lines += [".fi"]
    lines += [".SH SEE ALSO", "tcmctl(1), tcm.conf(5), malloc(3)"]
    return lines


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: man.py TCMCTL TCM_H OUTPUT_DIR")
    tcmctl, tcm_h, out = sys.argv[1:]
    version = subprocess.run([tcmctl, "--version"], check=True, capture_output=True, text=True).stdout.split()[-1]
    for name, lines in (("tcmctl.1", tcmctl_page(tcmctl, version)), ("tcm.conf.5", tcm_conf_page(tcmctl, version)),
                        ("tcm.3", tcm_page(tcm_h, version))):
        with open(f"{out}/{name}", "w") as f:
            f.write("\n".join(lines) + "\n")


main()
