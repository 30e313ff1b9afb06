//! The effective module allowlist of a policy on a kernel tree (listed
//! modules, their load closure, builtins; each with why) and the warnings
//! about a policy on a given kernel.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use kgate_kernel::tree::KernelTree;
use serde::Serialize;

use crate::diag::{closest, Diagnostic, Severity};
use crate::model::*;

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

/// The path shown in diagnostics about policies built in memory.
pub const IN_MEMORY_PATH: &str = "<policy>";
