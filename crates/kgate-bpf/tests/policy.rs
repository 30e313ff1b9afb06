//! `BpfPolicy::from_policy` and validation, on a fixture module tree; and
//! `probe` on the development VM, whose kernel refuses LSM programs.

use std::path::PathBuf;

use kgate_bpf::{BpfError, BpfPolicy, RootMode, SectionMode, UsernsMode};
use kgate_kernel::testutil::{FixtureTree, TempDir};
use kgate_policy::Policy;

const POLICY: &str = r#"version = 1

[modules]
mode = "enforce"
root = "policy"
allow = ["xfs", "vsock"]

[sockets]
mode = "audit"
allow = ["unix", "inet/tcp", "inet/udp", "inet6/raw", "netlink/route"]

[userns]
unprivileged = "deny"
allow_exe = ["/usr/bin/bwrap"]
"#;

fn tree(dir: &TempDir) -> kgate_kernel::tree::KernelTree {
    let t = FixtureTree::new(dir.path(), "6.12.0-test");
    t.module("kernel/fs/xfs/xfs.ko", &["fs-xfs"], &["libcrc32c"], "");
    t.module("kernel/lib/libcrc32c.ko", &[], &[], "");
    t.module("kernel/net/vmw_vsock/vsock.ko", &["net-pf-40"], &[], "");
    // A blocked module sharing a glob alias with an allowed one's exact alias.
    t.module(
        "kernel/net/sctp/sctp.ko",
        &["net-pf-2-proto-132", "fs-x*"],
        &[],
        "",
    );
    t.module("kernel/drivers/foo.ko", &["pci:v00008086d*"], &[], "");
    t.builtin(&["unix"]);
    t.load()
}

#[test]
fn from_policy_resolves_request_strings() {
    let dir = TempDir::new("kgate-bpf-policy");
    let tree = tree(&dir);
    let policy = Policy::parse(POLICY, "test.toml").unwrap().policy;
    let b = BpfPolicy::from_policy(&policy, &tree);
    let reqs: Vec<&str> = b
        .modules
        .allowed_requests
        .iter()
        .map(String::as_str)
        .collect();
    // Names (kmod-normalized) and exact aliases resolving only to allowed
    // modules; `fs-xfs` also matches sctp's `fs-x*`, so it is left out.
    assert_eq!(
        reqs,
        ["libcrc32c", "net_pf_40", "unix", "vsock", "xfs"],
        "{reqs:?}"
    );
    assert_eq!(b.modules.mode, SectionMode::Enforce);
    assert_eq!(b.modules.root_mode, RootMode::Policy);
    assert_eq!(b.sockets.mode, SectionMode::Audit);
    assert_eq!(b.userns.mode, UsernsMode::Deny);
    assert_eq!(
        b.userns.allow_exe.iter().collect::<Vec<_>>(),
        [&PathBuf::from("/usr/bin/bwrap")]
    );
    assert_eq!(b.hash, policy.hash());
    b.validate().unwrap();
}

#[test]
fn socket_patterns_agree_with_the_policy_matcher() {
    let dir = TempDir::new("kgate-bpf-sockets");
    let tree = tree(&dir);
    let policy = Policy::parse(POLICY, "test.toml").unwrap().policy;
    let b = BpfPolicy::from_policy(&policy, &tree);
    for family in 0..46 {
        for sock_type in 0..11 {
            for protocol in [0, 1, 2, 3, 4, 6, 17, 58, 115, 132, 255, 256, 262] {
                assert_eq!(
                    b.socket_allowed(family, sock_type, protocol),
                    policy.sockets.allows(family, sock_type, protocol),
                    "socket({family}, {sock_type}, {protocol})"
                );
            }
        }
    }
}

#[test]
fn validation_names_each_problem() {
    let mut b = BpfPolicy {
        hash: "nothex".into(),
        ..BpfPolicy::default()
    };
    b.modules.allowed_requests.insert("net-pf-40".into());
    b.modules.allowed_requests.insert("x".repeat(56));
    b.sockets.allow.insert(kgate_bpf::SocketMatch {
        family: 99,
        sock_type: None,
        protocol: None,
    });
    b.userns.allow_exe.insert(PathBuf::from("bwrap"));
    let problems = b.problems();
    assert_eq!(problems.len(), 5, "{problems:#?}");
    let err = b.validate().unwrap_err();
    assert!(matches!(err, BpfError::InvalidPolicy { .. }));
    let msg = err.to_string();
    for needle in [
        "nothing was changed",
        "net-pf-40",
        "family 99",
        "bwrap",
        "64 hex digits",
    ] {
        assert!(msg.contains(needle), "{needle} not in {msg}");
    }
}

/// Where LSM programs cannot load (the development VM, CI containers),
/// `probe` must say why, not panic or claim support. Where BPF-LSM is
/// active and we are root, it must succeed: a refusal there is a bug, not
/// an explanation.
#[test]
fn probe_explains_or_succeeds() {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    let bpf_lsm = lsm.trim().split(',').any(|l| l == "bpf");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    match kgate_bpf::probe() {
        Ok(s) => assert!(root && bpf_lsm, "probe claimed support: {s:?}"),
        Err(e) => {
            assert!(
                !(root && bpf_lsm),
                "running as root with BPF-LSM active (/sys/kernel/security/lsm: {}), probe must succeed, but: {e:#}",
                lsm.trim()
            );
            let msg = e.to_string();
            assert!(matches!(e, BpfError::NotSupported { .. }), "{e:?}");
            assert!(msg.contains("not available on this host"), "{msg}");
            assert!(msg.contains("--backend modprobe"), "{msg}");
            eprintln!("probe: {msg}");
        }
    }
}

#[test]
fn status_and_events_without_pins_say_not_applied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("kgate-bpf-pins");
    // A pin directory others can enter is refused before anything is read.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = kgate_bpf::status(dir.path()).unwrap_err();
    assert!(matches!(e, BpfError::UnsafePinDir { .. }), "{e}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // Not root's: refused as well.
        assert!(kgate_bpf::status(dir.path()).is_err());
        return;
    }
    let e = kgate_bpf::status(dir.path()).unwrap_err();
    assert!(e.to_string().contains("not applied"), "{e}");
    let e = kgate_bpf::events(
        dir.path(),
        false,
        |_| std::ops::ControlFlow::Continue(()),
        |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(e, BpfError::NotApplied { .. }), "{e}");
    assert!(kgate_bpf::revert(&dir.path().join("none"))
        .unwrap()
        .is_empty());
}

/// Issue 13, 5c: an allowed name that is no module of this kernel but an
/// alias of a blocked one would reach modprobe, which loads the blocked
/// module. It is dropped, with a warning naming both.
#[test]
fn allowed_alias_of_blocked_module_is_dropped() {
    let dir = TempDir::new("kgate-bpf-alias");
    let tree = tree(&dir);
    let text = r#"version = 1
[modules]
mode = "enforce"
allow = ["libcrc32c", "net-pf-40", "net-pf-2-proto-132", "fs-xfs", "no-such-alias"]
"#;
    let policy = Policy::parse(text, "test.toml").unwrap().policy;
    let b = BpfPolicy::from_policy(&policy, &tree);
    let reqs: Vec<&str> = b
        .modules
        .allowed_requests
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(reqs, ["libcrc32c", "no_such_alias", "unix"], "{reqs:?}");
    let dropped: Vec<(&str, Vec<&str>)> = b
        .modules
        .dropped_aliases
        .iter()
        .map(|(a, m)| (a.as_str(), m.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        dropped,
        [
            ("fs_xfs", vec!["sctp", "xfs"]),
            ("net_pf_2_proto_132", vec!["sctp"]),
            ("net_pf_40", vec!["vsock"]),
        ]
    );
    let w = b.warnings();
    assert_eq!(w.len(), 3);
    assert!(
        w[2].contains("\"net_pf_40\"") && w[2].contains("alias of vsock"),
        "{w:?}"
    );

    // An alias resolving only to allowed modules stays.
    let text = r#"version = 1
[modules]
mode = "enforce"
allow = ["vsock", "net-pf-40"]
"#;
    let policy = Policy::parse(text, "test.toml").unwrap().policy;
    let b = BpfPolicy::from_policy(&policy, &tree);
    assert!(b.modules.allowed_requests.contains("net_pf_40"));
    assert!(b.modules.dropped_aliases.is_empty());
    assert!(b.warnings().is_empty());
}
