//! Planning: diffs, refusals and what is refused before any write.

use super::*;

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
            "etc/modprobe.d/kgate.conf is a symlink; kgate does not follow symlinks when writing files: remove it and re-run"
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
