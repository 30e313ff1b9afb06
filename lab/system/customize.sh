#!/bin/sh
# The real-system lab image's customisation: run by mmdebstrap
# (--customize-hook) with the new root as $1, after every package is
# installed. $KGATE_SYS_PUBKEY is the public half of the lab's ssh key.
# The image's recipe is this file and the package list in
# crates/kgate-lab/src/system.rs: changing either rebuilds the image.
set -eu
root=$1
echo kgate-sys > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 kgate-sys\n' > "$root/etc/hosts"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > "$root/etc/fstab"
# The network: DHCP on the virtio NIC (qemu user-mode networking).
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=en*\n[Network]\nDHCP=yes\n' > "$root/etc/systemd/network/50-lab.network"
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
# root and alice (uid 1000, no sudo) log in with the lab key only.
chroot "$root" useradd -m -u 1000 -s /bin/bash alice
for home in root home/alice; do
	mkdir -p "$root/$home/.ssh"
	printf '%s\n' "$KGATE_SYS_PUBKEY" > "$root/$home/.ssh/authorized_keys"
	chmod 700 "$root/$home/.ssh"
	chmod 600 "$root/$home/.ssh/authorized_keys"
done
chroot "$root" chown -R alice:alice /home/alice/.ssh
# Reverse DNS of the host would stall every login under TCG.
echo 'UseDNS no' > "$root/etc/ssh/sshd_config.d/lab.conf"
# postgres: reachable from the host (qemu's user network comes from
# 10.0.2.2), a database and role for the workload.
conf=$(ls -d "$root"/etc/postgresql/*/main)
echo "listen_addresses = '*'" >> "$conf/postgresql.conf"
echo 'host all all 10.0.2.0/24 trust' >> "$conf/pg_hba.conf"
# A page for the HTTP checks.
echo 'kgate-lab' > "$root/var/www/html/index.html"
# Initramfs images made in the guest (the kernel upgrade) hold the modules
# this machine needs (MODULES=dep, a common server setting), not most of
# them: under TCG, MODULES=most took over 10 minutes for one image. The
# first image, made at install time in the chroot, stays MODULES=most.
sed -i 's/^MODULES=most$/MODULES=dep/' "$root/etc/initramfs-tools/initramfs.conf"
grep -qx 'MODULES=dep' "$root/etc/initramfs-tools/initramfs.conf"
# Quiet boots: no emergency shell waiting on a console nobody reads.
chroot "$root" systemctl mask systemd-firstboot.service >/dev/null 2>&1 || true
