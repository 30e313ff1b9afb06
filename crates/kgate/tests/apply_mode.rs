//! `kgate apply --mode audit|enforce` on a fixture root with the modprobe
//! backend: the mode given on the command line wins over the file's, and
//! the file is not changed. (The bpf-lsm backend takes the same switched
//! policy; the lab checks its modes in force.)

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

const CONF: &str = "etc/modprobe.d/kgate.conf";

fn root_with_modules(dir: &Path) -> PathBuf {
    root_with_sctp_vsock(dir, &["var/lib"])
}

fn apply(policy: &Path, root: &Path, mode: Option<&str>) -> (bool, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kgate"));
    c.arg("apply")
        .arg(policy)
        .args([
            "--backend",
            "modprobe",
            "--no-cache",
            "--no-initramfs",
            "--root",
        ])
        .arg(root);
    if let Some(m) = mode {
        c.args(["--mode", m]);
    }
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const ENFORCING: &str = "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"sctp\"]\n";

#[test]
fn mode_audit_blocks_nothing_and_leaves_the_file() {
    let dir = TempDir::new("apply-mode-audit");
    let root = root_with_modules(dir.path());
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, ENFORCING).unwrap();
    let (ok, out) = apply(&policy, &root, Some("audit"));
    assert!(ok, "{out}");
    assert!(out.contains("put in audit (--mode)"), "{out}");
    assert!(out.contains("modprobe backend cannot audit"), "{out}");
    let conf = std::fs::read_to_string(root.join(CONF)).unwrap_or_default();
    assert!(
        !conf.contains("install vsock"),
        "audit blocked vsock:\n{conf}"
    );
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), ENFORCING);
}

#[test]
fn mode_enforce_blocks_what_an_audit_file_would_only_report() {
    let dir = TempDir::new("apply-mode-enforce");
    let root = root_with_modules(dir.path());
    let policy = dir.path().join("p.toml");
    let audit = ENFORCING.replace("\"enforce\"", "\"audit\"");
    std::fs::write(&policy, &audit).unwrap();
    // Without --mode: the file's audit, nothing blocked.
    let (ok, out) = apply(&policy, &root, None);
    assert!(ok, "{out}");
    let conf = std::fs::read_to_string(root.join(CONF)).unwrap_or_default();
    assert!(!conf.contains("install vsock"), "{conf}");
    // With --mode enforce: vsock is blocked, sctp is not.
    let (ok, out) = apply(&policy, &root, Some("enforce"));
    assert!(ok, "{out}");
    let conf = std::fs::read_to_string(root.join(CONF)).unwrap();
    assert!(conf.contains("install vsock /bin/false"), "{conf}");
    assert!(!conf.contains("install sctp"), "{conf}");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), audit);
}

#[test]
fn a_bad_mode_is_a_usage_error() {
    let dir = TempDir::new("apply-mode-bad");
    let root = root_with_modules(dir.path());
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, ENFORCING).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kgate"))
        .arg("apply")
        .arg(&policy)
        .args(["--backend", "modprobe", "--mode", "loud", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!root.join(CONF).exists());
}

/// What `kgate boot` falls back to: the policy as last enforced (after
/// `--mode`), recorded by apply and removed by revert.
#[test]
fn apply_records_the_last_good_policy_and_revert_removes_it() {
    let dir = TempDir::new("apply-last-good");
    let root = root_with_modules(dir.path());
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, ENFORCING).unwrap();
    let (ok, out) = apply(&policy, &root, Some("audit"));
    assert!(ok, "{out}");
    let toml = std::fs::read_to_string(root.join("var/lib/kgate/last-good.toml")).unwrap();
    assert!(toml.contains("mode = \"audit\""), "{toml}");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("var/lib/kgate/last-good.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["schema"], "kgate.last-good/1");
    assert_eq!(meta["mode"], "audit");
    assert_eq!(meta["backend"], "modprobe");
    assert_eq!(meta["source"], policy.display().to_string());
    // A dry run records nothing new.
    std::fs::write(&policy, ENFORCING.replace("sctp", "vsock")).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_kgate"));
    let out = c
        .arg("apply")
        .arg(&policy)
        .args([
            "--backend",
            "modprobe",
            "--no-cache",
            "--no-initramfs",
            "--dry-run",
            "--root",
        ])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("var/lib/kgate/last-good.toml")).unwrap(),
        toml
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(["revert", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!root.join("var/lib/kgate/last-good.toml").exists());
    assert!(!root.join("var/lib/kgate/last-good.json").exists());
}
