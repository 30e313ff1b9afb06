//! Reading one kernel module file (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`):
//! decompression, ELF parsing, code size and the `.modinfo` section.
//!
//! [`read_module`] is the entry point. It decompresses into a caller-provided
//! buffer so that a survey of thousands of modules allocates (almost) nothing
//! per file, and it never panics on bad input: every failure is a [`KoError`]
//! naming the file.
//!
//! Decompression uses the same libraries as kmod: liblzma (through `xz2`),
//! libzstd (through `zstd`) and a zlib-compatible inflater (`flate2`).
//!
//! This file holds the file-level entry points and the parallel reader
//! ([`read_modules`]); the bounded decompression ([`decompress`]) and the
//! ELF/`.modinfo` parsing ([`parse_module_elf`]) are submodules, their items
//! re-exported here.

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bounded::{self, Limit, ReadError};
use crate::canonical_name;
use crate::modinfo::ModInfo;

mod decompress;
mod elf;

pub use decompress::{decompress, XZ_MEMLIMIT, ZSTD_WINDOW_LOG_MAX};
pub use elf::{parse_module_elf, ElfError};

/// How a module file is compressed, as told by its file name suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Compression {
    /// Plain `.ko`.
    None,
    /// `.ko.xz` (liblzma, single or concatenated `.xz` streams).
    Xz,
    /// `.ko.zst`.
    Zstd,
    /// `.ko.gz`.
    Gzip,
}

impl Compression {
    /// The compression of a module file, from its file name suffix; `None`
    /// (the `Option`) when the name does not end in `.ko`, `.ko.xz`,
    /// `.ko.zst` or `.ko.gz`.
    pub fn from_path(path: &Path) -> Option<Compression> {
        split_module_file_name(path).map(|(_, c)| c)
    }

    /// The file name suffix of a module file with this compression.
    fn suffix(self) -> &'static str {
        match self {
            Compression::None => ".ko",
            Compression::Xz => ".ko.xz",
            Compression::Zstd => ".ko.zst",
            Compression::Gzip => ".ko.gz",
        }
    }

    /// A short name for messages and reports: `none`, `xz`, `zstd`, `gzip`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }
}

/// Splits a module file name into its stem and compression.
fn split_module_file_name(path: &Path) -> Option<(&str, Compression)> {
    let name = path.file_name()?.to_str()?;
    [
        Compression::None,
        Compression::Xz,
        Compression::Zstd,
        Compression::Gzip,
    ]
    .into_iter()
    .find_map(|c| {
        let stem = name.strip_suffix(c.suffix())?;
        (!stem.is_empty()).then_some((stem, c))
    })
}

/// The module name of a module file: `kernel/net/sctp/sctp.ko.xz` -> `sctp`,
/// `snd-hda-intel.ko` -> `snd_hda_intel` (`-` becomes `_`, as in
/// [`crate::canonical_name`]). `None` when the file name is not a module file
/// name (see [`Compression::from_path`]) or is not UTF-8.
pub fn module_name_from_path(path: &Path) -> Option<String> {
    split_module_file_name(path).map(|(stem, _)| canonical_name(stem))
}

/// What kgate needs from one module file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KoFacts {
    /// Total size in bytes of executable code: the sum of `sh_size` over all
    /// sections flagged `SHF_ALLOC | SHF_EXECINSTR` (`.text`,
    /// `.text.unlikely`, `.init.text`, `.exit.text`, ...).
    pub text_bytes: u64,
    /// Number of defined `STT_FUNC` symbols in `.symtab`, not counting the
    /// `__pfx_*` padding and `__cfi_*` stubs that kernels built with
    /// `CALL_PADDING`/kCFI emit next to every function. 0 without a symbol
    /// table (stripped module).
    pub functions: u32,
    /// The parsed `.modinfo` section (empty when the module has none).
    pub modinfo: ModInfo,
}

/// Why [`read_module`] failed. Every variant names the module file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KoError {
    /// The file could not be opened or read (missing, a directory,
    /// permission denied, I/O error).
    #[error("{}: cannot read module file: {source}", path.display())]
    Open {
        /// The module file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The compressed data is corrupt or truncated.
    #[error(
        "{}: {format} decompression failed: {source}; the file is corrupt or truncated, reinstall the package that owns it",
        path.display()
    )]
    Decompress {
        /// The module file.
        path: PathBuf,
        /// The compression format: `xz`, `zstd` or `gzip`.
        format: &'static str,
        /// What the decoder reported.
        #[source]
        source: io::Error,
    },
    /// The (decompressed) content is not an ELF file.
    #[error("{}: not an ELF file (bad magic); is the module file corrupt?", path.display())]
    NotElf {
        /// The module file.
        path: PathBuf,
    },
    /// The content is ELF but could not be parsed.
    #[error("{}: malformed module ELF: {reason}", path.display())]
    Elf {
        /// The module file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Refused by the bounded reader: not a regular file, outside the
    /// root, or over its size cap (before or after decompression).
    #[error("{0}")]
    Bounded(ReadError),
    /// The file name does not end in `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`.
    #[error(
        "{}: not a kernel module file name (expected .ko, .ko.xz, .ko.zst or .ko.gz)",
        path.display()
    )]
    UnknownSuffix {
        /// The file.
        path: PathBuf,
    },
}

impl KoError {
    /// The module file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            KoError::Open { path, .. }
            | KoError::Decompress { path, .. }
            | KoError::NotElf { path }
            | KoError::Elf { path, .. }
            | KoError::UnknownSuffix { path } => path,
            KoError::Bounded(e) => e.path(),
        }
    }

    /// The module is larger than the cap it was read with.
    pub fn is_over_limit(&self) -> bool {
        matches!(self, KoError::Bounded(e) if e.is_over_limit())
    }

    fn from_read(e: ReadError) -> KoError {
        match e {
            ReadError::NotFound { path } => KoError::Open {
                path,
                source: io::ErrorKind::NotFound.into(),
            },
            ReadError::Io { path, source } => KoError::Open { path, source },
            e => KoError::Bounded(e),
        }
    }
}

thread_local! {
    /// Compressed file contents, reused across [`read_module`] calls on the
    /// same thread (at most [`Limit::MODULE_COMPRESSED`]).
    static COMPRESSED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Threads that read modules at once, at most: the survey's memory bound
/// (docs/ARCHITECTURE.md) is this many times [`PER_THREAD_BYTES`], plus
/// one large module. Decompression keeps 4 threads busy on any disk.
pub const READ_THREADS: usize = 4;

/// The most one reader thread holds while reading one module of at most
/// [`Limit::MODULE_PER_THREAD`]: the decompressed module, the compressed
/// file, and the decoder's own memory ([`XZ_MEMLIMIT`],
/// [`ZSTD_WINDOW_LOG_MAX`]; gzip's window is 32 KiB).
pub const PER_THREAD_BYTES: u64 =
    Limit::MODULE_PER_THREAD.max + Limit::MODULE_COMPRESSED.max + XZ_MEMLIMIT;

/// The one reader allowed past [`Limit::MODULE_PER_THREAD`], up to
/// [`Limit::MODULE`].
static LARGE_MODULE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn reader_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(READ_THREADS);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("kgate-ko-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Reads the module files `paths` (below `root`, see
/// [`crate::bounded::open`]) in parallel and calls `f` with each index, the
/// result and the decompressed bytes (also after an ELF error; empty after
/// a read error). This is the only way kgate reads many modules: at most
/// [`READ_THREADS`] threads, each holding at most [`PER_THREAD_BYTES`];
/// a module larger than [`Limit::MODULE_PER_THREAD`] is read again while
/// holding the single large-module slot, up to [`Limit::MODULE`].
pub fn read_modules<T: Send>(
    root: &Path,
    paths: &[PathBuf],
    f: impl Fn(usize, Result<KoFacts, KoError>, &[u8]) -> T + Sync + Send,
) -> Vec<T> {
    use rayon::prelude::*;
    let one = |scratch: &mut Vec<u8>, i: usize| {
        let path = &paths[i];
        match read_module_capped(root, path, scratch, Limit::MODULE_PER_THREAD) {
            Err(e) if e.is_over_limit() => {
                let _slot = LARGE_MODULE.lock().unwrap_or_else(|p| p.into_inner());
                let result = read_module_capped(root, path, scratch, Limit::MODULE);
                let out = f(i, result, scratch);
                // The large buffer goes with the slot.
                *scratch = Vec::new();
                out
            }
            result => f(i, result, scratch),
        }
    };
    let run = || {
        (0..paths.len())
            .into_par_iter()
            .map_init(Vec::new, one)
            .collect()
    };
    match reader_pool() {
        Some(pool) => pool.install(run),
        None => {
            let mut scratch = Vec::new();
            (0..paths.len()).map(|i| one(&mut scratch, i)).collect()
        }
    }
}

/// Reads, decompresses and parses one module file.
///
/// The decompressed module is left in `scratch` (cleared first; its capacity
/// is reused, so pass the same buffer for every file of a survey). The
/// compression is chosen by file name suffix. Caps at [`Limit::MODULE`];
/// many modules are read with [`read_modules`], which bounds the total.
pub fn read_module(path: &Path, scratch: &mut Vec<u8>) -> Result<KoFacts, KoError> {
    read_module_capped(Path::new("/"), path, scratch, Limit::MODULE)
}

/// [`read_module`] below `root` (see [`crate::bounded::open`]), with the
/// decompressed size capped at `cap`.
pub fn read_module_capped(
    root: &Path,
    path: &Path,
    scratch: &mut Vec<u8>,
    cap: Limit,
) -> Result<KoFacts, KoError> {
    let compression = Compression::from_path(path).ok_or_else(|| KoError::UnknownSuffix {
        path: path.to_owned(),
    })?;
    scratch.clear();
    let file = bounded::open(root, path).map_err(KoError::from_read)?;
    if compression == Compression::None {
        bounded::read_file_into(file, path, cap, scratch).map_err(KoError::from_read)?;
    } else {
        COMPRESSED.with(|cell| {
            // A re-entrant call cannot happen (nothing below calls back), but
            // fall back to a fresh buffer rather than panic.
            let mut fallback = Vec::new();
            let mut guard = cell.try_borrow_mut();
            let input = match guard.as_mut() {
                Ok(buf) => &mut **buf,
                Err(_) => &mut fallback,
            };
            bounded::read_file_into(file, path, Limit::MODULE_COMPRESSED, input)
                .map_err(KoError::from_read)?;
            let result = decompress(compression, input, scratch, cap.max);
            if input.capacity() > (8 << 20) {
                // Do not pin a large compressed buffer per thread.
                *input = Vec::new();
            }
            result.map_err(|source| {
                if bounded::is_over_cap(&source) {
                    KoError::Bounded(ReadError::Exceeds {
                        path: path.to_owned(),
                        kind: cap.kind,
                        max: cap.max,
                    })
                } else {
                    KoError::Decompress {
                        path: path.to_owned(),
                        format: compression.as_str(),
                        source,
                    }
                }
            })
        })?;
    }
    parse_module_elf(scratch).map_err(|e| match e {
        ElfError::NotElf => KoError::NotElf {
            path: path.to_owned(),
        },
        ElfError::Malformed(reason) => KoError::Elf {
            path: path.to_owned(),
            reason,
        },
    })
}

#[cfg(test)]
mod tests;
