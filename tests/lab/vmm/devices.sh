#!/usr/bin/env bash
# Inside the lab: Linux (the lab's own kernel, 2 vCPUs) in kemari-vmm with
# a virtio-blk disk and a virtio-net NIC on a TAP. One boot checks:
#  - the guest reads a file the lab host put on the disk, writes its own,
#    and the lab host reads that back from the image;
#  - guest -> host ping, host -> guest ping, a TCP message host -> guest;
#  - disk writes and packet transmits were tapped exits (--tap-log), and
#    the devices' writes into guest RAM went to the dirty log (stats);
#  - save/restore with both devices busy: the guest loops writing numbered
#    records to the disk (announcing each on the console once flushed),
#    reading them back and pinging the host; the VM is saved mid-loop
#    (--save-at signal), that process ends, and a new one (--restore, the
#    same disk image and TAP) carries on: every record lands exactly once
#    and in order, the read-backs match, the console and the NIC go on.
#   devices.sh KEMARI_VMM
set -euo pipefail
vmm=$1
kver=${KEMARI_LAB_KVER:?run this inside the lab (tests/lab/lab-run)}
kroot=$KEMARI_BUILD/lab/kernel/$kver/root
kernel=$kroot/boot/vmlinuz-$kver
tmp=$(mktemp -d)
vmm_pid=
cleanup() {
	[ -z "$vmm_pid" ] || kill "$vmm_pid" 2>/dev/null || true
	ip link del kmtap0 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	sed 's/^/console: /' "$tmp/console" 2>/dev/null | tail -40 >&2 || true
	sed 's/^/vmm: /' "$tmp/err" 2>/dev/null >&2 || true
	sed 's/^/restored console: /' "$tmp/console2" 2>/dev/null | tail -40 >&2 || true
	sed 's/^/restored vmm: /' "$tmp/err2" 2>/dev/null >&2 || true
	exit 1
}

. "$KEMARI_SRC/tests/lab/kvm/lab-kvm.sh"
lab_kvm_ready
"$(dirname "$0")/mkinitrd-dev.sh" "$kroot/lib/modules/$kver" "$tmp/initrd"

modprobe tun
[ -c /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; }
ip tuntap add dev kmtap0 mode tap
ip addr add 192.0.2.1/24 dev kmtap0
ip link set kmtap0 up

token=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
mkdir "$tmp/in"
echo "from the lab host $token" >"$tmp/in/in.txt"
truncate -s 4M "$tmp/disk.img"
tar -cf - -C "$tmp/in" in.txt | dd of="$tmp/disk.img" conv=notrunc status=none

cmdline="console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 quiet"
cmdline+=" i8042.noaux i8042.nomux i8042.nopnp rdinit=/init kemari.token=$token"
records=10 save_after=3
cmdline+=" kemari.records=$records"
echo "starting kemari-vmm (lab uptime $(cut -d' ' -f1 /proc/uptime) s)"
t0=$(date +%s%N)
"$vmm" --kernel "$kernel" --initrd "$tmp/initrd" --cmdline "$cmdline" \
	--memory 256M --cpus 2 --timeout 150 --serial "file:$tmp/console" \
	--disk "$tmp/disk.img" --net tap:kmtap0 --tap-log "$tmp/taplog" \
	--save "$tmp/vm.state" --save-at signal 2>"$tmp/err" &
vmm_pid=$!

for _ in $(seq 900); do
	grep -q KEMARI-NET-UP "$tmp/console" 2>/dev/null && break
	kill -0 "$vmm_pid" 2>/dev/null || break
	sleep 0.1
done
if ! grep -q KEMARI-NET-UP "$tmp/console"; then
	kill -0 "$vmm_pid" 2>/dev/null && state="still running" ||
		state="exited"
	tail -n 25 "$tmp/console" | sed 's/^/console: /'
	sed 's/^/vmm: /' "$tmp/err"
	fail "the guest never brought its NIC up (kemari-vmm $state)"
fi
echo "guest NIC up $((($(date +%s%N) - t0) / 1000000)) ms after kemari-vmm started"
ping -c 3 -W 5 -i 0.3 192.0.2.2 >"$tmp/ping" 2>&1 ||
	{ cat "$tmp/ping"; ip -s link show kmtap0; fail "the lab host could not ping the guest"; }
tail -2 "$tmp/ping" | sed 's/^/host ping: /'
for _ in 1 2 3 4 5; do
	(echo "hello-$token" >/dev/tcp/192.0.2.2/7000) 2>/dev/null && break
	sleep 1
done
# Mid-loop: the VM is saved at the first tapped exit after SIGUSR2.
for _ in $(seq 900); do
	grep -q "KEMARI-REC $save_after done" "$tmp/console" 2>/dev/null && break
	kill -0 "$vmm_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q "KEMARI-REC $save_after done" "$tmp/console" ||
	fail "the guest never completed disk record $save_after"
kill -USR2 "$vmm_pid"
set +e
wait "$vmm_pid"
rc=$?
vmm_pid=
set -e
sed 's/^/vmm: /' "$tmp/err"
[ "$rc" -eq 0 ] || fail "kemari-vmm exited with $rc"
grep -q 'saved the VM to .* at tapped exit' "$tmp/err" ||
	fail "the VM was not saved"

grep -q "KEMARI-DISK-IN from the lab host $token" "$tmp/console" ||
	fail "the guest did not read the host's file from the disk"
# Into a file first: tar stops reading at the archive's end, and a dd
# still writing into the pipe would die of SIGPIPE.
dd if="$tmp/disk.img" of="$tmp/out.tar" bs=512 skip=2048 count=64 status=none
got=$(tar -xOf "$tmp/out.tar" out.txt) ||
	fail "no tar with out.txt at 1 MiB of the disk image"
[ "$got" = "guest token $token" ] || fail "the guest's file reads '$got'"
echo "PASS: the guest read the host's file and wrote its own to virtio-blk"
grep -q "KEMARI-PING-HOST ok" "$tmp/console" || fail "the guest could not ping the host"
grep -q "KEMARI-NC hello-$token" "$tmp/console" || fail "the TCP message did not arrive"
echo "PASS: ping both ways and TCP over virtio-net on TAP"

blk=$(grep -c 'port=0xc010 dev=virtio-pci' "$tmp/taplog" || true)
net=$(grep -c 'port=0xc050 dev=virtio-pci' "$tmp/taplog" || true)
echo "tapped: $blk virtio-blk notifies, $net virtio-net notifies"
[ "$blk" -gt 0 ] || fail "no virtio-blk write was a tapped exit"
[ "$net" -gt 0 ] || fail "no virtio-net transmit was a tapped exit"
grep -q 'device-dirty pages' "$tmp/err" || fail "no device dirty-page count"
echo "PASS: disk writes and transmits were tapped exits"

# The save point: records whose "done" line left the console before it
# were completed by the primary (the console byte was a tapped exit).
tr -d '\r' <"$tmp/console" >"$tmp/console.txt"
before=$(grep -c '^KEMARI-REC [0-9]* done$' "$tmp/console.txt" || true)
echo "saved after $before of $records records; state file $(stat -c %s "$tmp/vm.state") bytes"
[ "$before" -ge "$save_after" ] && [ "$before" -lt "$records" ] ||
	fail "the save was not in the middle of the loop ($before records before it)"
t0=$(date +%s%N)
set +e
"$vmm" --restore "$tmp/vm.state" --disk "$tmp/disk.img" --net tap:kmtap0 \
	--timeout 120 --serial "file:$tmp/console2" --tap-log "$tmp/taplog2" \
	2>"$tmp/err2"
rc=$?
set -e
echo "restored run: $((($(date +%s%N) - t0) / 1000000)) ms to the guest's reboot"
sed 's/^/restored vmm: /' "$tmp/err2"
[ "$rc" -eq 0 ] || fail "the restored kemari-vmm exited with $rc"
tr -d '\r' <"$tmp/console2" >"$tmp/console2.txt"
grep -q KEMARI-LOOP-END "$tmp/console2.txt" || fail "the restored guest never finished its loop"
# One stream: a line cut at the save point is completed by the new process.
cat "$tmp/console.txt" "$tmp/console2.txt" |
	sed -n 's/^KEMARI-REC \([0-9]*\) done$/\1/p' >"$tmp/recs"
seq 1 "$records" | cmp -s - "$tmp/recs" ||
	fail "records announced across the save: $(tr '\n' ' ' <"$tmp/recs"), not 1..$records once each"
after=$(grep -c '^KEMARI-REC [0-9]* done$' "$tmp/console2.txt" || true)
[ "$after" -ge 1 ] || fail "the restored guest completed no disk write"
for i in $(seq "$records"); do
	dd if="$tmp/disk.img" of="$tmp/sector" bs=512 skip=$((4096 + i)) count=1 status=none
	got=$(tr -d '\0' <"$tmp/sector" | head -n 1)
	[ "$got" = "KMREC $i $token" ] || fail "sector $((4096 + i)) holds '$got', not record $i"
done
chk=$(cat "$tmp/console.txt" "$tmp/console2.txt" | grep -c '^KEMARI-CHK [0-9]* ok$' || true)
if grep -h '^KEMARI-CHK [0-9]* BAD\|KEMARI-FAIL' "$tmp/console.txt" "$tmp/console2.txt"; then
	fail "the guest read back something it did not write"
fi
[ "$chk" -eq "$records" ] || fail "$chk of $records read-backs checked ok"
echo "PASS: saved mid-loop after $before records; the restored guest wrote records $((before + 1))..$records, each once, on the same disk, and read them all back"
pings=$(grep -c '^KEMARI-PING [0-9]* ok$' "$tmp/console2.txt" || true)
lost=$(grep -c '^KEMARI-PING [0-9]* lost$' "$tmp/console2.txt" || true)
echo "restored guest: $pings pings answered, $lost lost"
[ "$pings" -ge 1 ] || fail "the restored guest's NIC answered no ping"
blk=$(grep -c 'port=0xc010 dev=virtio-pci' "$tmp/taplog2" || true)
[ "$blk" -gt 0 ] || fail "the restored guest's disk writes were not tapped"
echo "PASS: the console, the disk and the NIC carried on in the restored VM ($blk tapped disk notifies)"
