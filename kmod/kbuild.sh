#!/usr/bin/env bash
# Build kemari.ko out of the source tree, warnings as errors:
#
#   kmod/kbuild.sh OUTDIR [KDIR]     build; print the module's path
#   kmod/kbuild.sh --test OUTDIR [KDIR]
#                                    the test build (KEMARI_TEST=y: the
#                                    fault trigger); use its own OUTDIR
#   kmod/kbuild.sh --check OUTDIR    exit 0 if OUTDIR/kemari.ko is built
#                                    from the current sources
#
# kbuild writes its objects next to the sources (M=), so the sources are
# mirrored into OUTDIR first (a file is copied only when its content
# changed, which keeps kbuild's incremental build working) and kbuild runs
# there. Without KDIR the headers of the lab's kernel are used:
# tests/lab/lab-kernel.sh prepares them (download and extract once, cached
# in $KEMARI_BUILD).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

sources() {
	(cd "$here" && find Kbuild include -type f -print && ls -- *.c *.h *.S)
}

# Up to date: every source mirrored unchanged, and the module linked after
# the last mirror copy.
# (Pipes, not process substitution: the lab has no /dev/fd.)
check() {
	local out=$1
	[ -f "$out/kemari.ko" ] || return 1
	sources | while read -r f; do
		cmp -s "$here/$f" "$out/$f" || exit 1
		[ "$out/$f" -ot "$out/kemari.ko" ] || exit 1
	done
}

mirror() {
	local out=$1
	sources | while read -r f; do
		cmp -s "$here/$f" "$out/$f" && continue
		mkdir -p "$out/$(dirname "$f")"
		cp "$here/$f" "$out/$f"
	done
}

if [ "${1:-}" = --check ]; then
	check "${2:?usage: kbuild.sh --check OUTDIR}"
	exit
fi
test_build=n
if [ "${1:-}" = --test ]; then
	test_build=y
	shift
fi
out=${1:?usage: kbuild.sh [--test] OUTDIR [KDIR]}
kdir=${2:-}

if [ -z "$kdir" ]; then
	kver=$("$here/../tests/lab/lab-kernel.sh")
	build=${KEMARI_BUILD:-$here/../build}
	kdir=$build/lab/kernel/$kver/root/usr/src/linux-headers-$kver
fi
[ -f "$kdir/Makefile" ] || {
	echo "kbuild.sh: '$kdir' is not a kernel headers tree (no Makefile); install linux-headers-\$(uname -r) or pass the right KDIR" >&2
	exit 1
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
mirror "$out"
# kbuild is a separate make: it cannot use a parent make's jobserver.
env -u MAKEFLAGS -u MFLAGS make -s -C "$kdir" M="$out" KEMARI_WERROR=y \
	KEMARI_TEST=$test_build modules >&2
# Newer than every source even when kbuild had nothing to do, so the
# caller's make (CMake) sees the target up to date.
touch "$out/kemari.ko"
echo "$out/kemari.ko"
