//! Validation of `[sysctl]` values.

use kgate_kernel::sysctl::ATTACK_SURFACE_SYSCTLS;

/// What values a known sysctl accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SysctlRange {
    /// An integer in `min..=max` (`max` `None`: unbounded).
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value, if bounded.
        max: Option<i64>,
    },
    /// A string that is empty or an absolute path (`kernel.modprobe`).
    EmptyOrAbsolutePath,
}

impl SysctlRange {
    /// The accepted values, for messages.
    pub fn describe(&self) -> Vec<String> {
        match *self {
            SysctlRange::Int {
                min,
                max: Some(max),
            } if max - min <= 6 => (min..=max).map(|v| v.to_string()).collect(),
            SysctlRange::Int {
                min,
                max: Some(max),
            } => vec![format!("{min}..={max}")],
            SysctlRange::Int { min, max: None } => vec![format!("an integer >= {min}")],
            SysctlRange::EmptyOrAbsolutePath => {
                vec!["\"\" (disables autoload)".into(), "an absolute path".into()]
            }
        }
    }
}

const fn int(min: i64, max: i64) -> SysctlRange {
    SysctlRange::Int {
        min,
        max: Some(max),
    }
}

/// The accepted values of kgate's attack-surface sysctls.
pub const SYSCTL_RANGES: &[(&str, SysctlRange)] = &[
    ("kernel.unprivileged_bpf_disabled", int(0, 2)),
    ("kernel.io_uring_disabled", int(0, 2)),
    ("dev.tty.ldisc_autoload", int(0, 1)),
    ("vm.unprivileged_userfaultfd", int(0, 1)),
    ("kernel.perf_event_paranoid", int(-1, 4)),
    (
        "user.max_user_namespaces",
        SysctlRange::Int { min: 0, max: None },
    ),
    ("kernel.modules_disabled", int(0, 1)),
    ("kernel.modprobe", SysctlRange::EmptyOrAbsolutePath),
    ("kernel.kptr_restrict", int(0, 2)),
    ("kernel.dmesg_restrict", int(0, 1)),
    ("kernel.yama.ptrace_scope", int(0, 3)),
    ("kernel.kexec_load_disabled", int(0, 1)),
    ("kernel.unprivileged_userns_clone", int(0, 1)),
    ("kernel.apparmor_restrict_unprivileged_userns", int(0, 1)),
];

/// Values that cannot be changed back until the next reboot: (name, value,
/// explanation).
pub const ONE_WAY: &[(&str, i64, &str)] = &[
    (
        "kernel.modules_disabled",
        1,
        "no module can be loaded, by anyone, until reboot",
    ),
    (
        "kernel.kexec_load_disabled",
        1,
        "kexec stays disabled until reboot",
    ),
    (
        "kernel.yama.ptrace_scope",
        3,
        "ptrace stays disabled for everyone until reboot",
    ),
    (
        "kernel.unprivileged_bpf_disabled",
        1,
        "unprivileged BPF stays disabled until reboot; 2 hardens the same and can be reverted",
    ),
];

/// The accepted values of a known sysctl.
pub fn range(name: &str) -> Option<SysctlRange> {
    SYSCTL_RANGES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
}

/// Is `name` one of kgate's attack-surface sysctls?
pub fn is_attack_surface(name: &str) -> bool {
    range(name).is_some() || ATTACK_SURFACE_SYSCTLS.iter().any(|s| s.name == name)
}

/// Does `name` look like a sysctl name (`[a-z0-9_-]+(\.[a-z0-9_-]+)+`)?
pub fn is_valid_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

/// If setting `name` to `value` cannot be undone until reboot, why.
pub fn one_way(name: &str, value: i64) -> Option<&'static str> {
    ONE_WAY
        .iter()
        .find(|(n, v, _)| *n == name && *v == value)
        .map(|(_, _, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("kernel.modprobe"));
        assert!(is_valid_name("net.ipv4.tcp_syncookies"));
        assert!(is_valid_name("net.ipv4.conf.eth-0.rp_filter"));
        assert!(!is_valid_name("kernel"));
        assert!(!is_valid_name("Kernel.Modprobe"));
        assert!(!is_valid_name("kernel..x"));
        assert!(is_attack_surface("kernel.io_uring_disabled"));
        assert!(!is_attack_surface("net.ipv4.tcp_syncookies"));
        assert!(one_way("kernel.modules_disabled", 1).is_some());
        assert_eq!(one_way("kernel.modules_disabled", 0), None);
        assert_eq!(
            range("kernel.perf_event_paranoid")
                .unwrap()
                .describe()
                .len(),
            6
        );
    }
}
