#!/usr/bin/env bash
# Fetch Debian's current linux-image-amd64 kernel, its modules and the
# matching headers, extracted (never installed) under the build directory,
# keyed by version:  $KEMARI_BUILD/lab/kernel/<version>/
# Prints the version on stdout; progress and errors go to stderr.
set -euo pipefail

build=${KEMARI_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
cache=$build/lab/kernel

say() { echo "lab-kernel: $*" >&2; }
die() { say "error: $*"; exit 1; }

resolve_version() {
	local dep
	dep=$(apt-cache depends linux-image-amd64 2>/dev/null |
	      sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' |
	      grep -v unsigned | head -n1) || true
	echo "$dep"
}

ver=$(resolve_version)
if [ -z "$ver" ]; then
	say "apt lists do not know linux-image-amd64; running apt-get update"
	apt-get update -qq >&2 || die "apt-get update failed; check the Debian mirror in /etc/apt/sources.list"
	ver=$(resolve_version)
fi
[ -n "$ver" ] || die "cannot resolve the version behind Debian's linux-image-amd64"

dir=$cache/$ver
if [ -f "$dir/.complete" ]; then
	echo "$ver"
	exit 0
fi

# Headers: linux-headers-VER depends on linux-headers-VER-common (with
# the arch-independent tree) and linux-kbuild-X.Y (scripts, modpost).
hdr=linux-headers-$ver
pkgs=("linux-image-$ver" "$hdr")
while read -r p; do pkgs+=("$p"); done < <(apt-cache depends "$hdr" |
	sed -n 's/^ *Depends: \(linux-\(headers\|kbuild\)-[^ ]*\)$/\1/p')

say "preparing lab kernel $ver (${pkgs[*]})"
rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/root"
# A mirror hiccup should not fail a whole test run: three tries.
fetch() {
	local try
	for try in 1 2 3; do
		(cd "$dir/debs" && apt-get download "${pkgs[@]}" >&2) && return 0
		say "download attempt $try failed"
		[ $try = 3 ] || sleep $((try * 5))
	done
	return 1
}
fetch ||
	die "downloading ${pkgs[*]} failed; check network access to the Debian mirror and run apt-get update"
i=0
for deb in "$dir"/debs/*.deb; do
	i=$((i + 1))
	say "extracting [$i/${#pkgs[@]}] $(basename "$deb")"
	dpkg -x "$deb" "$dir/root" || die "dpkg -x $deb failed"
done
[ -f "$dir/root/boot/vmlinuz-$ver" ] || die "no vmlinuz-$ver in linux-image-$ver"
depmod -b "$dir/root" "$ver" || die "depmod failed on the extracted modules"
# The headers package includes its common half by absolute path; point it
# at the extracted copy so modules build here (host or lab, same paths).
hdir=$dir/root/usr/src/linux-headers-$ver
sed -i "s|^include /usr/src/|include $dir/root/usr/src/|" "$hdir/Makefile"
ln -sfn "../../../usr/src/linux-headers-$ver" "$dir/root/lib/modules/$ver/build"
rm -rf "$dir/debs"
touch "$dir/.complete"
say "lab kernel $ver ready in $dir"
echo "$ver"
