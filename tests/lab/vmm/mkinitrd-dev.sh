#!/usr/bin/env bash
# Build the device-test initramfs: static busybox, the lab kernel's virtio
# modules (Debian builds virtio_pci, virtio_blk and virtio_net as modules),
# and an /init that exercises the disk and the NIC and prints KEMARI-*
# lines on the console for devices.sh to check.
#   mkinitrd-dev.sh MODULES_DIR OUT.cpio
set -euo pipefail
mods=$1 out=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
	"$root/lib/modules"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
# The load order is the dependency order (the guest has no modprobe data).
order="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev
virtio_pci virtio_blk failover net_failover virtio_net"
# Fixed paths: a find over the 9p-exported modules tree takes minutes.
for f in drivers/virtio/virtio drivers/virtio/virtio_ring \
	drivers/virtio/virtio_pci_legacy_dev \
	drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci \
	drivers/block/virtio_blk net/core/failover drivers/net/net_failover \
	drivers/net/virtio_net; do
	cp "$mods/kernel/$f.ko" "$root/lib/modules/" ||
		{ echo "FAIL: $f.ko is not in $mods" >&2; exit 1; }
done
echo "$order" >"$root/lib/modules/order"
cat >"$root/init" <<'INIT'
#!/bin/sh
b=/bin/busybox
$b mount -t proc proc /proc
$b mount -t sysfs sys /sys
$b mount -t devtmpfs dev /dev
$b mount -t tmpfs tmp /tmp
for m in $($b cat /lib/modules/order); do
	$b insmod /lib/modules/$m.ko || echo "KEMARI-FAIL insmod $m"
done
for i in $($b seq 100); do
	[ -b /dev/vda ] && [ -d /sys/class/net/eth0 ] && break
	$b sleep 0.1
done
token=$($b sed -n 's/.*kemari.token=\([^ ]*\).*/\1/p' /proc/cmdline)
cd /tmp
# The disk: a tar the lab host wrote at sector 0; ours goes at 1 MiB.
$b tar -xf /dev/vda in.txt && echo "KEMARI-DISK-IN $($b cat in.txt)"
echo "guest token $token" >out.txt
$b tar -cf - out.txt | $b dd of=/dev/vda bs=512 seek=2048 conv=fsync 2>/dev/null
$b sync
echo "KEMARI-DISK-OUT done"
# The NIC: 192.0.2.2 on the lab host's TAP (192.0.2.1).
$b ip link set lo up
$b ip link set eth0 up
$b ip addr add 192.0.2.2/24 dev eth0
$b ping -c 2 -W 5 192.0.2.1 >/dev/null && echo "KEMARI-PING-HOST ok"
echo "KEMARI-NET-UP"
$b timeout 60 $b nc -l -p 7000 >/tmp/msg
echo "KEMARI-NC $($b cat /tmp/msg)"
# Save/restore under disk and network traffic: record i goes to sector
# 4096 + i (O_DIRECT, then a flush), and only then is it announced on
# the console; each round reads it and the one before back from the disk
# (O_DIRECT) and pings the host. devices.sh saves the VM in the middle
# of this loop and runs it on from the file in a new process.
n=$($b sed -n 's/.*kemari.records=\([0-9]*\).*/\1/p' /proc/cmdline)
i=1
while [ "$i" -le "${n:-0}" ]; do
	echo "KMREC $i $token" | $b dd of=/dev/vda bs=512 seek=$((4096 + i)) \
		count=1 conv=sync,fsync oflag=direct 2>/dev/null ||
		echo "KEMARI-FAIL write $i"
	echo "KEMARI-REC $i done"
	chk=ok
	for j in $((i - 1)) $i; do
		[ "$j" -ge 1 ] || continue
		got=$($b dd if=/dev/vda bs=512 skip=$((4096 + j)) count=1 \
			iflag=direct 2>/dev/null | $b head -n 1)
		[ "$got" = "KMREC $j $token" ] || chk="BAD $j: '$got'"
	done
	echo "KEMARI-CHK $i $chk"
	if $b ping -c 1 -W 3 192.0.2.1 >/dev/null; then
		echo "KEMARI-PING $i ok"
	else
		echo "KEMARI-PING $i lost"
	fi
	i=$((i + 1))
done
echo "KEMARI-LOOP-END"
$b reboot -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$out"
