//! kgate's policy: what unprivileged users may make the kernel do, written
//! as a small TOML file that a human can review and a machine can enforce.
//!
//! A policy allowlists module autoload (`[modules]`), socket families and
//! protocols (`[sockets]`), splice-family endpoints (`[splice]`) and user
//! namespace creation (`[userns]`), and sets hardening sysctls
//! (`[sysctl]`); `[seccomp]` is a workload's syscall filter (`kgate run`,
//! exports), generated from recorded [`profile`]s. The format is described in `docs/policy.md`.
//!
//! This crate reads and validates policies with line-precise diagnostics
//! ([`Policy::parse`], [`Policy::load`]), renders them canonically
//! ([`Policy::to_toml`], [`Policy::hash`]), and works them against a
//! kernel's module tree: the effective allowlist
//! ([`Policy::effective_modules`]), [`freeze`] (a policy from what a host
//! uses now), [`carry`] (move a policy to a new kernel), [`Policy::diff`]
//! (what applying it removes) and [`Policy::explain`] (why a module may or
//! may not load).
//!
//! It does no I/O beyond reading a policy file; enforcing a policy is the
//! job of `kgate-apply`.
//!
//! ```
//! let text = r#"
//! version = 1
//! [modules]
//! mode = "enforce"
//! allow = ["ext4", { name = "sctp", reason = "SIP trunk" }]
//! "#;
//! let loaded = kgate_policy::Policy::parse(text, "web.toml").unwrap();
//! assert_eq!(loaded.policy.modules.allow.len(), 2);
//! assert!(loaded.warnings.is_empty());
//! let again = kgate_policy::Policy::parse(&loaded.policy.to_toml(), "x.toml").unwrap();
//! assert_eq!(again.policy, loaded.policy);
//! ```

#![deny(missing_docs)]

mod allowlist;
mod carry;
pub mod diag;
mod diff;
mod explain;
mod freeze;
mod mode;
pub mod model;
mod parse;
pub mod profile;
mod render;
pub mod socket;
pub mod splice;
pub mod syscall;
pub mod sysctl;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use allowlist::{tree_release, Allowance, IN_MEMORY_PATH};
pub use carry::{carry, Carried};
pub use diag::{Diagnostic, Location, PolicyError, Severity};
pub use diff::{DiffReport, Surface};
pub use explain::{ExplainedModule, Explanation, SocketVerdict};
pub use freeze::{
    freeze, FreezeInput, FreezeReport, Frozen, FrozenModule, ReachableLoaded, FROZEN_SYSCTLS,
};
pub use mode::ApplyMode;
pub use model::{
    Entry, Meta, Mode, ModulesSection, Policy, RootMode, SeccompErrno, SeccompSection,
    SocketFamily, SocketsSection, SpliceSection, SysctlValue, UsernsMode, UsernsSection,
    FORMAT_VERSION,
};
pub use socket::{family_name, family_number, SocketProtocol, SocketRule};
pub use splice::{Endpoint, EndpointPattern, OnDeny, SplicePair, SplicePreset};

/// A successfully parsed policy and the warnings found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The policy.
    pub policy: Policy,
    /// Warnings (duplicates, sysctls kgate does not know, one-way values),
    /// in file order.
    pub warnings: Vec<Diagnostic>,
}

impl Policy {
    /// Parse and validate policy text. `path` is only used in diagnostics.
    ///
    /// Every error is collected: on failure [`PolicyError::Invalid`] holds
    /// all of them (and the warnings), each with line, column and dotted key.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Loaded, PolicyError> {
        let (policy, diags) = parse::parse(text, path.as_ref());
        let (errors, warnings): (Vec<_>, Vec<_>) = diags.into_iter().partition(|d| d.is_error());
        match policy {
            Some(policy) if errors.is_empty() => Ok(Loaded { policy, warnings }),
            _ => Err(PolicyError::Invalid { errors, warnings }),
        }
    }

    /// Read and parse a policy file.
    pub fn load(path: impl AsRef<Path>) -> Result<Loaded, PolicyError> {
        let path = path.as_ref();
        let text = kgate_kernel::bounded::read_text(
            Path::new("/"),
            path,
            kgate_kernel::bounded::Limit::POLICY,
        )
        .map_err(|e| PolicyError::Read {
            path: path.to_owned(),
            source: e.into(),
        })?;
        Policy::parse(&text, path)
    }

    /// The canonical TOML rendering: a two-line comment header, `version`,
    /// then the non-default sections in a fixed order, lists sorted with one
    /// entry per line (an inline table when the entry has a reason), sysctls
    /// sorted by name. Parsing it gives back an equal policy, and equal
    /// policies render identically.
    pub fn to_toml(&self) -> String {
        render::to_toml(self)
    }

    /// SHA-256 of [`Policy::to_toml`], lower-case hex: identifies a policy's
    /// content independently of formatting and comments in its file.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.to_toml().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}
