//! One kgate changing a root at a time.
//!
//! `kgate apply` and `kgate revert` (either backend) hold an exclusive
//! `flock` on kgate's state directory (`ROOT/var/lib/kgate`) from before
//! they read the current state until they exit. Two at once would each plan
//! from the state the other is replacing, and the write-ahead manifest of
//! one would describe files the other wrote. The lock is on the directory
//! itself, so there is no lock file to leave behind, and the kernel drops
//! it when the holder dies (a kill -9 never leaves the root locked). A
//! second kgate fails at once with [`ApplyError::Busy`], changing nothing.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::{atomic, ApplyError, STATE_FILE};

/// The held lock; released on drop (or when the process ends).
#[derive(Debug)]
pub struct StateLock {
    _dir: OwnedFd,
}

/// Take the state lock of `root`. The state directory is created when
/// `create` (a real apply); otherwise (a dry run, a revert) a root without
/// one gives `Ok(None)`: kgate never wrote there, and nothing is created.
pub fn lock(root: &Path, create: bool) -> Result<Option<StateLock>, ApplyError> {
    let rel = Path::new(STATE_FILE)
        .parent()
        .expect("STATE_FILE has a directory");
    let Some(dir) = atomic::open_dir(root, rel, create)? else {
        return Ok(None);
    };
    // SAFETY: `dir` is an open fd; flock does not touch memory.
    if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(ApplyError::Busy {
                root: root.to_owned(),
                dir: root.join(rel),
            });
        }
        return Err(ApplyError::File(atomic::AtomicError::Io {
            path: root.join(rel),
            op: "lock",
            source: e,
        }));
    }
    Ok(Some(StateLock { _dir: dir }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TempDir;

    #[test]
    fn one_holder_at_a_time() {
        let t = TempDir::new("lock");
        assert!(
            lock(t.path(), false).unwrap().is_none(),
            "created without create"
        );
        assert!(!t.exists("var/lib/kgate"));
        let held = lock(t.path(), true).unwrap().unwrap();
        assert!(t.exists("var/lib/kgate"));
        // flock locks belong to the open file description: a second open
        // conflicts even in the same process.
        for create in [true, false] {
            let e = lock(t.path(), create).unwrap_err();
            assert!(matches!(e, ApplyError::Busy { .. }), "{e}");
            assert!(e.to_string().contains("nothing was changed"), "{e}");
        }
        drop(held);
        assert!(lock(t.path(), true).unwrap().is_some());
    }
}
