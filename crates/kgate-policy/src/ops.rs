//! Operations of a policy against a kernel tree: the effective allowlist,
//! checks, freeze, carry, diff and explain.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use kgate_kernel::reach::{self, Reach, ReachContext, Via};
use kgate_kernel::tree::KernelTree;
use kgate_kernel::trigger::{Trigger, TriggerKind};
use serde::Serialize;

use crate::diag::{closest, Diagnostic, Severity};
use crate::model::*;
use crate::socket::{family_name, SocketRule, AF_MAX};
use crate::splice::SplicePreset;

/// Why a module may load under a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Allowance {
    /// Listed in `modules.allow`.
    Listed {
        /// The entry's reason.
        reason: Option<String>,
        /// The line of the entry, if the policy was read from a file.
        line: Option<usize>,
    },
    /// A hard dependency (`depends=`) of an allowed module.
    DependencyOf {
        /// The allowed module that needs it.
        of: String,
    },
    /// A soft dependency (`softdep pre:`/`post:`) of an allowed module.
    SoftDependencyOf {
        /// The allowed module that pulls it in.
        of: String,
    },
    /// Compiled into the kernel image: always present.
    Builtin,
}

impl fmt::Display for Allowance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowance::Listed { reason, line } => {
                f.write_str("listed in modules.allow")?;
                if let Some(l) = line {
                    write!(f, " at line {l}")?;
                }
                if let Some(r) = reason {
                    write!(f, " ({r})")?;
                }
                Ok(())
            }
            Allowance::DependencyOf { of } => write!(f, "dependency of {of}"),
            Allowance::SoftDependencyOf { of } => write!(f, "soft dependency of {of}"),
            Allowance::Builtin => f.write_str("builtin"),
        }
    }
}

/// The kernel release of a tree: the name of its modules directory
/// (`/lib/modules/RELEASE`).
pub fn tree_release(tree: &KernelTree) -> String {
    tree.modules_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| tree.modules_dir.display().to_string())
}

impl Policy {
    /// The effective module allowlist on `tree`: the listed modules, their
    /// load closure (hard and soft dependencies, transitively, as modprobe
    /// loads them; see [`KernelTree::load_closure`]) and every builtin
    /// module, each with why. A module not in the map is blocked when
    /// `modules.mode` is not `off`.
    ///
    /// Listed names that are not in the tree stay in the map (out-of-tree
    /// modules); so do dependency names the tree does not know.
    pub fn effective_modules(&self, tree: &KernelTree) -> BTreeMap<String, Allowance> {
        let mut map = BTreeMap::new();
        for m in tree.modules.iter().filter(|m| m.builtin) {
            map.insert(m.name.clone(), Allowance::Builtin);
        }
        let mut queue = VecDeque::new();
        for e in &self.modules.allow {
            let name = kgate_kernel::canonical_name(&e.value);
            map.insert(
                name.clone(),
                Allowance::Listed {
                    reason: e.reason.clone(),
                    line: e.line(),
                },
            );
            queue.push_back(name);
        }
        while let Some(name) = queue.pop_front() {
            let Some(m) = tree.get(&name) else { continue };
            let hard = m.depends.iter().map(|d| (d, true));
            let soft = m
                .softdep_pre
                .iter()
                .chain(&m.softdep_post)
                .map(|d| (d, false));
            // A softdep may name an alias (libcrc32c: `pre: crc32c`), which
            // modprobe resolves to every matching module.
            let targets = hard.chain(soft).flat_map(|(dep, is_hard)| {
                tree.dependency_targets(dep)
                    .into_iter()
                    .map(move |t| (t, is_hard))
            });
            for (dep, is_hard) in targets {
                if map.contains_key(&dep) {
                    continue;
                }
                let of = m.name.clone();
                let why = if is_hard {
                    Allowance::DependencyOf { of }
                } else {
                    Allowance::SoftDependencyOf { of }
                };
                map.insert(dep.clone(), why);
                queue.push_back(dep);
            }
        }
        map
    }

    fn diag_path(&self) -> std::path::PathBuf {
        self.source.clone().unwrap_or_else(|| IN_MEMORY_PATH.into())
    }

    /// Warnings about this policy on a given kernel: listed modules the
    /// kernel does not have (with the closest name), and a `meta.kernel`
    /// that names another release.
    pub fn check_against(&self, tree: &KernelTree) -> Vec<Diagnostic> {
        let release = tree_release(tree);
        let path = self.diag_path();
        let mut out = Vec::new();
        let warn = |line: Option<crate::diag::Location>,
                    key: &str,
                    message: String,
                    hint: Option<String>| Diagnostic {
            severity: Severity::Warning,
            path: path.clone(),
            line: line.map_or(0, |l| l.line),
            column: line.map_or(0, |l| l.column),
            key: key.to_owned(),
            message,
            allowed: Vec::new(),
            hint,
        };
        if let Some(k) = &self.meta.kernel {
            if *k != release {
                out.push(warn(
                    None,
                    "meta.kernel",
                    format!("the policy was written for kernel {k}; checking it against {release}"),
                    Some("run `kgate policy carry` to move it to this kernel".into()),
                ));
            }
        }
        let names: Vec<&str> = tree.modules.iter().map(|m| m.name.as_str()).collect();
        for e in &self.modules.allow {
            if tree.get(&e.value).is_some() {
                continue;
            }
            let hint =
                closest(&e.value, names.iter().copied()).map(|c| format!("did you mean `{c}`?"));
            out.push(warn(
                e.at,
                "modules.allow",
                format!(
                    "module `{}` is not in kernel {release} (out-of-tree modules are fine to list)",
                    e.value
                ),
                hint,
            ));
        }
        out.sort_by_key(|d| (d.line, d.column));
        out
    }
}

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

/// A policy carried to a new kernel, and what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Carried {
    /// The policy for the new kernel (`meta.kernel` updated).
    pub policy: Policy,
    /// Listed modules the new kernel does not have. They stay listed (a
    /// DKMS module may be built for the new kernel later); remove them by
    /// hand if they are gone for good.
    pub vanished: Vec<String>,
    /// Modules new in the new kernel that the policy does not allow
    /// (needs the old tree; empty without it).
    pub new_in_kernel: Vec<String>,
    /// `(module, of)`: dependencies of allowed modules in the new kernel
    /// that were not allowed under the old one. They are allowed (the
    /// closure is recomputed), but worth a look. Needs the old tree.
    pub new_dependencies: Vec<(String, String)>,
    /// Modules that were builtin in the old kernel, are loadable modules in
    /// the new one and would otherwise be blocked: added to
    /// `modules.allow` so that what worked keeps working. Needs the old tree.
    pub now_loadable: Vec<String>,
}

/// Move a policy to a new kernel: same lists, `meta.kernel` set to the new
/// tree's release ([`tree_release`]), and a report of what the new kernel
/// changes.
pub fn carry(old: &Policy, old_tree: Option<&KernelTree>, new_tree: &KernelTree) -> Carried {
    let mut policy = old.clone();
    policy.meta.kernel = Some(tree_release(new_tree));
    let old_release = old_tree.map(tree_release);

    let vanished: Vec<String> = old
        .modules
        .allow
        .iter()
        .filter(|e| new_tree.get(&e.value).is_none())
        .map(|e| e.value.clone())
        .collect();

    let mut now_loadable = Vec::new();
    let mut new_in_kernel = Vec::new();
    let mut new_dependencies = Vec::new();
    if let Some(old_tree) = old_tree {
        let old_eff = old.effective_modules(old_tree);
        let new_eff = policy.effective_modules(new_tree);
        for m in new_tree.modules.iter().filter(|m| !m.builtin) {
            if new_eff.contains_key(&m.name) {
                continue;
            }
            if old_tree.get(&m.name).is_some_and(|o| o.builtin) {
                now_loadable.push(m.name.clone());
            }
        }
        for name in &now_loadable {
            policy.modules.allow.push(Entry::with_reason(
                name.clone(),
                format!(
                    "builtin in {}",
                    old_release.as_deref().unwrap_or("the previous kernel")
                ),
            ));
        }
        policy.normalize();
        let new_eff = policy.effective_modules(new_tree);
        for m in new_tree.modules.iter().filter(|m| !m.builtin) {
            if old_tree.get(&m.name).is_none() && !new_eff.contains_key(&m.name) {
                new_in_kernel.push(m.name.clone());
            }
        }
        for (name, why) in &new_eff {
            if old_eff.contains_key(name) {
                continue;
            }
            if let Allowance::DependencyOf { of } | Allowance::SoftDependencyOf { of } = why {
                new_dependencies.push((name.clone(), of.clone()));
            }
        }
    }
    Carried {
        policy,
        vanished,
        new_in_kernel,
        new_dependencies,
        now_loadable,
    }
}

/// Unprivileged-reachable module code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Surface {
    /// Loadable modules an unprivileged user can cause to load.
    pub modules: usize,
    /// Their executable code, in bytes.
    pub text_bytes: u64,
    /// Their functions.
    pub functions: u64,
}

impl Surface {
    fn of(tree: &KernelTree, reach: &[Reach]) -> Surface {
        let mut s = Surface::default();
        for (m, r) in tree.modules.iter().zip(reach) {
            if r.unprivileged && !m.builtin {
                s.modules += 1;
                s.text_bytes += m.text_bytes;
                s.functions += u64::from(m.functions);
            }
        }
        s
    }

    fn minus(self, other: Surface) -> Surface {
        Surface {
            modules: self.modules.saturating_sub(other.modules),
            text_bytes: self.text_bytes.saturating_sub(other.text_bytes),
            functions: self.functions.saturating_sub(other.functions),
        }
    }
}

/// What applying a policy changes on a kernel (see [`Policy::diff`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// The kernel release.
    pub release: String,
    /// `modules.mode`: the numbers below describe the allowlist as if it
    /// were enforced; with `audit` or `off` nothing is blocked yet.
    pub mode: Mode,
    /// Loadable (not builtin) modules in the tree.
    pub loadable: usize,
    /// Loadable modules the policy allows.
    pub allowed: usize,
    /// Loadable modules the policy blocks, sorted.
    pub blocked: Vec<String>,
    /// Blocked modules that are loaded right now. Must be empty for a safe
    /// apply: the host uses them.
    pub blocked_loaded: Vec<String>,
    /// Listed modules the tree does not have.
    pub listed_not_in_kernel: Vec<String>,
    /// Unprivileged-reachable module code without the policy.
    pub before: Surface,
    /// ... with the module allowlist.
    pub after: Surface,
    /// `before - after`.
    pub removed: Surface,
    /// ... with the allowlist and the policy's sysctls and `[userns]`
    /// applied to the context ([`DiffReport::context_after`]).
    pub after_with_settings: Surface,
    /// The reachability context once the policy's settings apply.
    pub context_after: ReachContext,
}

impl Policy {
    /// The reachability context once this policy's sysctls and `[userns]`
    /// apply to `ctx`: `kernel.modules_disabled = 1` or an empty
    /// `kernel.modprobe` turn autoload off; `userns.unprivileged = "deny"`,
    /// `user.max_user_namespaces = 0` or
    /// `kernel.unprivileged_userns_clone = 0` turn user namespaces off;
    /// `dev.tty.ldisc_autoload` sets ldisc autoload.
    pub fn apply_settings(&self, ctx: &ReachContext) -> ReachContext {
        let mut ctx = ctx.clone();
        let int = |n: &str| match self.sysctl.get(n).map(|e| &e.value) {
            Some(SysctlValue::Int(i)) => Some(*i),
            Some(SysctlValue::Bool(b)) => Some(i64::from(*b)),
            _ => None,
        };
        if int("kernel.modules_disabled") == Some(1)
            || matches!(self.sysctl.get("kernel.modprobe").map(|e| &e.value), Some(SysctlValue::Str(s)) if s.is_empty())
        {
            ctx.autoload = false;
        }
        if self.userns.unprivileged == UsernsMode::Deny
            || int("user.max_user_namespaces") == Some(0)
            || int("kernel.unprivileged_userns_clone") == Some(0)
        {
            ctx.userns = false;
        }
        if let Some(v) = int("dev.tty.ldisc_autoload") {
            ctx.ldisc_autoload = v != 0;
        }
        ctx
    }

    /// What applying this policy changes on `tree`: which loadable modules
    /// it blocks (and which of those are `loaded` now), and the
    /// unprivileged-reachable module code before and after, computed with
    /// [`reach::compute`] and [`reach::compute_filtered`] on the effective
    /// allowlist.
    pub fn diff(
        &self,
        tree: &KernelTree,
        ctx: &ReachContext,
        loaded: &BTreeSet<String>,
    ) -> DiffReport {
        let eff = self.effective_modules(tree);
        let loaded: BTreeSet<String> = loaded
            .iter()
            .map(|m| kgate_kernel::canonical_name(m))
            .collect();
        let loadable: Vec<&str> = tree
            .modules
            .iter()
            .filter(|m| !m.builtin)
            .map(|m| m.name.as_str())
            .collect();
        let blocked: Vec<String> = loadable
            .iter()
            .filter(|m| !eff.contains_key(**m))
            .map(|m| m.to_string())
            .collect();
        let blocked_loaded = blocked
            .iter()
            .filter(|m| loaded.contains(*m))
            .cloned()
            .collect();
        let allowed_fn = |m: &kgate_kernel::tree::Module| eff.contains_key(&m.name);
        let before = Surface::of(tree, &reach::compute(tree, ctx));
        let after = Surface::of(tree, &reach::compute_filtered(tree, ctx, allowed_fn));
        let context_after = self.apply_settings(ctx);
        let after_with_settings = Surface::of(
            tree,
            &reach::compute_filtered(tree, &context_after, allowed_fn),
        );
        DiffReport {
            release: tree_release(tree),
            mode: self.modules.mode,
            loadable: loadable.len(),
            allowed: loadable.len() - blocked.len(),
            blocked,
            blocked_loaded,
            listed_not_in_kernel: self
                .modules
                .allow
                .iter()
                .filter(|e| tree.get(&e.value).is_none())
                .map(|e| e.value.clone())
                .collect(),
            before,
            removed: before.minus(after),
            after,
            after_with_settings,
            context_after,
        }
    }
}

/// One module in an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExplainedModule {
    /// Canonical name.
    pub name: String,
    /// In the kernel's tree.
    pub in_tree: bool,
    /// Compiled into the kernel.
    pub builtin: bool,
    /// Loaded (live trees only).
    pub loaded: bool,
    /// May it load under the policy's allowlist?
    pub allowed: bool,
    /// Why it is allowed; `None` when blocked.
    pub allowance: Option<Allowance>,
    /// The rule in words: "listed in modules.allow at line 12 (SIP)",
    /// "dependency of nf_tables", "builtin", "not in modules.allow".
    pub rule: String,
    /// Its aliases that match the query (empty for a match by name).
    pub matched_aliases: Vec<String>,
    /// Every way it can be loaded, with who can reach each one.
    pub triggers: Vec<Trigger>,
}

/// Whether the socket family named by a `net-pf-N[...]` query is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocketVerdict {
    /// The family number.
    pub family: u32,
    /// Its name, if known.
    pub name: Option<&'static str>,
    /// Some `sockets.allow` rule covers (some protocol of) the family.
    pub allowed: bool,
    /// `sockets.mode`.
    pub mode: Mode,
}

/// The answer to "may this load?" (see [`Policy::explain`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The query as given.
    pub query: String,
    /// `modules.mode`: with `off`, nothing is blocked whatever `allowed` says.
    pub mode: Mode,
    /// The modules the query resolves to (by name, else by alias, the way
    /// modprobe resolves it). Empty: no module would load for it.
    pub modules: Vec<ExplainedModule>,
    /// For `net-pf-N` queries: the `[sockets]` verdict for family N.
    pub socket: Option<SocketVerdict>,
}

impl Policy {
    /// Explain a module name or a request string (`net-pf-40`, `fs-hfs`):
    /// which modules it loads and, for each, allowed or blocked and by
    /// which rule, plus its triggers.
    pub fn explain(&self, tree: &KernelTree, query: &str) -> Explanation {
        let eff = self.effective_modules(tree);
        let canonical = kgate_kernel::canonical_name(query);
        let mut modules: Vec<ExplainedModule> = tree
            .resolve(query)
            .into_iter()
            .map(|m| {
                let allowance = eff.get(&m.name).cloned();
                let matched_aliases = if m.name == canonical {
                    Vec::new()
                } else {
                    m.aliases
                        .iter()
                        .filter(|a| kgate_kernel::tree::glob_match(a, query))
                        .cloned()
                        .collect()
                };
                ExplainedModule {
                    name: m.name.clone(),
                    in_tree: true,
                    builtin: m.builtin,
                    loaded: m.loaded,
                    allowed: allowance.is_some(),
                    rule: allowance
                        .as_ref()
                        .map_or_else(|| "not in modules.allow".to_owned(), |a| a.to_string()),
                    allowance,
                    matched_aliases,
                    triggers: m.triggers.clone(),
                }
            })
            .collect();
        if modules.is_empty() {
            if let Some(a) = eff.get(&canonical) {
                modules.push(ExplainedModule {
                    name: canonical.clone(),
                    in_tree: false,
                    builtin: false,
                    loaded: false,
                    allowed: true,
                    rule: format!("{a} (not in this kernel's tree)"),
                    allowance: Some(a.clone()),
                    matched_aliases: Vec::new(),
                    triggers: Vec::new(),
                });
            }
        }
        let socket = query
            .strip_prefix("net-pf-")
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.parse::<u32>().ok())
            .map(|family| SocketVerdict {
                family,
                name: family_name(family),
                allowed: self.sockets.allows_family(family),
                mode: self.sockets.mode,
            });
        Explanation {
            query: query.to_owned(),
            mode: self.modules.mode,
            modules,
            socket,
        }
    }
}

/// The path shown in diagnostics about policies built in memory.
pub const IN_MEMORY_PATH: &str = "<policy>";
