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

# Every kgate run writes its wall time to the console on fd 9
# ("KGATE-TIME 1.23 kgate apply ..."), out of the scenarios' captured
# output: the host lists the slowest.
exec 9>/dev/console
export KGATE_TIMES_FD=9

# What the guest has loaded after boot, before any scenario: the state a
# `kgate freeze` of a freshly booted host sees. (Empty on a kernel built
# without CONFIG_MODULES, which has no /proc/modules.)
cp /proc/modules /run/boot.modules 2>/dev/null || : >/run/boot.modules

echo "KGATE-LAB-BOOTED kernel=$KGATE_LAB_KERNEL release=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"

# hung NAME: what every process is doing (state, kernel wait channel and
# stack, command line), so that a scenario that runs out of time says
# where it stuck.
hung() {
	echo "KGATE-LAB-HUNG $1: no end after ${KGATE_LAB_SCENARIO_TIMEOUT}s; its processes:"
	for d in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)
		[ -n "$cmd" ] || continue # kernel threads
		echo "  pid ${d#/proc/} $(cut -d' ' -f3 "$d/stat" 2>/dev/null) wchan=$(cat "$d/wchan" 2>/dev/null): $cmd"
		sed 's/^/      /' "$d/stack" 2>/dev/null | head -12
	done
}

for script in /lab/scenarios/*.sh; do
	[ -f "$script" ] || continue
	name=${script##*/}
	name=${name%.sh}
	echo "KGATE-LAB-BEGIN $name"
	# Its own session, so that a timeout kills what it started too.
	(cd /tmp && KGATE_LAB_SCENARIO=$script exec setsid sh -c '. /lab/lib.sh; . "$1"' scenario "$script") </dev/null 2>&1 &
	pid=$!
	(sleep "$KGATE_LAB_SCENARIO_TIMEOUT" && hung "$name" && kill -KILL -- "-$pid" "$pid") &
	watch=$!
	wait "$pid"
	rc=$?
	kill "$watch" 2>/dev/null
	echo "KGATE-LAB-END $name rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
done

echo "KGATE-LAB-DONE"
sync
poweroff -f
