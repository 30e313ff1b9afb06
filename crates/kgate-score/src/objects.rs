//! Object evidence: the kernel source files a module binary names.
//!
//! Modules keep the `__FILE__` strings of their `WARN()`/`BUG()` sites,
//! dynamic-debug descriptors and similar in their read-only data
//! (`net/sctp/sm_statefuns.c` inside `sctp.ko`). Such a string proves that
//! the file was compiled into that module. The list is incomplete (a file
//! without any such site leaves no trace), so absence proves nothing.
//!
//! Reading every module again costs one decompression per file; the result
//! is cached next to kgate-kernel's fact cache, keyed by path, size and
//! modification time, so it can make kgate faster but never wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kgate_kernel::bounded::{self, Limit};
use kgate_kernel::tree::KernelTree;
use serde::{Deserialize, Serialize};

/// Top-level directories of the kernel source tree; a path found in a
/// binary is kept only when it starts with one of them (after stripping
/// any build-directory prefix).
pub const SOURCE_TOP_DIRS: &[&str] = &[
    "arch", "block", "certs", "crypto", "drivers", "fs", "init", "io_uring", "ipc", "kernel",
    "lib", "mm", "net", "rust", "samples", "security", "sound", "virt",
];

/// Source files (`.c`, normalized, sorted) named by each module binary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectIndex {
    /// Module name → the `.c` files its binary names.
    pub modules: BTreeMap<String, BTreeSet<String>>,
    /// Files read now (cache misses).
    #[serde(skip)]
    pub read: usize,
    /// Files served from the cache.
    #[serde(skip)]
    pub cached: usize,
}

/// The object-evidence cache file (`score-objects-*.json`), as
/// [`parse_cache`] reads it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CacheFile {
    version: u32,
    entries: BTreeMap<String, CacheEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    size: u64,
    mtime_ns: i128,
    files: BTreeSet<String>,
}

const CACHE_VERSION: u32 = 1;

/// A module to scan: name, path below the modules directory, file stamp.
type Work<'a> = (&'a str, &'a str, Option<(u64, i128)>);

fn stamp(path: &Path) -> Option<(u64, i128)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.size(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    ))
}

/// The object-evidence cache in `bytes`; `None` (the cache is ignored) when
/// it is not valid JSON of this cache version.
pub fn parse_cache(bytes: &[u8]) -> Option<CacheFile> {
    serde_json::from_slice::<CacheFile>(bytes)
        .ok()
        .filter(|c| c.version == CACHE_VERSION)
}

fn cache_path(cache_dir: &Path, modules_dir: &Path) -> PathBuf {
    // FNV-1a of the modules directory: one cache file per kernel tree.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in modules_dir.to_string_lossy().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    cache_dir.join(format!("score-objects-{h:016x}.json"))
}

impl ObjectIndex {
    /// Scan every loadable module of `tree` (in parallel), reusing and
    /// refreshing the cache in `cache_dir` when given. `progress(done,
    /// total)` is called as files are read. Unreadable modules simply
    /// contribute no evidence (the survey reports them).
    pub fn scan(
        tree: &KernelTree,
        cache_dir: Option<&Path>,
        progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    ) -> ObjectIndex {
        // Only a cache that is ours (kgate_kernel::cache::check_owned): a
        // file another user can write would decide the attribution.
        let cache_file = cache_dir
            .filter(|d| kgate_kernel::cache::check_owned(d).is_ok())
            .map(|d| cache_path(d, &tree.modules_dir))
            .filter(|p| kgate_kernel::cache::check_owned(p).is_ok());
        let old: CacheFile = cache_file
            .as_ref()
            .and_then(|p| bounded::read(Path::new("/"), p, Limit::CACHE).ok())
            .and_then(|b| parse_cache(&b))
            .unwrap_or_default();
        let work: Vec<Work<'_>> = tree
            .modules
            .iter()
            .filter_map(|m| {
                let rel = m.path.as_deref()?;
                Some((m.name.as_str(), rel, stamp(&tree.modules_dir.join(rel))))
            })
            .collect();
        let misses: Vec<usize> = work
            .iter()
            .enumerate()
            .filter(|(_, (_, rel, st))| {
                !matches!((old.entries.get(*rel), st), (Some(e), Some(s)) if (e.size, e.mtime_ns) == *s)
            })
            .map(|(i, _)| i)
            .collect();
        let done = AtomicUsize::new(0);
        let total = misses.len();
        let paths: Vec<PathBuf> = misses
            .iter()
            .map(|&i| tree.modules_dir.join(work[i].1))
            .collect();
        // A parse error still leaves the decompressed bytes.
        let fresh: Vec<(usize, BTreeSet<String>)> =
            kgate_kernel::ko::read_modules(&tree.fs_root, &paths, |n, _result, bytes| {
                let files = source_files(bytes);
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(p) = progress {
                    p(d, total);
                }
                (misses[n], files)
            });
        let mut entries = BTreeMap::new();
        let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut fresh_iter = fresh.into_iter().peekable();
        for (i, (name, rel, st)) in work.iter().enumerate() {
            let files = if fresh_iter.peek().is_some_and(|(j, _)| *j == i) {
                fresh_iter.next().map(|(_, f)| f).unwrap_or_default()
            } else {
                old.entries
                    .get(*rel)
                    .map(|e| e.files.clone())
                    .unwrap_or_default()
            };
            if let Some((size, mtime_ns)) = st {
                entries.insert(
                    rel.to_string(),
                    CacheEntry {
                        size: *size,
                        mtime_ns: *mtime_ns,
                        files: files.clone(),
                    },
                );
            }
            modules.entry(name.to_string()).or_default().extend(files);
        }
        if let Some(p) = cache_file.filter(|_| total > 0) {
            let _ = write_cache(
                &p,
                &CacheFile {
                    version: CACHE_VERSION,
                    entries,
                },
            );
        }
        ObjectIndex {
            modules,
            read: total,
            cached: work.len() - total,
        }
    }

    /// The files a module's binary names.
    pub fn files(&self, module: &str) -> Option<&BTreeSet<String>> {
        self.modules.get(module)
    }
}

/// Write the cache with [`kgate_kernel::atomic`] (mode 0600): never
/// through a symlink, never to a predictable temporary name.
fn write_cache(path: &Path, cache: &CacheFile) -> Result<(), kgate_kernel::atomic::AtomicError> {
    use std::io::Write;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(kgate_kernel::atomic::AtomicError::BadPath {
            path: path.to_owned(),
        });
    };
    use std::os::unix::fs::DirBuilderExt;
    let io = |op: &'static str| {
        move |source| kgate_kernel::atomic::AtomicError::Io {
            path: path.to_owned(),
            op,
            source,
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create the directory of"))?;
    let bytes = serde_json::to_vec(cache)
        .map_err(std::io::Error::other)
        .map_err(io("serialize"))?;
    let mut f = kgate_kernel::atomic::create(dir, Path::new(name), 0o600)?;
    f.write_all(&bytes).map_err(io("write"))?;
    f.commit()
}

/// The `.c` source paths named by NUL-terminated strings in `bytes`,
/// normalized (`a/b/../c/x.c` → `a/c/x.c`, build-directory prefixes
/// stripped) and kept only when below a [`SOURCE_TOP_DIRS`] directory.
pub fn source_files(bytes: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ok =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'+' | b'-' | b',');
    let mut i = 0;
    while let Some(pos) = find(&bytes[i..], b".c\0") {
        let end = i + pos + 2;
        let mut start = end;
        while start > 0 && ok(bytes[start - 1]) {
            start -= 1;
        }
        // Only whole strings: the byte before must end the previous one.
        if start < end && (start == 0 || bytes[start - 1] == 0) {
            if let Ok(s) = std::str::from_utf8(&bytes[start..end]) {
                if let Some(p) = normalize(s) {
                    out.insert(p);
                }
            }
        }
        i = end + 1;
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Resolve `.`/`..` and strip a build-directory prefix; `None` unless the
/// result starts with a kernel source top-level directory.
pub fn normalize(path: &str) -> Option<String> {
    if !path.contains('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let start = parts
        .iter()
        .position(|p| SOURCE_TOP_DIRS.contains(p))
        .filter(|&i| i + 1 < parts.len())?;
    Some(parts[start..].join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kgate_kernel::testutil::{FixtureTree, TempDir};
    use std::os::unix::fs::symlink;

    /// Issue 19, item 3: `write_cache` wrote the predictable
    /// `score-objects-….tmp.PID` with `std::fs::write`, following a
    /// symlink planted there.
    #[test]
    fn cache_write_never_follows_a_planted_symlink() {
        let t = TempDir::new("objects-symlink");
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let fx = FixtureTree::new(&t.path().join("root"), "6.1.0-test");
        fx.module("kernel/net/sctp/sctp.ko", &[], &[], "");
        let tree = fx.load();
        let cache = t.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        let path = cache_path(&cache, &tree.modules_dir);
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        symlink(&victim, &tmp).unwrap();
        ObjectIndex::scan(&tree, Some(&cache), None);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // A symlink at the cache file itself is not written through either.
        let _ = std::fs::remove_file(&path);
        symlink(&victim, &path).unwrap();
        ObjectIndex::scan(&tree, Some(&cache), None);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn finds_whole_source_strings() {
        let bytes =
            b"\0net/sctp/socket.c\0xxnot/net/a.c\0drivers/gpu/drm/amd/amdgpu/../amdkfd/kfd_chardev.c\0/build/linux/fs/ext4/inode.c\0include/linux/skbuff.h\0plain.c\0";
        let got: Vec<String> = source_files(bytes).into_iter().collect();
        assert_eq!(
            got,
            [
                "drivers/gpu/drm/amd/amdkfd/kfd_chardev.c",
                "fs/ext4/inode.c",
                "net/a.c",
                "net/sctp/socket.c"
            ]
        );
    }
}
