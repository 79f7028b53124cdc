#!/bin/busybox sh
# Stage 1 of the lxr test VM: PID 1 inside the initramfs built by initramfs.ts.
# It loads the virtio/9p/overlay modules, mounts the host's root (read-only
# 9p share "hostroot") under a tmpfs-backed overlay so the guest can write
# anywhere, gives it fresh /proc /sys /dev /run and a cgroup2 hierarchy,
# mounts the per-run writable share "results" at /run/lxr-vm and runs
# /run/lxr-vm/run.sh (written by vm.ts) chrooted in the new root. Then it
# powers the machine off; QEMU runs with -no-reboot so it exits.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

fail() {
  echo "lxr-vm: stage 1 failed: $*"
  poweroff -f
  reboot -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# Watchdog: vm.ts kills QEMU on timeout, but if the Node process that started
# it dies first, the guest must still power itself off.
T=$(sed -n 's/.*lxrvm.timeout=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$T" ]; then
  (sleep "$T"; echo "lxr-vm: guest watchdog: $T s elapsed, powering off"; poweroff -f) &
fi

for m in $(cat /etc/modules.order); do
  insmod "/lib/modules/$m" || fail "insmod $m"
done

MSIZE=524288
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=$MSIZE hostroot /host || fail "mount 9p hostroot"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount tmpfs /rw"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "mount overlay"

# The host's /proc, /sys, /dev and /run show through the 9p share: cover them. /tmp
# stays the host's (writes go to the overlay), so a checkout under /tmp works too.
R=/newroot
mount -t proc proc $R/proc || fail "mount proc"
mount -t sysfs sysfs $R/sys || fail "mount sysfs"
mount -t cgroup2 -o nsdelegate cgroup2 $R/sys/fs/cgroup || fail "mount cgroup2"
mount -t devtmpfs devtmpfs $R/dev || fail "mount devtmpfs"
mkdir -p $R/dev/pts $R/dev/shm $R/dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts $R/dev/pts
ln -sf pts/ptmx $R/dev/ptmx 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t mqueue mqueue $R/dev/mqueue
mount -t tmpfs -o mode=0755 tmpfs $R/run || fail "mount /run"
mkdir -p $R/run/lxr-vm $R/run/lock
mount -t 9p -o trans=virtio,version=9p2000.L,msize=$MSIZE results $R/run/lxr-vm || fail "mount 9p results"

hostname lxr-vm
ip link set lo up

# Make the overlay the root mount, as switch_root does, then run stage 2 in it.
cd $R || fail "cd $R"
mount --move . / || fail "mount --move"
chroot . /bin/sh /run/lxr-vm/run.sh </dev/null >/dev/console 2>&1
echo "lxr-vm: stage 2 done"
sync
poweroff -f
reboot -f
