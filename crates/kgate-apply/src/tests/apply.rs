//! Applying: writes, idempotence, rollback, live sysctls.

use super::*;

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
    let p = plan_with_live(
        &f.input(),
        f.root.path(),
        Some(live.path().to_owned()),
        true,
    )
    .unwrap();
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
    let p2 = plan_with_live(
        &f.input(),
        f.root.path(),
        Some(live.path().to_owned()),
        true,
    )
    .unwrap();
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
    let p = plan_with_live(
        &f.input(),
        f.root.path(),
        Some(live.path().to_owned()),
        true,
    )
    .unwrap();
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

/// Issue 13, 2a: the bpf-lsm backend's sysctl part writes sysctl.d and the
/// live values, no modprobe.d, and reverts exactly.
#[test]
fn sysctl_only_plan_sets_persists_and_reverts() {
    let f = Fixture::new();
    let live = TempDir::new("live");
    live.write("proc/sys/kernel/unprivileged_bpf_disabled", "0\n");
    live.write("proc/sys/dev/tty/ldisc_autoload", "1\n");
    let p = plan_with_live(
        &f.input(),
        f.root.path(),
        Some(live.path().to_owned()),
        false,
    )
    .unwrap();
    assert!(p.blocked().is_empty() && p.refusals().is_empty());
    assert_eq!(
        p.files().iter().map(|c| c.rel.as_str()).collect::<Vec<_>>(),
        [SYSCTL_CONF]
    );
    assert_eq!(p.sysctls().len(), 2);
    apply(&p, f.root.path(), false).unwrap();
    assert!(!f.root.exists(MODPROBE_CONF));
    assert!(f
        .root
        .read(SYSCTL_CONF)
        .contains("dev.tty.ldisc_autoload = 0"));
    assert_eq!(live.read("proc/sys/dev/tty/ldisc_autoload"), "0\n");
    assert_eq!(
        manifest_backend(f.root.path()).unwrap().as_deref(),
        Some("bpf-lsm")
    );
    let r = revert_with_live(f.root.path(), false, Some(live.path())).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(live.read("proc/sys/dev/tty/ldisc_autoload"), "1\n");
    assert_eq!(
        live.read("proc/sys/kernel/unprivileged_bpf_disabled"),
        "0\n"
    );
    assert!(!f.root.exists(SYSCTL_CONF) && !f.root.exists(STATE_FILE));
}
