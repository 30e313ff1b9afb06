use super::*;
use kgate_kernel::tree::LoadOptions;
use object::write::Object;
use object::{Architecture, BinaryFormat, SectionKind};
use std::os::unix::fs::symlink;

pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kgate-apply-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.0.join(rel)).unwrap()
    }

    fn exists(&self, rel: &str) -> bool {
        self.0.join(rel).symlink_metadata().is_ok()
    }

    /// Every path below the root, sorted (to prove nothing else changed).
    fn listing(&self) -> Vec<String> {
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

fn module_elf(modinfo: &str) -> Vec<u8> {
    let mut obj = Object::new(
        BinaryFormat::Elf,
        Architecture::X86_64,
        object::Endianness::Little,
    );
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

/// A kernel tree outside the test root: ext4 (+jbd2, mbcache), vsock,
/// sctp, snd-pcm (a dashed file name), and builtin `unix`.
fn tree(t: &TempDir) -> KernelTree {
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
        t.write(&format!("{dir}/{path}"), module_elf(info));
    }
    t.write(
        &format!("{dir}/modules.builtin"),
        "kernel/net/unix/unix.ko\n",
    );
    KernelTree::load(&LoadOptions {
        modules_dir: t.path().join(dir),
        loaded: None,
        cache_dir: None,
        progress: None,
    })
    .unwrap()
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

#[test]
fn renders_modprobe_and_sysctl_files() {
    let f = Fixture::new();
    let p = f.plan().unwrap();
    assert_eq!(
        p.blocked(),
        [
            "crc32c_intel",
            "libcrc32c",
            "sctp",
            "snd_pcm",
            "vsock",
            "xfs"
        ]
    );
    assert!(p.modules_supported());
    let conf = &p.files()[0];
    assert_eq!(conf.rel, MODPROBE_CONF);
    let lines: Vec<&str> = conf.new.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "# Generated by kgate {} for kernel 6.12.0 — do not edit; run kgate revert to remove.",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(lines[1], "# policy: /etc/kgate/policy.toml sha256:abc123");
    assert!(conf.new.contains("not `blacklist <module>`"));
    let installs: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(
        installs,
        [
            "install crc32c_intel /bin/false",
            "install libcrc32c /bin/false",
            "install sctp /bin/false",
            "install snd_pcm /bin/false",
            "install vsock /bin/false",
            "install xfs /bin/false"
        ]
    );
    let sysctl = &p.files()[1];
    assert_eq!(sysctl.rel, SYSCTL_CONF);
    assert_eq!(sysctl.new.lines().next(), Some(lines[0]));
    assert!(sysctl.new.ends_with(
        "sha256:abc123\nkernel.unprivileged_bpf_disabled = 2\ndev.tty.ldisc_autoload = 0\n"
    ));
    assert!(p.refusals().is_empty());
    assert!(p.sysctls().is_empty(), "no live sysctls for a non-/ root");
    assert!(initramfs_warning().contains("update-initramfs -u -k all"));
    assert!(initramfs_warning().contains("dracut -f"));
}

#[test]
fn invalid_sysctl_rejected() {
    let mut f = Fixture::new();
    f.sysctls = vec![("kernel.x".into(), "1\nkernel.modprobe = /tmp/evil".into())];
    assert!(matches!(
        f.plan().unwrap_err(),
        ApplyError::InvalidSysctl { .. }
    ));
    f.sysctls = vec![("../../etc".into(), "1".into())];
    assert!(matches!(
        f.plan().unwrap_err(),
        ApplyError::InvalidSysctl { .. }
    ));
}

#[test]
fn dry_run_plan_touches_nothing() {
    let f = Fixture::new();
    f.root.write("etc/modprobe.d/other.conf", "blacklist foo\n");
    let before = f.root.listing();
    let p = f.plan().unwrap();
    assert_eq!(f.root.listing(), before);
    assert!(p.files().iter().all(|c| c.action == Action::Create));
    let diff = p.diff();
    assert!(diff.contains("--- /dev/null\n+++ b/etc/modprobe.d/kgate.conf\n"));
    assert!(diff.contains("+install vsock /bin/false\n"));
    assert!(diff.contains("+++ b/etc/sysctl.d/90-kgate.conf\n"));
    assert!(diff.contains("+dev.tty.ldisc_autoload = 0\n"));
    assert!(!p.is_noop());
}

#[test]
fn apply_then_idempotent_then_revert() {
    let f = Fixture::new();
    f.root.write("etc/modprobe.d/other.conf", "blacklist foo\n");
    let r = f.apply().unwrap();
    assert_eq!(r.written.len(), 2);
    assert!(r.manifest_written);
    let conf = f.root.read(MODPROBE_CONF);
    assert!(conf.contains("install sctp /bin/false"));
    assert!(f
        .root
        .read(SYSCTL_CONF)
        .contains("kernel.unprivileged_bpf_disabled = 2"));
    let m: Manifest = serde_json::from_str(&f.root.read(STATE_FILE)).unwrap();
    assert_eq!(m.files.len(), 2);
    assert_eq!(m.files[0].path, MODPROBE_CONF);
    assert_eq!(m.files[0].sha256, sha256_hex(conf.as_bytes()));
    assert!(!m.files[0].replaced_existing);
    assert_eq!(m.policy_sha256, "abc123");

    // Second apply: nothing changes, nothing is rewritten.
    let paths = [MODPROBE_CONF, SYSCTL_CONF, STATE_FILE].map(|r| f.root.path().join(r));
    let before: Vec<_> = paths.iter().map(|p| mtime(p)).collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let p = f.plan().unwrap();
    assert!(p.files().iter().all(|c| c.action == Action::Unchanged));
    assert!(p.is_noop());
    assert_eq!(p.diff(), "");
    let r = apply(&p, f.root.path(), false).unwrap();
    assert!(r.written.is_empty() && !r.manifest_written);
    assert_eq!(r.unchanged.len(), 2);
    let after: Vec<_> = paths.iter().map(|p| mtime(p)).collect();
    assert_eq!(before, after);

    // Revert removes exactly kgate's files.
    let dry = revert(f.root.path(), true).unwrap();
    assert_eq!(dry.removed.len(), 2);
    assert!(f.root.exists(MODPROBE_CONF), "dry run removes nothing");
    let r = revert(f.root.path(), false).unwrap();
    assert_eq!(r.removed, vec![paths[0].clone(), paths[1].clone()]);
    assert!(r.modified.is_empty() && r.problems.is_empty());
    assert!(!f.root.exists(MODPROBE_CONF));
    assert!(!f.root.exists(SYSCTL_CONF));
    assert!(!f.root.exists(STATE_FILE));
    assert_eq!(f.root.read("etc/modprobe.d/other.conf"), "blacklist foo\n");
    let again = revert(f.root.path(), false).unwrap();
    assert!(!again.had_manifest);
    assert!(again.messages[0].starts_with("kgate has not applied anything here (no "));
}

#[test]
fn replace_shows_diff() {
    let mut f = Fixture::new();
    f.apply().unwrap();
    f.allowed.insert("vsock".into());
    let p = f.plan().unwrap();
    assert_eq!(p.files()[0].action, Action::Replace);
    assert_eq!(p.files()[1].action, Action::Unchanged);
    let diff = p.diff();
    assert!(diff.starts_with("--- a/etc/modprobe.d/kgate.conf\n+++ b/etc/modprobe.d/kgate.conf\n"));
    assert!(diff.contains("\n-install vsock /bin/false\n"));
    assert!(diff.contains("\n-# 6 modules blocked.\n+# 5 modules blocked.\n"));
    assert!(!diff.contains("sysctl.d"));
    apply(&p, f.root.path(), false).unwrap();
    let m: Manifest = serde_json::from_str(&f.root.read(STATE_FILE)).unwrap();
    // Recorded as of kgate's first write, when the path was free.
    assert!(!m.files[0].replaced_existing);
    assert_eq!(
        m.files[0].sha256,
        sha256_hex(f.root.read(MODPROBE_CONF).as_bytes())
    );
}

#[test]
fn revert_keeps_modified_file() {
    let f = Fixture::new();
    f.apply().unwrap();
    let edited = f.root.read(SYSCTL_CONF) + "kernel.kptr_restrict = 2\n";
    f.root.write(SYSCTL_CONF, &edited);
    let r = revert(f.root.path(), false).unwrap();
    assert_eq!(r.removed, vec![f.root.path().join(MODPROBE_CONF)]);
    assert_eq!(r.modified, vec![f.root.path().join(SYSCTL_CONF)]);
    assert!(r
        .messages
        .iter()
        .any(|m| m.ends_with("90-kgate.conf: modified since kgate wrote it; not removed")));
    assert_eq!(f.root.read(SYSCTL_CONF), edited);
}

#[test]
fn revert_never_removes_files_outside_its_set() {
    let f = Fixture::new();
    f.root.write("etc/passwd", "root:x:0:0\n");
    let m = Manifest {
        version: 1,
        files: vec![ManifestFile {
            path: "etc/passwd".into(),
            sha256: sha256_hex(b"root:x:0:0\n"),
            replaced_existing: false,
        }],
        ..Manifest::default()
    };
    f.root.write(STATE_FILE, serde_json::to_string(&m).unwrap());
    let r = revert(f.root.path(), false).unwrap();
    assert!(r.removed.is_empty());
    assert_eq!(r.problems.len(), 1);
    assert!(f.root.exists("etc/passwd"));
}

#[test]
fn symlinked_target_refused_nothing_written() {
    let f = Fixture::new();
    f.root.write("elsewhere/x.conf", "# mine\n");
    std::fs::create_dir_all(f.root.path().join("etc/modprobe.d")).unwrap();
    symlink(
        f.root.path().join("elsewhere/x.conf"),
        f.root.path().join(MODPROBE_CONF),
    )
    .unwrap();
    let before = f.root.listing();
    let e = f.plan().unwrap_err();
    assert!(
        e.to_string().ends_with(
            "etc/modprobe.d/kgate.conf is a symlink; kgate does not follow symlinks when writing security settings: remove it and re-run"
        ),
        "{e}"
    );
    assert_eq!(f.root.listing(), before);
    assert_eq!(f.root.read("elsewhere/x.conf"), "# mine\n");
}

#[test]
fn symlinked_directory_refused() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.root.path().join("real")).unwrap();
    std::fs::create_dir_all(f.root.path().join("etc")).unwrap();
    symlink("../real", f.root.path().join("etc/modprobe.d")).unwrap();
    let before = f.root.listing();
    let e = f.plan().unwrap_err();
    assert!(
        matches!(&e, ApplyError::File(AtomicError::Symlink { path }) if path.ends_with("etc/modprobe.d")),
        "{e}"
    );
    assert_eq!(f.root.listing(), before);
    // A symlinked /etc higher up is refused the same way.
    let g = Fixture::new();
    std::fs::create_dir_all(g.root.path().join("real/modprobe.d")).unwrap();
    symlink("real", g.root.path().join("etc")).unwrap();
    let e = g.plan().unwrap_err();
    assert!(
        matches!(&e, ApplyError::File(AtomicError::Symlink { path }) if path.ends_with("etc")),
        "{e}"
    );
}

#[test]
fn foreign_file_refused() {
    let f = Fixture::new();
    f.root
        .write(MODPROBE_CONF, "# admin's own file\ninstall foo /bin/true\n");
    let before = f.root.listing();
    let e = f.plan().unwrap_err();
    assert!(matches!(e, ApplyError::NotOurs { .. }), "{e}");
    assert!(e.to_string().contains("was not written by kgate"));
    assert_eq!(f.root.listing(), before);
    assert_eq!(
        f.root.read(MODPROBE_CONF),
        "# admin's own file\ninstall foo /bin/true\n"
    );
}

#[test]
fn foreign_file_appearing_after_plan_refused() {
    let f = Fixture::new();
    let p = f.plan().unwrap();
    f.root.write(SYSCTL_CONF, "kernel.x = 1\n");
    let e = apply(&p, f.root.path(), false).unwrap_err();
    assert!(matches!(e, ApplyError::NotOurs { .. }), "{e}");
    assert!(!f.root.exists(MODPROBE_CONF));
}

#[test]
fn loaded_and_boot_modules_refused() {
    let mut f = Fixture::new();
    f.loaded.insert("vsock".into());
    f.loaded.insert("ext4".into()); // allowed: fine
    f.boot = vec![BootModule {
        name: "sctp".into(),
        reason: "in initramfs /boot/initrd.img".into(),
    }];
    let p = f.plan().unwrap();
    assert_eq!(
        p.refusals(),
        [
            Refusal {
                module: "sctp".into(),
                why: "in initramfs /boot/initrd.img".into()
            },
            Refusal {
                module: "vsock".into(),
                why: "loaded now".into()
            }
        ]
    );
    let e = apply(&p, f.root.path(), false).unwrap_err();
    assert!(e.to_string().contains("vsock (loaded now)"), "{e}");
    assert!(!f.root.exists("etc"));
    let r = apply(&p, f.root.path(), true).unwrap();
    assert_eq!(r.forced.len(), 2);
    assert!(f
        .root
        .read(MODPROBE_CONF)
        .contains("install vsock /bin/false"));
}

#[test]
fn unwritable_second_target_refused_before_any_write() {
    let f = Fixture::new();
    // etc/sysctl.d is a regular file: creating 90-kgate.conf cannot work.
    f.root.write("etc/sysctl.d", "not a directory\n");
    let before = f.root.listing();
    let e = f.plan().unwrap_err();
    assert!(
        matches!(e, ApplyError::File(AtomicError::NotADirectory { .. })),
        "{e}"
    );
    assert_eq!(f.root.listing(), before);
}

#[test]
fn rollback_when_second_write_fails() {
    let mut f = Fixture::new();
    f.apply().unwrap();
    let old_conf = f.root.read(MODPROBE_CONF);
    let old_state = f.root.read(STATE_FILE);
    std::fs::remove_file(f.root.path().join(SYSCTL_CONF)).unwrap();
    f.allowed.insert("sctp".into());
    let p = f.plan().unwrap();
    assert_eq!(p.files()[0].action, Action::Replace);
    assert_eq!(p.files()[1].action, Action::Create);
    // The second file's write fails after the first succeeded.
    let e = apply_with_hook(&p, f.root.path(), false, &|rel| {
        if rel == SYSCTL_CONF {
            Err(std::io::Error::other("disk full"))
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(
        matches!(&e, ApplyError::RolledBack { rollback_problems, .. } if rollback_problems.is_empty()),
        "{e}"
    );
    assert!(e.to_string().contains("rolled back"));
    assert_eq!(f.root.read(MODPROBE_CONF), old_conf);
    assert!(!f.root.exists(SYSCTL_CONF));
    assert_eq!(f.root.read(STATE_FILE), old_state);

    // A failure writing the manifest removes freshly created files.
    let g = Fixture::new();
    let p = g.plan().unwrap();
    let e = apply_with_hook(&p, g.root.path(), false, &|rel| {
        if rel == STATE_FILE {
            Err(std::io::Error::other("disk full"))
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(matches!(e, ApplyError::RolledBack { .. }));
    assert!(!g.root.exists(MODPROBE_CONF) && !g.root.exists(SYSCTL_CONF));
}

#[test]
fn live_sysctls_set_and_restored() {
    let mut f = Fixture::new();
    f.sysctls
        .push(("kernel.io_uring_disabled".into(), "2".into()));
    let live = TempDir::new("live");
    live.write("proc/sys/kernel/unprivileged_bpf_disabled", "0\n");
    live.write("proc/sys/dev/tty/ldisc_autoload", "0\n");
    let p = plan_with_live(&f.input(), f.root.path(), Some(live.path().to_owned())).unwrap();
    assert_eq!(
        p.sysctls(),
        [SysctlChange {
            name: "kernel.unprivileged_bpf_disabled".into(),
            old: "0".into(),
            new: "2".into()
        }]
    );
    assert!(p.warnings()[0].starts_with("sysctl kernel.io_uring_disabled is not set live"));
    assert!(p
        .diff()
        .ends_with("live sysctls (/proc/sys):\n  kernel.unprivileged_bpf_disabled: 0 -> 2\n"));
    let r = apply(&p, f.root.path(), false).unwrap();
    assert_eq!(r.sysctls_set.len(), 1);
    assert_eq!(
        live.read("proc/sys/kernel/unprivileged_bpf_disabled"),
        "2\n"
    );
    // A second plan sees nothing to do but keeps the original value.
    let p2 = plan_with_live(&f.input(), f.root.path(), Some(live.path().to_owned())).unwrap();
    assert!(p2.is_noop());
    apply(&p2, f.root.path(), false).unwrap();
    let m: Manifest = serde_json::from_str(&f.root.read(STATE_FILE)).unwrap();
    assert_eq!(
        m.sysctls,
        [ManifestSysctl {
            name: "kernel.unprivileged_bpf_disabled".into(),
            previous: "0".into()
        }]
    );
    let r = revert_with_live(f.root.path(), false, Some(live.path())).unwrap();
    assert_eq!(
        r.sysctls_restored,
        [(
            "kernel.unprivileged_bpf_disabled".to_string(),
            "0".to_string()
        )]
    );
    assert_eq!(
        live.read("proc/sys/kernel/unprivileged_bpf_disabled"),
        "0\n"
    );
}

#[test]
fn live_sysctl_failure_rolls_back_everything() {
    let f = Fixture::new();
    let live = TempDir::new("live");
    live.write("proc/sys/kernel/unprivileged_bpf_disabled", "0\n");
    live.write("proc/sys/dev/tty/ldisc_autoload", "1\n");
    let p = plan_with_live(&f.input(), f.root.path(), Some(live.path().to_owned())).unwrap();
    assert_eq!(p.sysctls().len(), 2);
    let e = apply_with_hook(&p, f.root.path(), false, &|what| {
        if what == "sysctl dev.tty.ldisc_autoload" {
            Err(std::io::Error::from_raw_os_error(libc::EPERM))
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(matches!(e, ApplyError::RolledBack { .. }), "{e}");
    assert_eq!(
        live.read("proc/sys/kernel/unprivileged_bpf_disabled"),
        "0\n"
    );
    assert!(!f.root.exists(MODPROBE_CONF) && !f.root.exists(STATE_FILE));
}

#[test]
fn kernel_without_modules_writes_only_sysctls() {
    let f = Fixture::new();
    let empty = KernelTree::empty(f.kernels.path().join("none"));
    let input = ModprobeInput {
        tree: &empty,
        ..f.input()
    };
    let p = plan(&input, f.root.path()).unwrap();
    assert!(!p.modules_supported());
    assert_eq!(p.files().len(), 1);
    assert_eq!(p.files()[0].rel, SYSCTL_CONF);
    assert!(p.warnings()[0].contains("no loadable modules"));
    apply(&p, f.root.path(), false).unwrap();
    assert!(!f.root.exists(MODPROBE_CONF));
    assert!(f.root.exists(SYSCTL_CONF));
}

#[test]
fn damaged_manifest_is_an_error() {
    let f = Fixture::new();
    f.root.write(STATE_FILE, "{not json");
    assert!(matches!(
        revert(f.root.path(), false).unwrap_err(),
        ApplyError::Manifest { .. }
    ));
    assert!(f.root.exists(STATE_FILE));
}

#[test]
fn softdep_aliases_are_resolved_like_modprobe() {
    let mut f = Fixture::new();
    // libcrc32c's `softdep pre: crc32c` names an alias of crc32c_intel;
    // the closure resolves it the way modprobe does.
    f.allowed = f.tree.load_closure(["xfs"]);
    assert!(f.allowed.contains("crc32c_intel"), "{:?}", f.allowed);
    let p = f.plan().unwrap();
    assert_eq!(
        p.blocked(),
        ["snd_pcm", "ext4", "jbd2", "mbcache", "sctp", "vsock"]
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

#[test]
fn file_changed_after_plan_is_stale() {
    let mut f = Fixture::new();
    f.apply().unwrap();
    f.allowed.insert("vsock".into());
    let p = f.plan().unwrap();
    let edited = f.root.read(MODPROBE_CONF) + "# admin note\n";
    f.root.write(MODPROBE_CONF, &edited);
    let e = apply(&p, f.root.path(), false).unwrap_err();
    assert!(matches!(e, ApplyError::Stale { .. }), "{e}");
    assert_eq!(f.root.read(MODPROBE_CONF), edited);
}
