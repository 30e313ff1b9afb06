//! What `kgate boot` (kgate.service) did this boot, for `kgate status`:
//! `ROOT/run/kgate/boot.json`, on tmpfs, so one record per boot.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic::{self, AtomicError};

/// The record, relative to the root.
pub const BOOT_RECORD: &str = "run/kgate/boot.json";

/// The schema of [`BOOT_RECORD`].
pub const SCHEMA: &str = "kgate.boot/1";

/// `run/kgate/boot.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// `enforced`, `last-good` (the policy file failed; the last good one
    /// is in force), `off` (kgate=off), `nothing` (no policy), `failed`
    /// (nothing could be put in force).
    pub state: String,
    /// The policy in force, if any.
    pub policy: Option<String>,
    /// Why the policy file is not the one in force, or why nothing is.
    pub reason: Option<String>,
}

impl BootRecord {
    /// A record of `state`.
    pub fn new(state: &str, policy: Option<&Path>, reason: Option<&str>) -> BootRecord {
        BootRecord {
            schema: SCHEMA.into(),
            state: state.into(),
            policy: policy.map(|p| p.display().to_string()),
            reason: reason.map(str::to_owned),
        }
    }
}

/// Write the record below `root`, atomically.
pub fn write(root: &Path, record: &BootRecord) -> Result<(), AtomicError> {
    let json = serde_json::to_vec_pretty(record).expect("BootRecord serializes");
    atomic::write(root, Path::new(BOOT_RECORD), &json)
}

/// This boot's record below `root`, if `kgate boot` ran and it is intact.
pub fn read(root: &Path) -> Option<BootRecord> {
    let bytes = atomic::read(root, Path::new(BOOT_RECORD)).ok()??;
    let r: BootRecord = serde_json::from_slice(&bytes).ok()?;
    (r.schema == SCHEMA).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let d = std::env::temp_dir().join(format!("kgate-boot-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert!(read(&d).is_none());
        let r = BootRecord::new("last-good", Some(Path::new("/x")), Some("why"));
        write(&d, &r).unwrap();
        assert_eq!(read(&d), Some(r));
        std::fs::write(d.join(BOOT_RECORD), "{}").unwrap();
        assert!(read(&d).is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
