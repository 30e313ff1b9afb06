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
use crate::config::KernelConfig;
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

/// State of BPF-LSM, which kgate's per-workload gating needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum BpfLsm {
    /// `bpf` is in the active LSM list and kernel BTF is available.
    Active,
    /// The kernel is built without `CONFIG_BPF_LSM`.
    NotCompiled {
        /// The config file that says so.
        config_source: String,
    },
    /// Built in (or not known not to be) but `bpf` is missing from the LSM list.
    NotInLsmList {
        /// The current LSM list.
        current: Vec<String>,
        /// How to fix it, with a ready-to-paste `lsm=` value.
        fix: String,
    },
    /// BPF-LSM is there but the kernel has no BTF, which BPF-LSM programs need.
    NoBtf,
    /// Could not be determined.
    Unknown {
        /// Why, and how to find out.
        why: String,
    },
}

impl BpfLsm {
    /// `true` only for [`BpfLsm::Active`].
    pub fn is_active(&self) -> bool {
        matches!(self, BpfLsm::Active)
    }

    /// One operator-facing sentence: the state, why, and how to fix it.
    pub fn explain(&self) -> String {
        match self {
            BpfLsm::Active => {
                "BPF-LSM is active: `bpf` is in the kernel's LSM list and kernel BTF is available"
                    .to_string()
            }
            BpfLsm::NotCompiled { config_source } => format!(
                "CONFIG_BPF_LSM is not set in this kernel's config ({config_source}): use a kernel \
                 built with CONFIG_BPF_LSM=y (Debian, Ubuntu, Fedora kernels have it); meanwhile \
                 use the modprobe backend"
            ),
            BpfLsm::NotInLsmList { fix, .. } => {
                format!("BPF-LSM is compiled in but not active: {fix}")
            }
            BpfLsm::NoBtf => "BPF-LSM programs need kernel BTF (/sys/kernel/btf/vmlinux) and this \
                              kernel has none: use a kernel built with CONFIG_DEBUG_INFO_BTF=y; \
                              meanwhile use the modprobe backend"
                .to_string(),
            BpfLsm::Unknown { why } => format!("BPF-LSM state unknown: {why}"),
        }
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
    let bpf_lsm = diagnose_bpf_lsm(&BpfLsmInputs {
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
    let bpf_lsm = diagnose_bpf_lsm(&BpfLsmInputs {
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
    let sysctls = default_sysctls(release, c, &list);
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

/// Build-time defaults of the attack-surface sysctls.
fn default_sysctls(release: &str, c: &KernelConfig, lsms: &[String]) -> Vec<SysctlReading> {
    let v = kernel_version(release);
    // Unknown version: assume a current kernel.
    let since = |maj: u32, min: u32| !matches!(v, Some(v) if v < (maj, min));
    let on = |sym: &str| c.is_builtin(sym);
    let not_set = |sym: &str| Err((SysctlStatus::Absent, format!("CONFIG_{sym} is not set")));
    let debian_patched = c.mentions("SECURITY_PERF_EVENTS_RESTRICT");
    let ubuntu = c
        .get("VERSION_SIGNATURE")
        .is_some_and(|s| s.contains("Ubuntu"));

    ATTACK_SURFACE_SYSCTLS
        .iter()
        .map(|spec| {
            // Ok((value, note)) or Err((status, note)).
            let d: Result<(String, Option<String>), (SysctlStatus, String)> = match spec.name {
                "kernel.unprivileged_bpf_disabled" => {
                    if !on("BPF_SYSCALL") {
                        not_set("BPF_SYSCALL")
                    } else if on("BPF_UNPRIV_DEFAULT_OFF") {
                        Ok(("2".into(), Some("CONFIG_BPF_UNPRIV_DEFAULT_OFF=y".into())))
                    } else {
                        Ok(("0".into(), Some("CONFIG_BPF_UNPRIV_DEFAULT_OFF is not set".into())))
                    }
                }
                "kernel.io_uring_disabled" => {
                    if !on("IO_URING") {
                        not_set("IO_URING")
                    } else if !since(6, 6) {
                        Err((SysctlStatus::Absent, "added in Linux 6.6".into()))
                    } else {
                        Ok(("0".into(), None))
                    }
                }
                "dev.tty.ldisc_autoload" => {
                    if !on("TTY") {
                        not_set("TTY")
                    } else if !since(5, 1) {
                        Err((SysctlStatus::Absent, "added in Linux 5.1".into()))
                    } else if on("LDISC_AUTOLOAD") {
                        Ok(("1".into(), Some("CONFIG_LDISC_AUTOLOAD=y".into())))
                    } else {
                        Ok(("0".into(), Some("CONFIG_LDISC_AUTOLOAD is not set".into())))
                    }
                }
                "vm.unprivileged_userfaultfd" => {
                    if !on("USERFAULTFD") {
                        not_set("USERFAULTFD")
                    } else if !since(5, 2) {
                        Err((SysctlStatus::Absent, "added in Linux 5.2".into()))
                    } else if !since(5, 11) {
                        Ok(("1".into(), Some("default 1 before Linux 5.11".into())))
                    } else {
                        Ok(("0".into(), None))
                    }
                }
                "kernel.perf_event_paranoid" => {
                    if !on("PERF_EVENTS") {
                        not_set("PERF_EVENTS")
                    } else if on("SECURITY_PERF_EVENTS_RESTRICT") {
                        Ok(("3".into(), Some("CONFIG_SECURITY_PERF_EVENTS_RESTRICT=y".into())))
                    } else {
                        Ok(("2".into(), None))
                    }
                }
                "user.max_user_namespaces" => {
                    let mut note = "the default is max_threads/2, computed at boot from RAM; never 0".to_string();
                    if !on("USER_NS") {
                        note.push_str("; CONFIG_USER_NS is not set, so no user namespace can be created anyway");
                    }
                    Err((SysctlStatus::NotHardened, note))
                }
                "kernel.modules_disabled" => {
                    if on("MODULES") {
                        Ok(("0".into(), None))
                    } else {
                        not_set("MODULES")
                    }
                }
                "kernel.modprobe" => {
                    if !on("MODULES") {
                        not_set("MODULES")
                    } else {
                        let path = c.get("MODPROBE_PATH").unwrap_or("/sbin/modprobe").to_string();
                        let note = on("STATIC_USERMODEHELPER").then(|| {
                            format!(
                                "CONFIG_STATIC_USERMODEHELPER=y: the kernel runs {} for every helper",
                                c.get("STATIC_USERMODEHELPER_PATH").unwrap_or("a fixed helper")
                            )
                        });
                        Ok((path, note))
                    }
                }
                "kernel.kptr_restrict" => Ok(("0".into(), None)),
                "kernel.dmesg_restrict" => {
                    if !on("PRINTK") {
                        not_set("PRINTK")
                    } else if on("SECURITY_DMESG_RESTRICT") {
                        Ok(("1".into(), Some("CONFIG_SECURITY_DMESG_RESTRICT=y".into())))
                    } else {
                        Ok(("0".into(), Some("CONFIG_SECURITY_DMESG_RESTRICT is not set".into())))
                    }
                }
                "kernel.yama.ptrace_scope" => {
                    if !on("SECURITY_YAMA") {
                        not_set("SECURITY_YAMA")
                    } else if !lsms.iter().any(|l| l == "yama") {
                        Err((SysctlStatus::Absent, "Yama is built in but not in CONFIG_LSM".into()))
                    } else {
                        Ok(("1".into(), None))
                    }
                }
                "kernel.kexec_load_disabled" => {
                    if on("KEXEC_CORE") {
                        Ok(("0".into(), None))
                    } else {
                        not_set("KEXEC_CORE")
                    }
                }
                "kernel.unprivileged_userns_clone" => {
                    if !on("USER_NS") {
                        not_set("USER_NS")
                    } else if debian_patched {
                        Ok((
                            "1".into(),
                            Some("Debian patch default (kernel has Debian's CONFIG_SECURITY_PERF_EVENTS_RESTRICT)".into()),
                        ))
                    } else {
                        Err((
                            SysctlStatus::Absent,
                            "assumed absent: Debian/Ubuntu patch, and this kernel lacks Debian's \
                             CONFIG_SECURITY_PERF_EVENTS_RESTRICT"
                                .into(),
                        ))
                    }
                }
                "kernel.apparmor_restrict_unprivileged_userns" => {
                    if !on("SECURITY_APPARMOR") {
                        not_set("SECURITY_APPARMOR")
                    } else if ubuntu {
                        Err((
                            SysctlStatus::Unreadable,
                            "Ubuntu kernel: 1 from Ubuntu 23.10 on, but the default is not derivable \
                             from the config"
                                .into(),
                        ))
                    } else {
                        Err((
                            SysctlStatus::Absent,
                            "assumed absent: Ubuntu-only sysctl and CONFIG_VERSION_SIGNATURE is not Ubuntu's".into(),
                        ))
                    }
                }
                _ => Err((SysctlStatus::Unreadable, "default not derivable from the config".into())),
            };
            match d {
                Ok((value, note)) => SysctlReading::judge(
                    spec,
                    Some(value),
                    SysctlStatus::Unreadable,
                    SysctlSource::KernelDefault,
                    note,
                ),
                Err((status, note)) => {
                    SysctlReading::judge(spec, None, status, SysctlSource::KernelDefault, Some(note))
                }
            }
        })
        .collect()
}

struct BpfLsmInputs<'a> {
    lsm: &'a LsmFacts,
    /// The list came from securityfs.
    authoritative: bool,
    compiled: Option<bool>,
    config_source: Option<&'a str>,
    btf: bool,
    btf_configured: Option<bool>,
    offline: bool,
}

fn diagnose_bpf_lsm(i: &BpfLsmInputs<'_>) -> BpfLsm {
    let list = i.lsm.effective();
    let has_bpf = list.map(|l| l.iter().any(|n| n == "bpf"));
    if !(i.authoritative && has_bpf == Some(true)) && i.compiled == Some(false) {
        return BpfLsm::NotCompiled {
            config_source: i.config_source.unwrap_or("the kernel config").to_string(),
        };
    }
    let Some(list) = list else {
        return BpfLsm::Unknown {
            why: format!(
                "{}, /proc/cmdline has no lsm= and no kernel config was found, so the active LSM \
                 list is unknown: run `{MOUNT_SECURITYFS}` and re-run kgate",
                i.lsm.why.as_deref().unwrap_or("the LSM list is unreadable")
            ),
        };
    };
    if has_bpf == Some(false) {
        let current = list.join(",");
        let source = if i.authoritative {
            String::new()
        } else if let Some(from) = &i.lsm.derived_from {
            format!(", {from}")
        } else {
            String::new()
        };
        let mut fix = format!(
            "add `bpf` to the kernel's `lsm=` boot parameter (now: {current}{source}): edit \
             GRUB_CMDLINE_LINUX in /etc/default/grub to contain `lsm={current},bpf` (replacing \
             any lsm= there), run update-grub (grub2-mkconfig -o /boot/grub2/grub.cfg on \
             Fedora/RHEL), reboot"
        );
        if i.compiled.is_none() {
            fix.push_str(
                " (no kernel config was found: this only works if the kernel has CONFIG_BPF_LSM=y)",
            );
        }
        return BpfLsm::NotInLsmList {
            current: list.to_vec(),
            fix,
        };
    }
    if !i.btf {
        if !i.offline && i.btf_configured == Some(true) {
            return BpfLsm::Unknown {
                why: "/sys/kernel/btf/vmlinux is missing although CONFIG_DEBUG_INFO_BTF=y: is \
                      sysfs mounted on /sys?"
                    .to_string(),
            };
        }
        return BpfLsm::NoBtf;
    }
    BpfLsm::Active
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

/// The lockdown mode a kernel built with `c` boots in, if the lockdown LSM
/// is built in and in the LSM list.
fn lockdown_from_config(c: &KernelConfig, list: &[String]) -> Option<String> {
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
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    const REL: &str = "6.12.0-test";

    fn base_config(extra: &str) -> String {
        format!(
            "CONFIG_MODULES=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_BPF_LSM=y\nCONFIG_DEBUG_INFO_BTF=y\n\
             CONFIG_SECURITY_LOCKDOWN_LSM=y\nCONFIG_SECURITY_LOCKDOWN_LSM_EARLY=y\n\
             CONFIG_SECURITY_LANDLOCK=y\nCONFIG_SECURITY_YAMA=y\nCONFIG_SECURITY_APPARMOR=y\n\
             CONFIG_SECURITY_SELINUX=y\nCONFIG_USER_NS=y\nCONFIG_SECCOMP_FILTER=y\n\
             CONFIG_LSM=\"landlock,lockdown,yama,integrity,apparmor,selinux,bpf\"\n{extra}"
        )
    }

    /// A fake live host: osrelease, /boot config, BTF, modules.
    fn fake_host(config: &str) -> TempDir {
        let t = TempDir::new("host");
        t.write("proc/sys/kernel/osrelease", format!("{REL}\n"));
        t.write(&format!("boot/config-{REL}"), config);
        t.write("proc/modules", "");
        t.write("sys/kernel/btf/vmlinux", "BTF");
        t
    }

    #[test]
    fn a_bpf_lsm_active() {
        let t = fake_host(&base_config(""));
        t.write(
            "sys/kernel/security/lsm",
            "lockdown,capability,landlock,yama,apparmor,bpf",
        );
        t.write(
            "sys/kernel/security/lockdown",
            "[none] integrity confidentiality\n",
        );
        let h = read_host(t.path());
        assert_eq!(h.release, REL);
        assert!(h.bpf_lsm.is_active(), "{:?}", h.bpf_lsm);
        assert!(h.modules.supported);
        assert_eq!(h.lockdown.as_deref(), Some("none"));
        assert_eq!(h.lsm.contains("bpf"), Some(true));
        assert!(h
            .config_source
            .unwrap()
            .ends_with(&format!("boot/config-{REL}")));
        let json = serde_json::to_value(&h.bpf_lsm).unwrap();
        assert_eq!(json["state"], "active");
    }

    #[test]
    fn b_bpf_missing_from_lsm_list() {
        let t = fake_host(&base_config(""));
        t.write(
            "sys/kernel/security/lsm",
            "lockdown,capability,landlock,yama,apparmor\n",
        );
        let h = read_host(t.path());
        let BpfLsm::NotInLsmList { current, fix } = &h.bpf_lsm else {
            panic!("{:?}", h.bpf_lsm)
        };
        assert_eq!(
            current.join(","),
            "lockdown,capability,landlock,yama,apparmor"
        );
        assert!(
            fix.contains("now: lockdown,capability,landlock,yama,apparmor)"),
            "{fix}"
        );
        assert!(
            fix.contains("lsm=lockdown,capability,landlock,yama,apparmor,bpf"),
            "{fix}"
        );
        let e = h.bpf_lsm.explain();
        assert!(
            e.starts_with("BPF-LSM is compiled in but not active: add `bpf`"),
            "{e}"
        );
        assert!(
            e.contains("GRUB_CMDLINE_LINUX") && e.contains("update-grub") && e.contains("reboot")
        );
        assert!(!h.bpf_lsm.is_active());
    }

    #[test]
    fn c_securityfs_not_mounted_with_cmdline_lsm() {
        let t = fake_host(&base_config(""));
        std::fs::create_dir_all(t.path().join("sys/kernel/security")).unwrap();
        t.write(
            "proc/cmdline",
            "BOOT_IMAGE=/vmlinuz root=/dev/sda1 lsm=landlock,yama,apparmor quiet -- lsm=bogus\n",
        );
        let h = read_host(t.path());
        assert!(h.lsm.active.is_none());
        assert!(h.lsm.why.as_deref().unwrap().contains(MOUNT_SECURITYFS));
        assert_eq!(
            h.lsm.derived.as_ref().unwrap().join(","),
            "lockdown,capability,landlock,yama,apparmor"
        );
        assert!(h
            .lsm
            .derived_from
            .as_deref()
            .unwrap()
            .contains("lsm= on /proc/cmdline"));
        let BpfLsm::NotInLsmList { fix, .. } = &h.bpf_lsm else {
            panic!("{:?}", h.bpf_lsm)
        };
        assert!(
            fix.contains("lsm=lockdown,capability,landlock,yama,apparmor,bpf"),
            "{fix}"
        );
        assert!(fix.contains("securityfs is not mounted"), "{fix}");
        assert!(
            h.lockdown
                .as_deref()
                .unwrap()
                .contains("from the kernel config, securityfs is not mounted"),
            "{:?}",
            h.lockdown
        );

        // Without lsm= the list comes from CONFIG_LSM, which has bpf.
        t.write("proc/cmdline", "root=/dev/sda1 quiet\n");
        let h = read_host(t.path());
        assert_eq!(
            h.lsm.derived.as_ref().unwrap().join(","),
            "lockdown,capability,landlock,yama,apparmor,bpf"
        );
        assert!(h
            .lsm
            .derived_from
            .as_deref()
            .unwrap()
            .contains("CONFIG_LSM"));
        assert!(h.bpf_lsm.is_active());
    }

    #[test]
    fn d_config_bpf_lsm_not_set() {
        let cfg = base_config("").replace("CONFIG_BPF_LSM=y", "# CONFIG_BPF_LSM is not set");
        let t = fake_host(&cfg);
        t.write(
            "sys/kernel/security/lsm",
            "lockdown,capability,landlock,yama,apparmor",
        );
        let h = read_host(t.path());
        assert!(
            matches!(h.bpf_lsm, BpfLsm::NotCompiled { .. }),
            "{:?}",
            h.bpf_lsm
        );
        let e = h.bpf_lsm.explain();
        assert!(
            e.starts_with("CONFIG_BPF_LSM is not set in this kernel's config"),
            "{e}"
        );
        assert!(
            e.contains("CONFIG_BPF_LSM=y") && e.contains("modprobe backend"),
            "{e}"
        );
        let off = offline_facts(REL, Some(&KernelConfig::parse(&cfg)));
        assert!(matches!(off.bpf_lsm, BpfLsm::NotCompiled { .. }));
    }

    #[test]
    fn e_no_btf() {
        let cfg = base_config("").replace(
            "CONFIG_DEBUG_INFO_BTF=y",
            "# CONFIG_DEBUG_INFO_BTF is not set",
        );
        let t = fake_host(&cfg);
        std::fs::remove_file(t.path().join("sys/kernel/btf/vmlinux")).unwrap();
        t.write("sys/kernel/security/lsm", "capability,bpf");
        let h = read_host(t.path());
        assert!(!h.btf);
        assert_eq!(h.bpf_lsm, BpfLsm::NoBtf);
        assert!(h.bpf_lsm.explain().contains("CONFIG_DEBUG_INFO_BTF"));
        assert_eq!(
            offline_facts(REL, Some(&KernelConfig::parse(&cfg))).bpf_lsm,
            BpfLsm::NoBtf
        );
    }

    #[test]
    fn f_sysctls_and_accessors() {
        let t = fake_host(&base_config(""));
        t.write("proc/sys/dev/tty/ldisc_autoload", "1\n");
        t.write("proc/sys/kernel/modules_disabled", "0\n");
        let h = read_host(t.path());
        assert_eq!(h.ldisc_autoload(), Some(true));
        assert!(!h.modules_disabled());
        assert_eq!(
            h.sysctl("kernel.io_uring_disabled").unwrap().status,
            SysctlStatus::Absent
        );
        assert_eq!(
            h.sysctl("dev.tty.ldisc_autoload").unwrap().status,
            SysctlStatus::NotHardened
        );
        t.write("proc/sys/dev/tty/ldisc_autoload", "0\n");
        t.write("proc/sys/kernel/modules_disabled", "1\n");
        let h = read_host(t.path());
        assert_eq!(h.ldisc_autoload(), Some(false));
        assert!(h.modules_disabled());
        assert_eq!(
            h.sysctl("dev.tty.ldisc_autoload").unwrap().status,
            SysctlStatus::Hardened
        );
    }

    #[test]
    fn g_debian_userns_clone_zero() {
        let t = fake_host(&base_config(""));
        t.write("proc/sys/user/max_user_namespaces", "63000\n");
        let h = read_host(t.path());
        assert!(h.unprivileged_userns(), "{}", h.userns.reason);
        t.write("proc/sys/kernel/unprivileged_userns_clone", "0\n");
        let h = read_host(t.path());
        assert!(!h.unprivileged_userns());
        assert!(
            h.userns.reason.contains("unprivileged_userns_clone=0"),
            "{}",
            h.userns.reason
        );
        // max_user_namespaces=0 and CONFIG_USER_NS off also block.
        t.write("proc/sys/kernel/unprivileged_userns_clone", "1\n");
        t.write("proc/sys/user/max_user_namespaces", "0\n");
        assert!(!read_host(t.path()).unprivileged_userns());
        let off = offline_facts(
            REL,
            Some(&KernelConfig::parse("# CONFIG_USER_NS is not set\n")),
        );
        assert!(!off.unprivileged_userns());
    }

    #[test]
    fn ubuntu_apparmor_restriction() {
        let t = fake_host(&base_config(""));
        t.write(
            "sys/kernel/security/lsm",
            "lockdown,capability,landlock,yama,apparmor",
        );
        t.write(
            "proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1\n",
        );
        assert!(!read_host(t.path()).unprivileged_userns());
        t.write(
            "sys/kernel/security/lsm",
            "lockdown,capability,landlock,yama",
        );
        assert!(read_host(t.path()).unprivileged_userns());
    }

    #[test]
    fn modules_absent_and_not_configured() {
        let t = fake_host("# CONFIG_MODULES is not set\n");
        std::fs::remove_file(t.path().join("proc/modules")).unwrap();
        let h = read_host(t.path());
        assert!(!h.modules.supported);
        assert_eq!(
            h.modules.evidence,
            "/proc/modules absent and CONFIG_MODULES is not set"
        );
        assert!(h.modules_disabled());
    }

    #[test]
    fn empty_root_never_fails() {
        let t = TempDir::new("empty");
        let h = read_host(t.path());
        assert_eq!(h.release, "");
        assert!(
            matches!(h.bpf_lsm, BpfLsm::Unknown { .. }),
            "{:?}",
            h.bpf_lsm
        );
        assert!(h.unprivileged_userns());
        serde_json::to_string(&h).unwrap();
        let off = offline_facts("6.1.0", None);
        assert!(off.offline && matches!(off.bpf_lsm, BpfLsm::Unknown { .. }));
    }

    #[test]
    fn offline_defaults() {
        let cfg = base_config(
            "CONFIG_BPF_UNPRIV_DEFAULT_OFF=y\nCONFIG_TTY=y\nCONFIG_LDISC_AUTOLOAD=y\nCONFIG_IO_URING=y\n\
             CONFIG_SECURITY_PERF_EVENTS_RESTRICT=y\nCONFIG_PERF_EVENTS=y\nCONFIG_LOCK_DOWN_KERNEL_FORCE_NONE=y\n\
             CONFIG_IMA=y\nCONFIG_EVM=y\nCONFIG_INTEGRITY=y\nCONFIG_MODPROBE_PATH=\"/sbin/modprobe\"\n",
        );
        let h = offline_facts("6.12.113+deb12-amd64", Some(&KernelConfig::parse(&cfg)));
        assert!(h.offline);
        assert_eq!(
            h.lsm.effective().unwrap().join(","),
            "lockdown,capability,landlock,yama,apparmor,bpf,ima,evm"
        );
        assert!(h.bpf_lsm.is_active());
        assert_eq!(h.lockdown.as_deref(), Some("none"));
        let v = |n: &str| h.sysctl(n).unwrap().value.clone();
        assert_eq!(v("kernel.unprivileged_bpf_disabled").as_deref(), Some("2"));
        assert_eq!(v("dev.tty.ldisc_autoload").as_deref(), Some("1"));
        assert_eq!(v("kernel.io_uring_disabled").as_deref(), Some("0"));
        assert_eq!(v("kernel.perf_event_paranoid").as_deref(), Some("3"));
        assert_eq!(v("kernel.modprobe").as_deref(), Some("/sbin/modprobe"));
        assert_eq!(v("kernel.unprivileged_userns_clone").as_deref(), Some("1"));
        assert!(h
            .sysctls
            .iter()
            .all(|r| r.source == SysctlSource::KernelDefault));
        assert_eq!(
            h.sysctl("user.max_user_namespaces").unwrap().status,
            SysctlStatus::NotHardened
        );
        assert_eq!(
            h.sysctl("kernel.kexec_load_disabled").unwrap().status,
            SysctlStatus::Absent
        );
        assert!(h.unprivileged_userns());
        assert_eq!(h.ldisc_autoload(), Some(true));
        // Pre-6.4: integrity stays where CONFIG_LSM puts it.
        let old = effective_lsm_list(
            "integrity,apparmor,selinux,bpf",
            Some(&KernelConfig::parse(&cfg)),
            "6.1.0-54-amd64",
        );
        assert_eq!(old.join(","), "lockdown,capability,integrity,apparmor,bpf");
    }

    #[test]
    fn helpers() {
        assert_eq!(kernel_version("6.12.113+deb12-amd64"), Some((6, 12)));
        assert_eq!(kernel_version("5.4"), Some((5, 4)));
        assert_eq!(kernel_version(""), None);
        assert_eq!(
            lockdown_mode("none [integrity] confidentiality").as_deref(),
            Some("integrity")
        );
        assert_eq!(
            cmdline_param("a lsm=x lsm=y -- lsm=z", "lsm").as_deref(),
            Some("y")
        );
        assert_eq!(cmdline_param("a nolsm=x", "lsm"), None);
    }

    /// `cargo test -p kgate-kernel -- --ignored --nocapture print_live_host`
    #[test]
    #[ignore = "prints the facts of the machine running the tests"]
    fn print_live_host() {
        let h = read_host(Path::new("/"));
        println!("{}", serde_json::to_string_pretty(&h).unwrap());
        println!("bpf_lsm: {}", h.bpf_lsm.explain());
    }

    /// The offline facts of the Debian cloud kernel that `cargo xtask fetch`
    /// unpacks into the lab cache; skips loudly when it is not there (fails
    /// under `KGATE_REQUIRE_KERNELS=1`), and fails when its config is
    /// missing or unreadable. (It used to look in a directory the lab never
    /// creates, and skipped everywhere.)
    #[test]
    fn print_debian_offline_if_present() {
        let rel = "6.12.113+deb12-cloud-amd64";
        let Some(dir) =
            crate::testutil::debian_kernel("linux-image-6.12.113+deb12-cloud-amd64-unsigned")
        else {
            return;
        };
        let (cfg, src) = KernelConfig::load_offline(&dir, rel)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .unwrap_or_else(|| panic!("{} has no boot/config-{rel}", dir.display()));
        let mut h = offline_facts(rel, Some(&cfg));
        h.config_source = Some(src.display().to_string());
        println!("{}", serde_json::to_string_pretty(&h).unwrap());
        println!("bpf_lsm: {}", h.bpf_lsm.explain());
        assert!(h.modules.supported);
        assert!(h.bpf_lsm.is_active(), "{}", h.bpf_lsm.explain());
        assert_eq!(h.lockdown.as_deref(), Some("none"));
    }
}
