#!/usr/bin/env bash
# kemari-vmm's user errors, on the host (no KVM needed): each one gives a
# one-line message naming the problem, and exit status 1.
#   errors.sh KEMARI_VMM
set -uo pipefail
vmm=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 checks=0

# expect STATUS PATTERN ARGS...: run kemari-vmm, check status and stderr.
expect() {
	local want=$1 pattern=$2 rc lines
	shift 2
	checks=$((checks + 1))
	"$vmm" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -ne "$want" ] || { [ "$want" -ne 0 ] &&
	   { ! grep -q -- "$pattern" "$tmp/err" || [ "$lines" -ne 1 ]; }; }; then
		echo "FAIL: kemari-vmm $*"
		echo "  want status $want and one line matching '$pattern'"
		echo "  got status $rc, $lines lines: $(cat "$tmp/err")"
		failures=$((failures + 1))
	else
		echo "ok: $* -> $(head -c 160 "$tmp/err")"
	fi
}

# put FILE OFFSET HEXBYTES: write little-endian bytes into a file.
put() {
	printf "$(echo "$3" | sed 's/\(..\)/\\x\1/g')" |
		dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none
}

# A synthetic bzImage header: protocol 2.15, 64-bit entry, 1 setup
# sector, a 7 KiB payload, 64 MiB to decompress, preferred at 16 MiB.
mkimage() {
	head -c 8192 /dev/zero >"$1"
	put "$1" 0x1f1 01			# setup_sects
	put "$1" 0x1f4 c0010000			# syssize: 7168 / 16
	put "$1" 0x1fe 55aa			# boot_flag
	put "$1" 0x202 48647253			# "HdrS"
	put "$1" 0x206 0f02			# version 2.15
	put "$1" 0x211 01			# loadflags: LOADED_HIGH
	put "$1" 0x22c ffffff7f			# initrd_addr_max
	put "$1" 0x236 0100			# xloadflags: KERNEL_64
	put "$1" 0x238 ff070000			# cmdline_size 2047
	put "$1" 0x258 0000000100000000		# pref_address 16 MiB
	put "$1" 0x260 00000004			# init_size 64 MiB
}
good=$tmp/bzImage
mkimage "$good"
mkimage "$tmp/old" && put "$tmp/old" 0x206 0002
mkimage "$tmp/no64" && put "$tmp/no64" 0x236 0000
mkimage "$tmp/trunc" && put "$tmp/trunc" 0x1f4 00000100
head -c 8192 /dev/urandom >"$tmp/random"
head -c 100 /dev/zero >"$tmp/short"
: >"$tmp/empty"
printf '\xeb\xfe' >"$tmp/raw.bin"
nokvm="--kvm-device $tmp/no-such-kvm"

echo "== KVM"
expect 1 "KVM is not available: $tmp/no-such-kvm is missing; .*load kvm" \
	--kernel "$good" $nokvm
expect 1 "is not a character device" --kernel "$good" --kvm-device "$good"
expect 1 "/dev/null is not a KVM device" --kernel "$good" --kvm-device /dev/null
# The real thing: /dev hidden by a tmpfs in a private mount namespace.
checks=$((checks + 1))
unshare -m bash -c 'mount -t tmpfs none /dev && exec "$0" --raw "$1"' \
	"$vmm" "$tmp/raw.bin" 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 1 ] ||
   ! grep -q "KVM is not available: /dev/kvm is missing" "$tmp/err"; then
	echo "FAIL: no /dev/kvm (mount namespace): status $rc: $(cat "$tmp/err")"
	failures=$((failures + 1))
else
	echo "ok: no /dev/kvm (mount namespace) -> $(cat "$tmp/err")"
fi

echo "== kernel, initrd and memory"
expect 1 "cannot read the kernel $tmp/none: No such file" --kernel "$tmp/none" $nokvm
expect 1 "is not a regular file" --kernel "$tmp" $nokvm
expect 1 "kernel $tmp/empty is empty" --kernel "$tmp/empty" $nokvm
expect 1 "too short to hold a boot header" --kernel "$tmp/short" $nokvm
expect 1 "no 'HdrS' boot header" --kernel "$tmp/random" $nokvm
expect 1 "boot protocol is older than 2.12" --kernel "$tmp/old" $nokvm
expect 1 "no 64-bit entry point" --kernel "$tmp/no64" $nokvm
expect 1 "truncated or its header sizes are inconsistent" --kernel "$tmp/trunc" $nokvm
expect 1 "cannot read the initrd $tmp/none" --kernel "$good" --initrd "$tmp/none" $nokvm
expect 1 "command line is 3000 bytes; this kernel accepts at most 2046" \
	--kernel "$good" --cmdline "$(head -c 3000 /dev/zero | tr '\0' x)" $nokvm
expect 1 "32 MiB of guest memory is too little for this kernel: it needs at least 96 MiB" \
	--kernel "$good" --memory 32M $nokvm
expect 1 "too little for this kernel and initrd" \
	--kernel "$good" --initrd "$tmp/random" --memory 96M $nokvm
expect 1 "does not fit below 64 KiB" --raw "$tmp/random" --raw-addr 0xf000 $nokvm

echo "== options"
expect 1 "unknown or incomplete option '--bogus'" --bogus
expect 1 "unknown or incomplete option '--memory'" --kernel "$good" --memory
expect 1 "nothing to boot" --memory 64M
expect 1 "give --kernel or --raw, not both" --kernel "$good" --raw "$tmp/raw.bin"
expect 1 "unexpected argument 'extra'" --kernel "$good" extra
expect 1 "--memory 'lots' is not a size" --kernel "$good" --memory lots
expect 1 "--memory must be a multiple of 4 KiB from 2 MiB" --kernel "$good" --memory 1M
expect 1 "--memory must be a multiple of 4 KiB from 2 MiB to 3072 MiB" --kernel "$good" --memory 8G
expect 1 "--cpus '0' is not a number from 1 to 8" --kernel "$good" --cpus 0
expect 1 "--cpus '9' is not a number from 1 to 8" --kernel "$good" --cpus 9
expect 1 "bad tap spec item '0x10-0x5'" --kernel "$good" --tap 0x10-0x5
expect 1 "--serial 'tty' is not understood" --kernel "$good" --serial tty $nokvm
expect 1 "--serial unix:$tmp/nosock: cannot connect" --kernel "$good" --serial "unix:$tmp/nosock" $nokvm
expect 1 "--serial file:$tmp/nodir/x: cannot open the file" --kernel "$good" --serial "file:$tmp/nodir/x" $nokvm
expect 1 "--initrd and --cmdline need --kernel" --raw "$tmp/raw.bin" --initrd "$good"

echo "== disks, NIC, save and restore"
expect 1 "cannot open the disk $tmp/none.img: No such file" --kernel "$good" --disk "$tmp/none.img" $nokvm
expect 1 "the disk $tmp/short must be a regular file of at least 512 bytes" \
	--kernel "$good" --disk "$good" --disk "$tmp/short" $nokvm
expect 1 "cannot open the disk $tmp: Is a directory" --kernel "$good" --disk "$tmp" $nokvm
expect 1 "more than 3 --disk options" --kernel "$good" --disk a --disk b --disk c --disk d
expect 1 "--disk 'a,b' is not PATH or PATH,ro" --kernel "$good" --disk a,b
expect 1 "--net 'eth0' is not tap:IFNAME" --kernel "$good" --net eth0
expect 1 "is not mac=XX:XX:XX:XX:XX:XX (a unicast address)" \
	--kernel "$good" --net tap:kt0,mac=01:00:00:00:00:01
expect 1 "only one --net is supported" --kernel "$good" --net tap:a --net tap:b
expect 1 "--save FILE and --save-at N|signal go together" --kernel "$good" --save "$tmp/s"
expect 1 "--save FILE and --save-at N|signal go together" --kernel "$good" --save-at signal
expect 1 "--save-at '0' is not a tapped-exit count from 1 or 'signal'" --kernel "$good" --save "$tmp/s" --save-at 0
expect 1 "--save-at 'sig' is not a tapped-exit count" --kernel "$good" --save "$tmp/s" --save-at sig
expect 1 "--restore takes the VM from its file" --restore "$tmp/s" --kernel "$good"
expect 1 "--restore takes the VM from its file" --restore "$tmp/s" --memory 64M
expect 1 "cannot open the state file $tmp/none" --restore "$tmp/none"
expect 1 "$tmp/empty is not a kemari-vmm state file (too short)" --restore "$tmp/empty"
expect 1 "$tmp/random is not a kemari-vmm state file (magic" --restore "$tmp/random"
# A header announcing 2 MiB of RAM and 1 KiB of state in a 40-byte file.
head -c 40 /dev/zero >"$tmp/state"
put "$tmp/state" 0 4b4d5646010000000000200000000000010000000000000000040000
expect 1 "$tmp/state: 40 bytes, its header announces 2098216" --restore "$tmp/state"
put "$tmp/state" 4 02
expect 1 "state file version 2 flags 0 is not version 1" --restore "$tmp/state"
put "$tmp/state" 4 01 && put "$tmp/state" 8 0000000001000000
expect 1 "a VM of 4294967296 bytes, 1 vCPUs and a 1024-byte state is out of range" --restore "$tmp/state"
expect 0 "" --help
grep -q "usage: kemari-vmm --kernel" "$tmp/out" ||
	{ echo "FAIL: --help printed no usage"; failures=$((failures + 1)); }

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
