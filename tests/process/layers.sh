#!/bin/sh
# tests/process/layers.sh - the include graph follows DESIGN.md's one-way layers.
#
# Usage: layers.sh SOURCE_DIR   (exit 0 pass, 1 a violation, 2 usage)
# Reads every #include "..." line of the .c and .h files of core/, conf/, orchestrator/, shim/
# and tools/, and prints one FAIL line per include that breaks these rules:
#   - include/ (tcm.h, the public API) may be included by every layer;
#   - core/ includes nothing but its own files: not shim/, conf/, orchestrator/ or tools/;
#   - outside core/, the one core header is core/core.h, the facade. It includes what the
#     other layers may use besides: os.h (every system call of the allocator is core/os.c's),
#     format.h (allocation-free text) and debug.h (tcm_fatal); no other core header is allowed;
#   - layers rank core < conf < orchestrator < shim, tools: a layer includes only from lower
#     ones (conf/ is read by orchestrator/ and shim/, never the reverse), and nothing but shim/
#     includes shim/ (tools/ is beside it: tcmctl links no shim, and shim.h is private);
#   - from another layer, only headers (.h).
# A name without a directory resolves as the compiler finds it: beside the including file,
# else the one layer folder holding it (tools/ gets conf/'s headers on its include path), else
# a header the build generates from NAME.in beside the file.
set -u
src=${1:-}
[ -d "$src/core" ] || { echo "usage: layers.sh SOURCE_DIR (the tcm checkout)" >&2; exit 2; }
cd "$src" || exit 2

layers="core conf orchestrator shim tools"
violations=0
includes=0

rank() {
	case $1 in
	core) echo 0 ;; conf) echo 1 ;; orchestrator) echo 2 ;; shim | tools) echo 3 ;; *) echo 9 ;;
	esac
}

fail() {
	echo "FAIL [layers]: $*"
	violations=$((violations + 1))
}

# The included file's path from the source dir, or "" when it cannot be found.
resolve() {
	dir=$1 name=$2
	case $name in
	*/*)
		path=$(realpath -m --relative-to=. "$dir/$name")
		[ -f "$path" ] && echo "$path"
		return
		;;
	esac
	if [ -f "$dir/$name" ] || [ -f "$dir/$name.in" ]; then
		echo "$dir/$name"
		return
	fi
	found=$(for folder in include $layers; do [ -f "$folder/$name" ] && echo "$folder/$name"; done)
	[ "$(echo "$found" | grep -c .)" = 1 ] && echo "$found"
}

check() {
	file=$1 line=$2 name=$3
	from=${file%%/*}
	target=$(resolve "${file%/*}" "$name")
	if [ -z "$target" ]; then
		fail "$file:$line: #include \"$name\" names no file of the tree, or more than one"
		return
	fi
	to=${target%%/*}
	[ "$to" = "$from" ] || [ "$to" = include ] && return
	where="$file:$line includes $target"
	case $target in
	*.h) ;;
	*) fail "$where: only headers are included across layers" ;;
	esac
	if [ "$from" = core ]; then
		fail "$where: core/ includes only core/ and include/"
	elif [ "$to" = core ] && [ "$target" != core/core.h ]; then
		fail "$where: outside core/, include core/core.h (the facade) instead"
	elif [ "$to" = shim ]; then
		fail "$where: nothing outside shim/ includes shim/"
	elif [ "$(rank "$to")" -ge "$(rank "$from")" ] && [ "$to" != core ]; then
		fail "$where: $from/ may include only from layers below it (core < conf < orchestrator < shim, tools)"
	fi
}

for layer in $layers; do
	for file in "$layer"/*.c "$layer"/*.h; do
		[ -f "$file" ] || continue
		# "LINE NAME" for each #include "NAME"
		matches=$(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" |
			  sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1 \2/')
		[ -n "$matches" ] || continue
		while read -r line name; do
			includes=$((includes + 1))
			check "$file" "$line" "$name"
		done <<EOF
$matches
EOF
	done
done

[ "$includes" -gt 0 ] || { echo "FAIL [layers]: no #include \"...\" line found under $src"; exit 1; }
if [ "$violations" -gt 0 ]; then
	echo "FAIL [layers]: $violations include(s) against DESIGN.md's layers"
	exit 1
fi
echo "PASS [layers]: $includes includes of $layers follow the layers"
