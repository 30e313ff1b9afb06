//! BPF-LSM, which kgate's per-workload gating needs: its state on a host or
//! an offline kernel ([`BpfLsm`]), and the diagnosis that names the fix
//! (a kernel config, the `lsm=` boot parameter, BTF, securityfs).

use serde::{Deserialize, Serialize};

use crate::host::{LsmFacts, MOUNT_SECURITYFS};

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

/// What [`diagnose`] decides from, gathered by [`crate::host::read_host`] or
/// [`crate::host::offline_facts`].
pub(crate) struct BpfLsmInputs<'a> {
    pub(crate) lsm: &'a LsmFacts,
    /// The list came from securityfs.
    pub(crate) authoritative: bool,
    pub(crate) compiled: Option<bool>,
    pub(crate) config_source: Option<&'a str>,
    pub(crate) btf: bool,
    pub(crate) btf_configured: Option<bool>,
    pub(crate) offline: bool,
}

/// The state of BPF-LSM from `i`; every state but `Active` says how to fix it.
pub(crate) fn diagnose(i: &BpfLsmInputs<'_>) -> BpfLsm {
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
