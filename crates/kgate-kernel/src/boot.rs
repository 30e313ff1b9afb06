//! What a host needs to boot: the modules behind its mounted filesystems,
//! its block devices and network interfaces, and the modules its initramfs
//! carries.
//!
//! A policy that blocks one of these can leave a host unbootable (the
//! initramfs carries `/etc/modprobe.d`), so the apply backends refuse to
//! block them. Everything here is a pure read below a `root` directory, so
//! tests run against fake `/proc` and `/sys` trees.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bounded::{self, Limit};
use crate::canonical_name;
use crate::ko::module_name_from_path;
use crate::tree::KernelTree;

/// liblzma's memory limit for an initramfs segment: initramfs-tools and
/// dracut use xz's default preset (8 MiB dictionary, 9 MiB to decode),
/// some `-9` (64 MiB dictionary, 65 MiB).
const XZ_MEMLIMIT: u64 = 80 << 20;

/// A module the host needs to boot, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootModule {
    /// Canonical module name.
    pub name: String,
    /// Why it is needed, in words (e.g. `root filesystem (ext4)`).
    pub reason: String,
}

/// Errors reading boot facts. Missing `/proc` or `/sys` files are not errors
/// (a fake or offline root simply has fewer facts); an initramfs that was
/// asked for but cannot be read is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// The initramfs file could not be read.
    #[error("{path}: cannot read the initramfs: {source}; check the path (or omit it to skip initramfs contents)")]
    Read {
        /// The initramfs.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The initramfs uses a compression kgate cannot read.
    #[error("{path}: the initramfs segment at byte {offset} is {format}-compressed, which kgate cannot read (gzip, zstd and xz are supported); list its modules with lsinitramfs/lsinitrd and pass them to the policy instead")]
    UnsupportedCompression {
        /// The initramfs.
        path: PathBuf,
        /// Byte offset of the segment.
        offset: usize,
        /// `lz4`, `bzip2`, `lzma`, `lzo`.
        format: &'static str,
    },
    /// Neither a cpio archive nor a known compression.
    #[error("{path}: byte {offset} starts neither a cpio archive nor a gzip/zstd/xz stream (magic {magic}); is this an initramfs?")]
    UnknownFormat {
        /// The initramfs.
        path: PathBuf,
        /// Byte offset.
        offset: usize,
        /// The first bytes, in hex.
        magic: String,
    },
    /// A compressed segment could not be decompressed.
    #[error("{path}: cannot decompress the {format} segment at byte {offset}: {source}")]
    Decompress {
        /// The initramfs.
        path: PathBuf,
        /// Byte offset of the segment.
        offset: usize,
        /// `gzip`, `zstd` or `xz`.
        format: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// A cpio archive is malformed.
    #[error("{path}: malformed cpio archive ({segment}): {reason}")]
    Cpio {
        /// The initramfs.
        path: PathBuf,
        /// Which segment (`uncompressed segment at byte N`, `gzip segment at byte N`).
        segment: String,
        /// What is wrong.
        reason: String,
    },
}

/// Collects the boot-critical modules of the host below `root` (`/` on a
/// live host): filesystems of mounted filesystems, drivers of block devices
/// (including device-mapper and md targets) and network interfaces, the
/// hard dependencies of all of these, and, when `initramfs` is given, every
/// module file the initramfs contains.
///
/// Names are canonical, deduplicated (the first reason found wins) and
/// sorted. Builtin modules are left out (they cannot be blocked); names not
/// in `tree` are kept with a note.
pub fn boot_modules(
    root: &Path,
    tree: &KernelTree,
    initramfs: Option<&Path>,
) -> Result<Vec<BootModule>, BootError> {
    let mut found = Found::default();
    for (mountpoint, fstype) in mounts(root) {
        let reason = if mountpoint == "/" {
            format!("root filesystem ({fstype})")
        } else {
            format!("mounted filesystem {mountpoint} ({fstype})")
        };
        for name in fs_modules(tree, &fstype) {
            found.add(tree, &name, &reason, true);
        }
    }
    block_devices(root, tree, &mut found);
    net_devices(root, tree, &mut found);
    if let Some(path) = initramfs {
        let reason = format!("in initramfs {}", path.display());
        for name in initramfs_modules(path)? {
            found.add(tree, &name, &reason, false);
        }
    }
    let mut out: Vec<BootModule> = found.0.into_values().collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[derive(Default)]
struct Found(BTreeMap<String, BootModule>);

impl Found {
    /// Records `name` (and, with `deps`, everything modprobe loads with it).
    fn add(&mut self, tree: &KernelTree, name: &str, reason: &str, deps: bool) {
        let name = canonical_name(name);
        match tree.get(&name) {
            Some(m) if m.builtin => {}
            Some(_) => {
                self.insert(&name, reason.to_owned());
                if deps {
                    for dep in load_closure_resolved(tree, &name) {
                        let loadable = matches!(tree.get(&dep), Some(m) if !m.builtin);
                        if dep == name || !loadable {
                            continue;
                        }
                        self.insert(&dep, format!("needed by {name}, {reason}"));
                    }
                }
            }
            None => self.insert(&name, format!("{reason} — not in this kernel's tree")),
        }
    }

    fn insert(&mut self, name: &str, reason: String) {
        self.0.entry(name.to_owned()).or_insert_with(|| BootModule {
            name: name.to_owned(),
            reason,
        });
    }
}

/// Everything modprobe loads for `name`: hard dependencies and softdeps,
/// with softdep names that are aliases (`pre: crc32c`) resolved the way
/// modprobe resolves them.
fn load_closure_resolved(tree: &KernelTree, name: &str) -> BTreeSet<String> {
    let mut out = tree.load_closure([name]);
    let mut resolved = BTreeSet::new();
    loop {
        let pending: Vec<String> = out
            .iter()
            .filter(|n| tree.get(n).is_none() && !resolved.contains(*n))
            .cloned()
            .collect();
        if pending.is_empty() {
            return out;
        }
        for p in pending {
            let hits: Vec<String> = tree
                .resolve(&p)
                .into_iter()
                .map(|m| m.name.clone())
                .collect();
            resolved.insert(p);
            out.extend(tree.load_closure(hits.iter().map(String::as_str)));
        }
    }
}

/// Loadable modules of `tree` that provide filesystem type `fstype`.
fn fs_modules(tree: &KernelTree, fstype: &str) -> Vec<String> {
    // `fuse.sshfs`, `fuseblk`: the kernel side is the fuse module.
    let base = match fstype.split_once('.') {
        Some((b, _)) => b,
        None => fstype,
    };
    let base = if base == "fuseblk" { "fuse" } else { base };
    if let Some(m) = tree.get(&canonical_name(base)) {
        return if m.builtin {
            Vec::new()
        } else {
            vec![m.name.clone()]
        };
    }
    tree.resolve(&format!("fs-{base}"))
        .into_iter()
        .filter(|m| !m.builtin)
        .map(|m| m.name.clone())
        .collect()
}

/// (mountpoint, fstype) of every mount, from `proc/self/mountinfo` or else
/// `proc/mounts`. Nothing when neither can be read.
fn mounts(root: &Path) -> Vec<(String, String)> {
    if let Ok(text) = bounded::read_text(root, &root.join("proc/self/mountinfo"), Limit::MOUNTINFO)
    {
        return parse_mountinfo(&text);
    }
    if let Ok(text) = bounded::read_text(root, &root.join("proc/mounts"), Limit::MOUNTINFO) {
        return parse_proc_mounts(&text);
    }
    Vec::new()
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
pub fn parse_mountinfo(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let mountpoint = words.get(4)?;
            let dash = words.iter().position(|w| *w == "-")?;
            let fstype = words.get(dash + 1)?;
            Some((unescape_octal(mountpoint), unescape_octal(fstype)))
        })
        .collect()
}

/// `/dev/sda1 / ext4 rw,relatime 0 0`
pub fn parse_proc_mounts(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let _source = words.next()?;
            let mountpoint = words.next()?;
            let fstype = words.next()?;
            Some((unescape_octal(mountpoint), unescape_octal(fstype)))
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash as `\040` etc.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sorted_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, PathBuf)> = rd
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    v.sort();
    v
}

fn read_trimmed(path: &Path) -> Option<String> {
    bounded::read_text(Path::new("/"), path, Limit::HOST_FILE)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Walks from `start` up to `root/sys`, returning (driver name, module
/// name) for every ancestor with a `driver` link whose driver has a
/// `module` link (builtin drivers without one are skipped).
fn driver_modules(root: &Path, start: &Path) -> Vec<(String, String)> {
    let Ok(sys) = fs::canonicalize(root.join("sys")) else {
        return Vec::new();
    };
    let Ok(mut dir) = fs::canonicalize(start) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while dir.starts_with(&sys) && dir != sys {
        if let Ok(driver) = fs::canonicalize(dir.join("driver")) {
            let driver_name = driver
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Ok(module) = fs::read_link(driver.join("module")) {
                if let Some(m) = module.file_name() {
                    out.push((driver_name, canonical_name(&m.to_string_lossy())));
                }
            }
        }
        if !dir.pop() {
            break;
        }
    }
    out
}

fn block_devices(root: &Path, tree: &KernelTree, found: &mut Found) {
    for (name, entry) in sorted_entries(&root.join("sys/class/block")) {
        if name.starts_with("dm-") {
            let uuid = read_trimmed(&entry.join("dm/uuid")).unwrap_or_default();
            let (kind, modules) = dm_modules(&uuid);
            let reason = format!("device-mapper block device {name} ({kind})");
            for m in modules {
                found.add(tree, m, &reason, true);
            }
            continue;
        }
        if name.starts_with("md") {
            if let Some(level) = read_trimmed(&entry.join("md/level")) {
                let reason = format!("md block device {name} ({level})");
                found.add(tree, "md_mod", &reason, true);
                if let Some(p) = md_personality(&level) {
                    found.add(tree, p, &reason, true);
                }
                continue;
            }
        }
        let device = entry.join("device");
        let start = if device.exists() { device } else { entry };
        for (driver, module) in driver_modules(root, &start) {
            let reason = format!("driver of block device {name} ({driver})");
            found.add(tree, &module, &reason, true);
        }
    }
}

/// The kind of a device-mapper device and the modules behind it, from its
/// `dm/uuid` (`CRYPT-…` for dm-crypt, `LVM-…` for LVM).
pub fn dm_modules(uuid: &str) -> (&'static str, &'static [&'static str]) {
    if uuid.starts_with("CRYPT-") {
        ("crypt", &["dm_crypt", "dm_mod"])
    } else if uuid.starts_with("LVM-") {
        ("lvm", &["dm_mod"])
    } else {
        ("dm", &["dm_mod"])
    }
}

/// The md personality module of an md device's `md/level` (`raid5` →
/// `raid456`), if the level has one.
pub fn md_personality(level: &str) -> Option<&str> {
    match level {
        "raid4" | "raid5" | "raid6" => Some("raid456"),
        "raid0" | "raid1" | "raid10" | "linear" | "multipath" => Some(level),
        _ => None,
    }
}

fn net_devices(root: &Path, tree: &KernelTree, found: &mut Found) {
    for (name, entry) in sorted_entries(&root.join("sys/class/net")) {
        let device = entry.join("device");
        if !device.exists() {
            continue; // lo, bridges, tunnels: virtual
        }
        for (driver, module) in driver_modules(root, &device) {
            let reason = format!("driver of network interface {name} ({driver})");
            found.add(tree, &module, &reason, true);
        }
    }
}

/// Canonical names of the module files an initramfs contains. The file may
/// be several cpio archives back to back, each uncompressed (early
/// microcode) or gzip/zstd/xz-compressed, with zero padding between them.
pub fn initramfs_modules(path: &Path) -> Result<Vec<String>, BootError> {
    let data =
        bounded::read(Path::new("/"), path, Limit::INITRAMFS).map_err(|e| BootError::Read {
            path: path.to_owned(),
            source: io::Error::other(e),
        })?;
    parse_initramfs(&data, path, Limit::INITRAMFS_UNPACKED)
}

/// [`initramfs_modules`] of the bytes `data` of the initramfs `path` (for
/// messages), each decompressed segment capped at `unpacked`.
pub fn parse_initramfs(
    data: &[u8],
    path: &Path,
    unpacked: Limit,
) -> Result<Vec<String>, BootError> {
    let mut names = Vec::new();
    let mut pos = 0;
    loop {
        while pos < data.len() && data[pos] == 0 {
            pos += 1;
        }
        if pos >= data.len() {
            break;
        }
        let rest = &data[pos..];
        if rest.starts_with(b"07070") {
            let segment = format!("uncompressed segment at byte {pos}");
            pos = parse_cpio(data, pos, &mut names).map_err(|reason| BootError::Cpio {
                path: path.to_owned(),
                segment,
                reason,
            })?;
            continue;
        }
        let format = compression_of(rest).ok_or_else(|| BootError::UnknownFormat {
            path: path.to_owned(),
            offset: pos,
            magic: rest.iter().take(6).map(|b| format!("{b:02x}")).collect(),
        })?;
        let mut out = Vec::new();
        let result = match format {
            "gzip" => read_capped(
                flate2::bufread::MultiGzDecoder::new(rest),
                &mut out,
                unpacked,
            ),
            "zstd" => zstd::stream::read::Decoder::with_buffer(rest)
                .and_then(|d| read_capped(d, &mut out, unpacked)),
            "xz" => xz2::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, xz2::stream::CONCATENATED)
                .map_err(io::Error::from)
                .and_then(|s| {
                    read_capped(
                        xz2::bufread::XzDecoder::new_stream(rest, s),
                        &mut out,
                        unpacked,
                    )
                }),
            other => {
                return Err(BootError::UnsupportedCompression {
                    path: path.to_owned(),
                    offset: pos,
                    format: other,
                })
            }
        };
        result.map_err(|source| BootError::Decompress {
            path: path.to_owned(),
            offset: pos,
            format,
            source,
        })?;
        // The decompressed stream may itself hold several archives.
        let mut inner = 0;
        loop {
            while inner < out.len() && out[inner] == 0 {
                inner += 1;
            }
            if inner >= out.len() {
                break;
            }
            let segment = format!("{format} segment at byte {pos}, offset {inner} inside");
            inner = parse_cpio(&out, inner, &mut names).map_err(|reason| BootError::Cpio {
                path: path.to_owned(),
                segment,
                reason,
            })?;
        }
        // The decoder consumed the rest of the file.
        break;
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn compression_of(b: &[u8]) -> Option<&'static str> {
    Some(if b.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz"
    } else if b.starts_with(&[0x02, 0x21, 0x4c, 0x18]) || b.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        "lz4"
    } else if b.starts_with(b"BZh") {
        "bzip2"
    } else if b.starts_with(&[0x89, b'L', b'Z', b'O']) {
        "lzo"
    } else if b.starts_with(&[0x5d, 0, 0]) {
        "lzma"
    } else {
        return None;
    })
}

fn read_capped(reader: impl Read, out: &mut Vec<u8>, limit: Limit) -> io::Result<()> {
    bounded::decompressed(reader, Path::new("initramfs"), limit, out).map_err(|e| match e {
        bounded::ReadError::Io { source, .. } => source,
        e => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    })?;
    Ok(())
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses one newc (`070701`) or newc-with-checksum (`070702`) archive
/// starting at `start` in `buf` (alignment is relative to the start of
/// `buf`, as in the kernel's unpacker), pushing module names. Returns the
/// offset just past the `TRAILER!!!` entry.
fn parse_cpio(buf: &[u8], start: usize, names: &mut Vec<String>) -> Result<usize, String> {
    const HEADER: usize = 110;
    let mut pos = start;
    loop {
        let header = buf
            .get(pos..pos + HEADER)
            .ok_or_else(|| format!("header at byte {pos} is truncated"))?;
        if &header[..6] != b"070701" && &header[..6] != b"070702" {
            return Err(format!(
                "bad magic {:?} at byte {pos} (only newc archives are supported)",
                String::from_utf8_lossy(&header[..6])
            ));
        }
        let field = |i: usize| -> Result<usize, String> {
            let s = &header[6 + i * 8..6 + (i + 1) * 8];
            std::str::from_utf8(s)
                .ok()
                .and_then(|s| usize::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("bad hex field at byte {}", pos + 6 + i * 8))
        };
        let mode = field(1)?;
        let filesize = field(6)?;
        let namesize = field(11)?;
        let name_start = pos + HEADER;
        let name_bytes = buf
            .get(name_start..name_start + namesize)
            .ok_or_else(|| format!("name of the entry at byte {pos} is truncated"))?;
        let name = name_bytes.strip_suffix(&[0]).unwrap_or(name_bytes);
        let name = String::from_utf8_lossy(name);
        let data_start = align4(name_start + namesize);
        let next = align4(data_start + filesize);
        if data_start + filesize > buf.len() {
            return Err(format!("data of {name} (at byte {pos}) is truncated"));
        }
        if name == "TRAILER!!!" {
            return Ok(next.min(buf.len()));
        }
        let is_file = mode & 0o170000 == 0o100000;
        if is_file {
            if let Some(m) = module_name_from_path(Path::new(&*name)) {
                names.push(m);
            }
        }
        pos = next;
    }
}

#[cfg(test)]
mod tests {
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
}
