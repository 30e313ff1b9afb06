//! A policy against a kernel tree: effective allowlist, check, freeze,
//! carry, diff and explain.

mod common;

use std::collections::BTreeSet;

use common::*;
use kgate_kernel::reach::ReachContext;
use kgate_policy::*;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn policy(text: &str) -> Policy {
    Policy::parse(text, "web.toml").unwrap().policy
}

#[test]
fn effective_modules_closure_and_builtins() {
    let dir = TempDir::new("eff");
    let tree = fixture(dir.path());
    let p = policy("version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"ext4\", { name = \"nf_tables\", reason = \"firewall\" }]\n");
    let eff = p.effective_modules(&tree);
    assert_eq!(
        eff["ext4"],
        Allowance::Listed {
            reason: None,
            line: Some(4)
        }
    );
    assert_eq!(eff["jbd2"], Allowance::DependencyOf { of: "ext4".into() });
    assert_eq!(
        eff["crc32c_generic"],
        Allowance::SoftDependencyOf { of: "ext4".into() }
    );
    assert_eq!(
        eff["nfnetlink"],
        Allowance::DependencyOf {
            of: "nf_tables".into()
        }
    );
    assert_eq!(
        eff["libcrc32c"],
        Allowance::DependencyOf {
            of: "nf_tables".into()
        }
    );
    assert_eq!(eff["unix"], Allowance::Builtin);
    assert_eq!(eff["af_packet"], Allowance::Builtin);
    assert!(!eff.contains_key("sctp"));
    assert!(!eff.contains_key("vsock"));
    // Same set as the tree's own closure, plus builtins.
    let closure = tree.load_closure(["ext4", "nf_tables"]);
    let non_builtin: BTreeSet<String> = eff
        .iter()
        .filter(|(_, a)| **a != Allowance::Builtin)
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(non_builtin, closure);
    assert_eq!(
        eff["nf_tables"].to_string(),
        "listed in modules.allow at line 4 (firewall)"
    );
}

#[test]
fn unknown_module_is_warned_with_line() {
    let dir = TempDir::new("check");
    let tree = fixture(dir.path());
    let p = policy("version = 1\n[meta]\nkernel = \"6.12.0-test\"\n[modules]\nmode = \"enforce\"\nallow = [\n  \"ext4\",\n  \"sctpp\",\n]\n");
    let w = p.check_against(&tree);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].severity, Severity::Warning);
    assert_eq!((w[0].line, w[0].column), (8, 3));
    assert_eq!(w[0].hint.as_deref(), Some("did you mean `sctp`?"));
    assert_eq!(
        w[0].to_string(),
        "web.toml:8:3: warning: modules.allow: module `sctpp` is not in kernel 6.12.0-test \
         (out-of-tree modules are fine to list); did you mean `sctp`?"
    );
    let other = policy("version = 1\n[meta]\nkernel = \"6.1.0\"\n");
    assert_eq!(other.check_against(&tree)[0].key, "meta.kernel");
}

#[test]
fn freeze_lists_top_level_modules_and_reports_everything() {
    let dir = TempDir::new("freeze");
    let tree = fixture(dir.path());
    let loaded = set(&[
        "ext4",
        "jbd2",
        "mbcache",
        "nf_tables",
        "nfnetlink",
        "libcrc32c",
        "can",
        "zfs",
    ]);
    let boot = vec![
        ("ext4".to_string(), "root filesystem ext4".to_string()),
        (
            "virtio-net".to_string(),
            "network interface eth0".to_string(),
        ),
    ];
    let frozen = freeze(&FreezeInput {
        tree: &tree,
        release: "6.12.0-test",
        loaded: &loaded,
        boot: &boot,
        name: Some("web-01".into()),
        // Reachability has a test of its own (issue19_…).
        ctx: &no_autoload(),
        exclude_reachable: false,
    });
    let p = &frozen.policy;
    let listed: Vec<&str> = p.modules.allow.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(listed, ["can", "ext4", "nf_tables", "virtio_net", "zfs"]);
    let reason = |m: &str| p.lists_module(m).unwrap().reason.clone().unwrap();
    assert_eq!(reason("ext4"), "loaded; root filesystem ext4");
    assert_eq!(reason("virtio_net"), "network interface eth0");
    assert_eq!(reason("zfs"), "loaded (not in this kernel's tree)");
    assert_eq!(
        frozen.report.implied,
        ["jbd2", "libcrc32c", "mbcache", "nfnetlink"]
    );
    assert_eq!(frozen.report.not_in_tree, ["zfs"]);
    assert_eq!(p.modules.mode, Mode::Enforce);
    assert_eq!(p.modules.root, RootMode::Allow);
    assert_eq!(p.meta.kernel.as_deref(), Some("6.12.0-test"));
    assert_eq!(p.meta.name.as_deref(), Some("web-01"));

    // Every allowed module is in the report, with why.
    let why = |m: &str| {
        frozen
            .report
            .allowed
            .iter()
            .find(|f| f.name == m)
            .map(|f| f.why.to_string())
            .unwrap_or_else(|| panic!("{m} missing"))
    };
    assert_eq!(why("net_failover"), "dependency of virtio_net");
    assert_eq!(why("crc32c_generic"), "soft dependency of ext4");
    assert_eq!(why("unix"), "builtin");
    assert!(why("nfnetlink").starts_with("dependency of nf_tables"));
    // sctp, vsock, n_hdlc, udp_tunnel blocked.
    assert_eq!(frozen.report.blocked, 4);

    // Sockets: the basics plus families of allowed modules (can, and
    // netlink already).
    let socks: Vec<String> = p
        .sockets
        .allow
        .iter()
        .map(|e| e.value.to_string())
        .collect();
    assert_eq!(socks, ["unix", "inet", "inet6", "netlink", "can"]);
    assert_eq!(p.sockets.mode, Mode::Enforce);
    assert_eq!(p.userns.unprivileged, UsernsMode::Audit);
    assert_eq!(p.splice.mode, Mode::Audit);
    assert_eq!(
        p.splice.allow.len(),
        SplicePreset::Default.endpoints().len()
    );
    assert_eq!(
        p.sysctl["kernel.io_uring_disabled"].value,
        SysctlValue::Int(2)
    );
    assert_eq!(
        p.sysctl["kernel.perf_event_paranoid"].value,
        SysctlValue::Int(2)
    );
    assert!(!p.sysctl.contains_key("kernel.modules_disabled"));
    assert!(!p.sysctl.contains_key("user.max_user_namespaces"));

    // The frozen policy renders, parses back without warnings, and is safe
    // to apply: nothing loaded is blocked.
    let again = Policy::parse(&p.to_toml(), "frozen.toml").unwrap();
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    assert_eq!(&again.policy, p);
    let diff = p.diff(&tree, &ReachContext::default(), &loaded);
    assert!(diff.blocked_loaded.is_empty());
    assert_eq!(diff.listed_not_in_kernel, ["zfs"]);
}

#[test]
fn diff_counts_blocked_and_removed_code() {
    let dir = TempDir::new("diff");
    let tree = fixture(dir.path());
    let p = policy("version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"ext4\"]\n[sysctl]\n\"dev.tty.ldisc_autoload\" = 0\n");
    let ctx = ReachContext::default();
    let d = p.diff(&tree, &ctx, &set(&["ext4", "vsock"]));
    assert_eq!(d.loadable, 14);
    assert_eq!(d.allowed, 4);
    assert_eq!(d.blocked.len(), 10);
    assert_eq!(d.blocked_loaded, ["vsock"]);
    // Reachable without the policy: sctp (+libcrc32c, udp_tunnel), vsock,
    // nfnetlink, can, n_hdlc (ldisc autoload), ext4 and nf_tables through a
    // user namespace (+ their dependencies).
    assert!(d.before.modules >= 9, "{:?}", d.before);
    assert_eq!(d.before.text_bytes, 32 * d.before.modules as u64);
    assert_eq!(d.before.functions, 2 * d.before.modules as u64);
    // With the allowlist: ext4 and its closure via userns.
    assert_eq!(d.after.modules, 4);
    assert_eq!(d.removed.modules, d.before.modules - 4);
    assert!(d.removed.text_bytes > 0);
    assert!(!d.context_after.ldisc_autoload);
    assert_eq!(d.after_with_settings.modules, 4);
    let with_deny = policy("version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"ext4\"]\n[userns]\nunprivileged = \"deny\"\n");
    let d = with_deny.diff(&tree, &ctx, &BTreeSet::new());
    assert_eq!(d.after_with_settings.modules, 0);
    // Serializable for --json.
    let json = serde_json::to_value(&d).unwrap();
    assert!(json["removed"]["text_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn explain_names_and_aliases() {
    let dir = TempDir::new("explain");
    let tree = fixture(dir.path());
    let p = policy("version = 1\n[modules]\nmode = \"enforce\"\nallow = [{ name = \"sctp\", reason = \"SIP\" }]\n[sockets]\nmode = \"enforce\"\nallow = [\"unix\", \"inet\"]\n");

    let e = p.explain(&tree, "net-pf-40");
    assert_eq!(e.modules.len(), 1);
    let m = &e.modules[0];
    assert_eq!(m.name, "vsock");
    assert!(!m.allowed);
    assert_eq!(m.rule, "not in modules.allow");
    assert_eq!(m.matched_aliases, ["net-pf-40"]);
    assert_eq!(m.triggers[0].alias, "net-pf-40");
    let s = e.socket.as_ref().unwrap();
    assert_eq!((s.family, s.name, s.allowed), (40, Some("vsock"), false));

    let e = p.explain(&tree, "net-pf-2-proto-132");
    assert_eq!(e.modules[0].name, "sctp");
    assert!(e.modules[0].allowed);
    assert_eq!(e.modules[0].rule, "listed in modules.allow at line 4 (SIP)");
    assert!(e.socket.as_ref().unwrap().allowed);

    let e = p.explain(&tree, "udp-tunnel");
    assert_eq!(e.modules[0].rule, "dependency of sctp");
    let e = p.explain(&tree, "unix");
    assert_eq!(e.modules[0].rule, "builtin");
    assert!(e.modules[0].builtin);
    assert!(p.explain(&tree, "fs-hfsplus").modules.is_empty());
    serde_json::to_string(&p.explain(&tree, "net-pf-40")).unwrap();
}

#[test]
fn carry_to_a_new_kernel() {
    let old_dir = TempDir::new("carry-old");
    let new_dir = TempDir::new("carry-new");
    let old_tree = fixture(old_dir.path());
    // The new kernel: ext4 needs a new dependency, vsock is gone, a new
    // module appears, af_packet is no longer builtin.
    let mut modules: Vec<Spec<'_>> = MODULES
        .iter()
        .filter(|m| m.0 != "vsock" && m.0 != "ext4")
        .copied()
        .collect();
    modules.push(("ext4", &["fs-ext4"], &["jbd2", "mbcache", "crc16"], ""));
    modules.push(("crc16", &[], &[], ""));
    modules.push(("bcachefs", &["fs-bcachefs"], &[], ""));
    modules.push(("af_packet", &["net-pf-17"], &[], ""));
    let new_tree = tree_with(new_dir.path(), "6.13.0-test", &modules, &["unix"]);

    let old = policy("version = 1\n[meta]\nkernel = \"6.12.0-test\"\n[modules]\nmode = \"enforce\"\nallow = [\"ext4\", \"vsock\"]\n");
    let c = carry(&old, Some(&old_tree), &new_tree);
    assert_eq!(c.policy.meta.kernel.as_deref(), Some("6.13.0-test"));
    assert_eq!(c.vanished, ["vsock"]);
    assert!(
        c.policy.lists_module("vsock").is_some(),
        "vanished modules stay listed"
    );
    assert_eq!(
        c.new_dependencies,
        [("crc16".to_string(), "ext4".to_string())]
    );
    assert_eq!(c.new_in_kernel, ["bcachefs"]);
    assert_eq!(c.now_loadable, ["af_packet"]);
    let entry = c.policy.lists_module("af_packet").unwrap();
    assert_eq!(entry.reason.as_deref(), Some("builtin in 6.12.0-test"));
    assert!(c
        .policy
        .check_against(&new_tree)
        .iter()
        .all(|w| w.message.contains("vsock")));

    // Without the old tree only what can be known is reported.
    let c = carry(&old, None, &new_tree);
    assert_eq!(c.vanished, ["vsock"]);
    assert!(c.new_in_kernel.is_empty() && c.new_dependencies.is_empty());
}

#[test]
fn debian_kernel_freeze_and_diff() {
    let Some(tree) = debian_tree() else { return };
    let loaded = set(&["ext4", "virtio_net", "nf_tables"]);
    let frozen = freeze(&FreezeInput {
        tree: &tree,
        release: "6.12.113+deb12-cloud-amd64",
        loaded: &loaded,
        boot: &[],
        name: None,
        ctx: &no_autoload(),
        exclude_reachable: false,
    });
    let p = &frozen.policy;
    let eff = p.effective_modules(&tree);
    for dep in ["nfnetlink", "libcrc32c", "jbd2", "mbcache", "net_failover"] {
        if tree.get(dep).is_some() {
            assert!(eff.contains_key(dep), "{dep} should be allowed");
        }
    }
    assert!(eff.contains_key("nfnetlink"));
    for blocked in ["sctp", "vsock", "n_hdlc", "dccp"] {
        if tree.get(blocked).is_some_and(|m| !m.builtin) {
            assert!(!eff.contains_key(blocked), "{blocked} should be blocked");
        }
    }
    let d = p.diff(&tree, &ReachContext::default(), &loaded);
    assert!(d.blocked_loaded.is_empty());
    assert!(d.removed.text_bytes > 0, "{:?}", d.removed);
    assert!(d.removed.modules > 100, "{:?}", d.removed);
    eprintln!(
        "debian: {} loadable, {} blocked; reachable {} modules / {} bytes before, {} / {} after",
        d.loadable,
        d.blocked.len(),
        d.before.modules,
        d.before.text_bytes,
        d.after.modules,
        d.after.text_bytes
    );
    let e = p.explain(&tree, "net-pf-40");
    // On Debian the transports (hv_sock, vsock_loopback, ...) carry net-pf-40.
    assert!(
        !e.modules.is_empty() && e.modules.iter().all(|m| !m.allowed),
        "{e:#?}"
    );
    let w = p.check_against(&tree);
    assert!(w.is_empty(), "{w:#?}");
}

fn no_autoload() -> ReachContext {
    ReachContext {
        autoload: false,
        ..ReachContext::default()
    }
}

/// Issue 19, item 7: loaded modules any user can get loaded are named with
/// their trigger; `exclude_reachable` leaves them out, but not what boot
/// needs.
#[test]
fn issue19_freeze_flags_and_excludes_reachable_loaded_modules() {
    let dir = TempDir::new("freeze-reach");
    let tree = fixture(dir.path());
    let loaded = set(&[
        "ext4",
        "jbd2",
        "mbcache",
        "sctp",
        "can",
        "n_hdlc",
        "virtio_net",
    ]);
    let boot = vec![("ext4".to_string(), "root filesystem ext4".to_string())];
    let ctx = ReachContext::default();
    let input = |exclude_reachable| FreezeInput {
        tree: &tree,
        release: "6.12.0-test",
        loaded: &loaded,
        boot: &boot,
        name: None,
        ctx: &ctx,
        exclude_reachable,
    };
    let frozen = freeze(&input(false));
    let how: Vec<(&str, &str)> = frozen
        .report
        .reachable_loaded
        .iter()
        .map(|r| (r.name.as_str(), r.how.as_str()))
        .collect();
    assert_eq!(
        how,
        [
            ("can", "reachable by any user through socket(AF_CAN, …) (net-pf-29)"),
            (
                "ext4",
                "reachable by any user in a user namespace through mount -t ext4 (fs-ext4)"
            ),
            (
                "jbd2",
                "reachable by any user in a user namespace as a dependency of ext4, through mount -t ext4 (fs-ext4)"
            ),
            (
                "mbcache",
                "reachable by any user in a user namespace as a dependency of ext4, through mount -t ext4 (fs-ext4)"
            ),
            ("n_hdlc", "reachable by any user through ioctl(TIOCSETD, 13) (tty-ldisc-13)"),
            (
                "sctp",
                "reachable by any user through socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) (net-pf-2-proto-132)"
            ),
        ]
    );
    let reason = |p: &Policy, m: &str| p.lists_module(m).map(|e| e.reason.clone().unwrap());
    assert_eq!(
        reason(&frozen.policy, "can").as_deref(),
        Some("loaded; WARNING: reachable by any user through socket(AF_CAN, …) (net-pf-29)")
    );
    assert!(frozen
        .report
        .notes
        .iter()
        .any(|n| n.contains("--exclude-reachable")));

    let strict = freeze(&input(true));
    let p = &strict.policy;
    let listed: Vec<&str> = p.modules.allow.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(listed, ["ext4", "virtio_net"]);
    let eff = p.effective_modules(&tree);
    for gone in ["sctp", "can", "n_hdlc"] {
        assert!(!eff.contains_key(gone), "{gone} is still allowed");
    }
    let r = |m: &str| {
        strict
            .report
            .reachable_loaded
            .iter()
            .find(|r| r.name == m)
            .unwrap()
            .clone()
    };
    assert!(r("sctp").excluded && r("sctp").kept_because.is_none());
    assert_eq!(
        r("ext4").kept_because.as_deref(),
        Some("needed to boot: root filesystem ext4")
    );
    assert!(!r("jbd2").excluded);
    assert_eq!(
        r("jbd2").kept_because.as_deref(),
        Some("dependency of ext4")
    );
}
