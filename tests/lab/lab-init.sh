#!/bin/busybox sh
# /init of the lab's initramfs. Loads the 9p stack, mounts the host's root
# filesystem read-write, binds the extracted kernel modules onto
# /lib/modules, and runs the job script named on the kernel command line in
# a chroot of the host root. Powers off when the job ends, whatever happens.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

arg() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" /proc/cmdline; }

fail() {
	echo "lab-init: $*" >/dev/console
	poweroff -f
}

for m in $(cat /modules.list); do
	insmod "/mod/$m.ko" || fail "cannot load $m"
done

mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,access=any \
	hostroot /host || fail "cannot mount the host root over 9p"

moddir=$(arg kemari.moddir)
job=$(arg kemari.job)
[ -n "$job" ] || fail "no kemari.job= on the kernel command line"

mount -o bind "/host$moddir" /host/lib/modules || fail "cannot bind modules"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
mount -t tmpfs tmpfs /host/run
# Unix sockets do not work on 9p; the lab has its own /tmp. A source or
# build tree that lives under the host's /tmp (a CI clone, say) is bound
# back in, or the job could not even find its own script.
mkdir -p /hosttmp
mount -o bind /host/tmp /hosttmp
mount -t tmpfs tmpfs /host/tmp
for d in $(arg kemari.tmpkeep | tr , ' '); do
	mkdir -p "/host/tmp/$d"
	mount -o bind "/hosttmp/$d" "/host/tmp/$d" || fail "cannot bind /tmp/$d"
done
mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null
ip link set lo up
hostname "$(arg kemari.hostname)"

echo "lab-init: running $job" >/dev/console
chroot /host /bin/bash "$job" </dev/null
echo "lab-init: job finished" >/dev/console
sync
poweroff -f
