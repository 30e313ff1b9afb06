//! The LSM list and lockdown mode: parsed from securityfs and
//! `/proc/cmdline` on a live host, predicted from a kernel config offline;
//! and the release-string version both depend on.

use crate::config::KernelConfig;

/// The lockdown mode a kernel built with `c` boots in, if the lockdown LSM
/// is built in and in the LSM list.
pub(crate) fn lockdown_from_config(c: &KernelConfig, list: &[String]) -> Option<String> {
    (c.is_builtin("SECURITY_LOCKDOWN_LSM") && list.iter().any(|l| l == "lockdown")).then(|| {
        if c.is_builtin("LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY") {
            "confidentiality"
        } else if c.is_builtin("LOCK_DOWN_KERNEL_FORCE_INTEGRITY") {
            "integrity"
        } else {
            "none"
        }
        .to_string()
    })
}

/// The LSM list a kernel initializes for the order string `order` (from
/// `lsm=` or `CONFIG_LSM`), as `/sys/kernel/security/lsm` would show it:
/// early `lockdown` first, `capability` next, then the listed LSMs that are
/// built in (only the first of the exclusive selinux/smack/apparmor), then
/// `ima`/`evm` (6.9+) or `integrity` (6.4-6.8), which are always last.
/// Without `config`, names cannot be filtered and are kept as listed.
pub fn effective_lsm_list(
    order: &str,
    config: Option<&KernelConfig>,
    release: &str,
) -> Vec<String> {
    let v = kernel_version(release);
    let modern_integrity = !matches!(v, Some(v) if v < (6, 9));
    let integrity_last = !matches!(v, Some(v) if v < (6, 4));
    let mut out: Vec<String> = Vec::new();
    if let Some(c) = config {
        if c.is_builtin("SECURITY_LOCKDOWN_LSM") && c.is_builtin("SECURITY_LOCKDOWN_LSM_EARLY") {
            out.push("lockdown".to_string());
        }
    }
    out.push("capability".to_string());
    let mut exclusive_taken = false;
    for name in order.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if out.iter().any(|o| o == name) {
            continue;
        }
        if let Some(c) = config {
            if name == "integrity" && integrity_last {
                continue; // appended below
            }
            if matches!(name, "ima" | "evm") {
                continue; // appended below
            }
            if let Some(sym) = lsm_symbol(name) {
                if !c.is_builtin(sym) {
                    continue;
                }
            }
            if matches!(name, "selinux" | "smack" | "apparmor") {
                if exclusive_taken {
                    continue;
                }
                exclusive_taken = true;
            }
        }
        out.push(name.to_string());
    }
    if let Some(c) = config {
        if modern_integrity {
            for (name, sym) in [("ima", "IMA"), ("evm", "EVM")] {
                if c.is_builtin(sym) && !out.iter().any(|o| o == name) {
                    out.push(name.to_string());
                }
            }
        } else if integrity_last
            && c.is_builtin("INTEGRITY")
            && !out.iter().any(|o| o == "integrity")
        {
            out.push("integrity".to_string());
        }
    }
    out
}

/// Kconfig symbol (without `CONFIG_`) that builds the LSM `name`.
fn lsm_symbol(name: &str) -> Option<&'static str> {
    Some(match name {
        "selinux" => "SECURITY_SELINUX",
        "smack" => "SECURITY_SMACK",
        "tomoyo" => "SECURITY_TOMOYO",
        "apparmor" => "SECURITY_APPARMOR",
        "yama" => "SECURITY_YAMA",
        "loadpin" => "SECURITY_LOADPIN",
        "safesetid" => "SECURITY_SAFESETID",
        "lockdown" => "SECURITY_LOCKDOWN_LSM",
        "bpf" => "BPF_LSM",
        "landlock" => "SECURITY_LANDLOCK",
        "ipe" => "SECURITY_IPE",
        "integrity" => "INTEGRITY",
        "ima" => "IMA",
        "evm" => "EVM",
        _ => return None,
    })
}

/// `"6.12.113+deb12-amd64"` → `(6, 12)`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Last `name=value` among the kernel's own parameters (those before `--`)
/// of `/proc/cmdline`.
pub fn cmdline_param(cmdline: &str, name: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .take_while(|w| *w != "--")
        .filter_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .last()
        .map(|v| v.trim_matches('"').to_string())
}

/// The active mode of `/sys/kernel/security/lockdown`, the bracketed word:
/// `"none [integrity] confidentiality"` → `integrity`.
pub fn lockdown_mode(s: &str) -> Option<String> {
    let start = s.find('[')? + 1;
    let end = start + s[start..].find(']')?;
    Some(s[start..end].to_string())
}

/// `/sys/kernel/security/lsm` (`"lockdown,capability,landlock"`) as a list.
pub fn parse_lsm_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}
