//! The state manifest (`ROOT/var/lib/kgate/state.json`): what kgate wrote
//! and the live values it replaced, read by apply and revert.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ApplyError;
use crate::{read_text, STATE_FILE};

/// One file in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the root.
    pub path: String,
    /// SHA-256 (hex) of the content kgate wrote.
    pub sha256: String,
    /// While an apply is pending ([`ManifestState::Pending`]): SHA-256 of
    /// the content at this path when that apply began (always kgate's:
    /// kgate never writes over a file it did not write); absent when the
    /// path was free. The file holds one or the other until the apply is
    /// complete, and [`revert`](fn@crate::revert) accepts both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sha256: Option<String>,
    /// A file was already at this path when kgate first wrote it (always a
    /// kgate file whose manifest was lost: kgate refuses to replace any
    /// other file, so revert never has anything foreign to restore).
    pub replaced_existing: bool,
}

/// One live sysctl value kgate replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSysctl {
    /// Dotted name.
    pub name: String,
    /// Value before kgate first set it.
    pub previous: String,
}

/// Whether the manifest is a write-ahead journal of an apply in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestState {
    /// Everything it lists is in place (manifests without the field).
    #[default]
    Complete,
    /// Written before the first change of an apply: lists every file and
    /// sysctl the apply may change, with what was there before. A kill
    /// leaves it; the next apply completes it, the next revert undoes it.
    Pending,
}

/// `ROOT/var/lib/kgate/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// `pending` while an apply is under way.
    #[serde(default)]
    pub state: ManifestState,
    /// kgate version that wrote it.
    pub kgate_version: String,
    /// Backend (`modprobe`).
    pub backend: String,
    /// Policy path.
    pub policy_path: String,
    /// Policy SHA-256.
    pub policy_sha256: String,
    /// Kernel release.
    pub kernel_release: String,
    /// Files kgate wrote.
    pub files: Vec<ManifestFile>,
    /// Live sysctl values kgate replaced (root `/` only).
    pub sysctls: Vec<ManifestSysctl>,
}

pub(crate) fn read_manifest(root: &Path) -> Result<Option<Manifest>, ApplyError> {
    let Some(text) = read_text(root, STATE_FILE)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ApplyError::Manifest {
            path: root.join(STATE_FILE),
            reason: e.to_string(),
        })
}

/// The backend recorded in `root`'s state manifest (`modprobe` or
/// `bpf-lsm`), `None` when kgate applied nothing there.
pub fn manifest_backend(root: &Path) -> Result<Option<String>, ApplyError> {
    Ok(read_manifest(root)?.map(|m| m.backend))
}

pub(crate) fn manifest_text(m: &Manifest) -> String {
    serde_json::to_string_pretty(m).expect("the manifest serializes") + "\n"
}
