//! Removing a file only if it is the one whose content was checked.
//!
//! Revert removes a file only when its SHA-256 is what kgate wrote. Checking
//! by path and then unlinking by path lets anyone who can write the
//! directory (an image under `--root` owned by a user, a directory left
//! group-writable) swap another file in between, and kgate would remove a
//! file it never checked. Here the directory is opened once without
//! following symlinks ([`atomic::open_dir`]); the file is opened relative to
//! it with `O_NOFOLLOW` and hashed through that fd; right before
//! `unlinkat` in the same directory fd, the name must still be that inode
//! (device and inode number). Linux has no "unlink if this inode", so a
//! swap in the last instant is still possible: it is detected afterwards
//! (the checked file still has a link) and reported, and a directory that
//! others can write is named in the report.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::atomic::{self, AtomicError};

/// kgate's files are far smaller (modprobe.d for a kernel with 6,000
/// modules is about 200 KiB); a bigger file is not one kgate wrote.
const MAX_SIZE: u64 = 16 << 20;

/// What happened to the file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It does not exist.
    Gone,
    /// Its content was not accepted: left in place.
    Modified,
    /// Another file took its name between the check and the removal: left
    /// in place.
    Swapped,
    /// Removed (with `dry_run`: would be).
    Removed,
    /// Removed, but the name pointed to another file at the last instant:
    /// the removed file was not the checked one.
    RemovedOther,
}

/// The outcome, and a note when the directory is writable by someone other
/// than the user running kgate.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) outcome: Outcome,
    pub(crate) dir_note: Option<String>,
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open; `st` is writable memory of the right size.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so it initialised `st`.
    Ok(unsafe { st.assume_init() })
}

/// Removes `root/rel` if `accept` accepts its content, checked through the
/// fd of the very file that is unlinked. `hook` runs between the check and
/// the removal (tests swap the file there).
pub(crate) fn remove_if(
    root: &Path,
    rel: &Path,
    accept: &dyn Fn(&[u8]) -> bool,
    dry_run: bool,
    hook: &dyn Fn(),
) -> Result<Checked, AtomicError> {
    let full = root.join(rel);
    let io_err = |op: &'static str| {
        let path = full.clone();
        move |source| AtomicError::Io { path, op, source }
    };
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(AtomicError::BadPath { path: full });
    };
    let parent_path = root.join(parent);
    let mut checked = Checked {
        outcome: Outcome::Gone,
        dir_note: None,
    };
    let Some(dir) = atomic::open_dir(root, parent, false)? else {
        return Ok(checked);
    };
    let dst = fstat(dir.as_raw_fd()).map_err(io_err("stat the directory"))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if dst.st_uid != me || dst.st_mode & 0o022 != 0 {
        checked.dir_note = Some(format!(
            "{} is writable by others than the user running kgate (owner uid {}, mode {:o}): \
             they could swap kgate's files between its check and its removal; kgate removes \
             only a file it checked, but make the directory root's alone (chown root, chmod go-w)",
            parent_path.display(),
            dst.st_uid,
            dst.st_mode & 0o7777
        ));
    }
    let cname =
        CString::new(name.as_bytes()).map_err(|_| AtomicError::BadPath { path: full.clone() })?;
    // SAFETY: `dir` is an open directory, `cname` a valid name; openat
    // returns a new fd or -1.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(checked),
            Some(libc::ELOOP) => Err(AtomicError::Symlink { path: full }),
            _ => Err(io_err("open")(e)),
        };
    }
    // SAFETY: `fd` was just returned by openat and is ours.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let st = fstat(file.as_raw_fd()).map_err(io_err("stat"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(AtomicError::NotRegular { path: full });
    }
    let mut bytes = Vec::new();
    (&file)
        .take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read"))?;
    if bytes.len() as u64 > MAX_SIZE || !accept(&bytes) {
        checked.outcome = Outcome::Modified;
        return Ok(checked);
    }
    checked.outcome = Outcome::Removed;
    if dry_run {
        return Ok(checked);
    }
    hook();
    match atomic::lstat_at(dir.as_raw_fd(), &cname).map_err(io_err("stat"))? {
        Some(now) if now.st_dev == st.st_dev && now.st_ino == st.st_ino => {}
        _ => {
            checked.outcome = Outcome::Swapped;
            return Ok(checked);
        }
    }
    // SAFETY: `dir` is an open directory, `cname` a valid name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), 0) } != 0 {
        return Err(io_err("remove")(io::Error::last_os_error()));
    }
    // The checked file has no name left unless another one was unlinked.
    if fstat(file.as_raw_fd()).map_err(io_err("stat"))?.st_nlink != 0 {
        checked.outcome = Outcome::RemovedOther;
    }
    // SAFETY: `dir` is an open directory fd.
    if unsafe { libc::fsync(dir.as_raw_fd()) } != 0 {
        return Err(AtomicError::Io {
            path: parent_path,
            op: "fsync the directory",
            source: io::Error::last_os_error(),
        });
    }
    Ok(checked)
}
