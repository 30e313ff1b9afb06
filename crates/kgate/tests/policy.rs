//! CLI tests of `kgate freeze`, `kgate policy`, `kgate apply --backend
//! modprobe` and `kgate revert` on fixture roots. What the kernel itself
//! does with the result is tested in the kernel lab
//! (lab/scenarios/50-modprobe_backend.sh).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::*;

fn kgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
}

#[track_caller]
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out: Output = cmd.output().expect("failed to start kgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(cmd: &mut Command) -> String {
    let (code, stdout, stderr) = run(cmd);
    assert_eq!(
        code, 0,
        "kgate failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// A small kernel: sctp (hard dep libcrc32c, whose softdep names the alias
/// crc32c), vsock, xfs, tun and a builtin ext4.
fn fixture(root: &Path, version: &str) -> FixtureTree {
    let t = FixtureTree::new(root, version);
    t.module(
        "kernel/net/sctp/sctp.ko.xz",
        &["net-pf-2-proto-132"],
        &["libcrc32c"],
        "",
    );
    t.module("kernel/lib/libcrc32c.ko.xz", &[], &[], "pre: crc32c");
    t.module(
        "kernel/arch/x86/crypto/crc32c-intel.ko.xz",
        &["crc32c", "crypto-crc32c"],
        &[],
        "",
    );
    t.module("kernel/net/vmw_vsock/vsock.ko.xz", &["net-pf-40"], &[], "");
    t.module("kernel/fs/xfs/xfs.ko.xz", &["fs-xfs"], &["libcrc32c"], "");
    t.module(
        "kernel/drivers/net/tun.ko.xz",
        &["devname:net/tun", "char-major-10-200"],
        &[],
        "",
    );
    t.builtin(&["ext4"]);
    t
}

fn args<'a>(cmd: &'a mut Command, root: &Path) -> &'a mut Command {
    cmd.arg("--no-cache").arg("--root").arg(root)
}

#[test]
fn freeze_loaded_file_empty_means_none_loaded_but_junk_is_an_error() {
    let dir = TempDir::new("freeze-empty");
    let root = dir.path().join("root");
    fixture(&root, "6.99.0-test");
    // /proc/modules of a host that has loaded nothing is empty.
    let empty = dir.path().join("modules");
    std::fs::write(&empty, "").unwrap();
    let out = ok(args(kgate().arg("freeze"), &root)
        .arg("--loaded")
        .arg(&empty));
    assert!(
        out.contains("[modules]\nmode = \"enforce\"\nroot = \"allow\"\nallow = []"),
        "{out}"
    );
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "   \n!!! %%%\n").unwrap();
    let out = args(kgate().arg("freeze"), &root)
        .arg("--loaded")
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no module names found"), "{err}");
}

#[test]
fn freeze_allows_loaded_modules_their_closure_and_builtins() {
    let dir = TempDir::new("freeze");
    let root = dir.path().join("root");
    fixture(&root, "6.99.0-test");
    let lsmod = dir.path().join("lsmod");
    std::fs::write(&lsmod, "Module                  Size  Used by\nxfs 100 0\n").unwrap();
    let policy = dir.path().join("p.toml");
    let out = ok(args(kgate().arg("freeze"), &root)
        .arg("--loaded")
        .arg(&lsmod)
        .arg("-o")
        .arg(&policy));
    assert!(out.contains("xfs                          loaded"), "{out}");
    assert!(
        out.contains("libcrc32c                    dependency of xfs"),
        "{out}"
    );
    // The softdep names an alias; it resolves to crc32c_intel as in modprobe.
    assert!(
        out.contains("crc32c_intel                 soft dependency of libcrc32c"),
        "{out}"
    );
    assert!(out.contains("3 loadable modules blocked"), "{out}");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(
        // xfs is also mountable in a user namespace: freeze says so (issue 19).
        text.contains(r#"{ name = "xfs", reason = "loaded; WARNING: reachable by any user in a user namespace through mount -t xfs (fs-xfs)" }"#),
        "{text}"
    );
    assert!(
        text.contains("\"kernel.unprivileged_bpf_disabled\" = 2"),
        "{text}"
    );

    let check = ok(args(kgate().args(["policy", "check"]).arg(&policy), &root));
    assert!(
        check.contains("valid for kernel 6.99.0-test (0 warning(s))"),
        "{check}"
    );

    let explain = ok(args(
        kgate()
            .args(["policy", "explain"])
            .arg(&policy)
            .arg("net-pf-40"),
        &root,
    ));
    assert!(
        explain.contains("vsock: BLOCKED — not in modules.allow"),
        "{explain}"
    );
    assert!(
        explain.contains("socket family 40 (vsock): denied"),
        "{explain}"
    );
    let explain = ok(args(
        kgate()
            .args(["policy", "explain"])
            .arg(&policy)
            .arg("crc32c_intel"),
        &root,
    ));
    assert!(
        explain.contains("crc32c_intel: ALLOWED — soft dependency of libcrc32c"),
        "{explain}"
    );

    let diff: Value = serde_json::from_str(&ok(args(
        kgate()
            .args(["policy", "diff", "--format", "json"])
            .arg(&policy),
        &root,
    )))
    .unwrap();
    assert_eq!(diff["schema"], "kgate.policy-diff/1");
    assert_eq!(diff["blocked"], serde_json::json!(["sctp", "tun", "vsock"]));
    assert!(
        diff["removed"]["text_bytes"].as_u64().unwrap() > 0,
        "{diff}"
    );
    assert!(diff["removed"]["modules"].as_u64().unwrap() >= 2, "{diff}");
}

#[test]
fn invalid_policies_are_rejected_with_file_line_and_key() {
    let dir = TempDir::new("check");
    let root = dir.path().join("root");
    fixture(&root, "6.99.0-test");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "version = 1\n[modules]\nmode = 1\nalow = []\n[sysctl]\n\"kernel.io_uring_disabled\" = 7\n",
    )
    .unwrap();
    let (code, out, _) = run(args(kgate().args(["policy", "check"]).arg(&bad), &root));
    assert_eq!(code, 1, "{out}");
    let bad_s = bad.display().to_string();
    assert!(out.contains(&format!("{bad_s}:3:8: modules.mode")), "{out}");
    assert!(out.contains(&format!("{bad_s}:4:1: modules")), "{out}");
    assert!(out.contains("did you mean `allow`"), "{out}");
    assert!(out.contains("sysctl.\"kernel.io_uring_disabled\""), "{out}");
    assert!(out.contains("nothing was applied"), "{out}");

    // Unknown module names are warnings against the target kernel.
    let warn = dir.path().join("warn.toml");
    std::fs::write(
        &warn,
        "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"sctpp\"]\n",
    )
    .unwrap();
    let out = ok(args(kgate().args(["policy", "check"]).arg(&warn), &root));
    assert!(out.contains("warn.toml:4:"), "{out}");
    assert!(out.contains("did you mean `sctp`"), "{out}");
    let (code, _, _) = run(args(
        kgate()
            .args(["policy", "check", "--deny-warnings"])
            .arg(&warn),
        &root,
    ));
    assert_eq!(code, 1);
}

#[test]
fn apply_dry_run_apply_again_and_revert_exactly() {
    let dir = TempDir::new("apply");
    let root = dir.path().join("root");
    fixture(&root, "6.99.0-test");
    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"xfs\"]\n[sockets]\nmode = \"enforce\"\nallow = [\"inet\"]\n[sysctl]\n\"dev.tty.ldisc_autoload\" = 0\n",
    )
    .unwrap();
    let conf = root.join("etc/modprobe.d/kgate.conf");
    let sysctl = root.join("etc/sysctl.d/90-kgate.conf");

    let dry = ok(args(
        kgate().arg("apply").arg(&policy).arg("--dry-run"),
        &root,
    ));
    assert!(dry.contains("+install sctp /bin/false"), "{dry}");
    assert!(dry.contains("+dev.tty.ldisc_autoload = 0"), "{dry}");
    assert!(dry.contains("Dry run: nothing was changed."), "{dry}");
    assert!(!root.join("etc").exists(), "dry run wrote something");
    // Every section has a row: mechanism and state, never silently skipped.
    assert!(dry.contains("\nSECTION"), "{dry}");
    for (section, state) in [
        ("modules ", "would be enforced (3 modules blocked"),
        (
            "sockets ",
            "NOT enforced: no hook with the modprobe backend",
        ),
        ("splice ", "off (mode = \"off\" in the policy)"),
        ("sysctl ", "would be set (dev.tty.ldisc_autoload=0)"),
        ("seccomp ", "not host-wide"),
    ] {
        assert!(
            dry.lines()
                .any(|l| l.starts_with(section) && l.contains(state)),
            "{section}: {dry}"
        );
    }
    let j: Value = serde_json::from_str(&ok(args(
        kgate()
            .arg("apply")
            .arg(&policy)
            .args(["--dry-run", "--format", "json"]),
        &root,
    )))
    .unwrap();
    assert_eq!(j["schema"], "kgate.apply/1");
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["error"], Value::Null);
    let sections: Vec<&str> = j["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["section"].as_str().unwrap())
        .collect();
    assert_eq!(
        sections,
        ["modules", "sockets", "splice", "userns", "sysctl", "seccomp"]
    );
    assert!(!root.join("etc").exists(), "dry run wrote something");

    let out = ok(args(kgate().arg("apply").arg(&policy), &root));
    assert!(
        out.lines()
            .any(|l| l.starts_with("sysctl ") && l.contains("set (dev.tty.ldisc_autoload=0)")),
        "{out}"
    );
    assert!(out.contains("update-initramfs -u -k all"), "{out}");
    let text = std::fs::read_to_string(&conf).unwrap();
    for blocked in ["sctp", "tun", "vsock"] {
        assert!(
            text.contains(&format!("\ninstall {blocked} /bin/false\n")),
            "{text}"
        );
    }
    for allowed in ["xfs", "libcrc32c", "crc32c_intel", "ext4"] {
        assert!(!text.contains(&format!("install {allowed} ")), "{text}");
    }
    assert!(text.starts_with("# Generated by kgate"), "{text}");
    let mtime = std::fs::metadata(&conf).unwrap().modified().unwrap();

    // Idempotent: nothing rewritten.
    let again = ok(args(kgate().arg("apply").arg(&policy), &root));
    assert!(again.contains("Nothing to change"), "{again}");
    assert_eq!(std::fs::metadata(&conf).unwrap().modified().unwrap(), mtime);

    // The survey of the root now sees the block.
    let s: Value = serde_json::from_str(&ok(args(
        kgate().args(["survey", "--format", "json"]),
        &root,
    )))
    .unwrap();
    assert_eq!(s["summary"]["modules_blocked_by_modprobe_conf"], 3);

    // Revert removes exactly kgate's files.
    let other = root.join("etc/modprobe.d/other.conf");
    std::fs::write(&other, "blacklist pcspkr\n").unwrap();
    let out = ok(kgate().args(["revert", "--root"]).arg(&root));
    assert!(out.contains("removed"), "{out}");
    assert!(!conf.exists() && !sysctl.exists());
    assert!(!root.join("var/lib/kgate/state.json").exists());
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "blacklist pcspkr\n"
    );
    let out = ok(kgate().args(["revert", "--root"]).arg(&root));
    assert!(out.contains("has not applied anything"), "{out}");
}

#[test]
fn apply_refuses_to_block_boot_modules_and_symlinks_changing_nothing() {
    let dir = TempDir::new("refuse");
    let root = dir.path().join("root");
    fixture(&root, "6.99.0-test");
    // The root filesystem is xfs.
    let proc_self = root.join("proc/self");
    std::fs::create_dir_all(&proc_self).unwrap();
    std::fs::write(
        proc_self.join("mountinfo"),
        "22 1 253:0 / / rw,relatime shared:1 - xfs /dev/vda1 rw\n",
    )
    .unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"vsock\"]\n",
    )
    .unwrap();
    let (code, out, err) = run(args(kgate().arg("apply").arg(&policy), &root));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("xfs: root filesystem (xfs)"), "{out}");
    assert!(
        err.contains("refusing to block") && err.contains("nothing was changed"),
        "{err}"
    );
    assert!(
        !root.join("etc").exists(),
        "a refused apply wrote something"
    );

    // --force applies anyway.
    ok(args(
        kgate().arg("apply").arg(&policy).arg("--force"),
        &root,
    ));
    ok(kgate().args(["revert", "--root"]).arg(&root));

    // A symlinked target is refused before anything is written.
    let target = dir.path().join("elsewhere.conf");
    std::fs::create_dir_all(root.join("etc/modprobe.d")).unwrap();
    std::os::unix::fs::symlink(&target, root.join("etc/modprobe.d/kgate.conf")).unwrap();
    let allow_all = dir.path().join("all.toml");
    std::fs::write(&allow_all, "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"xfs\"]\n[sysctl]\n\"vm.unprivileged_userfaultfd\" = 0\n").unwrap();
    let (code, _, err) = run(args(kgate().arg("apply").arg(&allow_all), &root));
    assert_eq!(code, 1);
    assert!(err.contains("symlink"), "{err}");
    assert!(!target.exists());
    assert!(!root.join("etc/sysctl.d/90-kgate.conf").exists());
}

#[test]
fn freeze_from_carries_a_policy_to_a_new_kernel() {
    let dir = TempDir::new("carry");
    let root = dir.path().join("root");
    fixture(&root, "6.99.0-old");
    let new = fixture(&root, "6.99.1-new");
    // In the new kernel xfs gained a dependency, and a new module appeared.
    new.module(
        "kernel/fs/xfs/xfs.ko.xz",
        &["fs-xfs"],
        &["libcrc32c", "fs_helper"],
        "",
    );
    new.module("kernel/fs/fs_helper.ko.xz", &[], &[], "");
    new.module("kernel/net/newproto.ko.xz", &["net-pf-46"], &[], "");
    let lsmod = dir.path().join("lsmod");
    std::fs::write(&lsmod, "xfs 1 0\n").unwrap();
    let old_policy = dir.path().join("old.toml");
    ok(kgate()
        .args(["freeze", "--no-cache", "--root"])
        .arg(&root)
        .args(["--kernel", "6.99.0-old", "--loaded"])
        .arg(&lsmod)
        .arg("-o")
        .arg(&old_policy));
    let new_policy = dir.path().join("new.toml");
    let out = ok(kgate()
        .args(["freeze", "--no-cache", "--root"])
        .arg(&root)
        .args(["--kernel", "6.99.1-new", "--from"])
        .arg(&old_policy)
        .arg("-o")
        .arg(&new_policy));
    assert!(out.contains("fs_helper (needed by xfs)"), "{out}");
    assert!(
        out.contains("modules new in the new kernel (blocked) (1): newproto"),
        "{out}"
    );
    let text = std::fs::read_to_string(&new_policy).unwrap();
    assert!(text.contains("kernel = \"6.99.1-new\""), "{text}");
    let explain = ok(kgate()
        .args(["policy", "explain", "--no-cache", "--root"])
        .arg(&root)
        .args(["--kernel", "6.99.1-new"])
        .arg(&new_policy)
        .arg("fs_helper"));
    assert!(
        explain.contains("fs_helper: ALLOWED — dependency of xfs"),
        "{explain}"
    );
}

/// On a host where BPF-LSM cannot attach (this project's development VM
/// refuses LSM programs), `apply --backend bpf-lsm` says why and offers the
/// modprobe backend; it never silently does nothing. `--dry-run` keeps the
/// test harmless on a host where BPF-LSM does work; there (root, `bpf` in
/// /sys/kernel/security/lsm) it must succeed, and only there.
#[test]
fn bpf_lsm_unavailable_says_why_and_offers_modprobe() {
    let dir = TempDir::new("bpf-unavailable");
    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        "version = 1\n[sockets]\nmode = \"enforce\"\nallow = [\"unix\"]\n",
    )
    .unwrap();
    let (code, out, err) = run(kgate()
        .args(["apply", "--backend", "bpf-lsm", "--dry-run"])
        .arg(&policy));
    if let Some(lsm) = root_with_bpf_lsm() {
        assert_eq!(
            code, 0,
            "root with BPF-LSM active (lsm: {lsm}): the dry run must succeed: {out}{err}"
        );
        assert!(out.contains("Dry run"), "{out}");
        eprintln!("BPF-LSM works on this host; the unavailable path was not exercised");
        return;
    }
    assert_eq!(code, 1, "not root with BPF-LSM active, yet: {out}{err}");
    assert!(err.contains("BPF-LSM"), "{err}");
    assert!(err.contains("--backend modprobe"), "{err}");
    assert!(!Path::new(kgate_bpf_pin_dir()).join("link_modules").exists());
    // Without --backend, the default on a live host is bpf-lsm: same answer.
    let (code, _, err2) = run(kgate().args(["apply", "--dry-run"]).arg(&policy));
    assert_eq!(code, 1);
    assert!(err2.contains("--backend modprobe"), "{err2}");
}

fn kgate_bpf_pin_dir() -> &'static str {
    "/sys/fs/bpf/kgate"
}

/// Issue 19, item 1: a module name is written into modprobe.d, so a name
/// with a space (`ext4 /tmp/x`) or a newline was a command injection
/// (`install ext4 /tmp/x /bin/false` runs /tmp/x as root on every request
/// for ext4). Names that are not what the kernel and kmod accept are
/// dropped with a reported problem, and every line kgate writes is
/// `install NAME /bin/false`.
#[test]
fn issue19_hostile_module_names_never_reach_modprobe_conf() {
    use kgate_kernel::testutil::modinfo_elf;
    let dir = TempDir::new("hostile-names");
    let root = dir.path().join("root");
    let t = fixture(&root, "6.99.0-test");
    // `.modinfo` name= with a space: the injection of the issue.
    t.write_bytes(
        "kernel/fs/evil.ko",
        &modinfo_elf("name=ext4 /tmp/x;alias=fs-evil"),
    );
    // A newline: whole extra directives.
    t.write_bytes(
        "kernel/fs/evil2.ko",
        &modinfo_elf("name=evil2\ninstall vsock /tmp/y;alias=fs-evil2"),
    );
    // No name= at all, so the name comes from a file name with a space.
    t.write_bytes("kernel/fs/bad name.ko", &modinfo_elf("alias=fs-bad"));
    // A builtin name with a space.
    t.write(
        "modules.builtin",
        "kernel/builtin/ext4.ko\nkernel/builtin/ext4 x.ko\n",
    );
    // Longer than the kernel's MODULE_NAME_LEN - 1 = 55 bytes.
    let long = "a".repeat(56);
    t.write_bytes(
        &format!("kernel/fs/{long}.ko"),
        &modinfo_elf(&format!("name={long}")),
    );

    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"xfs\"]\n",
    )
    .unwrap();
    ok(args(
        kgate()
            .arg("apply")
            .arg(&policy)
            .args(["--backend", "modprobe"]),
        &root,
    ));
    let conf = std::fs::read_to_string(root.join("etc/modprobe.d/kgate.conf")).unwrap();
    for line in conf.lines().filter(|l| !l.starts_with('#')) {
        let parts: Vec<&str> = line.split(' ').collect();
        assert!(
            parts.len() == 3
                && parts[0] == "install"
                && parts[2] == "/bin/false"
                && parts[1]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "line {line:?} in\n{conf}"
        );
    }
    for bad in ["/tmp/x", "/tmp/y", "bad name", long.as_str()] {
        assert!(!conf.contains(bad), "{bad}: {conf}");
    }
    assert!(conf.contains("\ninstall sctp /bin/false\n"), "{conf}");
    // Exit status 3: the survey found module files it could not use.
    let (code, out, err) = run(args(kgate().args(["survey", "--format", "json"]), &root));
    assert_eq!(code, 3, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    let problems = s["problems"].to_string();
    for path in [
        "kernel/fs/evil.ko",
        "kernel/fs/evil2.ko",
        "kernel/fs/bad name.ko",
        "modules.builtin",
    ] {
        assert!(
            problems.contains(&format!("\"path\":\"{path}\"")),
            "{path}: {problems}"
        );
    }
    assert!(problems.contains(&long), "{problems}");
    let names = s["modules"].to_string();
    for bad in [
        "ext4 /tmp/x",
        "install vsock",
        "bad name",
        "ext4 x",
        long.as_str(),
    ] {
        assert!(!names.contains(bad), "{bad} surveyed as a module: {names}");
    }
}

/// Issue 19, item 7: `kgate freeze` allowlisted every loaded module as
/// "loaded", so a module an unprivileged user had autoloaded before the
/// freeze (`socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)` loads sctp) became
/// allowed without a word. Freeze names the trigger of each such module,
/// in its report and in the policy's reason, and `--exclude-reachable`
/// leaves them out, except what a kept module needs.
#[test]
fn issue19_freeze_flags_loaded_modules_unprivileged_users_can_load() {
    let dir = TempDir::new("freeze-reachable");
    let root = dir.path().join("root");
    let t = fixture(&root, "6.99.0-test");
    // No alias: nothing but a root modprobe loads it; it needs vsock.
    t.module("kernel/drivers/misc/keeper.ko.xz", &[], &["vsock"], "");
    let lsmod = dir.path().join("lsmod");
    std::fs::write(
        &lsmod,
        "sctp 100 0\nxfs 100 0\nkeeper 10 0\nvsock 10 1 keeper\n",
    )
    .unwrap();
    let freeze = |extra: &[&str], out: &Path| {
        ok(args(kgate().arg("freeze"), &root)
            .arg("--loaded")
            .arg(&lsmod)
            .args(extra)
            .arg("-o")
            .arg(out))
    };

    let policy = dir.path().join("p.toml");
    let out = freeze(&[], &policy);
    let sctp = "sctp: loaded, and reachable by any user through \
                socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) (net-pf-2-proto-132)";
    assert!(out.contains(sctp), "{out}");
    assert!(
        out.contains("xfs: loaded, and reachable by any user in a user namespace through mount -t xfs (fs-xfs)"),
        "{out}"
    );
    assert!(
        out.contains(
            "vsock: loaded, and reachable by any user through socket(AF_VSOCK, …) (net-pf-40)"
        ),
        "{out}"
    );
    assert!(!out.contains("keeper: loaded, and reachable"), "{out}");
    assert!(out.contains("--exclude-reachable"), "{out}");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(
        text.contains("name = \"sctp\", reason = \"loaded; WARNING: reachable by any user through socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) (net-pf-2-proto-132)"),
        "{text}"
    );

    let strict = dir.path().join("strict.toml");
    let out = freeze(&["--exclude-reachable"], &strict);
    assert!(
        out.contains("Excluded 2 loaded module(s) that any user can get loaded: sctp, xfs"),
        "{out}"
    );
    assert!(
        out.contains("Kept vsock although any user can get it loaded: dependency of keeper"),
        "{out}"
    );
    let text = std::fs::read_to_string(&strict).unwrap();
    assert!(!text.contains("\"sctp\""), "{text}");
    assert!(!text.contains("\"xfs\""), "{text}");
    assert!(text.contains("name = \"keeper\""), "{text}");
    // The policy blocks what was excluded.
    let conf_root = dir.path().join("root");
    ok(args(kgate().arg("apply").arg(&strict), &conf_root));
    let conf = std::fs::read_to_string(conf_root.join("etc/modprobe.d/kgate.conf")).unwrap();
    for m in ["sctp", "xfs"] {
        assert!(
            conf.contains(&format!("\ninstall {m} /bin/false\n")),
            "{conf}"
        );
    }
    assert!(!conf.contains("install vsock "), "{conf}");
}

/// `KGATE_TIMES_FD=N` writes one `KGATE-TIME` line to descriptor N, which
/// the caller opened, and nothing when N is not open (what the lab's
/// guests use to show where their time goes).
#[test]
fn times_fd_reports_the_run_on_the_callers_descriptor() {
    let exe = env!("CARGO_BIN_EXE_kgate");
    let out = Command::new("sh")
        .args([
            "-c",
            "\"$0\" policy check /nonexistent.toml 9>&1 >/dev/null 2>&1",
            exe,
        ])
        .env("KGATE_TIMES_FD", "9")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    // A run that fails reports too (kgate said why on stderr).
    assert!(!out.status.success(), "{out:?}");
    let mut w = line.split_whitespace();
    assert_eq!(w.next(), Some("KGATE-TIME"), "{line:?}");
    assert!(w.next().unwrap().parse::<f64>().is_ok(), "{line:?}");
    assert!(
        line.ends_with("kgate policy check /nonexistent.toml\n"),
        "{line:?}"
    );
    // Descriptor 9 closed: nothing is written, nothing fails.
    let out = Command::new("sh")
        .args(["-c", "\"$0\" policy check /nonexistent.toml 9>&-", exe])
        .env("KGATE_TIMES_FD", "9")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("KGATE-TIME"));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("KGATE-TIME"),
        "{out:?}"
    );
}
