//! The per-module fact cache: decompressing 4,000 modules takes seconds,
//! reading their facts back takes milliseconds.
//!
//! One file per modules directory under `$XDG_CACHE_HOME/kgate` (or
//! `~/.cache/kgate`; for root always `/var/cache/kgate`), keyed by the
//! module's path relative to that directory, its size and its mtime. Any
//! mismatch re-reads the module. A cache that is missing, unreadable, from
//! another kgate version or corrupt is treated as empty: the cache can make
//! a survey faster, never wrong.
//!
//! The cache decides module names, aliases and dependencies, so it must be
//! the caller's own: a cache directory or file not owned by the effective
//! uid, or writable by group or others, or a symlink, is ignored (a miss,
//! with one warning) and never written. Root ignores `$XDG_CACHE_HOME` and
//! `$HOME`, which `sudo -E` and `su` leave pointing at the user's.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Once;

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

/// The entries of a fact cache file `bytes` of `modules_dir` (by path below
/// it: file stamp and facts); `None` (the cache is ignored) when it is not
/// a cache of this version for this directory.
pub fn parse_cache(
    bytes: &[u8],
    modules_dir: &str,
) -> Option<HashMap<String, (FileStamp, KoFacts)>> {
    bincode::deserialize::<CacheFile>(bytes)
        .ok()
        .filter(|c| c.version == CACHE_VERSION && c.modules_dir == modules_dir)
        .map(|c| c.entries)
}

/// Cached facts of the modules of one modules directory.
#[derive(Debug)]
pub struct FactCache {
    path: PathBuf,
    modules_dir: String,
    entries: HashMap<String, (FileStamp, KoFacts)>,
    dirty: bool,
    /// The directory or file is not ours: never read nor written.
    untrusted: bool,
}

/// Root's cache directory, whatever the environment says.
pub const ROOT_CACHE_DIR: &str = "/var/cache/kgate";

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The default cache directory: for root (euid 0) [`ROOT_CACHE_DIR`];
/// otherwise `$XDG_CACHE_HOME/kgate`, else `$HOME/.cache/kgate`.
pub fn default_cache_dir() -> Option<PathBuf> {
    default_cache_dir_for(euid())
}

fn default_cache_dir_for(euid: u32) -> Option<PathBuf> {
    if euid == 0 {
        return Some(PathBuf::from(ROOT_CACHE_DIR));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("kgate"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache/kgate"))
}

/// The pure decision: may a process with effective uid `euid` trust a
/// cache entry (`is_dir`: the directory) with this owner and mode, and
/// `is_symlink`? `Err` says why not.
pub fn judge_owner(euid: u32, uid: u32, mode: u32, is_symlink: bool) -> Result<(), String> {
    if is_symlink {
        return Err("it is a symbolic link".into());
    }
    if uid != euid {
        return Err(format!(
            "it is owned by uid {uid}, not by uid {euid} running kgate"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "its mode {:04o} lets group or other users write it",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// Is `path` (directory or file) ours to trust? `Ok(false)` when missing.
pub fn check_owned(path: &Path) -> Result<bool, String> {
    match fs::symlink_metadata(path) {
        Ok(m) => judge_owner(euid(), m.uid(), m.mode(), m.file_type().is_symlink())
            .map(|()| true)
            .map_err(|why| format!("{}: {why}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

static WARNED: Once = Once::new();

fn warn_untrusted(why: &str) {
    WARNED.call_once(|| {
        eprintln!(
            "kgate: warning: ignoring the module fact cache, which another user could have \
             written ({why}); module facts are read from the module files instead"
        );
    });
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
        let trusted = check_owned(cache_dir).and_then(|dir| Ok(dir && check_owned(&path)?));
        let entries = match trusted {
            Ok(true) => read_no_follow(&path)
                .and_then(|bytes| parse_cache(&bytes, &modules_dir))
                .unwrap_or_default(),
            Ok(false) => HashMap::new(),
            Err(why) => {
                warn_untrusted(&why);
                return FactCache {
                    path,
                    modules_dir,
                    entries: HashMap::new(),
                    dirty: false,
                    untrusted: true,
                };
            }
        };
        FactCache {
            path,
            modules_dir,
            entries,
            dirty: false,
            untrusted: false,
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

    /// Write the cache if it changed, with [`crate::atomic`]: a temporary
    /// file in the same directory renamed over the old one, so a reader
    /// never sees a partial file, and no symlink is followed.
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.dirty || self.untrusted {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // Never write into a directory another user controls.
        check_owned(dir).map_err(std::io::Error::other)?;
        let file = CacheFile {
            version: CACHE_VERSION,
            modules_dir: self.modules_dir.clone(),
            entries: std::mem::take(&mut self.entries),
        };
        let bytes = bincode::serialize(&file).map_err(std::io::Error::other);
        self.entries = file.entries;
        let bytes = bytes?;
        let name = self.path.file_name().unwrap_or_default();
        let result = (|| {
            let mut f = crate::atomic::create(dir, Path::new(name), 0o600)
                .map_err(std::io::Error::other)?;
            f.write_all(&bytes)?;
            f.commit().map_err(std::io::Error::other)
        })();
        self.dirty = false;
        result
    }
}

/// Read `path` without following a symlink planted in its place.
fn read_no_follow(path: &Path) -> Option<Vec<u8>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    // The file checked may have been swapped since: check what was opened.
    let m = f.metadata().ok()?;
    if !m.is_file() {
        return None;
    }
    judge_owner(euid(), m.uid(), m.mode(), false).ok()?;
    let mut bytes = Vec::new();
    crate::bounded::read_file_into(f, path, crate::bounded::Limit::CACHE, &mut bytes).ok()?;
    Some(bytes)
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
    fn root_ignores_xdg_cache_home_and_home() {
        assert_eq!(
            default_cache_dir_for(0),
            Some(PathBuf::from(ROOT_CACHE_DIR))
        );
    }

    #[test]
    fn judge_owner_trusts_only_own_unshared_entries() {
        assert_eq!(judge_owner(0, 0, 0o40700, false), Ok(()));
        assert_eq!(judge_owner(1000, 1000, 0o100644, false), Ok(()));
        assert_eq!(judge_owner(1000, 1000, 0o40755, false), Ok(()));
        for (euid, uid, mode, link, why) in [
            (0, 65534, 0o700, false, "uid 65534"),
            (0, 1000, 0o600, false, "not by uid 0"),
            (1000, 0, 0o644, false, "uid 0"),
            (0, 0, 0o777, false, "0777"),
            (0, 0, 0o620, false, "0620"),
            (0, 0, 0o1777, false, "1777"),
            (0, 0, 0o700, true, "symbolic link"),
        ] {
            let e = judge_owner(euid, uid, mode, link).unwrap_err();
            assert!(e.contains(why), "{euid} {uid} {mode:o}: {e}");
        }
    }

    /// A cache directory others may write is neither read nor written.
    #[test]
    fn shared_cache_dir_is_a_miss_and_not_written() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new("cache-shared");
        let dir = tmp.path().join("kgate");
        let stamp = FileStamp {
            size: 1,
            mtime_ns: 1,
        };
        let mut cache = FactCache::open(&dir, Path::new("/nonexistent/modules"));
        cache.insert("kernel/a.ko".into(), stamp, KoFacts::default());
        cache.save().unwrap();
        let file_mode = fs::metadata(cache.path()).unwrap().mode() & 0o777;
        assert_eq!(file_mode, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert!(FactCache::open(&dir, Path::new("/nonexistent/modules"))
            .get("kernel/a.ko", stamp)
            .is_some());

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let before = fs::read(cache.path()).unwrap();
        let mut planted = FactCache::open(&dir, Path::new("/nonexistent/modules"));
        assert!(planted.get("kernel/a.ko", stamp).is_none());
        planted.insert("kernel/b.ko".into(), stamp, KoFacts::default());
        planted.save().unwrap();
        assert_eq!(fs::read(cache.path()).unwrap(), before);

        // A group-writable file in a private directory is ignored too.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(cache.path(), fs::Permissions::from_mode(0o664)).unwrap();
        assert!(FactCache::open(&dir, Path::new("/nonexistent/modules"))
            .get("kernel/a.ko", stamp)
            .is_none());

        // A symlink in place of the file is not followed.
        fs::remove_file(cache.path()).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", cache.path()).unwrap();
        assert!(FactCache::open(&dir, Path::new("/nonexistent/modules"))
            .get("kernel/a.ko", stamp)
            .is_none());
    }

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
