//! The last policy kgate put in force on a root, kept for the next boot.
//!
//! Every successful `kgate apply` (not a dry run) records the policy as it
//! was enforced, canonical TOML after `--mode`, with where it came from.
//! `kgate boot` (kgate.service) enforces `/etc/kgate/policy.toml` in the
//! mode last applied; when that file is missing, unreadable or invalid, or
//! fails to apply, it enforces this copy instead, so that a broken edit
//! never leaves a host unprotected after a reboot. `kgate revert` removes
//! both files: nothing of kgate's is left.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic::{self, AtomicError};

/// The policy last applied, relative to the root.
pub const LAST_GOOD: &str = "var/lib/kgate/last-good.toml";
/// What [`LAST_GOOD`] is, relative to the root.
pub const LAST_GOOD_META: &str = "var/lib/kgate/last-good.json";

/// Where the last applied policy came from and how it was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastGood {
    /// Always `kgate.last-good/1`.
    pub schema: String,
    /// The policy file given to `kgate apply`.
    pub source: String,
    /// `--mode` of that apply (`enforce`, `audit`), or `None`: the
    /// file's own modes.
    pub mode: Option<String>,
    /// The backend that enforced it (`bpf-lsm`, `modprobe`).
    pub backend: String,
    /// kgate-policy's hash of the policy as enforced. (When: the file's
    /// modification time. The record holds nothing else, so that applying
    /// the same policy twice writes the same bytes.)
    pub hash: String,
}

/// The schema of [`LAST_GOOD_META`].
pub const SCHEMA: &str = "kgate.last-good/1";

/// Record `toml` (the policy as enforced) and `meta` below `root`, each
/// atomically: the policy first, so that the metadata never describes a
/// policy that is not there.
pub fn save(root: &Path, toml: &str, meta: &LastGood) -> Result<(), AtomicError> {
    atomic::write(root, Path::new(LAST_GOOD), toml.as_bytes())?;
    let json = serde_json::to_vec_pretty(meta).expect("LastGood serializes");
    atomic::write(root, Path::new(LAST_GOOD_META), &json)
}

/// The recorded policy and its metadata, if both are there and readable.
/// A damaged record is treated as none (and reported by the caller's own
/// checks when it parses the policy).
pub fn load(root: &Path) -> Option<(String, LastGood)> {
    let toml = atomic::read(root, Path::new(LAST_GOOD)).ok()??;
    let meta = atomic::read(root, Path::new(LAST_GOOD_META)).ok()??;
    let meta: LastGood = serde_json::from_slice(&meta).ok()?;
    (meta.schema == SCHEMA).then_some(())?;
    Some((String::from_utf8(toml).ok()?, meta))
}

/// Remove the record. `Ok(true)` when something was removed.
pub fn remove(root: &Path) -> Result<bool, AtomicError> {
    let a = atomic::remove(root, Path::new(LAST_GOOD))?;
    let b = atomic::remove(root, Path::new(LAST_GOOD_META))?;
    Ok(a || b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> LastGood {
        LastGood {
            schema: SCHEMA.into(),
            source: "/etc/kgate/policy.toml".into(),
            mode: Some("audit".into()),
            backend: "bpf-lsm".into(),
            hash: "ab".into(),
        }
    }

    #[test]
    fn save_load_remove() {
        let dir = tempfile_dir("lg");
        assert!(load(&dir).is_none());
        save(&dir, "version = 1\n", &meta()).unwrap();
        let (toml, m) = load(&dir).unwrap();
        assert_eq!(toml, "version = 1\n");
        assert_eq!(m, meta());
        assert!(remove(&dir).unwrap());
        assert!(load(&dir).is_none());
        assert!(!remove(&dir).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_record_is_none() {
        let dir = tempfile_dir("lg-bad");
        save(&dir, "version = 1\n", &meta()).unwrap();
        std::fs::write(dir.join(LAST_GOOD_META), "{not json").unwrap();
        assert!(load(&dir).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlinked_record_is_not_followed() {
        let dir = tempfile_dir("lg-link");
        std::fs::create_dir_all(dir.join("var/lib/kgate")).unwrap();
        std::fs::write(dir.join("elsewhere"), "x").unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join(LAST_GOOD)).unwrap();
        let r = save(&dir, "version = 1\n", &meta());
        assert!(r.is_err(), "a symlink at the record is refused: {r:?}");
        assert_eq!(std::fs::read_to_string(dir.join("elsewhere")).unwrap(), "x");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("kgate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
