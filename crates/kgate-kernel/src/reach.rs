//! Unprivileged reachability: which modules an ordinary user (global uid
//! ≠ 0, no capabilities) can cause to be loaded, directly or through a user
//! namespace, given the host's settings.
//!
//! A module is reachable when one of its triggers is reachable (see
//! [`crate::trigger::Access`] and `docs/triggers.md`), or when modprobe loads
//! it for a reachable module: a hard dependency or a soft dependency.
//! Builtin modules are part of the kernel image, always present, and are not
//! counted as autoload surface.

use std::collections::{BTreeSet, VecDeque};

use serde::Serialize;

use crate::tree::{KernelTree, Module};
use crate::trigger::{Access, Trigger, TriggerKind};

/// Static device nodes that Debian 12's udev rules make world-accessible
/// (`MODE="0666"` in 50-udev-default.rules), used when the real `/dev`
/// cannot be inspected (offline surveys). See docs/triggers.md.
pub const DEFAULT_OPEN_DEVICE_NODES: &[&str] = &["fuse", "net/tun", "vfio/vfio"];

/// The host settings that decide which call sites an unprivileged user can
/// reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReachContext {
    /// Module autoload works at all: modules are supported,
    /// `kernel.modules_disabled = 0` and `kernel.modprobe` is set.
    pub autoload: bool,
    /// Unprivileged users may create user namespaces.
    pub userns: bool,
    /// `dev.tty.ldisc_autoload = 1`.
    pub ldisc_autoload: bool,
    /// `devname:` nodes (relative to /dev) that any user can open.
    pub open_device_nodes: BTreeSet<String>,
    /// Modules modprobe configuration stops from loading at all
    /// (`install M /bin/false`).
    pub install_blocked: BTreeSet<String>,
    /// Modules whose aliases modprobe ignores (`blacklist M`); name
    /// requests and dependency loads still load them.
    pub blacklisted: BTreeSet<String>,
}

impl Default for ReachContext {
    /// A stock distribution kernel: autoload on, user namespaces allowed,
    /// ldisc autoload on, the default world-accessible device nodes.
    fn default() -> Self {
        ReachContext {
            autoload: true,
            userns: true,
            ldisc_autoload: true,
            open_device_nodes: DEFAULT_OPEN_DEVICE_NODES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            install_blocked: BTreeSet::new(),
            blacklisted: BTreeSet::new(),
        }
    }
}

/// Why a module is reachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Via {
    /// One of the module's own triggers.
    Trigger {
        /// The trigger kind.
        kind: TriggerKind,
        /// The request string.
        alias: String,
    },
    /// modprobe loads it for another reachable module.
    Dependency {
        /// The module that pulls it in.
        of: String,
        /// The trigger kind at the root of the chain.
        kind: TriggerKind,
        /// The request string at the root of the chain.
        alias: String,
    },
}

/// Reachability of one module.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Reach {
    /// An unprivileged user can cause this module to load.
    pub unprivileged: bool,
    /// Only through a user namespace.
    pub needs_userns: bool,
    /// The first reason found (direct triggers win over dependencies; a path
    /// without user namespaces wins over one with).
    pub via: Option<Via>,
}

/// Reachability of every module of `tree`, in `tree.modules` order.
pub fn compute(tree: &KernelTree, ctx: &ReachContext) -> Vec<Reach> {
    compute_filtered(tree, ctx, |_| true)
}

/// Reachability when only modules for which `loadable` returns true can
/// load (a policy's allowlist): a blocked module is unreachable, and so is
/// whatever only it would have pulled in.
pub fn compute_filtered(
    tree: &KernelTree,
    ctx: &ReachContext,
    loadable: impl Fn(&Module) -> bool,
) -> Vec<Reach> {
    let mut out = vec![Reach::default(); tree.modules.len()];
    if !ctx.autoload {
        return out;
    }
    let blocked: Vec<bool> = tree
        .modules
        .iter()
        .map(|m| !m.builtin && (ctx.install_blocked.contains(&m.name) || !loadable(m)))
        .collect();
    let index = |name: &str| tree.position(name);

    // Pass 1 finds everything reachable without AF_ALG-routed crypto; if
    // af_alg itself is then reachable (or builtin), crypto requests are too.
    for with_crypto in [false, true] {
        if with_crypto {
            let af_alg_ok =
                index("af_alg").is_some_and(|i| tree.modules[i].builtin || out[i].unprivileged);
            if !af_alg_ok {
                break;
            }
        }
        for userns_pass in [false, true] {
            if userns_pass && !ctx.userns {
                break;
            }
            let mut roots = Vec::new();
            for (i, m) in tree.modules.iter().enumerate() {
                if m.builtin || blocked[i] || out[i].unprivileged {
                    continue;
                }
                let by_name = crate::trigger::name_trigger(&m.name).map(|(alias, ..)| alias);
                let blacklisted = ctx.blacklisted.contains(&m.name);
                let allowed = |t: &&Trigger| {
                    // modprobe ignores a blacklisted module's aliases, not its name.
                    if blacklisted && by_name.as_deref() != Some(t.alias.as_str()) {
                        return false;
                    }
                    match t.access {
                        Access::Any => true,
                        Access::LdiscAutoload => ctx.ldisc_autoload,
                        Access::ThroughAfAlg => with_crypto,
                        Access::UserNamespace => userns_pass,
                        Access::DeviceNode => {
                            t.kind == TriggerKind::Devname
                                && t.alias
                                    .strip_prefix("devname:")
                                    .is_some_and(|n| ctx.open_device_nodes.contains(n))
                        }
                        _ => false,
                    }
                };
                if let Some(t) = m
                    .triggers
                    .iter()
                    .filter(allowed)
                    .min_by(|a, b| preference(a, b))
                {
                    out[i] = Reach {
                        unprivileged: true,
                        needs_userns: userns_pass,
                        via: Some(Via::Trigger {
                            kind: t.kind,
                            alias: t.alias.clone(),
                        }),
                    };
                    roots.push((t, i));
                }
            }
            // Walk dependencies from the most telling roots first, so a
            // shared dependency (vsock) is credited to a socket family
            // rather than to whatever sorts first.
            roots.sort_by(|a, b| preference(a.0, b.0).then(a.1.cmp(&b.1)));
            let mut queue: VecDeque<(usize, TriggerKind, String)> = roots
                .into_iter()
                .map(|(t, i)| (i, t.kind, t.alias.clone()))
                .collect();
            // Dependencies of newly reachable modules.
            while let Some((i, kind, alias)) = queue.pop_front() {
                let m = &tree.modules[i];
                for dep in m
                    .depends
                    .iter()
                    .chain(&m.softdep_pre)
                    .chain(&m.softdep_post)
                {
                    let Some(j) = index(dep) else { continue };
                    if tree.modules[j].builtin || blocked[j] || out[j].unprivileged {
                        continue;
                    }
                    out[j] = Reach {
                        unprivileged: true,
                        needs_userns: userns_pass,
                        via: Some(Via::Dependency {
                            of: m.name.clone(),
                            kind,
                            alias: alias.clone(),
                        }),
                    };
                    queue.push_back((j, kind, alias.clone()));
                }
            }
        }
    }
    out
}

/// Order of preference among a module's reachable triggers: the kind in
/// [`TriggerKind::ALL`] order (socket families first), then the alias in
/// natural order (`net-pf-2-…` before `net-pf-10-…`).
fn preference(a: &Trigger, b: &Trigger) -> std::cmp::Ordering {
    let rank = |k: TriggerKind| TriggerKind::ALL.iter().position(|x| *x == k);
    rank(a.kind)
        .cmp(&rank(b.kind))
        .then_with(|| natural_cmp(&a.alias, &b.alias))
}

/// Compare strings with runs of digits compared as numbers.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (trim_zeros(&a[..na]), trim_zeros(&b[..nb]));
                let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|c| **c == b'0').count();
    &d[z..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        use std::cmp::Ordering::*;
        assert_eq!(
            natural_cmp("net-pf-2-proto-132", "net-pf-10-proto-132"),
            Less
        );
        assert_eq!(natural_cmp("a10", "a9"), Greater);
        assert_eq!(natural_cmp("a", "a"), Equal);
        assert_eq!(natural_cmp("a007", "a7"), Equal);
    }
}
