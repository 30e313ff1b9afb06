//! The pin directory (`/sys/fs/bpf/kgate`) must be root's alone: whoever
//! can write to it can remove `link_*` pins (which detaches enforcement)
//! or plant a symlink that makes every apply fail. bpffs is mounted 01777
//! by default, so any user could create it before kgate does. kgate
//! creates it 0700 and refuses an existing one that is not a real
//! directory owned by root without group or other permissions.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use crate::BpfError;

/// What is at the pin directory's path, as `lstat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    Symlink,
    Other,
}

/// The pure decision: may kgate use an existing pin directory of this
/// kind, owner and mode? `Err` says why not.
pub(crate) fn judge(kind: Kind, uid: u32, mode: u32) -> Result<(), String> {
    match kind {
        Kind::Symlink => return Err("it is a symbolic link".into()),
        Kind::Other => return Err("it is not a directory".into()),
        Kind::Dir => {}
    }
    if uid != 0 {
        return Err(format!("it is owned by uid {uid}, not root"));
    }
    if mode & 0o077 != 0 {
        return Err(format!(
            "its mode is {:04o}: group or other users have access",
            mode & 0o7777
        ));
    }
    Ok(())
}

fn unsafe_dir(pin_dir: &Path, why: String) -> BpfError {
    BpfError::UnsafePinDir {
        path: pin_dir.to_owned(),
        why,
        parent: pin_dir.parent().unwrap_or(Path::new("/")).to_owned(),
    }
}

/// Check an existing pin directory; `Ok(false)` when there is none.
pub(crate) fn check(pin_dir: &Path) -> Result<bool, BpfError> {
    let meta = match std::fs::symlink_metadata(pin_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(BpfError::Io {
                what: "cannot lstat the pin directory",
                path: pin_dir.to_owned(),
                source,
            })
        }
    };
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_dir() {
        Kind::Dir
    } else {
        Kind::Other
    };
    judge(kind, meta.uid(), meta.mode()).map_err(|why| unsafe_dir(pin_dir, why))?;
    Ok(true)
}

/// Create the pin directory 0700 (never through a symlink: `mkdir` does
/// not follow one), then check what was created.
pub(crate) fn create(pin_dir: &Path) -> Result<(), BpfError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(pin_dir)
        .map_err(|source| BpfError::Io {
            what: "cannot create the pin directory",
            path: pin_dir.to_owned(),
            source,
        })?;
    // The umask can only remove bits; a racing user could only have made
    // mkdir fail. Check anyway: the directory must be exactly root's.
    if !check(pin_dir)? {
        return Err(unsafe_dir(pin_dir, "it vanished after mkdir".into()));
    }
    Ok(())
}

/// The mode of the bpffs mount root at `path` (`/sys/fs/bpf`), if any.
pub fn bpffs_mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path).ok().map(|m| m.mode() & 0o7777)
}

/// What to do about a bpffs root of this mode, `None` when it is 0700.
pub fn bpffs_recommendation(path: &Path, mode: u32) -> Option<String> {
    if mode & 0o7777 == 0o700 {
        return None;
    }
    let risk = if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        "any user can create and delete entries there, kgate's pins included"
    } else if mode & 0o022 != 0 {
        "other users can create entries there (e.g. a fake kgate pin directory before kgate runs)"
    } else {
        "other users can look up what is pinned there"
    };
    let p = path.display();
    Some(format!(
        "bpffs {p} is mode {:04o}: {risk}. Make it root's alone: `mount -o remount,mode=0700 {p}`; \
         to keep it across boots add `bpf {p} bpf mode=0700 0 0` to /etc/fstab, or under systemd a \
         drop-in /etc/systemd/system/sys-fs-bpf.mount.d/kgate.conf with `[Mount]` `Options=mode=0700`",
        mode & 0o7777
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_accepts_only_root_0700_directories() {
        assert_eq!(judge(Kind::Dir, 0, 0o40700), Ok(()));
        assert_eq!(judge(Kind::Dir, 0, 0o700), Ok(()));
        for (kind, uid, mode, why) in [
            (Kind::Symlink, 0, 0o777, "symbolic link"),
            (Kind::Other, 0, 0o600, "not a directory"),
            (Kind::Dir, 65534, 0o700, "uid 65534"),
            (Kind::Dir, 1000, 0o755, "uid 1000"),
            (Kind::Dir, 0, 0o755, "0755"),
            (Kind::Dir, 0, 0o710, "0710"),
            (Kind::Dir, 0, 0o701, "0701"),
            (Kind::Dir, 0, 0o1777, "1777"),
        ] {
            let e = judge(kind, uid, mode).unwrap_err();
            assert!(e.contains(why), "{kind:?} {uid} {mode:o}: {e}");
        }
    }

    #[test]
    fn recommendation_only_when_not_0700() {
        let p = Path::new("/sys/fs/bpf");
        assert_eq!(bpffs_recommendation(p, 0o700), None);
        let r = bpffs_recommendation(p, 0o1777).unwrap();
        assert!(r.contains("1777") && r.contains("mount -o remount,mode=0700 /sys/fs/bpf"));
        assert!(r.contains("/etc/fstab") && r.contains("Options=mode=0700"));
        assert!(bpffs_recommendation(p, 0o777)
            .unwrap()
            .contains("create and delete"));
        assert!(bpffs_recommendation(p, 0o755).unwrap().contains("look up"));
    }

    /// On a real directory tree (tmpfs or the build's file system).
    #[test]
    fn check_and_create_on_a_directory() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("kgate-pindir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir(&base).unwrap();
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;

        let dir = base.join("kgate");
        assert!(!check(&dir).unwrap());
        let made = create(&dir);
        let mode = std::fs::symlink_metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        if root {
            made.unwrap();
            assert!(check(&dir).unwrap());
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let e = check(&dir).unwrap_err().to_string();
            assert!(e.contains("0755") && e.contains("rm -r"), "{e}");
        } else {
            assert!(made.unwrap_err().to_string().contains("not root"));
        }

        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(check(&link)
            .unwrap_err()
            .to_string()
            .contains("symbolic link"));
        let file = base.join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(check(&file)
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
        // mkdir does not follow a planted symlink.
        assert!(create(&link).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
