//! Temporary files a killed kgate left behind.
//!
//! [`atomic::write`](crate::atomic::write) writes `DIR/.NAME.kgate-tmp.PID.HEX`
//! and renames it over `DIR/NAME`; a kill between the two leaves the
//! temporary file. It is never read (nothing else looks for these names),
//! but it must not pile up, so every apply and revert removes the ones next
//! to the files it manages. Only regular files whose name is exactly that
//! pattern for one of kgate's own file names are touched.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::atomic::{self, AtomicError};

/// `true` when `entry` is a temporary file of `atomic::write` for `name`:
/// `.NAME.kgate-tmp.PID.HEX` (kgate_kernel::atomic's naming).
fn is_temp_of(entry: &[u8], name: &[u8]) -> bool {
    let Some(rest) = entry
        .strip_prefix(b".")
        .and_then(|r| r.strip_prefix(name))
        .and_then(|r| r.strip_prefix(b".kgate-tmp."))
    else {
        return false;
    };
    let mut parts = rest.split(|&b| b == b'.');
    let all =
        |p: Option<&[u8]>, f: fn(&u8) -> bool| p.is_some_and(|p| !p.is_empty() && p.iter().all(f));
    // PID, then the writer's random suffix (hex).
    all(parts.next(), u8::is_ascii_digit)
        && all(parts.next(), u8::is_ascii_hexdigit)
        && parts.next().is_none()
}

/// The names in the directory `dir` (`.` and `..` left out).
fn list(dir: &OwnedFd, path: &Path) -> Result<Vec<CString>, AtomicError> {
    let io_err = |op, source| AtomicError::Io {
        path: path.to_owned(),
        op,
        source,
    };
    // SAFETY: dup of an fd we hold open; returns a new fd or -1.
    let fd = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io_err("list", io::Error::last_os_error()));
    }
    // SAFETY: `fd` is an open directory fd that we own; on success the DIR
    // stream owns it (closedir closes it), on failure we close it.
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `fd` is still ours to close.
        unsafe { libc::close(fd) };
        return Err(io_err("list", e));
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: `stream` is a valid DIR stream until closedir below.
        let ent = unsafe { libc::readdir(stream) };
        if ent.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid dirent whose d_name is a
        // NUL-terminated string, valid until the next readdir call; it is
        // copied at once.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    }
    // SAFETY: `stream` is valid and closed exactly once.
    unsafe { libc::closedir(stream) };
    Ok(names)
}

/// The leftover temporary files of kgate's files `rels` below `root`;
/// removes them unless `dry_run`. Returns their paths.
pub(crate) fn clean(
    root: &Path,
    rels: &[&str],
    dry_run: bool,
) -> Result<Vec<PathBuf>, AtomicError> {
    let mut found = Vec::new();
    for rel in rels {
        let rel = Path::new(rel);
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            continue;
        };
        let Some(dir) = atomic::open_dir(root, parent, false)? else {
            continue;
        };
        let dir_path = root.join(parent);
        for entry in list(&dir, &dir_path)? {
            if !is_temp_of(entry.to_bytes(), name.as_bytes()) {
                continue;
            }
            let path = dir_path.join(OsStr::from_bytes(entry.to_bytes()));
            match atomic::lstat_at(dir.as_raw_fd(), &entry) {
                Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {}
                _ => continue,
            }
            if !dry_run {
                // SAFETY: `dir` is an open directory, `entry` a valid name.
                if unsafe { libc::unlinkat(dir.as_raw_fd(), entry.as_ptr(), 0) } != 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::ENOENT) {
                        return Err(AtomicError::Io {
                            path,
                            op: "remove the leftover temporary file",
                            source: e,
                        });
                    }
                }
            }
            found.push(path);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TempDir;

    #[test]
    fn only_kgate_temp_names_match() {
        for yes in [
            ".kgate.conf.kgate-tmp.1.0",
            ".kgate.conf.kgate-tmp.4242.17",
            ".kgate.conf.kgate-tmp.4242.00c0ffee12345678",
        ] {
            assert!(is_temp_of(yes.as_bytes(), b"kgate.conf"), "{yes}");
        }
        for no in [
            "kgate.conf",
            ".kgate.conf.kgate-tmp.",
            ".kgate.conf.kgate-tmp.1",
            ".kgate.conf.kgate-tmp.1.x",
            ".kgate.conf.kgate-tmp.1.2.3",
            ".other.conf.kgate-tmp.1.0",
            ".kgate.conf.kgate-tmp.-1.0",
        ] {
            assert!(!is_temp_of(no.as_bytes(), b"kgate.conf"), "{no}");
        }
    }

    #[test]
    fn removes_leftovers_only() {
        let t = TempDir::new("leftover");
        t.write("etc/modprobe.d/.kgate.conf.kgate-tmp.7.0", "cut");
        t.write("etc/modprobe.d/.other.conf.kgate-tmp.7.0", "not ours");
        t.write("etc/modprobe.d/kgate.conf", "# Generated by kgate\n");
        std::fs::create_dir(t.path().join("etc/modprobe.d/.kgate.conf.kgate-tmp.8.0")).unwrap();
        let rels = ["etc/modprobe.d/kgate.conf", "var/lib/kgate/state.json"];
        let dry = clean(t.path(), &rels, true).unwrap();
        assert_eq!(
            dry,
            [t.path().join("etc/modprobe.d/.kgate.conf.kgate-tmp.7.0")]
        );
        assert!(t.exists("etc/modprobe.d/.kgate.conf.kgate-tmp.7.0"));
        assert_eq!(clean(t.path(), &rels, false).unwrap(), dry);
        assert!(!t.exists("etc/modprobe.d/.kgate.conf.kgate-tmp.7.0"));
        assert!(t.exists("etc/modprobe.d/.other.conf.kgate-tmp.7.0"));
        assert!(t.exists("etc/modprobe.d/.kgate.conf.kgate-tmp.8.0"));
        assert!(t.exists("etc/modprobe.d/kgate.conf"));
    }
}
