#!/usr/bin/env bash
# Inside the lab: boot the lab's own Debian kernel in kemari-vmm (2 vCPUs)
# with a busybox initramfs built here, to userspace; assert the marker line
# on the serial console, that both vCPUs came up and that the guest's
# reboot ended the VM cleanly; print the time to the marker.
#   boot.sh KEMARI_VMM
set -euo pipefail
vmm=$1
kver=${KEMARI_LAB_KVER:?run this inside the lab (tests/lab/lab-run)}
kernel=$KEMARI_BUILD/lab/kernel/$kver/root/boot/vmlinuz-$kver
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
[ -r "$kernel" ] || fail "the lab kernel $kernel is missing"

mkdir -p "$tmp/root/bin" "$tmp/root/proc" "$tmp/root/dev"
cp /bin/busybox "$tmp/root/bin/busybox"
ln -s busybox "$tmp/root/bin/sh"
cat >"$tmp/root/init" <<'INIT'
#!/bin/sh
/bin/busybox mount -t proc proc /proc
n=$(/bin/busybox grep -c ^processor /proc/cpuinfo)
read up idle </proc/uptime
echo "KEMARI-BOOT-OK cpus=$n uptime=$up"
/bin/busybox reboot -f
INIT
chmod +x "$tmp/root/init"
(cd "$tmp/root" && find . | cpio -o -H newc --quiet) >"$tmp/initrd.cpio"

modprobe kvm_amd
[ -c /dev/kvm ] || fail "/dev/kvm did not appear after modprobe kvm_amd"

cmdline="console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1"
cmdline+=" i8042.noaux i8042.nomux i8042.nopnp rdinit=/init"
t0=$(date +%s%N)
set +e
"$vmm" --kernel "$kernel" --initrd "$tmp/initrd.cpio" --cmdline "$cmdline" \
	--memory 256M --cpus 2 --timeout 200 --serial stdout \
	2>"$tmp/vmm.err" | tr -d '\r' | while IFS= read -r line; do
	printf 'guest: %s\n' "$line"
	case $line in
	*KEMARI-BOOT-OK*)
		echo "boot to marker: $((($(date +%s%N) - t0) / 1000000)) ms" \
			"from kemari-vmm start"
		echo "$line" >"$tmp/marker" ;;
	esac
done
rc=${PIPESTATUS[0]}
set -e
cat "$tmp/vmm.err"
[ -f "$tmp/marker" ] || fail "the marker never appeared on the serial console"
grep -q 'cpus=2 ' "$tmp/marker" || fail "the guest did not bring up 2 vCPUs: $(cat "$tmp/marker")"
[ "$rc" -eq 0 ] || fail "kemari-vmm exited with $rc, not 0 (clean guest reset)"
grep -q 'reset the machine through the i8042' "$tmp/vmm.err" ||
	fail "the VM did not end through the i8042 reset"
echo "PASS: Linux booted to userspace on 2 vCPUs and rebooted cleanly"
