//! What a host needs to boot: the modules behind its mounted filesystems,
//! its block devices and network interfaces, and the modules its initramfs
//! carries.
//!
//! A policy that blocks one of these can leave a host unbootable (the
//! initramfs carries `/etc/modprobe.d`), so the apply backends refuse to
//! block them. Everything here is a pure read below a `root` directory, so
//! tests run against fake `/proc` and `/sys` trees. This file reads mounts
//! and devices; the initramfs reader is the `initramfs` submodule.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bounded::{self, Limit};
use crate::canonical_name;
use crate::tree::KernelTree;

mod initramfs;

pub use initramfs::{initramfs_modules, parse_initramfs};

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

#[cfg(test)]
mod tests;
