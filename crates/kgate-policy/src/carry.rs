//! [`carry`]: move a policy to a new kernel and report what changed.

use kgate_kernel::tree::KernelTree;
use serde::Serialize;

use crate::allowlist::{tree_release, Allowance};
use crate::model::*;

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
