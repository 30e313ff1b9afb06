use super::*;
use crate::modinfo::parse_modinfo;
use crate::testutil::{xz, TempDir};
use object::elf;
use object::read::elf::FileHeader;
use object::write::{Object, StandardSection, Symbol, SymbolSection};
use object::Endianness;
use object::{Architecture, BinaryFormat, SectionKind, SymbolFlags, SymbolKind, SymbolScope};
use std::io::{Read, Write};

const MODINFO: &[u8] = b"alias=net-pf-2-proto-132\0alias=fs-foo\0depends=libcrc32c,udp-tunnel\0\
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
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
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
        println!("skipped: Debian 6.12.113 cloud kernel not unpacked (run `cargo xtask fetch`)");
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
