//! Parsing a decompressed module's ELF: code size, function count and the
//! `.modinfo` section.

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::Endianness;

use super::KoFacts;
use crate::modinfo::{parse_modinfo, ModInfo};

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
