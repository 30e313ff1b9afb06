//! Reading Docker/podman seccomp profiles (the JSON of
//! `/usr/share/containers/seccomp.json`, moby's `default.json`): which
//! x86_64 syscalls a container with a given capability set may call.
//!
//! Rule selection follows the container engines: a rule applies when every
//! capability in `includes.caps` is held, the architecture is in
//! `includes.arches` (if given), no capability in `excludes.caps` is held
//! and the architecture is not in `excludes.arches`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where Debian's golang-github-containers-common puts podman's default.
pub const PODMAN_DEFAULT: &str = "/usr/share/containers/seccomp.json";

/// Podman's default capability set (containers.conf `default_capabilities`).
pub const PODMAN_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// One argument comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arg {
    /// Argument index.
    pub index: u32,
    /// Value compared with.
    pub value: u64,
    /// Second value (masked compare).
    #[serde(default, rename = "valueTwo")]
    pub value_two: u64,
    /// `SCMP_CMP_*`.
    pub op: String,
}

/// `includes`/`excludes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Capabilities.
    #[serde(default)]
    pub caps: Vec<String>,
    /// Architectures (Go names: amd64, x86, ...).
    #[serde(default)]
    pub arches: Vec<String>,
}

/// One `syscalls` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Syscall names.
    pub names: Vec<String>,
    /// `SCMP_ACT_*`.
    pub action: String,
    /// Errno for `SCMP_ACT_ERRNO`.
    #[serde(default, rename = "errnoRet")]
    pub errno_ret: Option<u32>,
    /// Argument comparisons (all must hold).
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    /// When the rule applies.
    #[serde(default)]
    pub includes: Filter,
    /// When it does not.
    #[serde(default)]
    pub excludes: Filter,
}

/// A Docker/podman profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerProfile {
    /// `SCMP_ACT_*` for everything not matched.
    #[serde(rename = "defaultAction")]
    pub default_action: String,
    /// Its errno.
    #[serde(default, rename = "defaultErrnoRet")]
    pub default_errno_ret: Option<u32>,
    /// Rules.
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// How a baseline treats one syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Allowed whatever the arguments.
    Allowed,
    /// Allowed for some arguments only.
    Conditional,
    /// Denied.
    Denied,
}

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// Unreadable.
    #[error("cannot read seccomp profile {}: {source} (on Debian it comes with golang-github-containers-common)", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not a Docker/podman profile.
    #[error("{} is not a Docker/podman seccomp profile: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
}

impl DockerProfile {
    /// Read a profile file.
    pub fn load(path: impl AsRef<Path>) -> Result<DockerProfile, BaselineError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| BaselineError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// The rules that apply on x86_64 (`amd64`) with `caps`.
    pub fn applicable(&self, caps: &[&str]) -> Vec<&Rule> {
        const ARCH: &[&str] = &["amd64", "x86_64"];
        self.syscalls
            .iter()
            .filter(|r| {
                r.includes.caps.iter().all(|c| caps.contains(&c.as_str()))
                    && (r.includes.arches.is_empty()
                        || r.includes.arches.iter().any(|a| ARCH.contains(&a.as_str())))
                    && !r.excludes.caps.iter().any(|c| caps.contains(&c.as_str()))
                    && !r.excludes.arches.iter().any(|a| ARCH.contains(&a.as_str()))
            })
            .collect()
    }

    /// Every x86_64 syscall name and how this profile treats it with `caps`.
    pub fn verdicts(&self, caps: &[&str]) -> BTreeMap<&'static str, Verdict> {
        let mut out: BTreeMap<&'static str, Verdict> = kgate_policy::syscall::X86_64
            .iter()
            .map(|(_, n)| (*n, Verdict::Denied))
            .collect();
        for r in self.applicable(caps) {
            if r.action != "SCMP_ACT_ALLOW" {
                continue;
            }
            let v = if r.args.as_ref().is_some_and(|a| !a.is_empty()) {
                Verdict::Conditional
            } else {
                Verdict::Allowed
            };
            for n in &r.names {
                if let Some(slot) = out.get_mut(n.as_str()) {
                    *slot = (*slot).min(v);
                }
            }
        }
        out
    }

    /// The x86_64 syscalls allowed for at least some arguments.
    pub fn allowed(&self, caps: &[&str]) -> BTreeSet<&'static str> {
        self.verdicts(caps)
            .into_iter()
            .filter(|(_, v)| *v != Verdict::Denied)
            .map(|(n, _)| n)
            .collect()
    }
}

/// A policy's filter compared with a baseline profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The baseline file.
    pub baseline: PathBuf,
    /// x86_64 syscalls the baseline allows (at least for some arguments).
    pub baseline_allowed: usize,
    /// Syscalls the policy allows.
    pub policy_allowed: usize,
    /// Allowed by the baseline, denied by the policy.
    pub denied_extra: Vec<String>,
    /// Allowed by the policy, denied by the baseline (the baseline is not
    /// a floor: these are worth a look).
    pub allowed_extra: Vec<String>,
    /// Socket families the policy denies (the baseline allows every family).
    pub socket_families_denied: usize,
}

/// Compare the names a policy allows with what `baseline` allows with
/// podman's default capabilities.
pub fn compare(
    baseline_path: &Path,
    baseline: &DockerProfile,
    allowed: &BTreeSet<String>,
    socket_families: Option<&[u32]>,
) -> Comparison {
    let base = baseline.allowed(PODMAN_DEFAULT_CAPS);
    Comparison {
        baseline: baseline_path.to_owned(),
        baseline_allowed: base.len(),
        policy_allowed: allowed.len(),
        denied_extra: base
            .iter()
            .filter(|n| !allowed.contains(**n))
            .map(|n| (*n).to_owned())
            .collect(),
        allowed_extra: allowed
            .iter()
            .filter(|n| !base.contains(n.as_str()))
            .cloned()
            .collect(),
        socket_families_denied: match socket_families {
            None => 0,
            Some(f) => kgate_policy::socket::FAMILIES
                .iter()
                .filter(|(n, _)| !f.contains(n))
                .count(),
        },
    }
}
