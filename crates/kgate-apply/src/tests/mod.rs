//! Tests of the modprobe backend, by concern; this file holds the shared
//! fixture (a kernel tree and a test root).

pub(crate) use kgate_kernel::testutil::TempDir;

mod apply;
#[cfg(debug_assertions)]
mod kill;
mod plan;
mod render;
mod revert;

use crate::apply::apply_with_hook;
use crate::plan::plan_with_live;
use crate::revert::{revert_with_hook, revert_with_live};
use crate::*;

use kgate_kernel::testutil::{load_tree, modinfo_elf};
use std::os::unix::fs::symlink;

/// A kernel tree outside the test root: ext4 (+jbd2, mbcache), vsock,
/// sctp, snd-pcm (a dashed file name), and builtin `unix`.
pub(crate) fn tree(t: &TempDir) -> KernelTree {
    let dir = "modules/6.12.0";
    for (path, info) in [
        (
            "kernel/fs/ext4/ext4.ko",
            "name=ext4;alias=fs-ext4;depends=jbd2,mbcache",
        ),
        ("kernel/fs/jbd2/jbd2.ko", "name=jbd2"),
        ("kernel/fs/mbcache.ko", "name=mbcache"),
        (
            "kernel/net/vmw_vsock/vsock.ko",
            "name=vsock;alias=net-pf-40",
        ),
        (
            "kernel/net/sctp/sctp.ko",
            "name=sctp;alias=net-pf-2-proto-132",
        ),
        ("kernel/sound/core/snd-pcm.ko", "alias=snd-pcm-x"),
        (
            "kernel/fs/xfs/xfs.ko",
            "name=xfs;alias=fs-xfs;depends=libcrc32c",
        ),
        (
            "kernel/lib/libcrc32c.ko",
            "name=libcrc32c;softdep=pre: crc32c",
        ),
        (
            "kernel/arch/x86/crypto/crc32c-intel.ko",
            "name=crc32c_intel;alias=crypto-crc32c;alias=crc32c",
        ),
    ] {
        t.write(&format!("{dir}/{path}"), modinfo_elf(info));
    }
    t.write(
        &format!("{dir}/modules.builtin"),
        "kernel/net/unix/unix.ko\n",
    );
    load_tree(&t.path().join(dir))
}

struct Fixture {
    kernels: TempDir,
    root: TempDir,
    tree: KernelTree,
    allowed: BTreeSet<String>,
    sysctls: Vec<(String, String)>,
    loaded: BTreeSet<String>,
    boot: Vec<BootModule>,
}

impl Fixture {
    fn new() -> Fixture {
        let kernels = TempDir::new("kernels");
        let tree = tree(&kernels);
        let allowed = tree.load_closure(["ext4"]);
        Fixture {
            root: TempDir::new("root"),
            kernels,
            tree,
            allowed,
            sysctls: vec![
                ("kernel.unprivileged_bpf_disabled".into(), "2".into()),
                ("dev.tty.ldisc_autoload".into(), "0".into()),
            ],
            loaded: BTreeSet::new(),
            boot: Vec::new(),
        }
    }

    fn input(&self) -> ModprobeInput<'_> {
        ModprobeInput {
            tree: &self.tree,
            allowed: &self.allowed,
            sysctls: &self.sysctls,
            policy_hash: "abc123",
            policy_path: "/etc/kgate/policy.toml",
            loaded: &self.loaded,
            boot: &self.boot,
            kernel_release: "6.12.0",
        }
    }

    fn plan(&self) -> Result<Plan, ApplyError> {
        plan(&self.input(), self.root.path())
    }

    fn apply(&self) -> Result<ApplyReport, ApplyError> {
        let p = self.plan()?;
        apply(&p, self.root.path(), false)
    }
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}
