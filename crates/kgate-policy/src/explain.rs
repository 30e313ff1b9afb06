//! [`Policy::explain`]: why a module or request may or may not load.

use kgate_kernel::tree::KernelTree;
use kgate_kernel::trigger::Trigger;
use serde::Serialize;

use crate::allowlist::Allowance;
use crate::model::*;
use crate::socket::family_name;

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
