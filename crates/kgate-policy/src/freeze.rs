//! [`freeze`]: a policy from what a host uses now.

use std::collections::{BTreeMap, BTreeSet};

use kgate_kernel::reach::{self, Reach, ReachContext, Via};
use kgate_kernel::tree::KernelTree;
use kgate_kernel::trigger::{Trigger, TriggerKind};
use serde::Serialize;

use crate::allowlist::Allowance;
use crate::model::*;
use crate::socket::{family_name, SocketRule, AF_MAX};
use crate::splice::SplicePreset;

/// Input of [`freeze`].
#[derive(Debug, Clone)]
pub struct FreezeInput<'a> {
    /// The running kernel's tree.
    pub tree: &'a KernelTree,
    /// Its release (`uname -r`), recorded as `meta.kernel`.
    pub release: &'a str,
    /// Modules loaded right now (`/proc/modules`), any spelling.
    pub loaded: &'a BTreeSet<String>,
    /// Modules needed to boot, with why: `("ext4", "root filesystem ext4")`.
    pub boot: &'a [(String, String)],
    /// `meta.name`.
    pub name: Option<String>,
    /// The settings unprivileged reachability is judged against
    /// ([`reach::compute`]): which loaded modules an unprivileged user
    /// could have loaded before the freeze.
    pub ctx: &'a ReachContext,
    /// Leave loaded modules that an unprivileged user can get loaded out of
    /// the allowlist, unless boot needs them; a kept module's dependencies
    /// stay allowed.
    pub exclude_reachable: bool,
}

/// A loaded module that an unprivileged user can get loaded: it may be
/// loaded only because someone made the kernel load it (issue 19).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReachableLoaded {
    /// Canonical name.
    pub name: String,
    /// How: `reachable by any user through socket(AF_INET, SOCK_STREAM,
    /// IPPROTO_SCTP) (net-pf-2-proto-132)`.
    pub how: String,
    /// The trigger, as the survey reports it.
    pub via: Option<Via>,
    /// Only through a user namespace.
    pub needs_userns: bool,
    /// Left out of `modules.allow` (`--exclude-reachable`) and blocked.
    pub excluded: bool,
    /// Why it stays allowed although `--exclude-reachable` was given
    /// (`needed to boot: …`, `dependency of keeper`); `None` otherwise.
    pub kept_because: Option<String>,
}

/// One allowed module in a [`FreezeReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrozenModule {
    /// Canonical name.
    pub name: String,
    /// Why it is allowed.
    pub why: Allowance,
    /// Loaded when the policy was frozen.
    pub loaded: bool,
    /// In the kernel's tree (false for out-of-tree modules).
    pub in_tree: bool,
}

/// What [`freeze`] decided, for the user to review.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FreezeReport {
    /// The kernel release.
    pub release: String,
    /// Every allowed module (listed, dependency, builtin) and why.
    pub allowed: Vec<FrozenModule>,
    /// Names listed in `modules.allow`.
    pub listed: Vec<String>,
    /// Loaded modules not listed because another listed module pulls them
    /// in (they are allowed as dependencies).
    pub implied: Vec<String>,
    /// Loaded modules the tree does not have (out-of-tree, or a tree that
    /// does not match the running kernel); listed anyway.
    pub not_in_tree: Vec<String>,
    /// Loadable modules of the tree that the policy blocks.
    pub blocked: usize,
    /// `sockets.allow`, as written.
    pub socket_families: Vec<String>,
    /// Loaded modules that an unprivileged user can get loaded, with the
    /// trigger; sorted by name.
    pub reachable_loaded: Vec<ReachableLoaded>,
    /// `--exclude-reachable` was given.
    pub exclude_reachable: bool,
    /// Things to know before enforcing.
    pub notes: Vec<String>,
}

/// A frozen policy and its report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frozen {
    /// The policy.
    pub policy: Policy,
    /// What was decided and why.
    pub report: FreezeReport,
}

/// `net-pf-N` → N.
fn socket_family_of(t: &Trigger) -> Option<u32> {
    if t.kind != TriggerKind::SocketFamily {
        return None;
    }
    let n: u32 = t.alias.strip_prefix("net-pf-")?.parse().ok()?;
    (n > 0 && n < AF_MAX).then_some(n)
}

/// The sysctls a frozen policy sets: (name, value).
pub const FROZEN_SYSCTLS: &[(&str, i64)] = &[
    ("kernel.unprivileged_bpf_disabled", 2),
    ("kernel.io_uring_disabled", 2),
    ("dev.tty.ldisc_autoload", 0),
    ("vm.unprivileged_userfaultfd", 0),
    ("kernel.perf_event_paranoid", 2),
    ("kernel.kptr_restrict", 1),
    ("kernel.dmesg_restrict", 1),
];

/// Write a policy that allows what the host uses now: the loaded modules
/// and the boot modules (plus, implicitly, their closure and the builtin
/// modules), the socket families those modules provide plus unix, inet,
/// inet6 and netlink, the default splice preset in audit mode, user
/// namespaces in audit mode, and the hardened sysctls of
/// [`FROZEN_SYSCTLS`].
pub fn freeze(input: &FreezeInput<'_>) -> Frozen {
    let tree = input.tree;
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut is_boot: BTreeSet<String> = BTreeSet::new();
    for (m, why) in input.boot {
        let m = kgate_kernel::canonical_name(m);
        is_boot.insert(m.clone());
        reasons.entry(m).or_default().push(why.clone());
    }
    let loaded: BTreeSet<String> = input
        .loaded
        .iter()
        .map(|m| kgate_kernel::canonical_name(m))
        .collect();
    // Loaded modules any user could have made the kernel load: flagged,
    // and with exclude_reachable left out unless boot needs them.
    let reach = reach::compute(tree, input.ctx);
    let mut reachable_loaded: Vec<ReachableLoaded> = Vec::new();
    for m in &loaded {
        let Some(i) = tree.position(m) else { continue };
        let r = &reach[i];
        if tree.modules[i].builtin || !r.unprivileged {
            continue;
        }
        let kept_because = (input.exclude_reachable && is_boot.contains(m))
            .then(|| format!("needed to boot: {}", reasons[m].join("; ")));
        reachable_loaded.push(ReachableLoaded {
            name: m.clone(),
            how: describe_reach(r),
            via: r.via.clone(),
            needs_userns: r.needs_userns,
            excluded: input.exclude_reachable && kept_because.is_none(),
            kept_because,
        });
    }
    let left_out: BTreeSet<&str> = reachable_loaded
        .iter()
        .filter(|r| r.excluded)
        .map(|r| r.name.as_str())
        .collect();

    let mut not_in_tree = Vec::new();
    for m in loaded.iter().filter(|m| !left_out.contains(m.as_str())) {
        let r = reasons.entry(m.clone()).or_default();
        if tree.get(m).is_some() {
            r.insert(0, "loaded".into());
        } else {
            r.insert(0, "loaded (not in this kernel's tree)".into());
            not_in_tree.push(m.clone());
        }
    }
    for rl in &reachable_loaded {
        if let Some(r) = reasons.get_mut(&rl.name) {
            r.push(format!("WARNING: {}", rl.how));
        }
    }

    // Boot modules, out-of-tree modules and loaded modules nothing else
    // pulls in are listed; the biggest closures go first so that as many
    // loaded modules as possible are implied by them.
    let builtin = |m: &str| tree.get(m).is_some_and(|x| x.builtin);
    let mut candidates: Vec<(&String, usize)> = reasons
        .keys()
        .filter(|m| !builtin(m))
        .map(|m| (m, tree.load_closure([m.as_str()]).len()))
        .collect();
    candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut covered: BTreeSet<String> = BTreeSet::new();
    let mut listed: Vec<String> = Vec::new();
    let mut implied = Vec::new();
    for (m, _) in candidates {
        let must = is_boot.contains(m) || tree.get(m).is_none();
        if !must && covered.contains(m) {
            implied.push(m.clone());
            continue;
        }
        covered.extend(tree.load_closure([m.as_str()]));
        listed.push(m.clone());
    }
    listed.sort();
    implied.sort();

    let mut policy = Policy {
        meta: Meta {
            name: input.name.clone(),
            kernel: Some(input.release.to_owned()),
            generated_by: Some(format!("kgate freeze {}", env!("CARGO_PKG_VERSION"))),
        },
        modules: ModulesSection {
            mode: Mode::Enforce,
            root: RootMode::Allow,
            allow: listed
                .iter()
                .map(|m| Entry::with_reason(m.clone(), reasons[m].join("; ")))
                .collect(),
        },
        ..Policy::default()
    };
    let effective = policy.effective_modules(tree);
    // An excluded module that a kept one needs stays allowed: say so.
    for rl in reachable_loaded.iter_mut().filter(|r| r.excluded) {
        if let Some(why) = effective.get(&rl.name) {
            rl.excluded = false;
            rl.kept_because = Some(why.to_string());
        }
    }

    let mut families: BTreeSet<u32> = [1, 2, 10, 16].into_iter().collect();
    for name in effective.keys() {
        if let Some(m) = tree.get(name) {
            families.extend(m.triggers.iter().filter_map(socket_family_of));
        }
    }
    policy.sockets = SocketsSection {
        mode: Mode::Enforce,
        allow: families
            .iter()
            .map(|f| Entry::new(SocketRule::family(*f)))
            .collect(),
    };
    policy.splice = SpliceSection::preset(SplicePreset::Default, Mode::Audit);
    policy.userns = UsernsSection {
        unprivileged: UsernsMode::Audit,
        allow_exe: Vec::new(),
    };
    policy.sysctl = FROZEN_SYSCTLS
        .iter()
        .map(|(n, v)| (n.to_string(), Entry::new(SysctlValue::Int(*v))))
        .collect();
    policy.normalize();

    let allowed: Vec<FrozenModule> = effective
        .iter()
        .map(|(name, why)| FrozenModule {
            name: name.clone(),
            why: why.clone(),
            loaded: loaded.contains(name),
            in_tree: tree.get(name).is_some(),
        })
        .collect();
    let blocked = tree
        .modules
        .iter()
        .filter(|m| !m.builtin && !effective.contains_key(&m.name))
        .count();
    let mut notes = vec![
        "kernel.perf_event_paranoid is set to 2; set it to 3 if the kernel carries the \
         perf_event_paranoid=3 patch (Debian, Ubuntu, Android) to deny perf_event_open(2) \
         to unprivileged users entirely"
            .to_owned(),
        "userns.unprivileged is \"audit\": review the audit events, list the sandboxes that \
         need user namespaces in userns.allow_exe, then switch to \"deny\""
            .to_owned(),
        "splice.mode is \"audit\": review denied endpoints before switching to \"enforce\""
            .to_owned(),
    ];
    if !reachable_loaded.is_empty() && !input.exclude_reachable {
        notes.push(format!(
            "{} loaded module(s) can be loaded by any user, so an unprivileged user may have \
             loaded them before this freeze: {}; make sure the host uses them, or freeze \
             again with --exclude-reachable to leave them out",
            reachable_loaded.len(),
            reachable_loaded
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !not_in_tree.is_empty() {
        notes.push(format!(
            "{} loaded module(s) are not in this kernel's tree and were listed as is: {}",
            not_in_tree.len(),
            not_in_tree.join(", ")
        ));
    }
    let report = FreezeReport {
        release: input.release.to_owned(),
        allowed,
        listed,
        implied,
        not_in_tree,
        blocked,
        socket_families: policy
            .sockets
            .allow
            .iter()
            .map(|e| e.value.to_string())
            .collect(),
        reachable_loaded,
        exclude_reachable: input.exclude_reachable,
        notes,
    };
    Frozen { policy, report }
}

/// `reachable by any user [in a user namespace] [as a dependency of X]
/// through CALL (ALIAS)`.
fn describe_reach(r: &Reach) -> String {
    let mut s = "reachable by any user".to_owned();
    if r.needs_userns {
        s.push_str(" in a user namespace");
    }
    match &r.via {
        Some(Via::Trigger { kind, alias }) => {
            s.push_str(&format!(
                " through {} ({alias})",
                trigger_call(*kind, alias)
            ));
        }
        Some(Via::Dependency { of, kind, alias }) => s.push_str(&format!(
            " as a dependency of {of}, through {} ({alias})",
            trigger_call(*kind, alias)
        )),
        None => {}
    }
    s
}

/// What a user does to send a request: `net-pf-2-proto-132` →
/// `socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)`.
pub fn trigger_call(kind: TriggerKind, alias: &str) -> String {
    let af = |n: u32| {
        family_name(n)
            .map(|f| format!("AF_{}", f.to_uppercase()))
            .unwrap_or_else(|| n.to_string())
    };
    let num = |s: &str| s.parse::<u32>().ok();
    match kind {
        TriggerKind::SocketFamily => {
            if let Some(f) = alias.strip_prefix("net-pf-").and_then(num) {
                return format!("socket({}, …)", af(f));
            }
        }
        TriggerKind::SocketProtocol | TriggerKind::Netlink => {
            let parts: Vec<&str> = alias.split('-').collect();
            if let ["net", "pf", f, "proto", p, rest @ ..] = parts.as_slice() {
                if let (Some(f), Some(p)) = (num(f), num(p)) {
                    let proto = crate::socket::protocol_name(f, p);
                    let ty = match rest {
                        ["type", t] => match num(t) {
                            Some(1) => "SOCK_STREAM".to_owned(),
                            Some(2) => "SOCK_DGRAM".to_owned(),
                            Some(3) => "SOCK_RAW".to_owned(),
                            Some(5) => "SOCK_SEQPACKET".to_owned(),
                            Some(6) => "SOCK_DCCP".to_owned(),
                            _ => t.to_string(),
                        },
                        _ if f == crate::socket::AF_NETLINK => "SOCK_RAW".to_owned(),
                        _ => match proto {
                            Some("tcp" | "sctp" | "mptcp" | "smc") => "SOCK_STREAM".to_owned(),
                            Some("udp" | "udplite" | "icmp" | "l2tp") => "SOCK_DGRAM".to_owned(),
                            Some("dccp") => "SOCK_DCCP".to_owned(),
                            _ => "…".to_owned(),
                        },
                    };
                    let prefix = if f == crate::socket::AF_NETLINK {
                        "NETLINK_"
                    } else {
                        "IPPROTO_"
                    };
                    let proto = proto
                        .map(|p| format!("{prefix}{}", p.to_uppercase()))
                        .unwrap_or_else(|| p.to_string());
                    return format!("socket({}, {ty}, {proto})", af(f));
                }
            }
        }
        TriggerKind::Filesystem => {
            if let Some(fs) = alias.strip_prefix("fs-") {
                return format!("mount -t {fs}");
            }
        }
        TriggerKind::TtyLdisc => {
            if let Some(n) = alias.strip_prefix("tty-ldisc-") {
                return format!("ioctl(TIOCSETD, {n})");
            }
        }
        TriggerKind::AfAlg => {
            if let Some(t) = alias.strip_prefix("algif-") {
                return format!("bind() of an AF_ALG socket to type {t}");
            }
        }
        TriggerKind::Devname => {
            if let Some(node) = alias.strip_prefix("devname:") {
                return format!("open(/dev/{node})");
            }
        }
        _ => {}
    }
    format!("a {} request", kind.as_str().replace('_', " "))
}
