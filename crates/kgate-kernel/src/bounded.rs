//! Reading files kgate does not trust: one helper for every reader.
//!
//! kgate runs as root and reads module trees, depmod files, kernel configs,
//! `/proc` and `/sys` trees under `--root`, and CVE data that others
//! control. Every such read goes through this module, which
//!
//! * opens only regular files: the file is opened with `O_NONBLOCK` (so a
//!   FIFO cannot block the open), checked with `fstat` on the opened
//!   descriptor (so a swap after a check cannot pass a device or a FIFO), then
//!   `O_NONBLOCK` is cleared;
//! * resolves paths below a root inside that root (`openat2` with
//!   `RESOLVE_IN_ROOT`, as the kernel resolves them for a process chrooted
//!   there): a symlink `lib/modules/V/modules.dep -> /etc/shadow` in an image
//!   names the image's `/etc/shadow`, never the host's. Where `openat2` is
//!   missing (before Linux 5.6, or refused by a seccomp filter) the path is
//!   canonicalized, must stay below the root, and is opened with
//!   `O_NOFOLLOW`;
//! * caps every read at a [`Limit`] chosen per kind of file from the
//!   largest real input (the table in docs/ARCHITECTURE.md, "Input kgate
//!   does not trust"), checks the `fstat` size against it before allocating,
//!   and grows buffers by bounded steps with `try_reserve`, so that a file
//!   that lies about its size (`/proc`, a decompressor) stops at the cap and
//!   an allocation failure is an error, not an abort.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// How much of one kind of file kgate reads at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What the file is, for messages: `modules.dep`, `module file`.
    pub kind: &'static str,
    /// Largest size accepted, in bytes (after decompression for the
    /// decompressing readers).
    pub max: u64,
}

impl Limit {
    /// Module files on disk, compressed (`.ko.xz`, `.ko.zst`, `.ko.gz`).
    /// Largest real one: amdgpu.ko.xz of Debian's generic 6.12, 4.0 MB; 8x.
    pub const MODULE_COMPRESSED: Limit = Limit {
        kind: "compressed module file",
        max: 32 * MIB,
    };
    /// A module after decompression, and a plain `.ko` on disk. Largest
    /// real one: amdgpu.ko of Debian's generic 6.12, 29.3 MB decompressed;
    /// 8.7x. Only one reader at a time holds more than
    /// [`Limit::MODULE_PER_THREAD`] (see [`crate::ko::read_modules`]).
    pub const MODULE: Limit = Limit {
        kind: "module",
        max: 256 * MIB,
    };
    /// What every reader thread may hold of one decompressed module without
    /// the shared large-module slot: 2.2x the largest real module.
    pub const MODULE_PER_THREAD: Limit = Limit {
        kind: "module",
        max: 64 * MIB,
    };
    /// depmod's text files (`modules.dep`, `modules.alias`,
    /// `modules.softdep`, `modules.builtin`, `modules.builtin.modinfo`).
    /// Largest real one: modules.alias of Debian's generic 6.12 after
    /// depmod, 1.38 MB (modules.dep 631 KB, modules.builtin.modinfo 60 KB);
    /// 6x.
    pub const DEPMOD: Limit = Limit {
        kind: "depmod file",
        max: 8 * MIB,
    };
    /// A kernel config (`boot/config-V`, `/proc/config.gz` decompressed).
    /// Largest real one: Debian's generic 6.12, 283 KB; 7x.
    pub const KERNEL_CONFIG: Limit = Limit {
        kind: "kernel config",
        max: 2 * MIB,
    };
    /// One `/proc` or `/sys` value (sysctls, the LSM list, lockdown,
    /// `/proc/cmdline`, `/proc/modules`), a modprobe.d file, `/etc` files.
    /// The largest of these, `/proc/modules` of a host with 300 modules, is
    /// about 20 KB; 1 MiB is 50x, and nothing of this kind is read in
    /// parallel.
    pub const HOST_FILE: Limit = Limit {
        kind: "host file",
        max: MIB,
    };
    /// `/proc/self/mountinfo`: one line per mount, 4 MiB holds some 20,000
    /// mounts (container hosts).
    pub const MOUNTINFO: Limit = Limit {
        kind: "mount table",
        max: 4 * MIB,
    };
    /// `/proc/kallsyms`: 5.4 MB on the development VM's 6.18 kernel;
    /// 12x, for kernels with every driver built in.
    pub const KALLSYMS: Limit = Limit {
        kind: "/proc/kallsyms",
        max: 64 * MIB,
    };
    /// kgate's own caches (the fact cache, the object-evidence cache): the
    /// fact cache of Debian's generic 6.12 (4,230 modules) is 2.4 MB; 27x.
    pub const CACHE: Limit = Limit {
        kind: "cache file",
        max: 64 * MIB,
    };
    /// A CVE CSV after decompression. The kernel CNA's complete set
    /// (14,626 records) is 2.8 MB (1.0 MB as .csv.gz); 11x, since the set
    /// grows by some 5,000 records a year.
    pub const CVE_CSV: Limit = Limit {
        kind: "CVE CSV",
        max: 32 * MIB,
    };
    /// One CVE JSON 5 record. The largest of the CNA samples is 13 KB;
    /// records with long version lists are larger, hence the wide margin.
    pub const CVE_JSON: Limit = Limit {
        kind: "CVE JSON record",
        max: MIB,
    };
    /// kgate's CVE database (`cve-db.json`): 4.1 MB for the full CNA set;
    /// 15x.
    pub const CVE_DB: Limit = Limit {
        kind: "CVE database",
        max: 64 * MIB,
    };
    /// The CVE terms-of-use notice: 942 bytes.
    pub const TERMS: Limit = Limit {
        kind: "terms-of-use file",
        max: 64 * KIB,
    };
    /// A policy (TOML), a workload profile or a HAP profile (JSON). kgate's
    /// own presets are under 8 KB, a recorded profile under 64 KB.
    pub const POLICY: Limit = Limit {
        kind: "policy or profile",
        max: 16 * MIB,
    };
    /// An initramfs image on disk (`kgate-kernel::boot`): Debian's are
    /// 30-70 MB.
    pub const INITRAMFS: Limit = Limit {
        kind: "initramfs image",
        max: 512 * MIB,
    };
    /// An initramfs after decompression: 100-250 MB on Debian hosts; the
    /// read is single-threaded.
    pub const INITRAMFS_UNPACKED: Limit = Limit {
        kind: "unpacked initramfs",
        max: 1024 * MIB,
    };
}

/// Why a bounded read failed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file does not exist (inside the root).
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// Not a regular file: a device, FIFO, socket or directory.
    #[error("{}: not a regular file ({what}); kgate reads only regular files here", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// A symlink or `..` leads outside the root being read.
    #[error("{}: resolves outside {}; kgate does not follow it", path.display(), root.display())]
    Escapes {
        /// The file.
        path: PathBuf,
        /// The root.
        root: PathBuf,
    },
    /// Larger than the cap of its kind.
    #[error("{}: {kind} larger than the {} MiB kgate reads ({size} bytes); is it corrupt or hostile?", path.display(), max >> 20)]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its kind.
        kind: &'static str,
        /// Its size, as far as known.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// Decompressed or read content exceeds the cap.
    #[error("{}: {kind} exceeds {} MiB after decompression; a decompression bomb or corruption", path.display(), max >> 20)]
    Exceeds {
        /// The file.
        path: PathBuf,
        /// Its kind.
        kind: &'static str,
        /// The cap.
        max: u64,
    },
    /// Any other I/O error (permission denied, a read error, corrupt
    /// compressed data).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotFound { path }
            | ReadError::NotRegular { path, .. }
            | ReadError::Escapes { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::Exceeds { path, .. }
            | ReadError::Io { path, .. } => path,
        }
    }

    /// The file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::NotFound { .. })
    }

    /// The content went past the cap (size or decompressed size).
    pub fn is_over_limit(&self) -> bool {
        matches!(self, ReadError::TooLarge { .. } | ReadError::Exceeds { .. })
    }

    fn io(path: &Path, source: io::Error) -> ReadError {
        if source.kind() == io::ErrorKind::NotFound {
            ReadError::NotFound {
                path: path.to_owned(),
            }
        } else {
            ReadError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }
}

impl From<ReadError> for io::Error {
    /// An I/O error of the same kind (`NotFound` stays `NotFound`), for
    /// callers whose errors carry an [`io::Error`].
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Io { source, .. } => source,
            ReadError::NotFound { .. } => io::ErrorKind::NotFound.into(),
            e => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        }
    }
}

/// The error a bounded decompressor returns when its output passes the cap;
/// [`decompressed`] turns it into [`ReadError::Exceeds`].
#[derive(Debug)]
struct OverCap;

impl std::fmt::Display for OverCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("output over the cap")
    }
}

impl std::error::Error for OverCap {}

/// An [`io::Error`] saying the output passed `limit`, recognised by
/// [`decompressed`] (for readers that decompress by hand, like liblzma).
pub fn over_cap() -> io::Error {
    io::Error::new(io::ErrorKind::OutOfMemory, OverCap)
}

/// Whether `e` is [`over_cap`]'s error.
pub fn is_over_cap(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<OverCap>())
}

/// Opens `path` for reading, a regular file only.
///
/// `root` is the directory `path` lives under and must not leave: `/` on a
/// live host (ordinary resolution), `--root DIR` offline. A path not below
/// `root` is resolved as it is.
pub fn open(root: &Path, path: &Path) -> Result<File, ReadError> {
    let file = match path.strip_prefix(root) {
        Ok(rel) if root != Path::new("/") => open_in_root(root, rel, path)?,
        _ => open_plain(path, 0).map_err(|e| ReadError::io(path, e))?,
    };
    check_regular(&file, path)?;
    // Reads from a regular file never block; clear O_NONBLOCK anyway so the
    // descriptor behaves like any other.
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    unsafe {
        let fd = file.as_raw_fd();
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

fn open_plain(path: &Path, extra: libc::c_int) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | extra)
        .open(path)
}

fn check_regular(file: &File, path: &Path) -> Result<(), ReadError> {
    let ft = file
        .metadata()
        .map_err(|e| ReadError::io(path, e))?
        .file_type();
    let what = if ft.is_file() {
        return Ok(());
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(ReadError::NotRegular {
        path: path.to_owned(),
        what,
    })
}

/// `struct open_how` of openat2(2) (libc's is `#[non_exhaustive]`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn open_in_root(root: &Path, rel: &Path, path: &Path) -> Result<File, ReadError> {
    use std::os::unix::ffi::OsStrExt;
    let root_dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)
        .map_err(|e| ReadError::io(root, e))?;
    let rel_c = std::ffi::CString::new(rel.as_os_str().as_bytes())
        .map_err(|e| ReadError::io(path, io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid directory fd, a NUL-terminated path and
    // an open_how of the size passed; it returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root_dir.as_raw_fd(),
            rel_c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        // SAFETY: the kernel just returned this descriptor to us alone.
        return Ok(unsafe { File::from_raw_fd(fd as libc::c_int) });
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // No openat2 (before 5.6), or a seccomp filter refusing it.
        Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EINVAL) => {
            open_canonical_in_root(root, path)
        }
        Some(libc::EXDEV) => Err(ReadError::Escapes {
            path: path.to_owned(),
            root: root.to_owned(),
        }),
        _ => Err(ReadError::io(path, err)),
    }
}

/// The fallback without `openat2`: the canonical path must stay below the
/// canonical root; the last component is opened with `O_NOFOLLOW`, so a
/// symlink swapped in after the check is refused (ELOOP). A directory
/// swapped higher up between the two steps is not caught: that needs
/// `openat2`.
fn open_canonical_in_root(root: &Path, path: &Path) -> Result<File, ReadError> {
    let real_root = std::fs::canonicalize(root).map_err(|e| ReadError::io(root, e))?;
    let real = std::fs::canonicalize(path).map_err(|e| ReadError::io(path, e))?;
    if !real.starts_with(&real_root) {
        return Err(ReadError::Escapes {
            path: path.to_owned(),
            root: root.to_owned(),
        });
    }
    open_plain(&real, libc::O_NOFOLLOW).map_err(|e| ReadError::io(path, e))
}

/// Reads all of `path` (a regular file below `root`, see [`open`]) into
/// `buf` (cleared first; its capacity is reused), at most `limit.max`
/// bytes. The `fstat` size is checked before anything is allocated.
pub fn read_into(
    root: &Path,
    path: &Path,
    limit: Limit,
    buf: &mut Vec<u8>,
) -> Result<(), ReadError> {
    let file = open(root, path)?;
    read_file_into(file, path, limit, buf)
}

/// [`read_into`] on a file already opened with [`open`].
pub fn read_file_into(
    file: File,
    path: &Path,
    limit: Limit,
    buf: &mut Vec<u8>,
) -> Result<(), ReadError> {
    buf.clear();
    let size = file.metadata().map_err(|e| ReadError::io(path, e))?.len();
    if size > limit.max {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            kind: limit.kind,
            size,
            max: limit.max,
        });
    }
    // /proc and /sys report 0 (or 4096): the read stops at the cap anyway.
    read_capped(file, buf, limit.max, size).map_err(|e| {
        read_error(
            path,
            e,
            ReadError::TooLarge {
                path: path.to_owned(),
                kind: limit.kind,
                size: limit.max + 1,
                max: limit.max,
            },
        )
    })
}

/// Reads all of `path` (see [`read_into`]) into a new buffer.
pub fn read(root: &Path, path: &Path, limit: Limit) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_into(root, path, limit, &mut buf)?;
    Ok(buf)
}

/// Reads `path` as text (invalid UTF-8 replaced).
pub fn read_text(root: &Path, path: &Path, limit: Limit) -> Result<String, ReadError> {
    read(root, path, limit).map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Reads `path` as text; a gzip file (by its magic bytes) is decompressed,
/// both the file and its content capped at `limit`.
pub fn read_maybe_gz(root: &Path, path: &Path, limit: Limit) -> Result<Vec<u8>, ReadError> {
    let raw = read(root, path, limit)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    decompressed(
        flate2::bufread::MultiGzDecoder::new(&raw[..]),
        path,
        limit,
        &mut out,
    )?;
    Ok(out)
}

/// Reads everything `reader` (a decompressor) yields into `out` (cleared
/// first), at most `limit.max` bytes: one byte more is an
/// [`ReadError::Exceeds`], and the buffer never holds more than the cap plus
/// one step.
pub fn decompressed(
    reader: impl Read,
    path: &Path,
    limit: Limit,
    out: &mut Vec<u8>,
) -> Result<(), ReadError> {
    out.clear();
    read_capped(reader, out, limit.max, 0).map_err(|e| {
        read_error(
            path,
            e,
            ReadError::Exceeds {
                path: path.to_owned(),
                kind: limit.kind,
                max: limit.max,
            },
        )
    })
}

fn read_error(path: &Path, e: io::Error, over: ReadError) -> ReadError {
    if is_over_cap(&e) {
        over
    } else {
        ReadError::io(path, e)
    }
}

/// Grows `out` so that it has room for `want` more bytes, never past
/// `cap + 1` in total; [`over_cap`] when it is full at `cap + 1`, an
/// error (not an abort) when the allocation fails.
pub fn reserve_capped(out: &mut Vec<u8>, want: usize, cap: u64) -> io::Result<()> {
    let limit = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
    if out.len() >= limit {
        return Err(over_cap());
    }
    let target = out.len().saturating_add(want.max(1)).min(limit);
    if target > out.capacity() {
        out.try_reserve_exact(target - out.len())
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
    }
    Ok(())
}

/// The read loop: grows `out` by doubling (first to `hint`), never past
/// `cap + 1` bytes, and fails with [`over_cap`] when the reader has more.
fn read_capped(mut reader: impl Read, out: &mut Vec<u8>, cap: u64, hint: u64) -> io::Result<()> {
    let first = usize::try_from(hint.saturating_add(1))
        .unwrap_or(usize::MAX)
        .clamp(8192, 1 << 20);
    loop {
        if out.len() == out.capacity() {
            let step = out.len().max(first);
            reserve_capped(out, step, cap)?;
        }
        let len = out.len();
        // At most 1 MiB zeroed per read, however large a reused buffer is.
        let window = (out.capacity() - len).min(1 << 20);
        out.resize(len + window, 0);
        let n = loop {
            match reader.read(&mut out[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.truncate(len);
                    return Err(e);
                }
            }
        };
        out.truncate(len + n);
        if n == 0 {
            return Ok(());
        }
        if out.len() as u64 > cap {
            return Err(over_cap());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    const SMALL: Limit = Limit {
        kind: "test file",
        max: 100,
    };

    #[test]
    fn reads_regular_files_up_to_the_cap() {
        let d = TempDir::new("bounded");
        d.write("a", vec![b'x'; 100]);
        d.write("b", vec![b'x'; 101]);
        assert_eq!(
            read(d.path(), &d.path().join("a"), SMALL).unwrap().len(),
            100
        );
        let e = read(d.path(), &d.path().join("b"), SMALL).unwrap_err();
        assert!(e.is_over_limit(), "{e}");
        assert!(read(d.path(), &d.path().join("c"), SMALL)
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn refuses_devices_fifos_and_directories() {
        let d = TempDir::new("bounded-dev");
        std::os::unix::fs::symlink("/dev/zero", d.path().join("z")).unwrap();
        let e = read(Path::new("/"), &d.path().join("z"), SMALL).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular { .. }), "{e}");
        let e = read(Path::new("/"), d.path(), SMALL).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular { .. }), "{e}");
        let fifo = std::ffi::CString::new(d.path().join("f").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = read(d.path(), &d.path().join("f"), SMALL).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular { .. }), "{e}");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = TempDir::new("bounded-root");
        let outside = TempDir::new("bounded-outside");
        outside.write("secret", "host");
        d.write("etc/secret", "image");
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("/etc/secret", d.path().join("img")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", d.path().join("up")).unwrap();
        // An absolute target names the root's file, not the host's.
        assert!(read(d.path(), &d.path().join("abs"), SMALL)
            .unwrap_err()
            .is_not_found());
        assert_eq!(
            read(d.path(), &d.path().join("img"), SMALL).unwrap(),
            b"image"
        );
        assert!(read(d.path(), &d.path().join("up"), SMALL).is_err());
        // The fallback without openat2 refuses the escape too.
        let e = open_canonical_in_root(d.path(), &d.path().join("abs")).unwrap_err();
        assert!(matches!(e, ReadError::Escapes { .. }), "{e}");
    }

    #[test]
    fn decompression_stops_at_the_cap_without_overshoot() {
        let mut out = Vec::new();
        let zeros = std::io::repeat(0).take(10_000);
        let e = decompressed(zeros, Path::new("z"), SMALL, &mut out).unwrap_err();
        assert!(matches!(e, ReadError::Exceeds { .. }), "{e}");
        assert!(out.capacity() <= 8192, "{}", out.capacity());
        let big = Limit {
            kind: "t",
            max: 3 << 20,
        };
        let e = decompressed(std::io::repeat(0), Path::new("z"), big, &mut out).unwrap_err();
        assert!(e.is_over_limit());
        assert!(out.capacity() as u64 <= big.max + 1, "{}", out.capacity());
        decompressed(&[1u8; 100][..], Path::new("z"), SMALL, &mut out).unwrap();
        assert_eq!(out.len(), 100);
    }
}
