//! `kgate policy generate` and `kgate run`, for real: a probe program is
//! recorded doing only its "base" calls, then run under the generated
//! filter trying calls outside it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TempDir;

mod workload;

use workload::{compile, generate_policy, host_lacks, kgate, need_root};

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// "NAME RET ERRNO" lines → NAME → (RET, ERRNO).
fn results(stdout: &str) -> BTreeMap<String, (i64, i32)> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                w.next()?.to_owned(),
                (w.next()?.parse().ok()?, w.next()?.parse().ok()?),
            ))
        })
        .collect()
}

/// Record the probe in `mode`, generate a policy; (probe, policy path).
fn recorded_policy(dir: &Path, mode: &str) -> (PathBuf, PathBuf) {
    let probe = compile(dir, "seccomp_probe");
    let profile = dir.join(format!("{mode}.json"));
    ok(&kgate()
        .args(["record", "-o"])
        .arg(&profile)
        .arg("--")
        .arg(&probe)
        .arg(mode)
        .output()
        .unwrap());
    let policy = dir.join(format!("{mode}.toml"));
    generate_policy(&profile, &policy, &[]);
    (probe, policy)
}

fn run(args: &[&str], policy: &Path, probe: &Path, mode: &str) -> Output {
    kgate()
        .arg("run")
        .args(args)
        .arg("--policy")
        .arg(policy)
        .arg("--")
        .arg(probe)
        .arg(mode)
        .output()
        .unwrap()
}

const EPERM: i32 = 1;
const ENOSYS: i32 = 38;
const EAFNOSUPPORT: i32 = 97;

#[test]
fn run_enforces_a_generated_policy() {
    if !need_root() {
        return;
    }
    let dir = TempDir::new("seccomp");
    let (probe, policy) = recorded_policy(dir.path(), "base");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(
        text.contains("[seccomp]") && text.contains("\"unix\""),
        "{text}"
    );
    assert!(
        !text.contains("\"vmsplice\"") && !text.contains("\"splice\""),
        "{text}"
    );

    // What was recorded works.
    let r = results(&ok(&run(&[], &policy, &probe, "base")));
    assert!(r["socket_unix"].0 >= 0, "{r:?}");

    // Outside the recording: EPERM; another socket family: EAFNOSUPPORT;
    // vmsplice and splice denied.
    let r = results(&ok(&run(&[], &policy, &probe, "full")));
    assert!(r["socket_unix"].0 >= 0, "{r:?}");
    assert_eq!(r["getppid"], (-1, EPERM), "{r:?}");
    assert_eq!(r["socket_inet"], (-1, EAFNOSUPPORT), "{r:?}");
    assert_eq!(r["vmsplice"], (-1, EPERM), "{r:?}");
    assert_eq!(r["splice"], (-1, EPERM), "{r:?}");

    // --errno enosys.
    let r = results(&ok(&run(&["--errno", "enosys"], &policy, &probe, "full")));
    assert_eq!(r["getppid"], (-1, ENOSYS), "{r:?}");
    assert_eq!(r["socket_inet"], (-1, EAFNOSUPPORT), "{r:?}");

    // Audit: nothing denied.
    let r = results(&ok(&run(&["--audit"], &policy, &probe, "full")));
    assert!(r["getppid"].0 > 0, "{r:?}");
    assert!(r["socket_inet"].0 >= 0, "{r:?}");

    // The same from the profile directly.
    let out = kgate()
        .args(["run", "--profile"])
        .arg(dir.path().join("base.json"))
        .arg("--")
        .arg(&probe)
        .arg("full")
        .output()
        .unwrap();
    assert_eq!(results(&ok(&out))["getppid"], (-1, EPERM));
}

/// Issue 13, item 6: socketpair(2) creates its sockets (autoloading the
/// family's module) before a family refuses a pair, so `kgate run` checks
/// its family like socket(2)'s; and `kgate record` records its shape, so
/// a policy generated from a workload that only calls socketpair(AF_UNIX)
/// lets it work.
#[test]
fn regression_issue13_socketpair_recorded_and_family_checked() {
    if !need_root() {
        return;
    }
    let dir = TempDir::new("seccomp-pair");
    let (probe, policy) = recorded_policy(dir.path(), "pair");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(
        text.contains("\"socketpair\"") && text.contains("\"unix\""),
        "{text}"
    );
    // Unfiltered, inet answers for itself (no pairs).
    let out = Command::new(&probe).arg("pair-full").output().unwrap();
    assert_eq!(
        results(&ok(&out))["socketpair_inet"],
        (-1, 95),
        "EOPNOTSUPP"
    );
    let r = results(&ok(&run(&[], &policy, &probe, "pair-full")));
    assert_eq!(r["socketpair_unix"].0, 0, "{r:?}");
    assert_eq!(r["socketpair_inet"], (-1, EAFNOSUPPORT), "{r:?}");
    assert_eq!(r["socketpair_vsock"], (-1, EAFNOSUPPORT), "{r:?}");
}

/// Issue 13, item 6: `kgate policy generate` allows io_uring only when a
/// profile recorded it, and then warns (text and JSON) that io_uring's
/// SOCKET, SPLICE and TEE operations skip seccomp; `kgate run` warns the
/// same for a hand-written policy.
#[test]
fn regression_issue13_generate_warns_about_io_uring() {
    let dir = TempDir::new("seccomp-uring");
    let profile = |name: &str, syscalls: &[(&str, u32)]| {
        let p = dir.path().join(name);
        let sc: Vec<serde_json::Value> = syscalls
            .iter()
            .map(|(n, nr)| serde_json::json!({ "name": n, "nr": nr, "count": 1 }))
            .collect();
        let v = serde_json::json!({
            "schema": "kgate.profile/1", "arch": "x86_64", "kernel": null,
            "target": { "kind": "pid", "pid": 1, "follow_children": false },
            "duration_ms": 1, "exit_code": null, "processes": 1, "threads": 0,
            "syscalls": sc,
            "sockets": [{ "family": "unix", "family_nr": 1, "sock_type": 1, "protocol": 0, "count": 1 }],
            "module_requests": { "observable": false, "requests": [] },
            "execs": [],
            "lost": { "tasks": 0, "sockets": 0, "execs": 0, "module_requests": 0 }
        });
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let generate = |p: &Path, format: &str| {
        kgate()
            .args(["policy", "generate", "--format", format, "--from"])
            .arg(p)
            .output()
            .unwrap()
    };
    let plain = profile("plain.json", &[("read", 0), ("socket", 41)]);
    let out = generate(&plain, "json");
    let j: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(!j["policy"].as_str().unwrap().contains("io_uring"), "{j}");
    assert_eq!(j["report"]["io_uring_bypass"], serde_json::json!([]));

    let uring = profile(
        "uring.json",
        &[
            ("read", 0),
            ("socket", 41),
            ("io_uring_setup", 425),
            ("io_uring_enter", 426),
        ],
    );
    let out = generate(&uring, "json");
    let j: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let toml = j["policy"].as_str().unwrap();
    assert!(
        toml.contains("\"io_uring_setup\"") && !toml.contains("io_uring_register"),
        "{toml}"
    );
    let warnings = j["report"]["warnings"].to_string();
    for op in ["IORING_OP_SOCKET", "IORING_OP_SPLICE", "IORING_OP_TEE"] {
        assert!(warnings.contains(op), "{warnings}");
    }
    let out = generate(&uring, "text");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("kgate: warning: ") && l.contains("IORING_OP_SPLICE")),
        "{err}"
    );

    let policy = dir.path().join("uring.toml");
    std::fs::write(&policy, toml).unwrap();
    let out = kgate()
        .args(["run", "--dry-run", "--policy"])
        .arg(&policy)
        .args(["--", "true"])
        .output()
        .unwrap();
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("IORING_OP_SOCKET"),
        "{out:?}"
    );
}

/// Audit mode is SECCOMP_RET_LOG: the kernel logs the call (audit type
/// 1326 with the syscall number) and lets it through.
#[test]
fn audit_mode_logs_in_the_kernel() {
    if !need_root() {
        return;
    }
    let actions =
        std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_logged").unwrap_or_default();
    if !actions.split_whitespace().any(|a| a == "log") {
        host_lacks(&format!(
            "seccomp's log action is not logged here ({actions:?})"
        ));
        return;
    }
    let dir = TempDir::new("seccomp-audit");
    let (probe, policy) = recorded_policy(dir.path(), "base");
    let child = kgate()
        .args(["run", "--audit", "--policy"])
        .arg(&policy)
        .arg("--")
        .arg(&probe)
        .arg("full")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(results(&ok(&out))["getppid"].0 > 0);
    let log = String::from_utf8_lossy(&Command::new("dmesg").output().unwrap().stdout).into_owned();
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("type=1326") && l.contains(&format!(" pid={pid} ")))
        .collect();
    if log.is_empty() {
        host_lacks("the kernel log is not readable here");
        return;
    }
    assert!(
        ours.iter().any(|l| l.contains(" syscall=110 ")),
        "no audit record for getppid (110) of pid {pid}: {ours:?}"
    );
}

#[test]
fn splice_is_allowed_only_when_recorded() {
    if !need_root() {
        return;
    }
    let dir = TempDir::new("seccomp-splice");
    let (probe, policy) = recorded_policy(dir.path(), "splice");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(
        text.contains("name = \"splice\", reason = \"recorded: 1 calls\""),
        "{text}"
    );
    assert!(!text.contains("vmsplice"), "{text}");
    let r = results(&ok(&run(&[], &policy, &probe, "full")));
    // splice with bad fds reaches the kernel: EBADF/ESPIPE-like, not EPERM.
    assert_ne!(r["splice"].1, EPERM, "{r:?}");
    assert_eq!(r["vmsplice"], (-1, EPERM), "{r:?}");
}

#[test]
fn bad_policy_runs_nothing() {
    let dir = TempDir::new("seccomp-bad");
    let policy = dir.path().join("bad.toml");
    std::fs::write(
        &policy,
        "version = 1\n[seccomp]\nmode = \"enforce\"\nallow = [\"raed\"]\n",
    )
    .unwrap();
    let marker = dir.path().join("ran");
    let out = kgate()
        .args(["run", "--policy"])
        .arg(&policy)
        .args(["--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("raed") && err.contains("read"), "{err}");
    assert!(!marker.exists());
    // No [seccomp] section: refused with the fix.
    std::fs::write(&policy, "version = 1\n").unwrap();
    let out = kgate()
        .args(["run", "--policy"])
        .arg(&policy)
        .args(["--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kgate policy generate"));
    assert!(!marker.exists());
}

#[test]
fn generate_reports_against_the_podman_default() {
    if !need_root() {
        return;
    }
    let dir = TempDir::new("seccomp-gen");
    let (_probe, _policy) = recorded_policy(dir.path(), "base");
    let out = kgate()
        .args(["policy", "generate", "--format", "json", "--from"])
        .arg(dir.path().join("base.json"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["schema"], "kgate.policy-generate/1");
    assert!(v["policy"].as_str().unwrap().contains("[seccomp]"));
    assert_eq!(v["report"]["splice_family"]["vmsplice"], false);
    if Path::new(kgate_seccomp_default()).exists() {
        let b = &v["baseline"];
        assert!(b["baseline_allowed"].as_u64().unwrap() > 250, "{b}");
        let denied: Vec<&str> = b["denied_extra"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        for n in ["splice", "tee", "getppid", "unshare"] {
            assert!(denied.contains(&n), "{n} not in {denied:?}");
        }
        // Every family kgate names but unix, the one the probe used.
        assert_eq!(b["socket_families_denied"], 44);
    } else {
        assert!(v["baseline_error"]
            .as_str()
            .unwrap()
            .contains("containers-common"));
    }
}

fn kgate_seccomp_default() -> &'static str {
    "/usr/share/containers/seccomp.json"
}
