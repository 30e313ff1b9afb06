//! Reading one kernel module file (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`):
//! decompression, ELF parsing, code size and the `.modinfo` section.
//!
//! CONTRACT (to be implemented by the ko/modinfo work):
//!
//! ```ignore
//! pub enum Compression { None, Xz, Zstd, Gzip }
//! impl Compression { pub fn from_path(path: &Path) -> Option<Compression>; pub fn as_str(&self) -> &'static str; }
//! /// `kernel/net/sctp/sctp.ko.xz` -> `sctp`; `-` becomes `_`.
//! pub fn module_name_from_path(path: &Path) -> Option<String>;
//! pub struct KoFacts { pub text_bytes: u64, pub functions: u32, pub modinfo: ModInfo }
//! /// Decompresses into `scratch` (reused across calls to avoid allocation).
//! pub fn read_module(path: &Path, scratch: &mut Vec<u8>) -> Result<KoFacts, KoError>;
//! pub fn parse_module_elf(bytes: &[u8]) -> Result<KoFacts, ElfError>;
//! #[non_exhaustive] pub enum KoError { .. each variant names the path .. }
//! ```
