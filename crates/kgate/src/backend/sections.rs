//! The section table of `kgate apply`: one row per policy section, saying
//! what enforces it and whether it is in force. Both backends print it.

use std::io::Write;

/// One row of `kgate apply`'s section table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SectionRow {
    /// The policy section (`modules`, `sysctl`, ...).
    pub section: &'static str,
    /// What enforces it.
    pub mechanism: String,
    /// In force or not, and how.
    pub state: String,
    /// The attach points that enforce it (bpf-lsm sections), and of those
    /// the ones not attached on this kernel.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<String>,
    /// Attach points of `hooks` that are not attached (empty in a dry run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

pub fn row(section: &'static str, mechanism: &str, state: String) -> SectionRow {
    SectionRow {
        section,
        mechanism: mechanism.to_owned(),
        state,
        hooks: Vec::new(),
        missing: Vec::new(),
    }
}

/// The `[sysctl]` row, for either backend: `set` is `None` in a dry run.
pub fn sysctl_row(
    p: &kgate_policy::Policy,
    plan: &kgate_apply::Plan,
    set: Option<&[kgate_apply::SysctlChange]>,
) -> SectionRow {
    let sysctls: Vec<String> = p
        .sysctl
        .iter()
        .map(|(n, e)| format!("{n}={}", e.value.to_proc_string()))
        .collect();
    let not_live = plan
        .warnings()
        .iter()
        .filter(|w| w.starts_with("sysctl "))
        .count();
    let state = if sysctls.is_empty() {
        "nothing to set (no [sysctl] in the policy)".to_owned()
    } else {
        let mut s = match set {
            None => format!("would be set ({})", sysctls.join(" ")),
            Some(set) => format!("set ({}); {} changed now", sysctls.join(" "), set.len()),
        };
        if not_live > 0 {
            s.push_str(&format!(
                "; {not_live} not on this kernel (listed in sysctl.d only, see the warnings)"
            ));
        }
        s
    };
    row("sysctl", "sysctl.d + /proc/sys", state)
}

/// The `[seccomp]` row: never host-wide.
pub fn seccomp_row(p: &kgate_policy::Policy) -> SectionRow {
    let state = if p.seccomp.allow.is_empty() && p.seccomp.sockets.is_empty() {
        "not host-wide (no [seccomp] rules in the policy)"
    } else {
        "not host-wide: in force only for workloads started with `kgate run` or an exported profile"
    };
    row(
        "seccomp",
        "per workload (kgate run/export)",
        state.to_owned(),
    )
}

/// Print the section table.
pub fn print_sections(out: &mut dyn Write, rows: &[SectionRow]) -> std::io::Result<()> {
    let w = rows.iter().map(|r| r.mechanism.len()).max().unwrap_or(0);
    writeln!(out, "\n{:<8} {:<w$}  STATE", "SECTION", "MECHANISM")?;
    for r in rows {
        writeln!(out, "{:<8} {:<w$}  {}", r.section, r.mechanism, r.state)?;
    }
    Ok(())
}
