//! Test helpers: the shared ones of `kgate_kernel::testutil` (temporary
//! directories, fixture module trees built from in-memory ELF objects) and
//! the kgate-only ones (file modes, unprivileged commands, the Debian
//! kernels of the lab cache).

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub use kgate_kernel::testutil::{debian_kernel, elf_module, xz, FixtureTree, TempDir};

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

/// `Some(the LSM list)` when the tests run as root and BPF-LSM is active
/// (`bpf` in /sys/kernel/security/lsm): where loading kgate's LSM programs
/// must work, so a refusal is a failure, not an explanation.
pub fn root_with_bpf_lsm() -> Option<String> {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").ok()?;
    (is_root() && lsm.trim().split(',').any(|l| l == "bpf")).then(|| lsm.trim().to_owned())
}

/// A command that runs `program` without root's power to read anything:
/// as `nobody` through setpriv(1) when the tests run as root.
pub fn as_unprivileged(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The shared test data set (kernel CNA CVE CSV, sample CNA records, CVE
/// terms of use): `$KGATE_SHARED_DATA`, else `../shared/data` next to the
/// repository. Never committed, and not in any package registry, so a
/// machine may simply not have it: the tests that need it skip loudly when
/// it is absent, and fail only when `KGATE_REQUIRE_SHARED_DATA=1` asks
/// for it (unlike the kernels of [`debian_kernel`](kgate_kernel::testutil::debian_kernel), which CI can fetch).
#[track_caller]
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("KGATE_SHARED_DATA")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.join("kernel-cve-files.csv.gz").is_file() {
        return Some(dir);
    }
    if std::env::var("KGATE_REQUIRE_SHARED_DATA").as_deref() == Ok("1") {
        panic!(
            "{} lacks kernel-cve-files.csv.gz and KGATE_REQUIRE_SHARED_DATA=1: set KGATE_SHARED_DATA",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: no CVE test data in {} (set KGATE_SHARED_DATA)",
        dir.display()
    );
    None
}

/// The kgate binary with its data directory (`XDG_DATA_HOME`) at `data`.
pub fn kgate(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kgate"));
    c.env("XDG_DATA_HOME", data);
    c
}

/// Runs `cmd`, panicking with its output unless it succeeds exactly when
/// `ok`.
#[track_caller]
pub fn run(cmd: &mut Command, ok: bool) -> Output {
    let out = cmd.output().expect("failed to start kgate");
    assert_eq!(
        out.status.success(),
        ok,
        "kgate exited with {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs git in `dir` with a fixed author and committer; panics with its
/// stderr on failure; returns its stdout, trimmed.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The JSON on the stdout of `out`; panics with the text when it is not.
#[track_caller]
pub fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The error of a survey's problem about `path`; panics with the list
/// when absent.
#[track_caller]
pub fn survey_problem(survey: &serde_json::Value, path: &str) -> String {
    let problems = survey["problems"].as_array().expect("problems[] missing");
    problems
        .iter()
        .find(|p| p["path"] == path)
        .unwrap_or_else(|| panic!("{path} not reported in {problems:?}"))["error"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A fixture root with kernel 6.99.0-test holding two autoloadable
/// modules, sctp (net-pf-2-proto-132) and vsock (net-pf-40), and the
/// directories `dirs` (apply and boot tests of the modprobe backend).
pub fn root_with_sctp_vsock(dir: &Path, dirs: &[&str]) -> PathBuf {
    let root = dir.join("root");
    let t = kgate_kernel::testutil::FixtureTree::new(&root, "6.99.0-test");
    t.module(
        "kernel/net/sctp/sctp.ko.xz",
        &["net-pf-2-proto-132"],
        &[],
        "",
    );
    t.module("kernel/net/vmw_vsock/vsock.ko.xz", &["net-pf-40"], &[], "");
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    root
}
