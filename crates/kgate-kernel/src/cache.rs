//! The per-module fact cache: decompressing 4,000 modules takes seconds,
//! reading their facts back takes milliseconds.
//!
//! One file per modules directory under `$XDG_CACHE_HOME/kgate` (or
//! `~/.cache/kgate`), keyed by the module's path relative to that directory,
//! its size and its mtime. Any mismatch re-reads the module. A cache that is
//! missing, unreadable, from another kgate version or corrupt is treated as
//! empty: the cache can make a survey faster, never wrong.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ko::KoFacts;

/// Bumped whenever [`KoFacts`] or its computation changes.
const CACHE_VERSION: u32 = 1;

/// Identity of a module file as the cache sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// File size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl FileStamp {
    /// Stamp of a file from its metadata.
    pub fn of(meta: &fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    modules_dir: String,
    entries: HashMap<String, (FileStamp, KoFacts)>,
}

/// Cached facts of the modules of one modules directory.
#[derive(Debug)]
pub struct FactCache {
    path: PathBuf,
    modules_dir: String,
    entries: HashMap<String, (FileStamp, KoFacts)>,
    dirty: bool,
}

/// The default cache directory: `$XDG_CACHE_HOME/kgate`, else
/// `$HOME/.cache/kgate`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("kgate"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache/kgate"))
}

impl FactCache {
    /// Open the cache of `modules_dir` inside `cache_dir`. Never fails: an
    /// unusable cache file is ignored and replaced on [`FactCache::save`].
    pub fn open(cache_dir: &Path, modules_dir: &Path) -> FactCache {
        let modules_dir = fs::canonicalize(modules_dir)
            .unwrap_or_else(|_| modules_dir.to_owned())
            .to_string_lossy()
            .into_owned();
        let path = cache_dir.join(format!("facts-{:016x}.bin", fnv1a(modules_dir.as_bytes())));
        let entries = fs::read(&path)
            .ok()
            .and_then(|bytes| bincode::deserialize::<CacheFile>(&bytes).ok())
            .filter(|c| c.version == CACHE_VERSION && c.modules_dir == modules_dir)
            .map(|c| c.entries)
            .unwrap_or_default();
        FactCache {
            path,
            modules_dir,
            entries,
            dirty: false,
        }
    }

    /// Where the cache lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Facts for `rel_path` if cached with the same stamp.
    pub fn get(&self, rel_path: &str, stamp: FileStamp) -> Option<&KoFacts> {
        self.entries
            .get(rel_path)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, facts)| facts)
    }

    /// Record fresh facts.
    pub fn insert(&mut self, rel_path: String, stamp: FileStamp, facts: KoFacts) {
        self.entries.insert(rel_path, (stamp, facts));
        self.dirty = true;
    }

    /// Forget entries whose files no longer exist.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|k, _| keep(k));
        self.dirty |= self.entries.len() != before;
    }

    /// Write the cache if it changed: to a temporary file in the same
    /// directory, then renamed over the old one, so a reader never sees a
    /// partial file.
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let file = CacheFile {
            version: CACHE_VERSION,
            modules_dir: self.modules_dir.clone(),
            entries: std::mem::take(&mut self.entries),
        };
        let bytes = bincode::serialize(&file).map_err(std::io::Error::other);
        self.entries = file.entries;
        let bytes = bytes?;
        let tmp = dir.join(format!(".facts.{}.tmp", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        self.dirty = false;
        result
    }
}

/// FNV-1a: a stable, dependency-free hash for naming cache files.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn round_trip_and_stamp_mismatch() {
        let tmp = TempDir::new("cache");
        let dir = tmp.path();
        let stamp = FileStamp {
            size: 10,
            mtime_ns: 5,
        };
        let facts = KoFacts {
            text_bytes: 42,
            functions: 3,
            ..KoFacts::default()
        };
        let mut cache = FactCache::open(dir, Path::new("/nonexistent/modules"));
        cache.insert("kernel/a.ko".into(), stamp, facts.clone());
        cache.save().unwrap();

        let cache = FactCache::open(dir, Path::new("/nonexistent/modules"));
        assert_eq!(cache.get("kernel/a.ko", stamp), Some(&facts));
        assert_eq!(
            cache.get("kernel/a.ko", FileStamp { size: 11, ..stamp }),
            None
        );
        // Another modules directory gets its own file.
        let other = FactCache::open(dir, Path::new("/nonexistent/other"));
        assert_eq!(other.get("kernel/a.ko", stamp), None);

        // A corrupt cache file is ignored, not an error.
        fs::write(cache.path(), b"not bincode").unwrap();
        let cache = FactCache::open(dir, Path::new("/nonexistent/modules"));
        assert_eq!(cache.get("kernel/a.ko", stamp), None);
    }
}
