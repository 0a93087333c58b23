#!/usr/bin/env bash
# Build the test initramfs: static busybox and an /init that prints the
# marker (with the vCPU count and uptime) and then reboots, or powers off
# when the kernel command line says kemari.end=poweroff.
#   mkinitrd.sh OUT.cpio
set -euo pipefail
out=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/proc" "$root/dev"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cat >"$root/init" <<'INIT'
#!/bin/sh
/bin/busybox mount -t proc proc /proc
n=$(/bin/busybox grep -c ^processor /proc/cpuinfo)
read up idle </proc/uptime
echo "KEMARI-BOOT-OK cpus=$n uptime=$up"
case $(cat /proc/cmdline) in
*kemari.end=poweroff*) /bin/busybox poweroff -f ;;
*) /bin/busybox reboot -f ;;
esac
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$out"
