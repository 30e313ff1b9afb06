#!/bin/sh
# /init of the kgate kernel lab guest (busybox sh).
#
# Mounts the pseudo filesystems, runs every /lab/scenarios/*.sh in name
# order (each in its own shell, under a timeout), and powers off. Results go
# to the serial console as
#   KGATE-LAB-RESULT <name> <PASS|FAIL|SKIP> <detail>
# and the run ends with KGATE-LAB-DONE; the host treats a missing DONE as a
# crash or hang. The kernel runs with panic=-1 and qemu with -no-reboot, so
# a panic ends the VM too.

export PATH=/bin:/sbin:/lab/bin
export HOME=/root
umask 022

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o ptmxmode=0666,mode=0620 devpts /dev/pts
mount -t securityfs securityfs /sys/kernel/security
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up

# KGATE_LAB_KERNEL, KGATE_LAB_SCENARIO_TIMEOUT (written by the host).
. /lab/config.sh

# What the guest has loaded after boot, before any scenario: the state a
# `kgate freeze` of a freshly booted host sees. (Empty on a kernel built
# without CONFIG_MODULES, which has no /proc/modules.)
cp /proc/modules /run/boot.modules 2>/dev/null || : >/run/boot.modules

echo "KGATE-LAB-BOOTED kernel=$KGATE_LAB_KERNEL release=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"

for script in /lab/scenarios/*.sh; do
	[ -f "$script" ] || continue
	name=${script##*/}
	name=${name%.sh}
	echo "KGATE-LAB-BEGIN $name"
	(cd /tmp && KGATE_LAB_SCENARIO=$script timeout -s KILL "$KGATE_LAB_SCENARIO_TIMEOUT" sh -c '. /lab/lib.sh; . "$1"' scenario "$script") </dev/null 2>&1
	echo "KGATE-LAB-END $name rc=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
done

echo "KGATE-LAB-DONE"
sync
poweroff -f
