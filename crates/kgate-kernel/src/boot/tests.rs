use super::*;
use crate::testutil::{compress_for, load_tree, modinfo_elf, TempDir};
use std::io::Write;
use std::os::unix::fs::symlink;

fn fake_tree(t: &TempDir) -> KernelTree {
    let dir = "lib/modules/6.12.0";
    for (path, info) in [
        (
            "kernel/fs/ext4/ext4.ko",
            "name=ext4;alias=fs-ext4;depends=jbd2,mbcache",
        ),
        ("kernel/fs/jbd2/jbd2.ko", "name=jbd2;depends="),
        ("kernel/fs/mbcache.ko", "name=mbcache;depends="),
        ("kernel/fs/fat/vfat.ko", "name=vfat;alias=fs-vfat;depends="),
        (
            "kernel/fs/xfs/xfs.ko.xz",
            "name=xfs;alias=fs-xfs;depends=libcrc32c",
        ),
        (
            "kernel/lib/libcrc32c.ko",
            "name=libcrc32c;softdep=pre: crc32c",
        ),
        (
            "kernel/crypto/crc32c-intel.ko",
            "name=crc32c_intel;alias=crc32c",
        ),
        ("kernel/drivers/ata/ahci.ko", "name=ahci;alias=pci:v*"),
        ("kernel/drivers/scsi/sd_mod.ko", "name=sd_mod"),
        ("kernel/drivers/net/virtio_net.ko", "name=virtio_net"),
        (
            "kernel/drivers/md/dm-crypt.ko",
            "name=dm_crypt;depends=dm-mod",
        ),
        ("kernel/drivers/md/dm-mod.ko", "name=dm_mod"),
        ("kernel/drivers/md/md-mod.ko", "name=md_mod"),
        ("kernel/drivers/md/raid1.ko", "name=raid1;depends=md-mod"),
        (
            "kernel/net/vmw_vsock/vsock.ko",
            "name=vsock;alias=net-pf-40",
        ),
    ] {
        t.write(
            &format!("{dir}/{path}"),
            compress_for(path, modinfo_elf(info)),
        );
    }
    t.write(
        &format!("{dir}/modules.builtin"),
        "kernel/fs/proc.ko\nkernel/drivers/virtio/virtio_pci.ko\n",
    );
    load_tree(&t.path().join(dir))
}

/// A relative symlink at `at` to `target` (both relative to the root),
/// the way sysfs links are relative.
fn link(t: &TempDir, target: &str, at: &str) {
    let p = t.path().join(at);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let depth = Path::new(at).components().count() - 1;
    symlink(format!("{}{target}", "../".repeat(depth)), p).unwrap();
}

fn mkdir(t: &TempDir, rel: &str) {
    fs::create_dir_all(t.path().join(rel)).unwrap();
}

#[test]
fn mountinfo_parsing() {
    let m = parse_mountinfo(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
         30 22 8:2 / /boot/my\\040efi rw shared:2 master:3 - vfat /dev/sda2 rw\n\
         bad line\n",
    );
    assert_eq!(
        m,
        vec![
            ("/".into(), "ext4".into()),
            ("/boot/my efi".into(), "vfat".into())
        ]
    );
    let m = parse_proc_mounts("/dev/sda1 / xfs rw 0 0\nproc /proc proc rw 0 0\n");
    assert_eq!(m[0], ("/".into(), "xfs".into()));
    assert_eq!(m.len(), 2);
}

fn fake_sys(t: &TempDir) {
    // Drivers with module links; one builtin driver without.
    mkdir(t, "sys/module/ahci");
    mkdir(t, "sys/module/sd_mod");
    mkdir(t, "sys/module/virtio_net");
    mkdir(t, "sys/module/e1000e");
    link(t, "sys/module/ahci", "sys/bus/pci/drivers/ahci/module");
    link(t, "sys/module/sd_mod", "sys/bus/scsi/drivers/sd/module");
    link(
        t,
        "sys/module/virtio_net",
        "sys/bus/virtio/drivers/virtio_net/module",
    );
    link(t, "sys/module/e1000e", "sys/bus/pci/drivers/e1000e/module");
    mkdir(t, "sys/bus/pci/drivers/virtio-pci"); // builtin: no module link

    // sda: pci 0000:00:1f.2 (ahci) / ata1 / host0 / target / 0:0:0:0 (sd)
    let disk = "sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0";
    mkdir(t, &format!("{disk}/block/sda/sda1"));
    link(
        t,
        "sys/bus/pci/drivers/ahci",
        "sys/devices/pci0000:00/0000:00:1f.2/driver",
    );
    link(t, "sys/bus/scsi/drivers/sd", &format!("{disk}/driver"));
    link(t, disk, &format!("{disk}/block/sda/device"));
    link(t, &format!("{disk}/block/sda"), "sys/class/block/sda");
    link(t, &format!("{disk}/block/sda/sda1"), "sys/class/block/sda1");

    // dm-0: crypt; dm-1: LVM; md0: raid1; loop0: virtual.
    mkdir(t, "sys/devices/virtual/block/dm-0/dm");
    t.write(
        "sys/devices/virtual/block/dm-0/dm/uuid",
        "CRYPT-LUKS2-abc-sda3_crypt\n",
    );
    link(t, "sys/devices/virtual/block/dm-0", "sys/class/block/dm-0");
    mkdir(t, "sys/devices/virtual/block/dm-1/dm");
    t.write("sys/devices/virtual/block/dm-1/dm/uuid", "LVM-xyz\n");
    link(t, "sys/devices/virtual/block/dm-1", "sys/class/block/dm-1");
    t.write("sys/devices/virtual/block/md0/md/level", "raid1\n");
    link(t, "sys/devices/virtual/block/md0", "sys/class/block/md0");
    mkdir(t, "sys/devices/virtual/block/loop0");
    link(
        t,
        "sys/devices/virtual/block/loop0",
        "sys/class/block/loop0",
    );

    // eth0: virtio1 (virtio_net) under pci 0000:00:03.0 (virtio-pci, builtin).
    let pci = "sys/devices/pci0000:00/0000:00:03.0";
    mkdir(t, &format!("{pci}/virtio1/net/eth0"));
    link(
        t,
        "sys/bus/pci/drivers/virtio-pci",
        &format!("{pci}/driver"),
    );
    link(
        t,
        "sys/bus/virtio/drivers/virtio_net",
        &format!("{pci}/virtio1/driver"),
    );
    link(
        t,
        &format!("{pci}/virtio1"),
        &format!("{pci}/virtio1/net/eth0/device"),
    );
    link(t, &format!("{pci}/virtio1/net/eth0"), "sys/class/net/eth0");
    // eth1: e1000e, a module this kernel's tree lacks.
    let pci2 = "sys/devices/pci0000:00/0000:00:19.0";
    mkdir(t, &format!("{pci2}/net/eth1"));
    link(t, "sys/bus/pci/drivers/e1000e", &format!("{pci2}/driver"));
    link(t, pci2, &format!("{pci2}/net/eth1/device"));
    link(t, &format!("{pci2}/net/eth1"), "sys/class/net/eth1");
    mkdir(t, "sys/devices/virtual/net/lo");
    link(t, "sys/devices/virtual/net/lo", "sys/class/net/lo");

    t.write(
        "proc/self/mountinfo",
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
         23 22 0:5 / /proc rw - proc proc rw\n\
         24 22 0:6 / /sys rw - sysfs sysfs rw\n\
         30 22 8:2 / /boot/efi rw shared:2 - vfat /dev/sda2 rw\n\
         31 22 0:40 / /run/user/1000/doc rw - fuse.portal portal rw\n",
    );
}

fn by_name(v: &[BootModule]) -> BTreeMap<&str, &str> {
    v.iter()
        .map(|b| (b.name.as_str(), b.reason.as_str()))
        .collect()
}

#[test]
fn fake_host() {
    let t = TempDir::new("boot");
    let tree = fake_tree(&t);
    fake_sys(&t);
    let got = boot_modules(t.path(), &tree, None).unwrap();
    let m = by_name(&got);
    assert_eq!(m["ext4"], "root filesystem (ext4)");
    assert_eq!(m["jbd2"], "needed by ext4, root filesystem (ext4)");
    assert!(m.contains_key("mbcache"));
    assert_eq!(m["vfat"], "mounted filesystem /boot/efi (vfat)");
    assert_eq!(m["ahci"], "driver of block device sda (ahci)");
    assert_eq!(m["sd_mod"], "driver of block device sda (sd)");
    assert_eq!(m["dm_crypt"], "device-mapper block device dm-0 (crypt)");
    assert_eq!(
        m["dm_mod"],
        "needed by dm_crypt, device-mapper block device dm-0 (crypt)"
    );
    assert_eq!(m["md_mod"], "md block device md0 (raid1)");
    assert_eq!(m["raid1"], "md block device md0 (raid1)");
    assert_eq!(
        m["virtio_net"],
        "driver of network interface eth0 (virtio_net)"
    );
    assert_eq!(
        m["e1000e"],
        "driver of network interface eth1 (e1000e) — not in this kernel's tree"
    );
    // proc/sysfs are builtin or not modules; virtio-pci is builtin
    // (no module link); xfs and vsock are not needed.
    for absent in ["proc", "sysfs", "virtio_pci", "xfs", "vsock", "fuse"] {
        assert!(!m.contains_key(absent), "{absent}");
    }
    let names: Vec<&str> = got.iter().map(|b| b.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn proc_mounts_fallback() {
    let t = TempDir::new("boot");
    let tree = fake_tree(&t);
    t.write("proc/mounts", "/dev/vda1 / xfs rw 0 0\n");
    let got = boot_modules(t.path(), &tree, None).unwrap();
    let m = by_name(&got);
    assert_eq!(m.len(), 3, "{m:?}");
    assert_eq!(m["xfs"], "root filesystem (xfs)");
    assert_eq!(m["libcrc32c"], "needed by xfs, root filesystem (xfs)");
    // Through libcrc32c's `softdep pre: crc32c`, an alias.
    assert_eq!(m["crc32c_intel"], "needed by xfs, root filesystem (xfs)");
}

/// A tiny newc writer: (path, mode, data) entries, then TRAILER!!!,
/// padded to `pad` bytes.
fn cpio(entries: &[(&str, u32, &[u8])], pad: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]| {
        let namesize = name.len() + 1;
        let fields = [
            1,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            namesize as u32,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() & 3 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() & 3 != 0 {
            out.push(0);
        }
    };
    for (name, mode, data) in entries {
        push(&mut out, name, *mode, data);
    }
    push(&mut out, "TRAILER!!!", 0, b"");
    while out.len() % pad > 0 {
        out.push(0);
    }
    out
}

fn early_and_main(compress: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let early = cpio(
        &[
            ("kernel", 0o40755, b""),
            ("kernel/x86/microcode/GenuineIntel.bin", 0o100644, b"ucode!"),
        ],
        512,
    );
    let main = cpio(
        &[
            ("usr", 0o40755, b""),
            (
                "usr/lib/modules/6.12.0/kernel/fs/ext4/ext4.ko",
                0o100644,
                b"x",
            ),
            (
                "usr/lib/modules/6.12.0/kernel/drivers/ata/ahci.ko.xz",
                0o100644,
                b"abcde",
            ),
            (
                "usr/lib/modules/6.12.0/kernel/drivers/md/dm-crypt.ko.zst",
                0o100644,
                b"",
            ),
            (
                "usr/lib/modules/6.12.0/kernel/foo/not-here.ko.gz",
                0o100644,
                b"12",
            ),
            ("usr/lib/modules/6.12.0/modules.dep", 0o100644, b"dep"),
            ("usr/lib/modules/6.12.0/kernel/dir.ko", 0o40755, b""),
        ],
        4,
    );
    // A second archive in the same compressed stream.
    let extra = cpio(&[("lib/firmware/x.ko", 0o100644, b"fw")], 4);
    let mut plain = main;
    plain.extend_from_slice(&[0; 8]);
    plain.extend_from_slice(&extra);
    let mut out = early;
    out.extend_from_slice(&compress(&plain));
    out
}

fn check_initramfs(t: &TempDir, bytes: Vec<u8>, tree: &KernelTree) {
    t.write("boot/initrd.img", bytes);
    let path = t.path().join("boot/initrd.img");
    assert_eq!(
        initramfs_modules(&path).unwrap(),
        ["ahci", "dm_crypt", "ext4", "not_here", "x"]
    );
    let got = boot_modules(t.path(), tree, Some(&path)).unwrap();
    let m = by_name(&got);
    let reason = format!("in initramfs {}", path.display());
    assert_eq!(m["ext4"], reason);
    assert_eq!(
        m["not_here"],
        format!("{reason} — not in this kernel's tree")
    );
    // Initramfs entries do not pull in dependencies: the archive lists them.
    assert!(!m.contains_key("jbd2"));
}

#[test]
fn initramfs_gzip_zstd_xz() {
    let t = TempDir::new("boot");
    let tree = fake_tree(&t);
    check_initramfs(
        &t,
        early_and_main(|d| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(d).unwrap();
            e.finish().unwrap()
        }),
        &tree,
    );
    check_initramfs(
        &t,
        early_and_main(|d| zstd::encode_all(d, 3).unwrap()),
        &tree,
    );
    check_initramfs(
        &t,
        early_and_main(|d| {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(d).unwrap();
            e.finish().unwrap()
        }),
        &tree,
    );
    // Entirely uncompressed, two archives back to back.
    check_initramfs(&t, early_and_main(|d| d.to_vec()), &tree);
}

#[test]
fn initramfs_errors() {
    let t = TempDir::new("boot");
    let tree = KernelTree::empty(t.path().join("none"));
    let mut lz4 = cpio(&[("a", 0o100644, b"")], 512);
    lz4.extend_from_slice(&[0x04, 0x22, 0x4d, 0x18, 1, 2, 3]);
    t.write("lz4.img", lz4);
    let e = boot_modules(t.path(), &tree, Some(&t.path().join("lz4.img"))).unwrap_err();
    assert!(
        matches!(
            e,
            BootError::UnsupportedCompression {
                format: "lz4",
                offset: 512,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("lz4"));

    t.write("junk.img", b"hello world");
    let e = initramfs_modules(&t.path().join("junk.img")).unwrap_err();
    assert!(
        matches!(e, BootError::UnknownFormat { offset: 0, .. }),
        "{e}"
    );

    let mut truncated = cpio(&[("a.ko", 0o100644, b"0123456789")], 4);
    truncated.truncate(120);
    t.write("trunc.img", truncated);
    let e = initramfs_modules(&t.path().join("trunc.img")).unwrap_err();
    assert!(matches!(e, BootError::Cpio { .. }), "{e}");

    let e = initramfs_modules(&t.path().join("missing.img")).unwrap_err();
    assert!(matches!(e, BootError::Read { .. }), "{e}");
}

#[test]
fn live_host_does_not_error() {
    let tree = KernelTree::empty(PathBuf::from("/lib/modules/none"));
    let got = boot_modules(Path::new("/"), &tree, None).unwrap();
    // With an empty tree nothing resolves by filesystem; drivers found
    // in /sys are kept with a note.
    for b in &got {
        assert!(b.reason.ends_with("not in this kernel's tree"), "{b:?}");
    }
}
