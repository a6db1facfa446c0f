#!/bin/sh
# tests/process/abi_symbols.sh - the exported ABI of libtcm.so is a closed list.
#
# Usage: abi_symbols.sh /path/to/libtcm.so
# Checks that `nm -D --defined-only` lists every libc malloc-family symbol, every
# mangled C++ operator new/delete form and the public tcm_* API of include/tcm.h,
# and nothing else except further names starting with tcm_ (DESIGN.md, STYLE.md
# "Exported: the libc ABI plus the tcm_* names"). Version nodes (address 0, type A)
# and version suffixes (malloc@@TCM_1) are ignored. Prints every missing and every
# unexpected symbol; exits 1 if there is either, 2 on a usage or tool error.
set -u

lib=${1:-}
if [ -z "$lib" ] || [ ! -f "$lib" ]; then
	echo "abi_symbols.sh: usage: abi_symbols.sh /path/to/libtcm.so (got '$lib')" >&2
	exit 2
fi
command -v nm >/dev/null 2>&1 || { echo "abi_symbols.sh: nm not found" >&2; exit 2; }

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# The libc malloc family, glibc's extensions and the __libc_* aliases.
libc_symbols="malloc free calloc realloc reallocarray memalign posix_memalign
aligned_alloc valloc pvalloc malloc_usable_size malloc_trim mallinfo mallinfo2 mallopt
malloc_stats malloc_info __libc_malloc __libc_free __libc_calloc __libc_realloc
__libc_memalign __libc_valloc __libc_pvalloc free_sized free_aligned_sized"

# The signal calls the orchestrator interposes: to keep its SIGTERM hook first, and to see a
# SIGTERM taken with a wait call.
signal_symbols="sigaction signal sigwait sigwaitinfo sigtimedwait bsd_signal ssignal sysv_signal __sysv_signal sigset sigignore siginterrupt"

# operator new/delete in every form (x86_64: size_t mangles as m).
cxx_symbols="_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t
_ZnwmSt11align_val_t _ZnamSt11align_val_t
_ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
_ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t
_ZdlPvSt11align_val_t _ZdaPvSt11align_val_t
_ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
_ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t"

# The public API of include/tcm.h (more tcm_* names are allowed, these are required).
tcm_symbols="tcm_malloc tcm_free tcm_calloc tcm_realloc tcm_aligned_alloc
tcm_malloc_usable_size tcm_release_free_memory tcm_stats tcm_size_class_stats tcm_stats_print
tcm_shutdown_begin"

for s in $libc_symbols $signal_symbols $cxx_symbols $tcm_symbols; do echo "$s"; done | sort -u >"$tmp/required"
for s in $libc_symbols $signal_symbols $cxx_symbols; do echo "$s"; done | sort -u >"$tmp/closed"

if ! nm -D --defined-only "$lib" >"$tmp/nm.out" 2>"$tmp/nm.err"; then
	echo "abi_symbols.sh: nm -D --defined-only $lib failed:" >&2
	cat "$tmp/nm.err" >&2
	exit 2
fi

# Columns: address type name. Drop version nodes (0 A NAME); strip @VERSION / @@VERSION.
awk '
	NF >= 3 && $2 == "A" && $1 ~ /^0+$/ { next }
	NF >= 3 { name = $3; sub(/@.*/, "", name); print name }
' "$tmp/nm.out" | sort -u >"$tmp/exported"

if [ ! -s "$tmp/exported" ]; then
	echo "abi_symbols.sh: $lib exports no symbols at all" >&2
	exit 1
fi

comm -23 "$tmp/required" "$tmp/exported" >"$tmp/missing"
# Unexpected: exported, not in the closed list, not starting with tcm_.
comm -23 "$tmp/exported" "$tmp/closed" | grep -v '^tcm_' >"$tmp/unexpected"

status=0
if [ -s "$tmp/missing" ]; then
	echo "MISSING from $lib ($(wc -l <"$tmp/missing") symbols):"
	sed 's/^/  /' "$tmp/missing"
	status=1
fi
if [ -s "$tmp/unexpected" ]; then
	echo "UNEXPECTED in $lib ($(wc -l <"$tmp/unexpected") symbols):"
	sed 's/^/  /' "$tmp/unexpected"
	status=1
fi
if [ "$status" -eq 0 ]; then
	echo "abi_symbols.sh: $lib exports exactly the expected ABI ($(wc -l <"$tmp/exported") symbols)"
fi
exit "$status"
