//! Test helpers: temporary directories, fixture module trees built from
//! in-memory ELF objects, and the Debian kernels of the lab cache.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
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

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ROOT/lib/modules/VERSION` of a fake kernel package.
pub struct FixtureTree {
    dir: PathBuf,
}

impl FixtureTree {
    #[track_caller]
    pub fn new(root: &Path, version: &str) -> FixtureTree {
        let dir = root.join("lib/modules").join(version);
        std::fs::create_dir_all(dir.join("kernel")).unwrap();
        FixtureTree { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Write a module; the compression follows the file name's suffix.
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
        let bytes = if rel.ends_with(".xz") {
            xz(&elf)
        } else if rel.ends_with(".zst") {
            zstd::encode_all(&elf[..], 3).unwrap()
        } else if rel.ends_with(".gz") {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&elf).unwrap();
            e.finish().unwrap()
        } else {
            elf
        };
        self.write_bytes(rel, &bytes);
    }

    /// Builtin modules (modules.builtin).
    #[track_caller]
    pub fn builtin(&self, names: &[&str]) {
        let text: String = names
            .iter()
            .map(|n| format!("kernel/builtin/{n}.ko\n"))
            .collect();
        self.write("modules.builtin", &text);
    }

    #[track_caller]
    pub fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    #[track_caller]
    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// A relocatable x86-64 ELF object shaped like a kernel module: two 16-byte
/// functions in `.text` and a `.modinfo` section.
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

pub fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

/// A command that runs `program` without root's power to read anything:
/// as `nobody` through setpriv(1) when the tests run as root.
pub fn as_unprivileged(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(program);
        c
    } else {
        Command::new(program)
    }
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
