#!/usr/bin/env bash
# lab-run's clear errors, checked on the host without booting anything:
# QEMU missing, the kernel cannot be resolved or downloaded, bad options.
set -u
here=$(cd "$(dirname "$0")" && pwd)
run=$here/../lab-run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # name expected-status pattern cmd...
	local name=$1 want=$2 pat=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ] && grep -q -- "$pat" <<<"$out"; then
		echo "PASS: $name: $(grep -m1 -- "$pat" <<<"$out")"
	else
		echo "FAIL: $name: status $rc (want $want), output:"
		sed 's/^/  /' <<<"$out"
		fails=$((fails + 1))
	fi
}

# No QEMU on PATH (everything else still found through a shim dir).
mkdir -p "$tmp/bin"
for t in bash busybox file grep sed dirname cat mktemp md5sum cut; do
	ln -sf "$(command -v $t)" "$tmp/bin/$t"
done
check "qemu missing" 125 "QEMU is missing: install qemu-system-x86" \
	env PATH="$tmp/bin" "$run" -- true

# apt cannot resolve or fetch the kernel: an apt configuration whose lists
# and sources are empty stands for a machine without a reachable mirror.
mkdir -p "$tmp/apt/lists/partial" "$tmp/apt/etc/sources.list.d" "$tmp/apt/cache/archives/partial"
: >"$tmp/apt/etc/sources.list"
cat >"$tmp/apt.conf" <<CONF
Dir::State::lists "$tmp/apt/lists";
Dir::Etc::sourcelist "$tmp/apt/etc/sources.list";
Dir::Etc::sourceparts "$tmp/apt/etc/sources.list.d";
Dir::Cache "$tmp/apt/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
check "kernel unresolvable" 125 "cannot resolve the version behind Debian's linux-image-amd64" \
	env APT_CONFIG="$tmp/apt.conf" KEMARI_BUILD="$tmp/build" "$run" -- true

check "bad topology" 125 "--topology must be single or pair" "$run" --topology ring -- true
check "no command" 125 "no command given" "$run" --timeout 5
check "unknown option" 125 "unknown option '--bogus'" "$run" --bogus -- true

echo "$((5 - fails)) passed, $fails failed"
[ $fails -eq 0 ]
