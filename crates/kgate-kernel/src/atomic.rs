//! Symlink-safe, atomic file operations below a root directory: the one
//! writer of every file kgate writes (settings under /etc, the state
//! manifest, the CVE database, caches, `-o`/`--save-trace` outputs).
//!
//! Every path is walked from `root` one component at a time with
//! `openat(O_DIRECTORY | O_NOFOLLOW)`, so no symlink below `root` is ever
//! followed (`root` itself may be one: the caller chose it). Files are
//! replaced by writing a temporary file in the same directory
//! (`O_CREAT | O_EXCL | O_NOFOLLOW`, a random name), `fsync`ing it,
//! `renameat`ing it over the target and `fsync`ing the directory: a reader
//! sees the old or the new content, never a mix, and the new content
//! survives a crash once [`write()`] or [`NewFile::commit`] returns. A
//! symlink at the target is refused, not replaced.
//!
//! Temporary files are named `.NAME.kgate-tmp.PID.RANDOM`. Those of a
//! process that no longer runs (a kgate killed mid-write) are removed by
//! the next write of the same file; a name already taken (planted, or
//! another writer's) is never opened, another is drawn.

use std::ffi::{CString, OsStr};
use std::io;
use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Why a file operation below the root failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AtomicError {
    /// A path component or the target is a symlink.
    #[error("{path} is a symlink; kgate does not follow symlinks when writing files: remove it and re-run")]
    Symlink {
        /// The symlink.
        path: PathBuf,
    },
    /// A path component exists but is not a directory.
    #[error("{path} exists but is not a directory; kgate needs a directory there: move it away and re-run")]
    NotADirectory {
        /// The component.
        path: PathBuf,
    },
    /// The target exists but is not a regular file.
    #[error("{path} exists but is not a regular file; kgate only replaces regular files: remove it and re-run")]
    NotRegular {
        /// The target.
        path: PathBuf,
    },
    /// A relative path that is not a plain `a/b/c` path.
    #[error("{path}: not a plain relative path (internal error)")]
    BadPath {
        /// The path.
        path: PathBuf,
    },
    /// Any other system call failure.
    #[error("{path}: cannot {op}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What was being done (`open`, `write`, `rename`...).
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
}

impl AtomicError {
    /// The path this error is about.
    pub fn path(&self) -> &Path {
        match self {
            AtomicError::Symlink { path }
            | AtomicError::NotADirectory { path }
            | AtomicError::NotRegular { path }
            | AtomicError::BadPath { path }
            | AtomicError::Io { path, .. } => path,
        }
    }
}

fn cstr(s: &OsStr, full: &Path) -> Result<CString, AtomicError> {
    CString::new(s.as_bytes()).map_err(|_| AtomicError::BadPath {
        path: full.to_owned(),
    })
}

fn io_err<'p>(path: &'p Path, op: &'static str) -> impl FnOnce(io::Error) -> AtomicError + 'p {
    move |source| AtomicError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`; `None` when it does not exist.
pub fn lstat_at(dir: RawFd, name: &CString) -> io::Result<Option<libc::stat>> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is a valid NUL-terminated string, `st` points to
    // writable memory of the right size, and `dir` is an open directory fd
    // owned by the caller for the duration of the call.
    let rc = unsafe {
        libc::fstatat(
            dir,
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        // SAFETY: fstatat returned 0, so it initialised `st`.
        Ok(Some(unsafe { st.assume_init() }))
    } else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOENT) {
            Ok(None)
        } else {
            Err(e)
        }
    }
}

fn is_kind(st: &libc::stat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

fn open_root(root: &Path) -> Result<OwnedFd, AtomicError> {
    let c = cstr(root.as_os_str(), root)?;
    // SAFETY: `c` is a valid NUL-terminated path; open returns a new fd or -1.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io_err(root, "open the root directory")(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `root/rel` without following any symlink below
/// `root`. With `create`, missing components are created with mode 0755.
/// `Ok(None)` when a component is missing and `create` is false.
pub fn open_dir(root: &Path, rel: &Path, create: bool) -> Result<Option<OwnedFd>, AtomicError> {
    let mut fd = open_root(root)?;
    let mut here = root.to_path_buf();
    for comp in rel.components() {
        let Component::Normal(name) = comp else {
            return Err(AtomicError::BadPath {
                path: root.join(rel),
            });
        };
        here.push(name);
        let c = cstr(name, &here)?;
        let mut created = false;
        loop {
            // SAFETY: `fd` is an open directory, `c` a valid NUL-terminated
            // name; openat returns a new fd or -1.
            let next = unsafe {
                libc::openat(
                    fd.as_raw_fd(),
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if next >= 0 {
                // SAFETY: `next` was just returned by openat and is ours.
                fd = unsafe { OwnedFd::from_raw_fd(next) };
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOENT) if create && !created => {
                    // SAFETY: `fd` is an open directory, `c` a valid name.
                    let rc = unsafe { libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), 0o755) };
                    if rc != 0 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EEXIST) {
                            return Err(io_err(&here, "create the directory")(e));
                        }
                    }
                    created = true;
                }
                Some(libc::ENOENT) => return Ok(None),
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                    let st = lstat_at(fd.as_raw_fd(), &c).map_err(io_err(&here, "stat"))?;
                    return Err(match st {
                        Some(st) if is_kind(&st, libc::S_IFLNK) => {
                            AtomicError::Symlink { path: here }
                        }
                        _ => AtomicError::NotADirectory { path: here },
                    });
                }
                _ => return Err(io_err(&here, "open the directory")(e)),
            }
        }
    }
    Ok(Some(fd))
}

fn split(rel: &Path) -> Result<(&Path, &OsStr), AtomicError> {
    match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(AtomicError::BadPath {
            path: rel.to_owned(),
        }),
    }
}

/// Checks that `root/rel` can be written: no symlink along the existing
/// part of the path, every existing component a directory, the target absent
/// or a regular file. Creates nothing.
pub fn check_writable(root: &Path, rel: &Path) -> Result<(), AtomicError> {
    let (parent, name) = split(rel)?;
    let Some(dir) = open_dir(root, parent, false)? else {
        return Ok(());
    };
    let full = root.join(rel);
    let c = cstr(name, &full)?;
    match lstat_at(dir.as_raw_fd(), &c).map_err(io_err(&full, "stat"))? {
        None => Ok(()),
        Some(st) if is_kind(&st, libc::S_IFLNK) => Err(AtomicError::Symlink { path: full }),
        Some(st) if !is_kind(&st, libc::S_IFREG) => Err(AtomicError::NotRegular { path: full }),
        Some(_) => Ok(()),
    }
}

/// Reads `root/rel` without following symlinks. `Ok(None)` when it (or a
/// parent directory) does not exist.
pub fn read(root: &Path, rel: &Path) -> Result<Option<Vec<u8>>, AtomicError> {
    use std::io::Read;
    let (parent, name) = split(rel)?;
    let Some(dir) = open_dir(root, parent, false)? else {
        return Ok(None);
    };
    let full = root.join(rel);
    let c = cstr(name, &full)?;
    // SAFETY: `dir` is an open directory, `c` a valid name; openat returns a
    // new fd or -1.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            Some(libc::ELOOP) => Err(AtomicError::Symlink { path: full }),
            _ => Err(io_err(&full, "open")(e)),
        };
    }
    // SAFETY: `fd` was just returned by openat and is ours.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let meta = file.metadata().map_err(io_err(&full, "stat"))?;
    if !meta.is_file() {
        return Err(AtomicError::NotRegular { path: full });
    }
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(io_err(&full, "read"))?;
    Ok(Some(buf))
}

fn fsync(fd: RawFd, path: &Path, op: &'static str) -> Result<(), AtomicError> {
    // SAFETY: `fd` is an open fd owned by the caller.
    if unsafe { libc::fsync(fd) } != 0 {
        return Err(io_err(path, op)(io::Error::last_os_error()));
    }
    Ok(())
}

/// Atomically replaces (or creates) `root/rel` with `content`, mode 0644.
/// Missing parent directories are created (0755); a symlink anywhere below
/// `root`, including the target itself, is refused.
pub fn write(root: &Path, rel: &Path, content: &[u8]) -> Result<(), AtomicError> {
    let mut f = create(root, rel, 0o644)?;
    f.write_all(content).map_err(io_err(&f.tmp_path, "write"))?;
    f.commit()
}

/// A file being written by [`create`]: a temporary file next to the
/// target, which [`NewFile::commit`] renames over it. Dropped without a
/// commit, the temporary file is removed and the target left as it was.
#[derive(Debug)]
pub struct NewFile {
    dir: OwnedFd,
    parent_path: PathBuf,
    file: Option<std::fs::File>,
    tmp: CString,
    tmp_path: PathBuf,
    target: CString,
    full: PathBuf,
}

/// Starts replacing (or creating) `root/rel` with a file of `mode`: checks
/// the path as [`write()`] does, then opens a new temporary file next to the
/// target. Write to the [`NewFile`], then [`NewFile::commit`].
pub fn create(root: &Path, rel: &Path, mode: u32) -> Result<NewFile, AtomicError> {
    let (parent, name) = split(rel)?;
    let full = root.join(rel);
    let parent_path = root.join(parent);
    let dir = open_dir(root, parent, true)?.ok_or_else(|| AtomicError::Io {
        path: parent_path.clone(),
        op: "create the directory",
        source: io::Error::from(io::ErrorKind::NotFound),
    })?;
    let target = cstr(name, &full)?;
    match lstat_at(dir.as_raw_fd(), &target).map_err(io_err(&full, "stat"))? {
        Some(st) if is_kind(&st, libc::S_IFLNK) => return Err(AtomicError::Symlink { path: full }),
        Some(st) if !is_kind(&st, libc::S_IFREG) => {
            return Err(AtomicError::NotRegular { path: full })
        }
        _ => {}
    }
    // Best effort: a leftover that cannot be removed does not stop the write.
    let _ = stale_temps(&dir, &parent_path, name, false);
    let prefix = format!(".{}.kgate-tmp.", name.to_string_lossy());
    let mut attempt = 0;
    let (fd, tmp, tmp_path) = loop {
        let tmp_name = format!("{prefix}{}.{:016x}", std::process::id(), random());
        let tmp_path = parent_path.join(&tmp_name);
        let tmp = cstr(OsStr::new(&tmp_name), &tmp_path)?;
        // SAFETY: `dir` is an open directory, `tmp` a valid name; openat
        // returns a new fd or -1.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                tmp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd >= 0 {
            break (fd, tmp, tmp_path);
        }
        let e = io::Error::last_os_error();
        attempt += 1;
        // Taken (planted, or another writer's): draw another name.
        if e.raw_os_error() != Some(libc::EEXIST) || attempt == 8 {
            return Err(io_err(&tmp_path, "create a temporary file")(e));
        }
    };
    // SAFETY: `fd` was just returned by openat and is ours.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let new = NewFile {
        dir,
        parent_path,
        file: Some(file),
        tmp,
        tmp_path,
        target,
        full,
    };
    // The umask may have removed bits.
    // SAFETY: the file holds an open fd.
    if unsafe { libc::fchmod(new.fd(), mode as libc::mode_t) } != 0 {
        return Err(io_err(&new.tmp_path, "chmod")(io::Error::last_os_error()));
    }
    Ok(new)
}

impl NewFile {
    fn fd(&self) -> RawFd {
        self.file.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// The target's path, for messages.
    pub fn path(&self) -> &Path {
        &self.full
    }

    /// `fsync` the new content, rename it over the target, `fsync` the
    /// directory. On error the temporary file is removed.
    pub fn commit(mut self) -> Result<(), AtomicError> {
        fsync(self.fd(), &self.tmp_path, "fsync")?;
        // SAFETY: both names are valid NUL-terminated strings relative to
        // the same open directory fd.
        let rc = unsafe {
            libc::renameat(
                self.dir.as_raw_fd(),
                self.tmp.as_ptr(),
                self.dir.as_raw_fd(),
                self.target.as_ptr(),
            )
        };
        if rc != 0 {
            return Err(io_err(&self.full, "rename the temporary file over")(
                io::Error::last_os_error(),
            ));
        }
        // Renamed: nothing left for Drop to remove.
        self.file = None;
        fsync(
            self.dir.as_raw_fd(),
            &self.parent_path,
            "fsync the directory",
        )
    }
}

impl io::Write for NewFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // SAFETY: `dir` is an open directory, `tmp` a valid name.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.tmp.as_ptr(), 0) };
        }
    }
}

/// 64 random bits for a temporary name (`getrandom(2)`; the clock when it
/// fails: `O_EXCL` makes a guessed name harmless, only a retry).
fn random() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: `b` is writable memory of the length given.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    if n == 8 {
        return u64::from_ne_bytes(b);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The PID in `entry` when it is a temporary file name of [`create`] for
/// `name`: exactly `.NAME.kgate-tmp.PID.HEX`.
fn temp_pid(entry: &[u8], name: &[u8]) -> Option<u32> {
    let rest = entry
        .strip_prefix(b".")?
        .strip_prefix(name)?
        .strip_prefix(b".kgate-tmp.")?;
    let (pid, hex) = rest.split_at(rest.iter().position(|&b| b == b'.')?);
    let hex = &hex[1..];
    let digits = !pid.is_empty() && pid.iter().all(u8::is_ascii_digit);
    let hex_ok = !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit);
    if !(digits && hex_ok) {
        return None;
    }
    std::str::from_utf8(pid).ok()?.parse().ok()
}

/// Does process `pid` run (in this pid namespace)? `kill(pid, 0)`: no
/// signal is sent; EPERM means it runs under another user.
fn running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// The names in the open directory `dir` (`.` and `..` left out).
fn list(dir: &OwnedFd, path: &Path) -> Result<Vec<CString>, AtomicError> {
    // SAFETY: dup of an fd we hold open; returns a new fd or -1.
    let fd = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io_err(path, "list")(io::Error::last_os_error()));
    }
    // SAFETY: `fd` is an open directory fd that we own; on success the DIR
    // stream owns it (closedir closes it), on failure we close it.
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `fd` is still ours to close.
        unsafe { libc::close(fd) };
        return Err(io_err(path, "list")(e));
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
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    }
    // SAFETY: `stream` is valid and closed exactly once.
    unsafe { libc::closedir(stream) };
    Ok(names)
}

/// Temporary files of `name` in `dir` whose writer no longer runs (a kgate
/// killed between writing and renaming); removed unless `dry_run`.
/// Returns their paths. A directory is never touched, `unlinkat` removes a
/// symlink itself (never its target), and the temporary file of a running
/// process (another kgate writing the same file now) is left alone.
fn stale_temps(
    dir: &OwnedFd,
    dir_path: &Path,
    name: &OsStr,
    dry_run: bool,
) -> Result<Vec<PathBuf>, AtomicError> {
    let mut found = Vec::new();
    for entry in list(dir, dir_path)? {
        let Some(pid) = temp_pid(entry.to_bytes(), name.as_bytes()) else {
            continue;
        };
        if running(pid) {
            continue;
        }
        let path = dir_path.join(OsStr::from_bytes(entry.to_bytes()));
        match lstat_at(dir.as_raw_fd(), &entry) {
            Ok(Some(st)) if !is_kind(&st, libc::S_IFDIR) => {}
            _ => continue,
        }
        if !dry_run {
            // SAFETY: `dir` is an open directory, `entry` a valid name.
            if unsafe { libc::unlinkat(dir.as_raw_fd(), entry.as_ptr(), 0) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ENOENT) {
                    return Err(io_err(&path, "remove the leftover temporary file")(e));
                }
            }
        }
        found.push(path);
    }
    Ok(found)
}

/// The temporary files a killed writer left next to `root/rel` (see
/// `stale_temps`); removed unless `dry_run`. Returns their paths; none
/// when the directory does not exist. [`create`] does this for the file it
/// writes; `kgate apply` and `kgate revert` call it for all their files.
pub fn clean_stale(root: &Path, rel: &Path, dry_run: bool) -> Result<Vec<PathBuf>, AtomicError> {
    let (parent, name) = split(rel)?;
    match open_dir(root, parent, false)? {
        Some(dir) => stale_temps(&dir, &root.join(parent), name, dry_run),
        None => Ok(Vec::new()),
    }
}

/// Removes the regular file `root/rel` (never a symlink or directory).
/// `Ok(false)` when it did not exist.
pub fn remove(root: &Path, rel: &Path) -> Result<bool, AtomicError> {
    let (parent, name) = split(rel)?;
    let full = root.join(rel);
    let Some(dir) = open_dir(root, parent, false)? else {
        return Ok(false);
    };
    let c = cstr(name, &full)?;
    match lstat_at(dir.as_raw_fd(), &c).map_err(io_err(&full, "stat"))? {
        None => return Ok(false),
        Some(st) if is_kind(&st, libc::S_IFLNK) => return Err(AtomicError::Symlink { path: full }),
        Some(st) if !is_kind(&st, libc::S_IFREG) => {
            return Err(AtomicError::NotRegular { path: full })
        }
        Some(_) => {}
    }
    // SAFETY: `dir` is an open directory, `c` a valid name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } != 0 {
        return Err(io_err(&full, "remove")(io::Error::last_os_error()));
    }
    fsync(dir.as_raw_fd(), &root.join(parent), "fsync the directory")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn write_read_replace_remove() {
        let t = TempDir::new("atomic");
        let rel = Path::new("etc/modprobe.d/x.conf");
        assert_eq!(read(t.path(), rel).unwrap(), None);
        write(t.path(), rel, b"one\n").unwrap();
        assert_eq!(read(t.path(), rel).unwrap().unwrap(), b"one\n");
        let mode = std::fs::metadata(t.path().join(rel))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        let dmode = std::fs::metadata(t.path().join("etc/modprobe.d"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o755);
        write(t.path(), rel, b"two\n").unwrap();
        assert_eq!(std::fs::read(t.path().join(rel)).unwrap(), b"two\n");
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(t.path().join("etc/modprobe.d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.conf")]);
        assert!(remove(t.path(), rel).unwrap());
        assert!(!remove(t.path(), rel).unwrap());
    }

    #[test]
    fn symlinks_refused() {
        let t = TempDir::new("atomic");
        std::fs::create_dir_all(t.path().join("real")).unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        symlink(t.path().join("real"), t.path().join("etc/modprobe.d")).unwrap();
        let rel = Path::new("etc/modprobe.d/x.conf");
        let e = write(t.path(), rel, b"x").unwrap_err();
        assert!(matches!(e, AtomicError::Symlink { .. }), "{e}");
        assert!(check_writable(t.path(), rel).is_err());
        assert!(read(t.path(), rel).is_err());
        assert!(std::fs::read_dir(t.path().join("real"))
            .unwrap()
            .next()
            .is_none());

        std::fs::create_dir_all(t.path().join("etc/sysctl.d")).unwrap();
        symlink("/etc/passwd", t.path().join("etc/sysctl.d/y.conf")).unwrap();
        let rel = Path::new("etc/sysctl.d/y.conf");
        for e in [
            write(t.path(), rel, b"x").unwrap_err(),
            check_writable(t.path(), rel).unwrap_err(),
            read(t.path(), rel).unwrap_err(),
            remove(t.path(), rel).unwrap_err(),
        ] {
            assert!(matches!(e, AtomicError::Symlink { .. }), "{e}");
            assert!(e.to_string().contains("is a symlink"));
        }
    }

    #[test]
    fn only_kgate_temp_names_match() {
        for (yes, pid) in [
            (".kgate.conf.kgate-tmp.1.0", 1),
            (".kgate.conf.kgate-tmp.4242.17", 4242),
            (".kgate.conf.kgate-tmp.4242.00c0ffee12345678", 4242),
        ] {
            assert_eq!(temp_pid(yes.as_bytes(), b"kgate.conf"), Some(pid), "{yes}");
        }
        for no in [
            "kgate.conf",
            ".kgate.conf.kgate-tmp.",
            ".kgate.conf.kgate-tmp.1",
            ".kgate.conf.kgate-tmp.1.",
            ".kgate.conf.kgate-tmp.1.x",
            ".kgate.conf.kgate-tmp.1.2.3",
            ".other.conf.kgate-tmp.1.0",
            ".kgate.conf.kgate-tmp.-1.0",
            ".kgate.conf.kgate-tmp.99999999999.0",
        ] {
            assert_eq!(temp_pid(no.as_bytes(), b"kgate.conf"), None, "{no}");
        }
    }

    /// Issue 19, item 3: a symlink planted at a temporary name is never
    /// opened; one left by a dead process is removed (the link, not its
    /// target); an uncommitted file leaves nothing behind.
    #[test]
    fn planted_and_stale_temp_files() {
        let t = TempDir::new("atomic-tmp");
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::create_dir_all(t.path().join("d")).unwrap();
        let dead = t.path().join("d/.f.kgate-tmp.999999999.0000000000000000");
        symlink(&victim, &dead).unwrap();
        let live = t
            .path()
            .join(format!("d/.f.kgate-tmp.{}.0", std::process::id()));
        symlink(&victim, &live).unwrap();
        write(t.path(), Path::new("d/f"), b"new").unwrap();
        assert_eq!(std::fs::read(t.path().join("d/f")).unwrap(), b"new");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(dead.symlink_metadata().is_err(), "stale temp file kept");
        assert!(
            live.symlink_metadata().is_ok(),
            "a live writer's name removed"
        );

        let mut f = create(t.path(), Path::new("d/g"), 0o600).unwrap();
        f.write_all(b"x").unwrap();
        drop(f);
        let mut names: Vec<_> = std::fs::read_dir(t.path().join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        let f = create(t.path(), Path::new("d/g"), 0o600).unwrap();
        f.commit().unwrap();
        let mode = std::fs::metadata(t.path().join("d/g"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
