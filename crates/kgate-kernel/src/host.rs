//! Facts about a host's kernel that decide what kgate can gate and how:
//! module support, active LSMs and BPF-LSM, lockdown, seccomp, user
//! namespaces, BTF and the attack-surface sysctls.
//!
//! [`read_host`] reads a live host under a `root` prefix (`/` normally; a
//! fake tree in tests). [`offline_facts`] predicts what a kernel built with a
//! given config presents at boot, before any `sysctl.d` or boot parameter.
//! Both never fail: whatever cannot be determined becomes `None`/`Unknown`
//! with a reason.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bounded::{self, Limit};
pub use crate::bpf_lsm::BpfLsm;
use crate::bpf_lsm::{self, BpfLsmInputs};
use crate::config::KernelConfig;
use crate::lsm::lockdown_from_config;
pub use crate::lsm::{
    cmdline_param, effective_lsm_list, kernel_version, lockdown_mode, parse_lsm_list,
};
use crate::sysctl::{self, SysctlReading, SysctlSource, SysctlStatus, ATTACK_SURFACE_SYSCTLS};

/// Command that mounts securityfs, quoted in diagnostics.
pub const MOUNT_SECURITYFS: &str = "mount -t securityfs securityfs /sys/kernel/security";

/// Everything kgate needs to know about a kernel, live or offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// Kernel release (`/proc/sys/kernel/osrelease`); empty when unknown.
    pub release: String,
    /// Whether the kernel can load modules at all.
    pub modules: ModuleSupport,
    /// Active (or derived) LSM list.
    pub lsm: LsmFacts,
    /// Whether BPF-LSM programs can be attached, and if not why and how to fix.
    pub bpf_lsm: BpfLsm,
    /// Kernel lockdown mode: `none`, `integrity` or `confidentiality`; `None`
    /// when unknown or when the lockdown LSM is not present.
    pub lockdown: Option<String>,
    /// Seccomp filter support.
    pub seccomp: SeccompFacts,
    /// Whether unprivileged users can create user namespaces.
    pub userns: UsernsFacts,
    /// Kernel BTF present (`/sys/kernel/btf/vmlinux`; offline:
    /// `CONFIG_DEBUG_INFO_BTF=y`).
    pub btf: bool,
    /// `CONFIG_FUNCTION_ERROR_INJECTION` (what BPF `fmod_ret` on syscalls
    /// needs); `None` when unknown. Debian kernels have it off.
    pub error_injection: Option<bool>,
    /// The attack-surface sysctls ([`ATTACK_SURFACE_SYSCTLS`] order).
    pub sysctls: Vec<SysctlReading>,
    /// The kernel config the facts were derived from, if any.
    pub config_source: Option<String>,
    /// `true` for [`offline_facts`]: values are kernel defaults.
    pub offline: bool,
    /// Problems met while gathering facts (unreadable config, missing
    /// `osrelease`...), for `--verbose` output.
    pub notes: Vec<String>,
}

/// Whether the kernel supports loadable modules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSupport {
    /// `true` when modules can be loaded (ignoring `kernel.modules_disabled`).
    pub supported: bool,
    /// How this was decided, e.g. `/proc/modules absent and CONFIG_MODULES is
    /// not set`.
    pub evidence: String,
}

/// The LSMs of the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsmFacts {
    /// The active list, in order, from `/sys/kernel/security/lsm`; `None`
    /// when it could not be read (or offline).
    pub active: Option<Vec<String>>,
    /// Why `active` is `None`, with the fix when there is one.
    pub why: Option<String>,
    /// Best estimate of the list when `active` is `None`: from `lsm=` on the
    /// kernel command line, else from `CONFIG_LSM` filtered by what is built in.
    pub derived: Option<Vec<String>>,
    /// Where `derived` comes from, in words.
    pub derived_from: Option<String>,
}

impl LsmFacts {
    /// The active list if known, else the derived one.
    pub fn effective(&self) -> Option<&[String]> {
        self.active.as_deref().or(self.derived.as_deref())
    }

    /// Whether the LSM `name` is in [`LsmFacts::effective`]; `None` if unknown.
    pub fn contains(&self, name: &str) -> Option<bool> {
        self.effective().map(|l| l.iter().any(|n| n == name))
    }
}

/// Seccomp filter support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompFacts {
    /// `true` when seccomp filters (`SECCOMP_SET_MODE_FILTER`) are available.
    pub available: bool,
    /// Filter return actions, from `/proc/sys/kernel/seccomp/actions_avail`
    /// (offline: the kernel's set for its version).
    pub actions: Vec<String>,
    /// How this was decided.
    pub evidence: String,
}

/// Whether unprivileged users can create user namespaces (and so reach the
/// kernel paths that need `CAP_SYS_ADMIN`/`CAP_NET_ADMIN` in one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsernsFacts {
    /// `true` when an unprivileged user can get a user namespace with
    /// capabilities in it. When nothing is known this is `true` (worst case).
    pub unprivileged_allowed: bool,
    /// Why: `CONFIG_USER_NS`, `user.max_user_namespaces`,
    /// `kernel.unprivileged_userns_clone` (Debian),
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu).
    pub reason: String,
}

impl HostFacts {
    /// `dev.tty.ldisc_autoload`: `Some(true)` when users can autoload line
    /// disciplines, `Some(false)` when not, `None` when absent or unknown.
    pub fn ldisc_autoload(&self) -> Option<bool> {
        match self.sysctl_int("dev.tty.ldisc_autoload")? {
            0 => Some(false),
            _ => Some(true),
        }
    }

    /// `true` when no module can be loaded any more: `kernel.modules_disabled`
    /// is 1, or the kernel has no module support at all.
    pub fn modules_disabled(&self) -> bool {
        !self.modules.supported || self.sysctl_int("kernel.modules_disabled") == Some(1)
    }

    /// `true` when unprivileged users can create user namespaces
    /// ([`UsernsFacts::unprivileged_allowed`]).
    pub fn unprivileged_userns(&self) -> bool {
        self.userns.unprivileged_allowed
    }

    /// The reading of a sysctl by dotted name.
    pub fn sysctl(&self, name: &str) -> Option<&SysctlReading> {
        sysctl::find(&self.sysctls, name)
    }

    fn sysctl_int(&self, name: &str) -> Option<i64> {
        self.sysctl(name).and_then(SysctlReading::int)
    }
}

/// Gathers the facts of the running kernel under `root` (`/` on a live
/// host). Never fails.
pub fn read_host(root: &Path) -> HostFacts {
    let mut notes = Vec::new();
    let release = match read_trimmed(root, "proc/sys/kernel/osrelease") {
        Ok(r) => r,
        Err(e) => {
            notes.push(e);
            String::new()
        }
    };
    let (config, config_source) = match KernelConfig::load_live(root, &release) {
        Ok(Some((c, p))) => (Some(c), Some(p.display().to_string())),
        Ok(None) => {
            notes.push(format!(
                "no kernel config: neither /proc/config.gz nor /boot/config-{release} exists"
            ));
            (None, None)
        }
        Err(e) => {
            notes.push(e.to_string());
            (None, None)
        }
    };
    let config = config.as_ref();
    let sysctls = sysctl::read_sysctls(root);

    // Modules.
    let proc_modules = root.join("proc/modules").exists();
    let modules = match (proc_modules, config.map(|c| c.is_builtin("MODULES"))) {
        (true, _) => ModuleSupport {
            supported: true,
            evidence: "/proc/modules present".to_string(),
        },
        (false, Some(false)) => ModuleSupport {
            supported: false,
            evidence: "/proc/modules absent and CONFIG_MODULES is not set".to_string(),
        },
        (false, Some(true)) => ModuleSupport {
            supported: true,
            evidence: "CONFIG_MODULES=y, although /proc/modules is absent (is /proc mounted?)"
                .to_string(),
        },
        (false, None) => ModuleSupport {
            supported: false,
            evidence: "/proc/modules absent (no kernel config to confirm)".to_string(),
        },
    };

    // LSMs.
    let lsm = match read_trimmed(root, "sys/kernel/security/lsm") {
        Ok(list) => LsmFacts {
            active: Some(parse_lsm_list(&list)),
            why: None,
            derived: None,
            derived_from: None,
        },
        Err(err) => {
            let mounted = root
                .join("sys/kernel/security")
                .read_dir()
                .is_ok_and(|mut d| d.next().is_some());
            let why = if mounted {
                format!("securityfs is mounted but the LSM list is unreadable: {err}")
            } else {
                format!(
                    "securityfs is not mounted (/sys/kernel/security/lsm is missing): {MOUNT_SECURITYFS}"
                )
            };
            let cmdline = read_trimmed(root, "proc/cmdline").ok();
            let cmd_lsm = cmdline.as_deref().and_then(|c| cmdline_param(c, "lsm"));
            let legacy = cmdline
                .as_deref()
                .and_then(|c| cmdline_param(c, "security"));
            let (derived, derived_from) = if let Some(order) = cmd_lsm {
                (
                    Some(effective_lsm_list(&order, config, &release)),
                    Some(
                        "derived from lsm= on /proc/cmdline because securityfs is not mounted"
                            .to_string(),
                    ),
                )
            } else if let Some(order) = config.and_then(|c| c.get("LSM")) {
                let mut from = format!(
                    "derived from CONFIG_LSM in {} (no lsm= on /proc/cmdline) because securityfs is not mounted",
                    config_source.as_deref().unwrap_or("the kernel config")
                );
                if let Some(sec) = legacy {
                    from.push_str(&format!(
                        "; security={sec} on the command line may change it"
                    ));
                }
                (
                    Some(effective_lsm_list(order, config, &release)),
                    Some(from),
                )
            } else {
                (None, None)
            };
            LsmFacts {
                active: None,
                why: Some(why),
                derived,
                derived_from,
            }
        }
    };

    let btf = root.join("sys/kernel/btf/vmlinux").exists();
    let bpf_lsm = bpf_lsm::diagnose(&BpfLsmInputs {
        lsm: &lsm,
        authoritative: lsm.active.is_some(),
        compiled: config.map(|c| c.is_builtin("BPF_LSM")),
        config_source: config_source.as_deref(),
        btf,
        btf_configured: config.map(|c| c.is_builtin("DEBUG_INFO_BTF")),
        offline: false,
    });

    // Without securityfs, the boot-time mode forced by the config is the
    // best answer (it can only have been raised since, never lowered).
    let lockdown = read_trimmed(root, "sys/kernel/security/lockdown")
        .ok()
        .and_then(|s| lockdown_mode(&s))
        .or_else(|| {
            let c = config?;
            let list = lsm.effective()?;
            lockdown_from_config(c, list).map(|mode| {
                format!("{mode} (at least; from the kernel config, securityfs is not mounted)")
            })
        });

    // Seccomp.
    let seccomp = if let Ok(actions) = read_trimmed(root, "proc/sys/kernel/seccomp/actions_avail") {
        SeccompFacts {
            available: true,
            actions: actions.split_whitespace().map(str::to_string).collect(),
            evidence: "/proc/sys/kernel/seccomp/actions_avail present".to_string(),
        }
    } else if let Some(line) = read_trimmed(root, "proc/self/status").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Seccomp:"))
            .map(str::to_string)
    }) {
        SeccompFacts {
            available: true,
            actions: Vec::new(),
            evidence: format!(
                "`{}` in /proc/self/status",
                line.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
        }
    } else {
        match config {
            Some(c) => SeccompFacts {
                available: c.is_builtin("SECCOMP_FILTER"),
                actions: Vec::new(),
                evidence: format!(
                    "CONFIG_SECCOMP_FILTER {}",
                    if c.is_builtin("SECCOMP_FILTER") {
                        "=y"
                    } else {
                        "is not set"
                    }
                ),
            },
            None => SeccompFacts {
                available: false,
                actions: Vec::new(),
                evidence:
                    "no seccomp sysctls, no Seccomp: line in /proc/self/status, no kernel config"
                        .to_string(),
            },
        }
    };

    // User namespaces.
    let compiled = match config {
        Some(c) => Some((c.is_builtin("USER_NS"), "CONFIG_USER_NS".to_string())),
        None if root.join("proc/self/ns/user").exists() => {
            Some((true, "/proc/self/ns/user exists".to_string()))
        }
        None => None,
    };
    let userns = userns_facts(compiled, &sysctls, &lsm);

    HostFacts {
        release,
        modules,
        lsm,
        bpf_lsm,
        lockdown,
        seccomp,
        userns,
        btf,
        error_injection: config
            .map(|c| c.is_builtin("FUNCTION_ERROR_INJECTION"))
            .or_else(|| {
                root.join("sys/kernel/debug/error_injection/list")
                    .exists()
                    .then_some(true)
            })
            .or_else(|| error_injection_from_kallsyms(root)),
        sysctls,
        config_source,
        offline: false,
        notes,
    }
}

/// What a kernel `release` built with `config` presents at boot by default:
/// no boot parameters, no `sysctl.d`. Sysctl readings are marked
/// [`SysctlSource::KernelDefault`]. With `config == None` almost everything
/// is unknown. `config_source` is left `None`: the caller knows the path.
pub fn offline_facts(release: &str, config: Option<&KernelConfig>) -> HostFacts {
    let Some(c) = config else {
        let why = "no kernel config: cannot tell".to_string();
        let lsm = LsmFacts {
            active: None,
            why: Some("offline and no kernel config".to_string()),
            derived: None,
            derived_from: None,
        };
        let sysctls = ATTACK_SURFACE_SYSCTLS
            .iter()
            .map(|s| {
                SysctlReading::judge(
                    s,
                    None,
                    SysctlStatus::Unreadable,
                    SysctlSource::KernelDefault,
                    Some(why.clone()),
                )
            })
            .collect::<Vec<_>>();
        let userns = userns_facts(None, &sysctls, &lsm);
        return HostFacts {
            release: release.to_string(),
            modules: ModuleSupport {
                supported: true,
                evidence: "no kernel config: assumed".to_string(),
            },
            bpf_lsm: BpfLsm::Unknown { why: why.clone() },
            lsm,
            lockdown: None,
            seccomp: SeccompFacts {
                available: false,
                actions: Vec::new(),
                evidence: why,
            },
            userns,
            btf: false,
            error_injection: None,
            sysctls,
            config_source: None,
            offline: true,
            notes: vec!["no kernel config".to_string()],
        };
    };

    let modules = if c.is_builtin("MODULES") {
        ModuleSupport {
            supported: true,
            evidence: "CONFIG_MODULES=y".to_string(),
        }
    } else {
        ModuleSupport {
            supported: false,
            evidence: "CONFIG_MODULES is not set".to_string(),
        }
    };

    let order = c.get("LSM").unwrap_or("");
    let list = effective_lsm_list(order, Some(c), release);
    let lsm = LsmFacts {
        active: None,
        why: Some("offline: no running kernel".to_string()),
        derived: Some(list.clone()),
        derived_from: Some(
            "the default from CONFIG_LSM, filtered by the LSMs built in".to_string(),
        ),
    };
    let btf = c.is_builtin("DEBUG_INFO_BTF");
    let bpf_lsm = bpf_lsm::diagnose(&BpfLsmInputs {
        lsm: &lsm,
        authoritative: false,
        compiled: Some(c.is_builtin("BPF_LSM")),
        config_source: Some("the kernel config"),
        btf,
        btf_configured: Some(btf),
        offline: true,
    });

    let lockdown = lockdown_from_config(c, &list);

    let seccomp = if c.is_builtin("SECCOMP_FILTER") {
        let v = kernel_version(release);
        let mut actions = vec!["kill_process", "kill_thread", "trap", "errno"];
        if !matches!(v, Some(v) if v < (5, 0)) {
            actions.push("user_notif");
        }
        actions.extend(["trace", "log", "allow"]);
        SeccompFacts {
            available: true,
            actions: actions.into_iter().map(str::to_string).collect(),
            evidence: "CONFIG_SECCOMP_FILTER=y".to_string(),
        }
    } else {
        SeccompFacts {
            available: false,
            actions: Vec::new(),
            evidence: "CONFIG_SECCOMP_FILTER is not set".to_string(),
        }
    };

    let mut notes = Vec::new();
    if lockdown.as_deref() == Some("none") && c.is_builtin("LOCK_DOWN_IN_EFI_SECURE_BOOT") {
        notes.push(
            "lockdown becomes `integrity` when booted with UEFI Secure Boot \
             (CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT=y)"
                .to_string(),
        );
    }
    let sysctls = sysctl::kernel_defaults(release, c, &list);
    let userns = userns_facts(
        Some((c.is_builtin("USER_NS"), "CONFIG_USER_NS".to_string())),
        &sysctls,
        &lsm,
    );

    HostFacts {
        release: release.to_string(),
        modules,
        lsm,
        bpf_lsm,
        lockdown,
        seccomp,
        userns,
        btf,
        error_injection: Some(c.is_builtin("FUNCTION_ERROR_INJECTION")),
        sysctls,
        config_source: None,
        offline: true,
        notes,
    }
}

fn userns_facts(
    compiled: Option<(bool, String)>,
    sysctls: &[SysctlReading],
    lsm: &LsmFacts,
) -> UsernsFacts {
    let no = |reason: String| UsernsFacts {
        unprivileged_allowed: false,
        reason,
    };
    let value = |name: &str| sysctl::find(sysctls, name).and_then(|r| r.value.clone());
    let mut parts = Vec::new();
    match &compiled {
        Some((false, how)) if how == "CONFIG_USER_NS" => {
            return no("CONFIG_USER_NS is not set".to_string())
        }
        Some((false, how)) => return no(format!("user namespaces not supported ({how})")),
        Some((true, how)) if how == "CONFIG_USER_NS" => parts.push("CONFIG_USER_NS=y".to_string()),
        Some((true, how)) => parts.push(how.clone()),
        None => parts.push("CONFIG_USER_NS unknown (assumed =y)".to_string()),
    }
    match value("user.max_user_namespaces") {
        Some(v) if v == "0" => {
            return no("user.max_user_namespaces=0: no user namespaces for anyone".to_string())
        }
        Some(v) => parts.push(format!("user.max_user_namespaces={v}")),
        None => parts.push("user.max_user_namespaces non-zero by default".to_string()),
    }
    match value("kernel.unprivileged_userns_clone") {
        Some(v) if v == "0" => {
            return no(
                "kernel.unprivileged_userns_clone=0 (Debian): only CAP_SYS_ADMIN may create user namespaces"
                    .to_string(),
            )
        }
        Some(v) => parts.push(format!("kernel.unprivileged_userns_clone={v}")),
        None => {}
    }
    match value("kernel.apparmor_restrict_unprivileged_userns") {
        Some(v) if v == "1" => {
            if lsm.contains("apparmor") == Some(false) {
                parts.push(
                    "kernel.apparmor_restrict_unprivileged_userns=1 has no effect: AppArmor is not an active LSM"
                        .to_string(),
                );
            } else {
                return no("kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu): unprivileged user \
                           namespaces get no capabilities unless an AppArmor profile grants `userns`"
                    .to_string());
            }
        }
        Some(v) => parts.push(format!("kernel.apparmor_restrict_unprivileged_userns={v}")),
        None => {}
    }
    UsernsFacts {
        unprivileged_allowed: true,
        reason: parts.join(", "),
    }
}

/// Reads `root/rel`, trimmed; the error names the logical path.
fn read_trimmed(root: &Path, rel: &str) -> Result<String, String> {
    bounded::read_text(root, &root.join(rel), Limit::HOST_FILE)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("cannot read /{rel}: {e}"))
}

/// `CONFIG_FUNCTION_ERROR_INJECTION` as kallsyms tells it: the list's
/// lookup function `within_error_injection_list` exists only with that
/// option. `None` when kallsyms cannot be read or hides its symbols.
fn error_injection_from_kallsyms(root: &Path) -> Option<bool> {
    let text = bounded::read_text(root, &root.join("proc/kallsyms"), Limit::KALLSYMS).ok()?;
    kallsyms_error_injection(&text)
}

/// [`HostFacts::error_injection`] from the text of `/proc/kallsyms`:
/// whether `within_error_injection_list` is listed, `None` when the text
/// has no line at all.
pub fn kallsyms_error_injection(text: &str) -> Option<bool> {
    let mut any = false;
    for line in text.lines() {
        any = true;
        if line.ends_with(" within_error_injection_list") {
            return Some(true);
        }
    }
    any.then_some(false)
}

#[cfg(test)]
mod tests;
