//! Test helpers: small module trees built with `kgate_kernel::testutil`
//! (which also provides the temporary directories).

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::Path;

use kgate_kernel::testutil::{load_tree, FixtureTree};
use kgate_kernel::tree::KernelTree;

pub use kgate_kernel::testutil::TempDir;

/// One fixture module: name, aliases, hard dependencies, softdep string.
pub type Spec<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a str);

/// Write modules (and builtin names) under `root/lib/modules/version` and
/// load the tree.
pub fn tree_with(root: &Path, version: &str, modules: &[Spec<'_>], builtin: &[&str]) -> KernelTree {
    let tree = FixtureTree::new(root, version);
    for (name, aliases, depends, softdep) in modules {
        tree.module(&format!("kernel/{name}.ko"), aliases, depends, softdep);
    }
    tree.builtin(builtin);
    tree.load()
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

/// The Debian 6.12 cloud kernel of the lab cache, if fetched (skips
/// loudly without it; fails under `KGATE_REQUIRE_KERNELS=1`).
#[track_caller]
pub fn debian_tree() -> Option<KernelTree> {
    let root =
        kgate_kernel::testutil::debian_kernel("linux-image-6.12.113+deb12-cloud-amd64-unsigned")?;
    Some(load_tree(
        &root.join("lib/modules/6.12.113+deb12-cloud-amd64"),
    ))
}
