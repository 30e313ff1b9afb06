//! Test helpers shared by the kgate crates: temporary directories, kernel
//! modules built as in-memory ELF objects, and fixture module trees.
//!
//! Compiled for this crate's own unit tests and, for other crates, behind
//! the `testutil` feature (enabled from their `[dev-dependencies]`). Every
//! helper panics on I/O errors: a failing fixture is a failing test.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::tree::{KernelTree, LoadOptions};

/// A temporary directory, removed (with its contents) on drop.
///
/// No `tempfile` dependency: the name is made unique per process by the
/// process id and a counter.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates an empty directory `kgate-test-TAG-PID-N` under the system
    /// temporary directory, replacing any leftover of the same name.
    #[track_caller]
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kgate-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `rel` (relative to the directory, parents created) with
    /// `contents`.
    #[track_caller]
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    /// The text of `rel`, relative to the directory.
    #[track_caller]
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.0.join(rel)).unwrap()
    }

    /// Whether `rel` exists (a dangling symlink counts).
    pub fn exists(&self, rel: &str) -> bool {
        self.0.join(rel).symlink_metadata().is_ok()
    }

    /// Every path below the directory, relative to it and sorted (to prove
    /// nothing else changed).
    #[track_caller]
    pub fn listing(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if e.file_type().unwrap().is_dir() {
                    walk(base, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &self.0, &mut out);
        out.sort();
        out
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A relocatable x86-64 ELF object shaped like a kernel module: two 16-byte
/// functions (`NAME_init_module`, `NAME_cleanup_module`) in `.text` and a
/// `.modinfo` section with `name`, the aliases, `depends`, `softdep` (when
/// not empty) and `intree=Y`.
pub fn elf_module(name: &str, aliases: &[&str], depends: &[&str], softdep: &str) -> Vec<u8> {
    use object::write::{Object, Symbol, SymbolSection};
    use object::{
        Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
    };
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    obj.append_section_data(text, &[0xc3; 32], 16);
    for (i, f) in ["init_module", "cleanup_module"].iter().enumerate() {
        obj.add_symbol(Symbol {
            name: format!("{name}_{f}").into_bytes(),
            value: 16 * i as u64,
            size: 16,
            kind: SymbolKind::Text,
            scope: SymbolScope::Compilation,
            weak: false,
            section: SymbolSection::Section(text),
            flags: SymbolFlags::None,
        });
    }
    let mut info = Vec::new();
    let mut add = |kv: String| {
        info.extend_from_slice(kv.as_bytes());
        info.push(0);
    };
    add(format!("name={name}"));
    for a in aliases {
        add(format!("alias={a}"));
    }
    add(format!("depends={}", depends.join(",")));
    if !softdep.is_empty() {
        add(format!("softdep={softdep}"));
    }
    add("intree=Y".into());
    let modinfo = obj.add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::ReadOnlyData);
    obj.append_section_data(modinfo, &info, 1);
    obj.write().unwrap()
}

/// A minimal relocatable x86-64 ELF object whose only content is a
/// `.modinfo` section: `modinfo` is `key=value` entries separated by `;`
/// (`"name=ext4;alias=fs-ext4;depends=jbd2,mbcache"`).
pub fn modinfo_elf(modinfo: &str) -> Vec<u8> {
    use object::write::Object;
    use object::{Architecture, BinaryFormat, Endianness, SectionKind};
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let s = obj.add_section(
        Vec::new(),
        b".modinfo".to_vec(),
        SectionKind::ReadOnlyString,
    );
    let mut info = modinfo.replace(';', "\0");
    info.push('\0');
    obj.append_section_data(s, info.as_bytes(), 1);
    obj.write().unwrap()
}

/// `bytes` compressed as one xz stream (preset 6).
pub fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `bytes` compressed the way the file name `rel` says: `.xz`, `.zst` or
/// `.gz`; anything else is returned as is.
pub fn compress_for(rel: &str, bytes: Vec<u8>) -> Vec<u8> {
    if rel.ends_with(".xz") {
        xz(&bytes)
    } else if rel.ends_with(".zst") {
        zstd::encode_all(&bytes[..], 3).unwrap()
    } else if rel.ends_with(".gz") {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&bytes).unwrap();
        e.finish().unwrap()
    } else {
        bytes
    }
}

/// `ROOT/lib/modules/VERSION` of a fake kernel package.
pub struct FixtureTree {
    dir: PathBuf,
}

impl FixtureTree {
    /// Creates `root/lib/modules/version/kernel`.
    #[track_caller]
    pub fn new(root: &Path, version: &str) -> FixtureTree {
        let dir = root.join("lib/modules").join(version);
        std::fs::create_dir_all(dir.join("kernel")).unwrap();
        FixtureTree { dir }
    }

    /// `rel` below the modules directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Writes an [`elf_module`] at `rel`, named after the file (`-` read as
    /// `_`); the compression follows the file name's suffix
    /// ([`compress_for`]).
    #[track_caller]
    pub fn module(&self, rel: &str, aliases: &[&str], depends: &[&str], softdep: &str) {
        let name = Path::new(rel)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split(".ko")
            .next()
            .unwrap()
            .replace('-', "_");
        let elf = elf_module(&name, aliases, depends, softdep);
        self.write_bytes(rel, &compress_for(rel, elf));
    }

    /// Writes `modules.builtin` listing `names` as `kernel/builtin/NAME.ko`.
    #[track_caller]
    pub fn builtin(&self, names: &[&str]) {
        let text: String = names
            .iter()
            .map(|n| format!("kernel/builtin/{n}.ko\n"))
            .collect();
        self.write("modules.builtin", &text);
    }

    /// Writes the text file `rel` (parents created).
    #[track_caller]
    pub fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    /// Writes the file `rel` (parents created).
    #[track_caller]
    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Loads the tree with [`load_tree`].
    #[track_caller]
    pub fn load(&self) -> KernelTree {
        load_tree(&self.dir)
    }
}

/// Loads the modules directory `modules_dir` with default options: no
/// loaded-module list, no fact cache, no progress.
#[track_caller]
pub fn load_tree(modules_dir: &Path) -> KernelTree {
    KernelTree::load(&LoadOptions {
        modules_dir: modules_dir.to_path_buf(),
        fs_root: None,
        loaded: None,
        cache_dir: None,
        progress: None,
        facts: Default::default(),
    })
    .unwrap()
}

/// Root of an unpacked Debian kernel package from the lab cache
/// (`cargo xtask fetch`). Skips loudly when absent, fails when
/// `KGATE_REQUIRE_KERNELS=1`.
#[track_caller]
pub fn debian_kernel(package: &str) -> Option<PathBuf> {
    let lab = std::env::var_os("KGATE_LAB_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/kgate-lab")
        });
    let root = lab.join("kernels").join(package);
    if root.join("lib/modules").is_dir() {
        return Some(root);
    }
    if std::env::var("KGATE_REQUIRE_KERNELS").as_deref() == Ok("1") {
        panic!(
            "{} is missing and KGATE_REQUIRE_KERNELS=1: run `cargo xtask fetch`",
            root.display()
        );
    }
    eprintln!(
        "SKIPPED: {package} is not in the lab cache ({}); run `cargo xtask fetch`",
        root.display()
    );
    None
}
