//! [`Policy::diff`]: what applying a policy changes on a kernel, as
//! unprivileged-reachable module code before and after.

use std::collections::BTreeSet;

use kgate_kernel::reach::{self, Reach, ReachContext};
use kgate_kernel::tree::KernelTree;
use serde::Serialize;

use crate::allowlist::tree_release;
use crate::model::*;

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
