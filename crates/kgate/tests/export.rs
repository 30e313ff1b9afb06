//! `kgate export`, checked by the real consumers: the OCI JSON under crun
//! with a busybox bundle (an allowed command works, a denied syscall
//! fails), the systemd drop-in with `systemd-analyze verify`, and the
//! Security Profiles Operator manifest against the CRD's structure.
//! The policy comes from recording busybox natively, as a user would.

mod common;
mod workload;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TempDir;
use serde_json::Value;
use workload::{generate_policy, kgate, need_root};

const BUSYBOX: &str = "/bin/busybox";

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

#[track_caller]
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("KGATE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{tool} is missing and KGATE_REQUIRE_TOOLS=1 (scripts/deps.sh test installs it)"
        );
        eprintln!("SKIPPED: {tool} is not installed (scripts/deps.sh test installs it)");
    }
    found
}

/// A policy from recording `busybox sh -c 'echo hello'`.
fn busybox_policy(dir: &Path) -> PathBuf {
    let profile = dir.join("bb.json");
    ok(&kgate()
        .args(["record", "-o"])
        .arg(&profile)
        .args(["--", BUSYBOX, "sh", "-c", "echo hello"])
        .output()
        .unwrap());
    let policy = dir.join("bb.toml");
    generate_policy(&profile, &policy, &["--name", "busybox-echo"]);
    policy
}

fn export(policy: &Path, format: &str, extra: &[&str]) -> String {
    ok(&kgate()
        .args(["export", "--format", format, "--policy"])
        .arg(policy)
        .args(extra)
        .output()
        .unwrap())
}

/// Containers started by this test process (tests run in parallel: each
/// container needs its own name).
static CONTAINERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Run `args` in a busybox bundle under crun with `seccomp` as
/// linux.seccomp.
fn crun(dir: &Path, seccomp: &Value, args: &[&str]) -> Output {
    let bundle = dir.join("bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(bundle.join("rootfs/bin")).unwrap();
    std::fs::copy(BUSYBOX, bundle.join("rootfs/bin/busybox")).unwrap();
    ok(&Command::new("crun")
        .arg("spec")
        .current_dir(&bundle)
        .output()
        .unwrap());
    let path = bundle.join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["process"]["terminal"] = Value::Bool(false);
    config["root"]["readonly"] = Value::Bool(false);
    config["process"]["args"] = serde_json::json!(args);
    config["linux"]["seccomp"] = seccomp.clone();
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    // crun refuses hybrid cgroup hosts (v1 controllers plus a v2 mount),
    // which this VM is; in a private mount namespace with cgroup2 at
    // /sys/fs/cgroup and cgroups disabled it runs anywhere.
    let script = format!(
        "if [ \"$(stat -fc %T /sys/fs/cgroup)\" != cgroup2fs ]; then mount -t cgroup2 none /sys/fs/cgroup || exit 99; fi; \
         exec crun --cgroup-manager=disabled run --bundle {} kgate-export-test-{}-{}",
        bundle.display(),
        std::process::id(),
        CONTAINERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap()
}

#[test]
fn oci_profile_runs_under_crun() {
    if !need_root() || !have("crun") || !have("unshare") || !have(BUSYBOX) {
        return;
    }
    let dir = TempDir::new("export-oci");
    let policy = busybox_policy(dir.path());
    let seccomp: Value = serde_json::from_str(&export(&policy, "oci", &[])).unwrap();
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(seccomp["defaultErrnoRet"], 1);
    // Docker and podman read the same object from a file.
    for f in ["docker", "podman"] {
        let v: Value = serde_json::from_str(&export(&policy, f, &[])).unwrap();
        assert_eq!(v, seccomp, "{f}");
    }

    // Without a profile, to be sure the bundle itself works.
    let out = crun(
        dir.path(),
        &Value::Null,
        &[BUSYBOX, "sh", "-c", "mkdir /made && echo made"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "made",
        "{out:?}"
    );

    // The recorded command works under the exported profile.
    let out = crun(dir.path(), &seccomp, &[BUSYBOX, "sh", "-c", "echo hello"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello",
        "{out:?}"
    );
    assert!(out.status.success(), "{out:?}");

    // mkdir(2) was never recorded: denied with EPERM.
    let out = crun(
        dir.path(),
        &seccomp,
        &[BUSYBOX, "sh", "-c", "echo hello; mkdir /x"],
    );
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello"));

    // Audit export: logs, denies nothing.
    let audit: Value = serde_json::from_str(&export(&policy, "oci", &["--audit"])).unwrap();
    assert_eq!(audit["defaultAction"], "SCMP_ACT_LOG");
    let out = crun(
        dir.path(),
        &audit,
        &[BUSYBOX, "sh", "-c", "mkdir /x && echo made"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "made",
        "{out:?}"
    );
}

/// A family the profile never used fails with EAFNOSUPPORT under crun, as
/// under `kgate run`, while the recorded family still works.
#[test]
fn oci_denied_family_is_eafnosupport_under_crun() {
    if !need_root() || !have("crun") || !have("unshare") || !have(BUSYBOX) {
        return;
    }
    let dir = TempDir::new("export-family");
    // Record an IPv4 TCP connect (refused: nothing listens on port 1).
    let profile = dir.path().join("nc.json");
    let script =
        format!("{BUSYBOX} nc 127.0.0.1 1 </dev/null; {BUSYBOX} nc ::1 1 </dev/null; echo done");
    let out = kgate()
        .args(["record", "-o"])
        .arg(&profile)
        .args(["--", BUSYBOX, "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Keep only inet: drop the inet6 shape from the profile.
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    let sockets = p["sockets"].as_array_mut().unwrap();
    assert!(
        sockets.iter().any(|s| s["family"] == "inet6"),
        "{sockets:?}"
    );
    sockets.retain(|s| s["family"] != "inet6");
    std::fs::write(&profile, serde_json::to_string(&p).unwrap()).unwrap();
    let policy = dir.path().join("nc.toml");
    generate_policy(&profile, &policy, &[]);
    let seccomp: Value = serde_json::from_str(&export(&policy, "oci", &[])).unwrap();
    let out = crun(dir.path(), &seccomp, &[BUSYBOX, "sh", "-c", &script]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("done"),
        "{out:?}"
    );
    // inet: socket() allowed, the connect fails on its own.
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("nc:")).collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(!lines[0].contains("Address family"), "{err}");
    assert!(!lines[0].contains("Operation not permitted"), "{err}");
    // inet6: the family is denied, as a kernel without it would say.
    assert!(lines[1].contains("Address family not supported"), "{err}");
}

#[test]
fn systemd_dropin_verifies() {
    if !need_root() || !have("systemd-analyze") {
        return;
    }
    let dir = TempDir::new("export-systemd");
    let policy = busybox_policy(dir.path());
    let unit = dir.path().join("kgate-export-test.service");
    std::fs::write(
        &unit,
        "[Unit]\nDescription=kgate export test\n[Service]\nExecStart=/bin/busybox echo hello\n",
    )
    .unwrap();
    let dropin_dir = dir.path().join("kgate-export-test.service.d");
    std::fs::create_dir(&dropin_dir).unwrap();
    let dropin = dropin_dir.join("kgate.conf");
    ok(&kgate()
        .args(["export", "--format", "systemd", "--policy"])
        .arg(&policy)
        .arg("-o")
        .arg(&dropin)
        .output()
        .unwrap());
    let text = std::fs::read_to_string(&dropin).unwrap();
    for k in [
        "SystemCallFilter=",
        "SystemCallErrorNumber=EPERM",
        "RestrictAddressFamilies=none",
        "ProtectKernelModules=yes",
        "NoNewPrivileges=yes",
        "SystemCallArchitectures=native",
    ] {
        assert!(text.contains(k), "{k} missing:\n{text}");
    }
    assert!(
        text.contains(" execve ") && !text.contains(" mkdir "),
        "{text}"
    );
    let verify = |unit: &Path| {
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(unit)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = verify(&unit);
    let msgs = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && msgs.trim().is_empty(),
        "verify: {out:?}"
    );
    // Control: verify reads the drop-in and complains about a bad line.
    std::fs::write(&dropin, format!("{text}SystemCalFilter=read\n")).unwrap();
    let out = verify(&unit);
    let msgs = String::from_utf8_lossy(&out.stderr);
    assert!(
        msgs.contains("kgate.conf") && msgs.contains("SystemCalFilter"),
        "{msgs}"
    );
}

#[test]
fn spo_manifest_has_the_crd_structure() {
    let dir = TempDir::new("export-spo");
    // A hand-written policy: no recording (root) needed.
    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        "version = 1\n[meta]\nname = \"web\"\n[seccomp]\nmode = \"enforce\"\nallow = [\"read\", \"write\", \"socket\", \"connect\"]\nsockets = [\"unix\", \"inet\"]\n",
    )
    .unwrap();
    let yaml = export(&policy, "spo", &[]);
    let v: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(
        v["apiVersion"],
        "security-profiles-operator.x-k8s.io/v1beta1"
    );
    assert_eq!(v["kind"], "SeccompProfile");
    assert_eq!(v["metadata"]["name"], "web");
    let spec = &v["spec"];
    assert_eq!(spec["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(spec["architectures"][0], "SCMP_ARCH_X86_64");
    // Every key under spec is one the CRD (v1beta1) defines, with its type.
    let spec_keys: Vec<&str> = spec
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    for k in &spec_keys {
        assert!(
            ["defaultAction", "architectures", "syscalls"].contains(k),
            "{k}"
        );
    }
    const ACTIONS: &[&str] = &[
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    ];
    const OPS: &[&str] = &[
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let mut names = Vec::new();
    let mut families = Vec::new();
    let mut denied_rules = 0;
    for rule in spec["syscalls"].as_sequence().unwrap() {
        for k in rule.as_mapping().unwrap().keys() {
            assert!(["action", "names", "args", "errnoRet"].contains(&k.as_str().unwrap()));
        }
        assert!(ACTIONS.contains(&rule["action"].as_str().unwrap()));
        let rn: Vec<&str> = rule["names"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert!(!rn.is_empty());
        if let Some(args) = rule["args"].as_sequence() {
            assert_eq!(rn, ["socket"]);
            for a in args {
                assert!(a["index"].as_u64().unwrap() < 6);
                assert!(OPS.contains(&a["op"].as_str().unwrap()));
            }
            if rule["action"] == "SCMP_ACT_ALLOW" {
                assert_eq!(args[0]["op"], "SCMP_CMP_EQ");
                families.push(args[0]["value"].as_u64().unwrap());
            } else {
                // The other families: EAFNOSUPPORT.
                assert_eq!(rule["action"], "SCMP_ACT_ERRNO");
                assert_eq!(rule["errnoRet"].as_u64(), Some(97));
                denied_rules += 1;
            }
        } else {
            names.extend(rn);
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "connect",
            "execve",
            "exit",
            "exit_group",
            "read",
            "rt_sigreturn",
            "write"
        ]
    );
    families.sort();
    assert_eq!(families, [1, 2]);
    // 0 (masked), 3.. (GE).
    assert_eq!(denied_rules, 2);
    // A bad object name is refused, nothing printed.
    let out = kgate()
        .args(["export", "--format", "spo", "--name", "Web_1", "--policy"])
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Kubernetes object name"));
}
