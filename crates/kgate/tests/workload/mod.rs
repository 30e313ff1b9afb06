//! Helpers of the workload tests (record, seccomp, export): root checks
//! and the C workloads of tests/data.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skip loudly when not root; fail instead when KGATE_REQUIRE_BPF=1 (CI).
#[track_caller]
pub fn need_root() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var("KGATE_REQUIRE_BPF").as_deref() != Ok("1"),
        "KGATE_REQUIRE_BPF=1 but the tests do not run as root"
    );
    eprintln!("SKIPPED: kgate record needs root");
    false
}

/// A host feature the test needs is missing: skip loudly, or fail under
/// KGATE_REQUIRE_BPF=1 (CI, whose host has every feature these tests use:
/// seccomp's log action, a readable kernel log, a cgroup v2 mount).
#[track_caller]
pub fn host_lacks(what: &str) {
    assert!(
        std::env::var("KGATE_REQUIRE_BPF").as_deref() != Ok("1"),
        "KGATE_REQUIRE_BPF=1 but {what}"
    );
    eprintln!("SKIPPED: {what}");
}

pub fn kgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
}

/// Compile tests/data/NAME.c into `dir`.
pub fn compile(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/{name}.c"));
    let out = dir.join(name);
    let st = Command::new("cc")
        .args(["-O1", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("cc runs (scripts/deps.sh installs gcc)");
    assert!(st.success(), "compiling {}", src.display());
    out
}

/// `kgate policy generate --from PROFILE -o POLICY [EXTRA...]`, which must
/// succeed.
#[track_caller]
pub fn generate_policy(profile: &Path, policy: &Path, extra: &[&str]) {
    let out = kgate()
        .args(["policy", "generate", "--from"])
        .arg(profile)
        .arg("-o")
        .arg(policy)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kgate policy generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
