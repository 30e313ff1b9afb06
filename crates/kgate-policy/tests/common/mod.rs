//! Test helpers: temporary directories and small module trees built from
//! in-memory ELF objects (the same shape as crates/kgate/tests/common).

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};

use kgate_kernel::tree::{KernelTree, LoadOptions};

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kgate-policy-test-{tag}-{}-{}",
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

/// One fixture module: name, aliases, hard dependencies, softdep string.
pub type Spec<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a str);

/// Write modules (and builtin names) under `root/lib/modules/version` and
/// load the tree.
pub fn tree_with(root: &Path, version: &str, modules: &[Spec<'_>], builtin: &[&str]) -> KernelTree {
    let dir = root.join("lib/modules").join(version);
    std::fs::create_dir_all(dir.join("kernel")).unwrap();
    for (name, aliases, depends, softdep) in modules {
        let path = dir.join(format!("kernel/{name}.ko"));
        std::fs::write(path, elf_module(name, aliases, depends, softdep)).unwrap();
    }
    let text: String = builtin
        .iter()
        .map(|n| format!("kernel/builtin/{n}.ko\n"))
        .collect();
    std::fs::write(dir.join("modules.builtin"), text).unwrap();
    KernelTree::load(&LoadOptions {
        modules_dir: dir,
        loaded: None,
        cache_dir: None,
        progress: None,
    })
    .unwrap()
}

/// The standard fixture kernel.
pub const MODULES: &[Spec<'static>] = &[
    (
        "ext4",
        &["fs-ext4"],
        &["jbd2", "mbcache"],
        "pre: crc32c_generic",
    ),
    ("jbd2", &[], &[], ""),
    ("mbcache", &[], &[], ""),
    ("crc32c_generic", &["crypto-crc32c"], &[], ""),
    (
        "sctp",
        &["net-pf-2-proto-132", "net-pf-10-proto-132"],
        &["libcrc32c", "udp_tunnel"],
        "",
    ),
    ("libcrc32c", &[], &[], ""),
    ("udp_tunnel", &[], &[], ""),
    ("vsock", &["net-pf-40"], &[], ""),
    (
        "nf_tables",
        &["nfnetlink-subsys-10"],
        &["nfnetlink", "libcrc32c"],
        "",
    ),
    ("nfnetlink", &["net-pf-16-proto-12"], &[], ""),
    ("n_hdlc", &["tty-ldisc-13"], &[], ""),
    ("can", &["net-pf-29"], &[], ""),
    ("virtio_net", &["virtio:d00000001v*"], &["net_failover"], ""),
    ("net_failover", &[], &[], ""),
];

/// Builtin modules of the fixture kernel.
pub const BUILTIN: &[&str] = &["unix", "af_packet"];

pub fn fixture(root: &Path) -> KernelTree {
    tree_with(root, "6.12.0-test", MODULES, BUILTIN)
}

/// The Debian 6.12 cloud kernel of the lab cache, if fetched.
pub fn debian_tree() -> Option<KernelTree> {
    let dir = PathBuf::from(
        "/root/.cache/kgate-lab/kernels/linux-image-6.12.113+deb12-cloud-amd64-unsigned/lib/modules/6.12.113+deb12-cloud-amd64",
    );
    if !dir.is_dir() {
        eprintln!(
            "skipping: {} is absent (run `cargo xtask fetch`)",
            dir.display()
        );
        return None;
    }
    Some(
        KernelTree::load(&LoadOptions {
            modules_dir: dir,
            loaded: None,
            cache_dir: None,
            progress: None,
        })
        .unwrap(),
    )
}
