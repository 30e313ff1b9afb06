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

use std::cell::RefCell;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::Endianness;
use serde::{Deserialize, Serialize};

use crate::bounded::{self, Limit, ReadError};
use crate::canonical_name;
use crate::modinfo::{parse_modinfo, ModInfo};

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

/// Why a byte buffer could not be parsed as a kernel module ELF file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElfError {
    /// The data does not start with `\x7fELF`.
    #[error("not an ELF file (bad magic)")]
    NotElf,
    /// The data is ELF but malformed or of a kind this parser does not read.
    #[error("{0}")]
    Malformed(String),
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

/// liblzma's memory limit per stream. The kernel compresses modules with a
/// 1 MiB dictionary (`scripts/Makefile.modinst`: `--lzma2=dict=1MiB`);
/// 16 MiB also decodes xz's default preset (`-6`, 8 MiB dictionary).
pub const XZ_MEMLIMIT: u64 = 16 << 20;

/// Largest zstd window accepted (2^24 = 16 MiB). The kernel runs `zstd`
/// at its default level (a window of at most 2^21 for modules); level 19
/// uses 2^23. A frame asking for more is refused before it is allocated.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

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

/// Decompresses `input` into `out` (empty on entry), at most `cap` bytes
/// ([`bounded::over_cap`] past it): the bounded decompression every module
/// file goes through ([`read_module_capped`]). `out` never holds more than
/// `cap + 1` bytes, whatever the input.
pub fn decompress(
    compression: Compression,
    input: &[u8],
    out: &mut Vec<u8>,
    cap: u64,
) -> io::Result<()> {
    match compression {
        Compression::None => {
            bounded::reserve_capped(out, input.len(), cap)?;
            if input.len() as u64 > cap {
                return Err(bounded::over_cap());
            }
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Xz => decompress_xz(input, out, cap),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(input)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            read_capped(decoder, out, cap)
        }
        Compression::Gzip => read_capped(flate2::bufread::MultiGzDecoder::new(input), out, cap),
    }
}

fn read_capped(reader: impl Read, out: &mut Vec<u8>, cap: u64) -> io::Result<()> {
    let limit = Limit {
        kind: "module",
        max: cap,
    };
    bounded::decompressed(reader, Path::new(""), limit, out).map_err(|e| match e {
        ReadError::Io { source, .. } => source,
        ReadError::NotFound { .. } => io::ErrorKind::NotFound.into(),
        _ => bounded::over_cap(),
    })
}

/// liblzma straight into `out`'s spare capacity, the whole input at once
/// (like kmod: `lzma_stream_decoder(memlimit, LZMA_CONCATENATED)`), the
/// buffer grown by bounded steps up to `cap + 1`.
fn decompress_xz(mut input: &[u8], out: &mut Vec<u8>, cap: u64) -> io::Result<()> {
    use xz2::stream::{Action, Status, Stream, CONCATENATED};

    // Modules compress about 4-6x; start there to avoid regrowth when the
    // caller's buffer is still small.
    bounded::reserve_capped(out, input.len().saturating_mul(6), cap)?;
    let mut stream = Stream::new_stream_decoder(XZ_MEMLIMIT, CONCATENATED)?;
    loop {
        if out.len() == out.capacity() {
            bounded::reserve_capped(out, out.len().max(1 << 16), cap)?;
        }
        let in_before = stream.total_in();
        let out_before = out.len();
        let status = stream.process_vec(input, out, Action::Finish)?;
        let consumed = usize::try_from(stream.total_in() - in_before)
            .unwrap_or(input.len())
            .min(input.len());
        input = &input[consumed..];
        if out.len() as u64 > cap {
            return Err(bounded::over_cap());
        }
        match status {
            Status::StreamEnd => return Ok(()),
            Status::Ok | Status::GetCheck | Status::MemNeeded => {
                // No progress although there is room for output: the input
                // ended before the stream did.
                if consumed == 0 && out.len() == out_before && out.len() < out.capacity() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "compressed data ends before the end of the xz stream (truncated file?)",
                    ));
                }
            }
        }
    }
}

/// Parses a decompressed module: code size, function count and `.modinfo`.
///
/// Reads ELF32 and ELF64 of either byte order (kernel modules for x86_64 are
/// ELF64 little-endian relocatable files). A module without `.modinfo` gets
/// an empty [`ModInfo`]; one without `.symtab` gets `functions == 0`.
pub fn parse_module_elf(bytes: &[u8]) -> Result<KoFacts, ElfError> {
    if bytes.len() < 16 || bytes[..4] != elf::ELFMAG {
        return Err(ElfError::NotElf);
    }
    // e_ident[EI_CLASS]
    match bytes[4] {
        elf::ELFCLASS64 => parse_elf::<elf::FileHeader64<Endianness>>(bytes),
        elf::ELFCLASS32 => parse_elf::<elf::FileHeader32<Endianness>>(bytes),
        other => Err(ElfError::Malformed(format!("unknown ELF class {other}"))),
    }
}

fn parse_elf<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<KoFacts, ElfError> {
    let bad = |what: &str, e: object::read::Error| ElfError::Malformed(format!("{what}: {e}"));
    let header = Elf::parse(data).map_err(|e| bad("ELF header", e))?;
    let endian = header.endian().map_err(|e| bad("ELF header", e))?;
    let sections = header
        .sections(endian, data)
        .map_err(|e| bad("section headers", e))?;

    let exec = u64::from(elf::SHF_ALLOC | elf::SHF_EXECINSTR);
    let mut text_bytes = 0u64;
    let mut symtab = None;
    for section in sections.iter() {
        if section.sh_flags(endian).into() & exec == exec {
            text_bytes = text_bytes.saturating_add(section.sh_size(endian).into());
        }
        if symtab.is_none() && section.sh_type(endian) == elf::SHT_SYMTAB {
            symtab = Some(section);
        }
    }

    let mut functions = 0u32;
    if let Some(symtab) = symtab {
        let symbols: &[Elf::Sym] = symtab
            .data_as_array(endian, data)
            .map_err(|e| bad(".symtab", e))?;
        let strtab = sections
            .section(object::SectionIndex(symtab.sh_link(endian) as usize))
            .and_then(|s| s.data(endian, data))
            .map_err(|e| bad("symbol string table", e))?;
        for sym in symbols {
            if sym.st_type() != elf::STT_FUNC || sym.st_shndx(endian) == elf::SHN_UNDEF {
                continue;
            }
            let name = usize::try_from(sym.st_name(endian))
                .ok()
                .and_then(|off| strtab.get(off..))
                .unwrap_or_default();
            if name.starts_with(b"__pfx_") || name.starts_with(b"__cfi_") {
                continue;
            }
            functions = functions.saturating_add(1);
        }
    }

    let modinfo = match sections.section_by_name(endian, b".modinfo") {
        Some((_, section)) if section.sh_type(endian) != elf::SHT_NOBITS => {
            parse_modinfo(section.data(endian, data).map_err(|e| bad(".modinfo", e))?)
        }
        _ => ModInfo::default(),
    };

    Ok(KoFacts {
        text_bytes,
        functions,
        modinfo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{xz, TempDir};
    use object::write::{Object, StandardSection, Symbol, SymbolSection};
    use object::{Architecture, BinaryFormat, SectionKind, SymbolFlags, SymbolKind, SymbolScope};
    use std::io::Write;

    const MODINFO: &[u8] =
        b"alias=net-pf-2-proto-132\0alias=fs-foo\0depends=libcrc32c,udp-tunnel\0\
softdep=pre: crc32c-intel post: foo-bar\0weakdep=crc32-generic\0\0\0name=fix_ture\0\
intree=Y\0license=GPL\0";

    fn add_func(
        obj: &mut Object,
        name: &str,
        section: object::write::SectionId,
        value: u64,
        size: u64,
    ) {
        obj.add_symbol(Symbol {
            name: name.as_bytes().to_vec(),
            value,
            size,
            kind: SymbolKind::Text,
            scope: SymbolScope::Compilation,
            weak: false,
            section: SymbolSection::Section(section),
            flags: SymbolFlags::None,
        });
    }

    /// An x86_64 relocatable ELF: `.text` (64 bytes, 2 functions + 1
    /// `__pfx_` padding symbol + 1 `__cfi_` stub), `.init.text` (16 bytes, 1
    /// function), `.data`, `.modinfo`, an undefined function symbol and an
    /// object symbol.
    fn fixture() -> Vec<u8> {
        let mut obj = Object::new(
            BinaryFormat::Elf,
            Architecture::X86_64,
            object::Endianness::Little,
        );
        let text = obj.section_id(StandardSection::Text);
        obj.append_section_data(text, &[0xcc; 64], 16);
        add_func(&mut obj, "__pfx_f1", text, 0, 16);
        add_func(&mut obj, "f1", text, 16, 16);
        add_func(&mut obj, "__cfi_f2", text, 32, 8);
        add_func(&mut obj, "f2", text, 48, 16);
        let init = obj.add_section(Vec::new(), b".init.text".to_vec(), SectionKind::Text);
        obj.append_section_data(init, &[0x90; 16], 16);
        add_func(&mut obj, "init_module", init, 0, 16);
        let data = obj.section_id(StandardSection::Data);
        obj.append_section_data(data, &[1; 100], 8);
        obj.add_symbol(Symbol {
            name: b"some_table".to_vec(),
            value: 0,
            size: 100,
            kind: SymbolKind::Data,
            scope: SymbolScope::Compilation,
            weak: false,
            section: SymbolSection::Section(data),
            flags: SymbolFlags::None,
        });
        obj.add_symbol(Symbol {
            name: b"printk".to_vec(),
            value: 0,
            size: 0,
            kind: SymbolKind::Text,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Undefined,
            flags: SymbolFlags::None,
        });
        let modinfo = obj.add_section(
            Vec::new(),
            b".modinfo".to_vec(),
            SectionKind::ReadOnlyString,
        );
        obj.append_section_data(modinfo, MODINFO, 1);
        obj.write().unwrap()
    }

    fn expected() -> KoFacts {
        KoFacts {
            text_bytes: 64 + 16,
            functions: 3,
            modinfo: parse_modinfo(MODINFO),
        }
    }

    #[test]
    fn parses_fixture() {
        let facts = parse_module_elf(&fixture()).unwrap();
        assert_eq!(facts, expected());
        let m = &facts.modinfo;
        assert_eq!(m.name.as_deref(), Some("fix_ture"));
        assert_eq!(m.aliases, ["net-pf-2-proto-132", "fs-foo"]);
        assert_eq!(m.depends, ["libcrc32c", "udp_tunnel"]);
        assert_eq!(m.softdep_pre, ["crc32c_intel"]);
        assert_eq!(m.softdep_post, ["foo_bar"]);
        assert_eq!(m.weakdeps, ["crc32_generic"]);
        assert!(m.intree);
        assert_eq!(m.license.as_deref(), Some("GPL"));
    }

    #[test]
    fn elf_without_symtab_or_modinfo() {
        let mut obj = Object::new(
            BinaryFormat::Elf,
            Architecture::X86_64,
            object::Endianness::Little,
        );
        let text = obj.section_id(StandardSection::Text);
        obj.append_section_data(text, &[0xcc; 10], 1);
        let mut bytes = obj.write().unwrap();
        assert_eq!(parse_module_elf(&bytes).unwrap().text_bytes, 10);
        // Turn the symbol table into a PROGBITS section: no symtab at all.
        let facts = {
            let hdr = elf::FileHeader64::<Endianness>::parse(&*bytes).unwrap();
            let e = hdr.endian().unwrap();
            let shoff = hdr.e_shoff.get(e) as usize;
            let n = hdr.e_shnum.get(e) as usize;
            let size = std::mem::size_of::<elf::SectionHeader64<Endianness>>();
            for i in 0..n {
                let at = shoff + i * size + 4; // sh_type
                if u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) == elf::SHT_SYMTAB {
                    bytes[at..at + 4].copy_from_slice(&elf::SHT_PROGBITS.to_le_bytes());
                }
            }
            parse_module_elf(&bytes).unwrap()
        };
        assert_eq!(
            facts,
            KoFacts {
                text_bytes: 10,
                functions: 0,
                modinfo: ModInfo::default()
            }
        );
    }

    #[test]
    fn elf_errors_never_panic() {
        assert_eq!(parse_module_elf(b""), Err(ElfError::NotElf));
        assert_eq!(
            parse_module_elf(b"hello world, this is text"),
            Err(ElfError::NotElf)
        );
        let good = fixture();
        // Every truncation and a set of single-byte corruptions: errors or
        // facts, never a panic.
        for len in 0..good.len() {
            let _ = parse_module_elf(&good[..len]);
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0xa5;
            let _ = parse_module_elf(&bad);
        }
        assert!(matches!(
            parse_module_elf(&good[..40]),
            Err(ElfError::Malformed(_))
        ));
    }

    #[test]
    fn read_module_all_compressions() {
        let tmp = TempDir::new("ko");
        let dir = tmp.path();
        let elf = fixture();
        let files: [(&str, Vec<u8>); 4] = [
            ("fix-ture.ko", elf.clone()),
            ("fix-ture.ko.xz", xz(&elf)),
            ("fix-ture.ko.zst", zstd::encode_all(&elf[..], 19).unwrap()),
            ("fix-ture.ko.gz", {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(&elf).unwrap();
                e.finish().unwrap()
            }),
        ];
        // Start with a buffer that has to grow, then reuse it.
        let mut scratch = Vec::with_capacity(3);
        for (name, bytes) in &files {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            assert_eq!(module_name_from_path(&path).as_deref(), Some("fix_ture"));
            let facts = read_module(&path, &mut scratch).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(facts, expected(), "{name}");
            assert_eq!(scratch, elf, "{name}");
        }
        // Concatenated xz streams decode like kmod does.
        let mut two = xz(&elf[..100]);
        two.extend(xz(&elf[100..]));
        std::fs::write(dir.join("two.ko.xz"), two).unwrap();
        assert_eq!(
            read_module(&dir.join("two.ko.xz"), &mut scratch).unwrap(),
            expected()
        );
    }

    #[test]
    fn read_module_errors() {
        let tmp = TempDir::new("ko");
        let dir = tmp.path();
        let elf = fixture();
        let mut scratch = Vec::new();

        // Truncated compressed files of every format.
        let packed = [
            ("t.ko.xz", xz(&elf)),
            ("t.ko.zst", zstd::encode_all(&elf[..], 3).unwrap()),
            ("t.ko.gz", {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&elf).unwrap();
                e.finish().unwrap()
            }),
        ];
        for (name, bytes) in &packed {
            let path = dir.join(name);
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            let err = read_module(&path, &mut scratch).unwrap_err();
            assert!(matches!(err, KoError::Decompress { .. }), "{name}: {err}");
            assert_eq!(err.path(), path);
            assert!(err.to_string().contains(name), "{err}");
        }
        // Truncated xz at every length, and xz with garbage: never a panic.
        let full = &packed[0].1;
        let path = dir.join("cut.ko.xz");
        for len in (0..full.len()).step_by(7) {
            std::fs::write(&path, &full[..len]).unwrap();
            assert!(read_module(&path, &mut scratch).is_err(), "len {len}");
        }
        std::fs::write(&path, b"plain text, not xz").unwrap();
        let err = read_module(&path, &mut scratch).unwrap_err();
        assert!(
            matches!(err, KoError::Decompress { format: "xz", .. }),
            "{err}"
        );
        let mut corrupt = full.clone();
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0xff;
        std::fs::write(&path, corrupt).unwrap();
        assert!(matches!(
            read_module(&path, &mut scratch),
            Err(KoError::Decompress { .. })
        ));

        // Text content in a .ko.
        let path = dir.join("text.ko");
        std::fs::write(&path, "this is not a module\n").unwrap();
        let err = read_module(&path, &mut scratch).unwrap_err();
        assert!(matches!(err, KoError::NotElf { .. }), "{err}");
        assert!(
            err.to_string().contains("not an ELF file (bad magic)"),
            "{err}"
        );
        assert!(err.to_string().contains("text.ko"), "{err}");

        // Truncated ELF: Elf error.
        let path = dir.join("short.ko");
        std::fs::write(&path, &elf[..100]).unwrap();
        let err = read_module(&path, &mut scratch).unwrap_err();
        assert!(matches!(err, KoError::Elf { .. }), "{err}");

        // Missing file: Open; a directory: refused as not a regular file.
        let err = read_module(&dir.join("missing.ko.xz"), &mut scratch).unwrap_err();
        assert!(
            matches!(&err, KoError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
        let sub = dir.join("adir.ko");
        std::fs::create_dir(&sub).unwrap();
        let err = read_module(&sub, &mut scratch).unwrap_err();
        assert!(
            matches!(err, KoError::Bounded(ReadError::NotRegular { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("adir.ko"), "{err}");

        // Unknown suffix: rejected before opening.
        let err = read_module(&dir.join("module.ko.bz2"), &mut scratch).unwrap_err();
        assert!(matches!(err, KoError::UnknownSuffix { .. }), "{err}");
        assert!(err.to_string().contains(".ko.zst"), "{err}");
    }

    #[test]
    fn compression_and_names() {
        let cases = [
            ("a/b/sctp.ko.xz", Some(Compression::Xz), Some("sctp")),
            (
                "snd-hda-intel.ko",
                Some(Compression::None),
                Some("snd_hda_intel"),
            ),
            ("x.ko.zst", Some(Compression::Zstd), Some("x")),
            ("x.ko.gz", Some(Compression::Gzip), Some("x")),
            ("x.ko.bz2", None, None),
            ("x.o", None, None),
            (".ko", None, None),
            ("x.ko/", Some(Compression::None), Some("x")),
            ("dir.ko.xz/file", None, None),
            ("", None, None),
        ];
        for (path, c, name) in cases {
            assert_eq!(Compression::from_path(Path::new(path)), c, "{path}");
            assert_eq!(
                module_name_from_path(Path::new(path)).as_deref(),
                name,
                "{path}"
            );
        }
        let names: Vec<_> = [
            Compression::None,
            Compression::Xz,
            Compression::Zstd,
            Compression::Gzip,
        ]
        .map(|c| c.as_str())
        .into();
        assert_eq!(names, ["none", "xz", "zstd", "gzip"]);
    }

    /// `lib/modules/VER` of an unpacked Debian kernel package, in the
    /// layouts `cargo xtask fetch` has used.
    fn lab_modules(package: &str, version: &str, release: &str) -> Option<PathBuf> {
        let lab = Path::new("/root/.cache/kgate-lab");
        [
            lab.join("kernels").join(package),
            lab.join("unpacked")
                .join(format!("{package}_{version}_amd64")),
        ]
        .into_iter()
        .map(|root| root.join("lib/modules").join(release))
        .find(|dir| dir.is_dir())
    }

    #[test]
    fn real_sctp_module() {
        let Some(dir) = lab_modules(
            "linux-image-6.12.113+deb12-cloud-amd64-unsigned",
            "6.12.113-1~deb12u1",
            "6.12.113+deb12-cloud-amd64",
        ) else {
            println!(
                "skipped: Debian 6.12.113 cloud kernel not unpacked (run `cargo xtask fetch`)"
            );
            return;
        };
        let path = dir.join("kernel/net/sctp/sctp.ko.xz");
        let facts = read_module(&path, &mut Vec::new()).unwrap();
        let m = &facts.modinfo;
        assert_eq!(m.name.as_deref(), Some("sctp"));
        assert!(m.aliases.iter().any(|a| a == "net-pf-2-proto-132"), "{m:?}");
        assert!(
            m.aliases.iter().any(|a| a == "net-pf-10-proto-132"),
            "{m:?}"
        );
        assert_eq!(
            m.depends,
            ["udp_tunnel", "ip6_udp_tunnel", "libcrc32c"],
            "{m:?}"
        );
        assert!(m.intree);
        assert!(
            m.vermagic
                .as_deref()
                .unwrap()
                .starts_with("6.12.113+deb12-cloud-amd64 SMP"),
            "{m:?}"
        );
        // Cross-checked with `readelf -sW` / `readelf -SW`: 1474 defined
        // FUNC symbols, 736 of them `__pfx_` padding; code is .text,
        // .static_call.text, .exit.text, .init.text, .altinstr_replacement.
        assert_eq!(facts.functions, 738, "{facts:?}");
        assert_eq!(facts.text_bytes, 262_854, "{facts:?}");
    }

    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&path, out);
            } else if Compression::from_path(&path).is_some() {
                out.push(path);
            }
        }
    }

    /// `KGATE_KO_BENCH_DIR=... cargo test --release -p kgate-kernel ko::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark over a real kernel tree"]
    fn bench_read_all_modules() {
        let dir = std::env::var("KGATE_KO_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                lab_modules(
                    "linux-image-6.12.113+deb12-amd64-unsigned",
                    "6.12.113-1~deb12u1",
                    "6.12.113+deb12-amd64",
                )
                .expect("set KGATE_KO_BENCH_DIR or run `cargo xtask fetch`")
                .join("kernel")
            });
        let mut files = Vec::new();
        walk(&dir, &mut files);
        files.sort();
        let mut scratch = Vec::new();
        let mut compressed = 0u64;
        let mut decompressed = 0u64;
        let mut dec_time = std::time::Duration::ZERO;
        let start = std::time::Instant::now();
        for path in &files {
            compressed += std::fs::metadata(path).unwrap().len();
            let t = std::time::Instant::now();
            let facts = read_module(path, &mut scratch).unwrap();
            dec_time += t.elapsed();
            decompressed += scratch.len() as u64;
            std::hint::black_box(facts);
        }
        let total = start.elapsed();
        // Parse-only pass over the last buffer sizes: time parsing separately.
        let mut parse_time = std::time::Duration::ZERO;
        for path in &files {
            let mut f = std::fs::File::open(path).unwrap();
            let mut input = Vec::new();
            f.read_to_end(&mut input).unwrap();
            scratch.clear();
            decompress(
                Compression::from_path(path).unwrap(),
                &input,
                &mut scratch,
                Limit::MODULE.max,
            )
            .unwrap();
            let t = std::time::Instant::now();
            std::hint::black_box(parse_module_elf(&scratch).unwrap());
            parse_time += t.elapsed();
        }
        println!(
            "{} files, {} MB compressed, {} MB decompressed: read_module total {:.3}s (in calls {:.3}s), of which ELF+modinfo parsing {:.3}s",
            files.len(),
            compressed / 1_000_000,
            decompressed / 1_000_000,
            total.as_secs_f64(),
            dec_time.as_secs_f64(),
            parse_time.as_secs_f64()
        );
    }
}
