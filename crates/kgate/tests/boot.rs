//! `kgate boot` (kgate.service) on a fixture root with the modprobe
//! backend: the policy file in the mode of the last apply, the fallback to
//! the last good policy, `kgate=off`, and no policy at all. The real-system
//! lab boots it under systemd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::*;

const CONF: &str = "etc/modprobe.d/kgate.conf";
const POLICY: &str = "etc/kgate/policy.toml";
const RECORD: &str = "run/kgate/boot.json";

fn host(dir: &Path, cmdline: &str) -> PathBuf {
    let root = root_with_sctp_vsock(dir, &["var/lib", "run", "etc/kgate", "proc"]);
    std::fs::write(root.join("proc/cmdline"), cmdline).unwrap();
    root
}

fn kgate(args: &[&str], root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn record(root: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root.join(RECORD)).unwrap()).unwrap()
}

fn blocks(root: &Path, module: &str) -> bool {
    std::fs::read_to_string(root.join(CONF))
        .unwrap_or_default()
        .contains(&format!("install {module} /bin/false"))
}

const ALLOW_SCTP: &str = "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"sctp\"]\n";
const ALLOW_VSOCK: &str = "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"vsock\"]\n";

fn apply(root: &Path, extra: &[&str]) {
    let policy = root.join(POLICY);
    let mut args = vec!["apply", policy.to_str().unwrap(), "--backend", "modprobe"];
    args.extend(["--no-cache", "--no-initramfs"]);
    args.extend(extra);
    let o = kgate(&args, root);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn boot_enforces_the_policy_file() {
    let dir = TempDir::new("boot-enforce");
    let root = host(dir.path(), "root=/dev/vda1 quiet");
    std::fs::write(root.join(POLICY), ALLOW_SCTP).unwrap();
    apply(&root, &[]);
    // The admin edits the file; the next boot puts the edit in force.
    std::fs::write(root.join(POLICY), ALLOW_VSOCK).unwrap();
    let o = kgate(&["boot"], &root);
    assert!(o.status.success(), "{}", text(&o));
    assert!(blocks(&root, "sctp") && !blocks(&root, "vsock"));
    assert_eq!(record(&root)["state"], "enforced");
}

#[test]
fn a_broken_policy_fails_the_unit_and_the_last_good_one_is_enforced() {
    let dir = TempDir::new("boot-broken");
    let root = host(dir.path(), "quiet");
    std::fs::write(root.join(POLICY), ALLOW_SCTP).unwrap();
    apply(&root, &[]);
    std::fs::write(root.join(POLICY), "version = 1\n[modules\nmode = ").unwrap();
    let o = kgate(&["boot"], &root);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("could not be put in force"), "{out}");
    assert!(out.contains("the last good policy"), "{out}");
    assert!(blocks(&root, "vsock") && !blocks(&root, "sctp"), "{out}");
    let r = record(&root);
    assert_eq!(r["state"], "last-good");
    assert!(r["reason"].as_str().unwrap().contains("policy.toml"), "{r}");
    // The fallback did not replace the record of the last good policy.
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("var/lib/kgate/last-good.json")).unwrap(),
    )
    .unwrap();
    assert!(meta["source"].as_str().unwrap().ends_with(POLICY), "{meta}");
}

#[test]
fn a_removed_policy_falls_back_too() {
    let dir = TempDir::new("boot-removed");
    let root = host(dir.path(), "quiet");
    std::fs::write(root.join(POLICY), ALLOW_SCTP).unwrap();
    apply(&root, &[]);
    std::fs::remove_file(root.join(POLICY)).unwrap();
    let o = kgate(&["boot"], &root);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(record(&root)["state"], "last-good");
    assert!(blocks(&root, "vsock"));
}

#[test]
fn kgate_off_enforces_nothing_and_says_so() {
    let dir = TempDir::new("boot-off");
    let root = host(dir.path(), "root=/dev/vda1 kgate=off");
    std::fs::write(root.join(POLICY), ALLOW_SCTP).unwrap();
    let o = kgate(&["boot"], &root);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("kgate=off"), "{}", text(&o));
    assert!(!root.join(CONF).exists());
    assert_eq!(record(&root)["state"], "off");
}

#[test]
fn no_policy_at_all_is_not_an_error() {
    let dir = TempDir::new("boot-none");
    let root = host(dir.path(), "quiet");
    let o = kgate(&["boot"], &root);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nothing to enforce"), "{}", text(&o));
    assert_eq!(record(&root)["state"], "nothing");
}

#[test]
fn boot_keeps_the_mode_of_the_last_apply() {
    let dir = TempDir::new("boot-mode");
    let root = host(dir.path(), "quiet");
    let audit = ALLOW_SCTP.replace("\"enforce\"", "\"audit\"");
    std::fs::write(root.join(POLICY), &audit).unwrap();
    apply(&root, &["--mode", "enforce"]);
    assert!(blocks(&root, "vsock"));
    let o = kgate(&["boot"], &root);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("put in enforce (--mode)"), "{}", text(&o));
    assert!(blocks(&root, "vsock"));
}
