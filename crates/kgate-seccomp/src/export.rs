//! A policy's `[seccomp]` section in other tools' formats.
//!
//! * [`Format::Oci`]: the `linux.seccomp` object of an OCI runtime bundle's
//!   `config.json` (runtime-spec `config-linux.md`), for crun and runc.
//! * [`Format::Docker`], [`Format::Podman`]: the same JSON as a profile
//!   file for `--security-opt seccomp=FILE`.
//! * [`Format::Systemd`]: a unit drop-in with `SystemCallFilter=`,
//!   `RestrictAddressFamilies=`, `ProtectKernelModules=` and related
//!   sandboxing settings.
//! * [`Format::Spo`]: a Kubernetes Security Profiles Operator
//!   `SeccompProfile` manifest (`security-profiles-operator.x-k8s.io/v1beta1`).
//!
//! All of them allow the same syscalls as `kgate run`, including
//! `socket(2)` and `socketpair(2)` only for the allowed families (one rule
//! per family with an `SCMP_CMP_EQ` on argument 0), and a denied family
//! fails with `EAFNOSUPPORT`, as under `kgate run`, so programs that probe
//! for a family fall back as they would on a kernel without it. libseccomp
//! cannot say "any other value" in one rule, so the denied values are
//! covered by [`denied_family_blocks`]: aligned power-of-two blocks
//! (`SCMP_CMP_MASKED_EQ`) below the highest allowed family, and
//! `SCMP_CMP_GE` above it. systemd has its own family setting,
//! `RestrictAddressFamilies=`, whose denials are `EAFNOSUPPORT` too, but
//! it applies to `socket(2)` only: [`warnings`] says so when the policy
//! allows `socketpair`.
//!
//! [`warnings`] also names the io_uring operations that skip any seccomp
//! profile when io_uring is allowed
//! ([`kgate_policy::SeccompSection::io_uring_bypass`]).

use std::fmt::Write;

use kgate_policy::{Mode, Policy, SeccompErrno};
use serde_json::{json, Value};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// OCI runtime-spec `linux.seccomp`.
    Oci,
    /// Docker profile file.
    Docker,
    /// Podman profile file.
    Podman,
    /// systemd drop-in.
    Systemd,
    /// Security Profiles Operator manifest.
    Spo,
}

/// Why a policy cannot be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// No `[seccomp]` section to export.
    #[error("the policy has no [seccomp] section (or mode = \"off\"): generate one with `kgate policy generate --from PROFILE`")]
    Off,
    /// A name unusable in the format.
    #[error("`{0}` is not a valid Kubernetes object name: use lower-case letters, digits and `-` (at most 63)")]
    BadName(String),
}

struct Plan {
    names: Vec<String>,
    families: Option<Vec<u32>>,
    /// The allowed syscalls that create sockets (`socket`, `socketpair`):
    /// checked by family when `families` is set, and then not in `names`.
    checked: Vec<&'static str>,
    audit: bool,
    errno: SeccompErrno,
}

fn plan(p: &Policy, audit: bool) -> Result<Plan, ExportError> {
    let s = &p.seccomp;
    if s.mode == Mode::Off && !audit {
        return Err(ExportError::Off);
    }
    let mut names: Vec<String> = s.allow.iter().map(|e| e.value.clone()).collect();
    for a in kgate_policy::profile::ALWAYS_ALLOWED {
        if !names.iter().any(|n| n == a) {
            names.push((*a).to_owned());
        }
    }
    names.sort();
    let checked: Vec<&'static str> = kgate_policy::profile::FAMILY_CHECKED
        .iter()
        .copied()
        .filter(|c| names.iter().any(|n| n == c))
        .collect();
    let families = s.socket_families();
    if families.is_some() {
        names.retain(|n| !checked.contains(&n.as_str()));
    }
    Ok(Plan {
        names,
        families,
        checked,
        audit: audit || s.mode == Mode::Audit,
        errno: s.on_deny,
    })
}

/// One comparison on argument 0 (the family) of `socket(2)` and
/// `socketpair(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyCmp {
    /// `arg & mask == value`: the aligned block of families starting at
    /// `value` (`mask` = all ones above the block's size).
    MaskedEq {
        /// Bits compared.
        mask: u64,
        /// The block's first family.
        value: u64,
    },
    /// `arg >= value`.
    Ge(u64),
}

impl FamilyCmp {
    /// Does `family` satisfy the comparison?
    pub fn matches(self, family: u64) -> bool {
        match self {
            FamilyCmp::MaskedEq { mask, value } => family & mask == value,
            FamilyCmp::Ge(v) => family >= v,
        }
    }
}

/// Comparisons that together match exactly the families not in `allowed`
/// (as a 64-bit argument): every gap below the highest allowed family cut
/// into aligned power-of-two blocks, then everything above it. Empty
/// `allowed`: one `Ge(0)`.
pub fn denied_family_blocks(allowed: &[u32]) -> Vec<FamilyCmp> {
    let mut allowed: Vec<u64> = allowed.iter().map(|&f| u64::from(f)).collect();
    allowed.sort_unstable();
    allowed.dedup();
    let mut out = Vec::new();
    let mut next = 0u64; // first family not yet covered
    for &a in &allowed {
        // Cover [next, a) with the largest aligned blocks that fit.
        while next < a {
            let mut size = if next == 0 {
                1u64 << 63
            } else {
                1u64 << next.trailing_zeros()
            };
            while next + size > a {
                size >>= 1;
            }
            out.push(FamilyCmp::MaskedEq {
                mask: !(size - 1),
                value: next,
            });
            next += size;
        }
        next = a + 1;
    }
    out.push(FamilyCmp::Ge(next));
    out
}

fn family_cmp_json(c: FamilyCmp) -> Value {
    match c {
        FamilyCmp::MaskedEq { mask, value } => {
            json!({ "index": 0, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ" })
        }
        FamilyCmp::Ge(v) => json!({ "index": 0, "value": v, "valueTwo": 0, "op": "SCMP_CMP_GE" }),
    }
}

fn seccomp_json(pl: &Plan) -> Value {
    let mut syscalls = vec![json!({
        "names": pl.names,
        "action": "SCMP_ACT_ALLOW",
    })];
    if !pl.checked.is_empty() {
        if let Some(f) = &pl.families {
            for fam in f {
                syscalls.push(json!({
                    "names": pl.checked,
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{ "index": 0, "value": fam, "valueTwo": 0, "op": "SCMP_CMP_EQ" }],
                }));
            }
            if !pl.audit {
                for c in denied_family_blocks(f) {
                    syscalls.push(json!({
                        "names": pl.checked,
                        "action": "SCMP_ACT_ERRNO",
                        "errnoRet": crate::filter::EAFNOSUPPORT,
                        "args": [family_cmp_json(c)],
                    }));
                }
            }
        }
    }
    let mut obj = json!({
        "defaultAction": if pl.audit { "SCMP_ACT_LOG" } else { "SCMP_ACT_ERRNO" },
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": syscalls,
    });
    if !pl.audit {
        obj["defaultErrnoRet"] = json!(pl.errno.errno());
    }
    obj
}

/// What an export of `policy` in `format` does not enforce, for the user
/// to read (`kgate export` prints them on standard error): the io_uring
/// operations that skip seccomp when io_uring is allowed, and, for systemd,
/// `socketpair(2)` outside `RestrictAddressFamilies=`.
pub fn warnings(policy: &Policy, format: Format) -> Vec<String> {
    let s = &policy.seccomp;
    let mut out = Vec::new();
    if let Some(w) = s.io_uring_warning() {
        out.push(w);
    }
    if format == Format::Systemd && s.allows("socketpair") && s.socket_families().is_some() {
        out.push("systemd's RestrictAddressFamilies= checks socket(2) only: socketpair(2) stays allowed for every family, and a pair of a family outside the policy's sockets still autoloads its module. Use --format oci/docker/podman/spo or kgate run, which check socketpair's family, or remove socketpair from [seccomp] allow".to_owned());
    }
    out
}

/// Render `policy` in `format`. `audit` exports audit mode (log, allow)
/// whatever the policy's mode; `name` names the systemd/SPO object.
pub fn export(
    policy: &Policy,
    format: Format,
    audit: bool,
    name: &str,
) -> Result<String, ExportError> {
    let pl = plan(policy, audit)?;
    Ok(match format {
        Format::Oci | Format::Docker | Format::Podman => {
            let mut s =
                serde_json::to_string_pretty(&seccomp_json(&pl)).expect("JSON values serialize");
            s.push('\n');
            s
        }
        Format::Systemd => systemd(&pl, policy),
        Format::Spo => spo(&pl, name)?,
    })
}

fn systemd(pl: &Plan, policy: &Policy) -> String {
    let mut o = String::new();
    o.push_str("# kgate seccomp policy as a systemd drop-in (kgate export --format systemd).\n");
    if let Some(n) = &policy.meta.name {
        let _ = writeln!(o, "# Policy: {n}");
    }
    let _ = writeln!(o, "# Policy hash: {}", policy.hash());
    o.push_str("# Install as /etc/systemd/system/UNIT.service.d/kgate.conf, then `systemctl daemon-reload`.\n");
    o.push_str("[Service]\n");
    o.push_str("NoNewPrivileges=yes\n");
    o.push_str("SystemCallArchitectures=native\n");
    let mut names = pl.names.clone();
    if pl.families.is_some() {
        // systemd filters families with RestrictAddressFamilies= instead
        // (socket(2) only: see `warnings`).
        names.extend(pl.checked.iter().map(|n| (*n).to_owned()));
        names.sort();
        if pl.checked.contains(&"socketpair") && !pl.audit {
            o.push_str("# socketpair(2) is allowed for every family: RestrictAddressFamilies= checks socket(2) only.\n");
        }
    }
    if pl.audit {
        // Log what enforce mode would deny; deny nothing.
        let _ = writeln!(o, "SystemCallLog=~{}", names.join(" "));
    } else {
        let _ = writeln!(o, "SystemCallFilter={}", names.join(" "));
        let _ = writeln!(
            o,
            "SystemCallErrorNumber={}",
            match pl.errno {
                SeccompErrno::Enosys => "ENOSYS",
                _ => "EPERM",
            }
        );
        if pl.checked.contains(&"socket") {
            match &pl.families {
                None => {}
                Some(f) if f.is_empty() => o.push_str("RestrictAddressFamilies=none\n"),
                Some(f) => {
                    let fams: Vec<String> = f
                        .iter()
                        .filter_map(|n| kgate_policy::family_name(*n))
                        .map(|n| format!("AF_{}", n.to_ascii_uppercase()))
                        .collect();
                    let _ = writeln!(o, "RestrictAddressFamilies={}", fams.join(" "));
                }
            }
        } else {
            o.push_str("RestrictAddressFamilies=none\n");
        }
    }
    // Kernel surface the workload never needs (it did not load modules or
    // write tunables while recorded; systemd denies these for it alone).
    o.push_str("ProtectKernelModules=yes\n");
    o.push_str("ProtectKernelTunables=yes\n");
    o.push_str("ProtectKernelLogs=yes\n");
    o.push_str("ProtectClock=yes\n");
    if !pl.names.iter().any(|n| n == "personality") {
        o.push_str("LockPersonality=yes\n");
    }
    if !pl.names.iter().any(|n| n == "unshare" || n == "setns") {
        o.push_str("RestrictNamespaces=yes\n");
    }
    o.push_str("RestrictRealtime=yes\n");
    o.push_str("RestrictSUIDSGID=yes\n");
    o
}

/// A Kubernetes object name (RFC 1123 label).
pub fn valid_k8s_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-')
}

fn spo(pl: &Plan, name: &str) -> Result<String, ExportError> {
    if !valid_k8s_name(name) {
        return Err(ExportError::BadName(name.to_owned()));
    }
    let mut o = String::new();
    o.push_str("# kgate seccomp policy as a Security Profiles Operator SeccompProfile\n");
    o.push_str("# (kgate export --format spo). Apply with `kubectl apply -f FILE`.\n");
    o.push_str("apiVersion: security-profiles-operator.x-k8s.io/v1beta1\n");
    o.push_str("kind: SeccompProfile\n");
    o.push_str("metadata:\n");
    let _ = writeln!(o, "  name: {name}");
    o.push_str("spec:\n");
    let _ = writeln!(
        o,
        "  defaultAction: {}",
        if pl.audit {
            "SCMP_ACT_LOG"
        } else {
            "SCMP_ACT_ERRNO"
        }
    );
    o.push_str("  architectures:\n  - SCMP_ARCH_X86_64\n");
    o.push_str("  syscalls:\n");
    o.push_str("  - action: SCMP_ACT_ALLOW\n    names:\n");
    for n in &pl.names {
        let _ = writeln!(o, "    - {n}");
    }
    if !pl.checked.is_empty() {
        let names: String = pl.checked.iter().map(|n| format!("    - {n}\n")).collect();
        if let Some(f) = &pl.families {
            for fam in f {
                let _ = write!(
                    o,
                    "  - action: SCMP_ACT_ALLOW\n    names:\n{names}    args:\n"
                );
                let _ = writeln!(
                    o,
                    "    - index: 0\n      value: {fam}\n      op: SCMP_CMP_EQ"
                );
            }
            if !pl.audit {
                for c in denied_family_blocks(f) {
                    let _ = writeln!(
                        o,
                        "  - action: SCMP_ACT_ERRNO\n    errnoRet: {}\n    names:\n{names}    args:",
                        crate::filter::EAFNOSUPPORT
                    );
                    let _ = match c {
                        FamilyCmp::MaskedEq { mask, value } => writeln!(
                            o,
                            "    - index: 0\n      value: {mask}\n      valueTwo: {value}\n      op: SCMP_CMP_MASKED_EQ"
                        ),
                        FamilyCmp::Ge(v) => {
                            writeln!(o, "    - index: 0\n      value: {v}\n      op: SCMP_CMP_GE")
                        }
                    };
                }
            }
        }
    }
    Ok(o)
}
