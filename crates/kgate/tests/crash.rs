//! Crash safety of `kgate apply --backend modprobe` and `kgate revert`
//! (issue 19, item 4): the real binary is killed with SIGKILL at every step
//! it passes (the debug build's `KGATE_TEST_CRASH_AT` hook, see
//! `kgate-apply`'s `crash.rs`), a leftover temporary file of the atomic
//! writer is planted (what a kill inside a write leaves), and then the next
//! `kgate revert` must leave exactly the tree from before kgate, and the
//! next `kgate apply` exactly the tree a clean apply leaves.
//!
//! Live sysctls are not touched under `--root`; their crash safety is
//! tested in `kgate-apply`'s unit tests, which kill a forked child.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

const CONF: &str = "etc/modprobe.d/kgate.conf";
const SYSCTL: &str = "etc/sysctl.d/90-kgate.conf";
const STATE: &str = "var/lib/kgate/state.json";

fn kgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
}

/// A root with a small kernel and the admin's own files next to kgate's.
fn fresh_root(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    let t = FixtureTree::new(&root, "6.99.0-test");
    t.module(
        "kernel/net/sctp/sctp.ko.xz",
        &["net-pf-2-proto-132"],
        &["libcrc32c"],
        "",
    );
    t.module("kernel/lib/libcrc32c.ko.xz", &[], &[], "");
    t.module("kernel/net/vmw_vsock/vsock.ko.xz", &["net-pf-40"], &[], "");
    t.module("kernel/fs/xfs/xfs.ko.xz", &["fs-xfs"], &["libcrc32c"], "");
    t.builtin(&["ext4"]);
    for (rel, text) in [
        ("etc/modprobe.d/other.conf", "blacklist pcspkr\n"),
        ("etc/sysctl.d/10-admin.conf", "kernel.kptr_restrict = 1\n"),
    ] {
        std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
        std::fs::write(root.join(rel), text).unwrap();
    }
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    root
}

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir(u32),
    File(u32, Vec<u8>),
    Link(PathBuf),
}

/// Every entry below `root`, symlinks not followed.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_owned();
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                out.insert(rel, Entry::Link(std::fs::read_link(&p).unwrap()));
            } else if m.is_dir() {
                out.insert(rel, Entry::Dir(mode));
                walk(root, &p, out);
            } else {
                out.insert(rel, Entry::File(mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// `snapshot` without kgate's state directory (revert leaves the empty
/// directory it created, as it leaves etc/modprobe.d).
fn without_state_dir(mut s: BTreeMap<PathBuf, Entry>) -> BTreeMap<PathBuf, Entry> {
    if matches!(s.get(Path::new("var/lib/kgate")), Some(Entry::Dir(_))) {
        s.remove(Path::new("var/lib/kgate"));
    }
    s
}

#[track_caller]
fn assert_same(what: &str, got: &BTreeMap<PathBuf, Entry>, want: &BTreeMap<PathBuf, Entry>) {
    if got == want {
        return;
    }
    let mut diff = String::new();
    for (k, v) in want {
        match got.get(k) {
            None => diff.push_str(&format!("  missing: {}\n", k.display())),
            Some(g) if g != v => diff.push_str(&format!("  differs: {}\n", k.display())),
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        diff.push_str(&format!("  extra:   {}\n", k.display()));
    }
    panic!("{what}: the tree is not as expected:\n{diff}");
}

fn apply_cmd(policy: &Path, root: &Path) -> Command {
    let mut c = kgate();
    c.arg("apply")
        .arg(policy)
        .args(["--backend", "modprobe", "--no-cache", "--root"])
        .arg(root);
    c
}

fn revert_cmd(root: &Path) -> Command {
    let mut c = kgate();
    c.args(["revert", "--root"]).arg(root);
    c
}

#[track_caller]
fn ok(what: &str, cmd: &mut Command) -> String {
    let out = cmd.env_remove("KGATE_TEST_CRASH_AT").output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The crash points `cmd` passes, in order (run to completion).
#[track_caller]
fn steps(cmd: &mut Command) -> Vec<String> {
    let out = cmd.env("KGATE_TEST_CRASH_AT", "-list-").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("kgate-crash-point: "))
        .map(str::to_owned)
        .collect()
}

/// Runs `cmd` and checks that it died of SIGKILL at `step`.
#[track_caller]
fn crash_at(cmd: &mut Command, step: &str) {
    let out = cmd.env("KGATE_TEST_CRASH_AT", step).output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "kgate did not die at {step}: {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a kill inside the atomic writer leaves: its temporary files.
fn plant_temp_files(root: &Path) {
    for (dir, name) in [
        ("etc/modprobe.d", ".kgate.conf.kgate-tmp.999999.0"),
        ("etc/sysctl.d", ".90-kgate.conf.kgate-tmp.999999.1"),
        ("var/lib/kgate", ".state.json.kgate-tmp.999999.2"),
    ] {
        let d = root.join(dir);
        if d.is_dir() {
            std::fs::write(d.join(name), "# Generated by kgate, cut sh").unwrap();
        }
    }
}

struct Policies {
    _dir: TempDir,
    p1: PathBuf,
    p2: PathBuf,
}

/// Two policies at fixed paths (the path is in the files' header): the
/// second allows vsock too and adds a sysctl, so both files change.
fn policies() -> Policies {
    let dir = TempDir::new("crash-policies");
    let p1 = dir.path().join("p1.toml");
    std::fs::write(
        &p1,
        "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"xfs\"]\n\
         [sysctl]\n\"dev.tty.ldisc_autoload\" = 0\n",
    )
    .unwrap();
    let p2 = dir.path().join("p2.toml");
    std::fs::write(
        &p2,
        "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"xfs\", \"vsock\"]\n\
         [sysctl]\n\"dev.tty.ldisc_autoload\" = 0\n\"vm.unprivileged_userfaultfd\" = 0\n",
    )
    .unwrap();
    Policies { _dir: dir, p1, p2 }
}

/// Kills `kgate apply` at each of its steps, from the original tree
/// (`before: None`) or from a tree where `before` was applied, then checks
/// that revert restores the original tree and that apply converges to a
/// clean apply (and that a revert after that is still exact).
fn apply_crash_at_every_step(name: &str, before: Option<&Path>, policy: &Path) {
    let dir = TempDir::new(name);
    let setup = |n: &str| {
        let root = fresh_root(dir.path(), n);
        if let Some(b) = before {
            ok("first apply", &mut apply_cmd(b, &root));
        }
        root
    };
    let original = snapshot(&fresh_root(dir.path(), "original"));
    let reference = setup("reference");
    ok("reference apply", &mut apply_cmd(policy, &reference));
    let applied = snapshot(&reference);

    let list = steps(&mut apply_cmd(policy, &setup("list")));
    assert!(
        list.iter().any(|s| s.contains(CONF)) && list.iter().any(|s| s.contains(SYSCTL)),
        "too few crash points: {list:?}"
    );
    eprintln!("apply steps: {list:?}");
    for (i, step) in list.iter().enumerate() {
        let root = setup(&format!("r{i}"));
        crash_at(&mut apply_cmd(policy, &root), step);
        plant_temp_files(&root);
        ok(
            &format!("revert after a crash at {step}"),
            &mut revert_cmd(&root),
        );
        assert_same(
            &format!("revert after a crash of apply at {step}"),
            &without_state_dir(snapshot(&root)),
            &original,
        );

        let root = setup(&format!("a{i}"));
        crash_at(&mut apply_cmd(policy, &root), step);
        plant_temp_files(&root);
        ok(
            &format!("apply after a crash at {step}"),
            &mut apply_cmd(policy, &root),
        );
        assert_same(
            &format!("apply after a crash of apply at {step}"),
            &snapshot(&root),
            &applied,
        );
        ok("revert", &mut revert_cmd(&root));
        assert_same(
            &format!("revert after apply after a crash of apply at {step}"),
            &without_state_dir(snapshot(&root)),
            &original,
        );
    }
}

/// Issue 19, item 4: a kill -9 at any step of a first apply is completed
/// by the next apply or revert.
#[test]
fn regression_issue19_kill_at_every_step_of_a_first_apply() {
    let p = policies();
    apply_crash_at_every_step("crash-first", None, &p.p1);
}

/// Issue 19, item 4: the same when the apply replaces an earlier one.
#[test]
fn regression_issue19_kill_at_every_step_of_a_re_apply() {
    let p = policies();
    apply_crash_at_every_step("crash-again", Some(&p.p1), &p.p2);
}

/// Issue 19, item 4: a kill -9 at any step of a revert is completed by the
/// next revert, and the next apply converges.
#[test]
fn regression_issue19_kill_at_every_step_of_a_revert() {
    let p = policies();
    let dir = TempDir::new("crash-revert");
    let setup = |n: &str| {
        let root = fresh_root(dir.path(), n);
        ok("apply", &mut apply_cmd(&p.p1, &root));
        root
    };
    let original = snapshot(&fresh_root(dir.path(), "original"));
    let applied = snapshot(&setup("reference"));
    let list = steps(&mut revert_cmd(&setup("list")));
    assert!(
        list.iter().any(|s| s.contains(CONF)),
        "too few crash points: {list:?}"
    );
    eprintln!("revert steps: {list:?}");
    for (i, step) in list.iter().enumerate() {
        let root = setup(&format!("r{i}"));
        crash_at(&mut revert_cmd(&root), step);
        plant_temp_files(&root);
        ok(
            &format!("revert after a crash at {step}"),
            &mut revert_cmd(&root),
        );
        assert_same(
            &format!("revert after a crash of revert at {step}"),
            &without_state_dir(snapshot(&root)),
            &original,
        );

        let root = setup(&format!("a{i}"));
        crash_at(&mut revert_cmd(&root), step);
        plant_temp_files(&root);
        ok(
            &format!("apply after a crash at {step}"),
            &mut apply_cmd(&p.p1, &root),
        );
        assert_same(
            &format!("apply after a crash of revert at {step}"),
            &snapshot(&root),
            &applied,
        );
    }
}

/// Issue 19, item 4: kgate's files without a manifest (what a crash of an
/// older kgate between the files and the manifest left) are recognised by
/// their header; an apply of the same policy records them instead of
/// saying "Nothing to change", so revert removes them.
#[test]
fn regression_issue19_identical_files_without_manifest_are_recorded() {
    let p = policies();
    let dir = TempDir::new("crash-nomanifest");
    let original = snapshot(&fresh_root(dir.path(), "original"));
    let root = fresh_root(dir.path(), "root");
    ok("apply", &mut apply_cmd(&p.p1, &root));
    let applied = snapshot(&root);
    std::fs::remove_file(root.join(STATE)).unwrap();

    // Revert does not know the files are unedited: it leaves them, says
    // so and how to fix it, and fails.
    let out = revert_cmd(&root).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(CONF) && stdout.contains("no state manifest records it"),
        "revert does not name kgate's file: {stdout}"
    );
    assert!(
        root.join(CONF).exists(),
        "revert removed an unrecorded file"
    );

    let out = ok("apply again", &mut apply_cmd(&p.p1, &root));
    assert!(!out.contains("Nothing to change"), "{out}");
    assert!(root.join(STATE).exists(), "{out}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(STATE)).unwrap()).unwrap();
    assert_eq!(m["files"].as_array().unwrap().len(), 2, "{m}");
    // The manifest says the files were there before (kgate's, unrecorded).
    let mut want = applied;
    want.remove(Path::new(STATE));
    let mut got = snapshot(&root);
    got.remove(Path::new(STATE));
    assert_same("apply without a manifest", &got, &want);
    let out = ok("apply a third time", &mut apply_cmd(&p.p1, &root));
    assert!(out.contains("Nothing to change"), "{out}");
    ok("revert", &mut revert_cmd(&root));
    assert_same(
        "revert after the manifest was recorded",
        &without_state_dir(snapshot(&root)),
        &original,
    );
}

/// An exclusive `flock` on `dir`, as a running `kgate apply` holds it.
fn hold_lock(dir: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).unwrap();
    // SAFETY: `f` is an open fd.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    f
}

/// Issue 19 (found while fixing item 4): two kgate runs on one root at once
/// each planned from the state the other was replacing. While another
/// kgate holds the state lock, apply and revert fail at once and change
/// nothing; when it is released they work.
#[test]
fn regression_issue19_concurrent_apply_and_revert_are_refused() {
    let p = policies();
    let dir = TempDir::new("crash-lock");
    let root = fresh_root(dir.path(), "root");
    std::fs::create_dir_all(root.join("var/lib/kgate")).unwrap();
    let before = snapshot(&root);
    let held = hold_lock(&root.join("var/lib/kgate"));
    for (what, mut cmd) in [
        ("apply", apply_cmd(&p.p1, &root)),
        ("revert", revert_cmd(&root)),
    ] {
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what} ran while locked: {stderr}"
        );
        assert!(
            stderr.contains("another kgate apply or revert is running")
                && stderr.contains("nothing was changed"),
            "{what}: {stderr}"
        );
        assert_same(what, &snapshot(&root), &before);
    }
    drop(held);
    ok("apply", &mut apply_cmd(&p.p1, &root));
    let _held = hold_lock(&root.join("var/lib/kgate"));
    let applied = snapshot(&root);
    let out = revert_cmd(&root).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_same("revert while locked", &snapshot(&root), &applied);
}
