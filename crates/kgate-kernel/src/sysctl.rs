//! Sysctls that decide how much of the kernel an unprivileged local user can
//! reach, with their hardened values and what each one exposes.
//!
//! [`read_sysctls`] reads them from `root/proc/sys`. The offline equivalent,
//! each sysctl's build-time default derived from a kernel config, is
//! `kernel_defaults` below the table; [`crate::host::offline_facts`] uses it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::KernelConfig;

/// How a sysctl's value is judged hardened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "value")]
pub enum SysctlRule {
    /// Hardened when the integer value is `>= N`.
    AtLeast(i64),
    /// Hardened when the integer value is `== N`.
    Equals(i64),
    /// `kernel.modprobe`: hardened when kernel-initiated module loading
    /// (`request_module()`) cannot succeed, i.e. the helper path is empty
    /// (the kernel then fails every request with `-ENOENT`) or is a known
    /// no-op (`/bin/false`, `/usr/bin/false`, `/bin/true`, `/usr/bin/true`,
    /// `/dev/null`). A normal `/sbin/modprobe` or any other helper is "not
    /// hardened": kgate cannot tell what an arbitrary helper lets through.
    AutoloadHelperDisabled,
}

impl SysctlRule {
    /// Judges a (trimmed) sysctl value. Unparsable numbers are not hardened.
    pub fn is_hardened(&self, value: &str) -> bool {
        let value = value.trim();
        match self {
            SysctlRule::AtLeast(n) => value.parse::<i64>().is_ok_and(|v| v >= *n),
            SysctlRule::Equals(n) => value.parse::<i64>().is_ok_and(|v| v == *n),
            SysctlRule::AutoloadHelperDisabled => matches!(
                value,
                "" | "/bin/false" | "/usr/bin/false" | "/bin/true" | "/usr/bin/true" | "/dev/null"
            ),
        }
    }
}

/// One attack-surface sysctl and what "hardened" means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SysctlSpec {
    /// Dotted name, as `sysctl(8)` spells it.
    pub name: &'static str,
    /// One line on what is exposed when it is not hardened.
    pub summary: &'static str,
    /// The hardened value(s), for display (e.g. `">= 1"`).
    pub hardened: &'static str,
    /// The value kgate recommends setting.
    pub recommended: &'static str,
    /// How a value is judged.
    pub rule: SysctlRule,
    /// What an unprivileged user can reach when it is not hardened, and any
    /// caveat of hardening it.
    pub why: &'static str,
    /// `Some(distribution)` for sysctls that only exist in a distribution's
    /// patched kernels.
    pub distribution: Option<&'static str>,
}

/// The attack-surface sysctls kgate reports, in display order.
pub static ATTACK_SURFACE_SYSCTLS: &[SysctlSpec] = &[
    SysctlSpec {
        name: "kernel.unprivileged_bpf_disabled",
        summary: "any user can load BPF programs into the verifier and JIT",
        hardened: ">= 1",
        recommended: "2",
        rule: SysctlRule::AtLeast(1),
        why: "0 lets any user call bpf(2) to create maps and load socket-filter and cgroup-skb \
              programs, exposing the BPF verifier and JIT (a recurring source of privilege \
              escalations); 1 and 2 require CAP_BPF/CAP_SYS_ADMIN. 1 is one-way until reboot, \
              2 (the CONFIG_BPF_UNPRIV_DEFAULT_OFF default) can be set back to 0 by an admin.",
        distribution: None,
    },
    SysctlSpec {
        name: "kernel.io_uring_disabled",
        summary: "any user can use io_uring, a large, often exploited interface",
        hardened: "2",
        recommended: "2",
        rule: SysctlRule::Equals(2),
        why: "0 lets any user create io_uring instances (io_uring_setup(2)), a large and \
              frequently exploited kernel surface; 1 limits it to CAP_SYS_ADMIN and members of \
              the kernel.io_uring_group GID; 2 disables io_uring for everyone (Linux 6.6+).",
        distribution: None,
    },
    SysctlSpec {
        name: "dev.tty.ldisc_autoload",
        summary: "any tty owner can autoload line-discipline modules (TIOCSETD)",
        hardened: "0",
        recommended: "0",
        rule: SysctlRule::Equals(0),
        why: "1 lets any user who holds a tty (e.g. a pty from /dev/ptmx) set a line discipline \
              with TIOCSETD and make the kernel autoload its module (n_hdlc, n_gsm, slip, \
              hci_uart...); 0 restricts ldisc autoloading to CAP_SYS_MODULE.",
        distribution: None,
    },
    SysctlSpec {
        name: "vm.unprivileged_userfaultfd",
        summary: "userfaultfd can stall kernel copies to win races",
        hardened: "0",
        recommended: "0",
        rule: SysctlRule::Equals(0),
        why: "1 lets any user create a userfaultfd that also handles faults raised by the \
              kernel's own user-memory accesses, i.e. stall copy_from_user() at a chosen point \
              to win kernel race conditions; with 0 users without CAP_SYS_PTRACE only get \
              UFFD_USER_MODE_ONLY (5.11+). /dev/userfaultfd (6.1+) bypasses this sysctl and is \
              governed by its file permissions.",
        distribution: None,
    },
    SysctlSpec {
        name: "kernel.perf_event_paranoid",
        summary: "perf_event_open(2) exposes perf core code to any user",
        hardened: ">= 2",
        recommended: "3 where supported (Debian/Ubuntu/Android kernels), else 2",
        rule: SysctlRule::AtLeast(2),
        why: "Below 2 users may profile the kernel itself (and at <= 1 with kptr_restrict=0 \
              read kernel addresses from /proc/kallsyms); at 2 users can still call \
              perf_event_open(2) on their own processes, so perf core bugs stay reachable; 3 \
              (CONFIG_SECURITY_PERF_EVENTS_RESTRICT, a Debian/Ubuntu/Android patch; upstream \
              treats 3 as 2) denies perf_event_open(2) without CAP_PERFMON.",
        distribution: None,
    },
    SysctlSpec {
        name: "user.max_user_namespaces",
        summary: "user namespaces give CAP_NET_ADMIN/CAP_SYS_ADMIN over nf_tables, mounts",
        hardened: "0",
        recommended: "0 only without rootless containers/sandboxes; kgate's default is \
                      per-workload gating with BPF-LSM",
        rule: SysctlRule::Equals(0),
        why: "Non-zero lets any user create user namespaces and hold CAP_SYS_ADMIN/CAP_NET_ADMIN \
              inside them, reaching nf_tables, most socket families' admin paths, namespaced \
              mounts and the module autoloads behind them, the most common path to kernel \
              privilege escalation. 0 forbids new user namespaces for everyone, which breaks \
              rootless containers, Flatpak/bubblewrap and browser sandboxes.",
        distribution: None,
    },
    SysctlSpec {
        name: "kernel.modules_disabled",
        summary: "modules can still be loaded (1 = none at all, until reboot)",
        hardened: "1",
        recommended: "1 once every needed module is loaded",
        rule: SysctlRule::Equals(1),
        why: "0 lets the kernel keep loading modules, including ones autoloaded on behalf of \
              unprivileged users (socket families, filesystems, ldiscs, crypto via \
              request_module()); 1 blocks all module loading and is one-way until reboot.",
        distribution: None,
    },
    SysctlSpec {
        name: "kernel.modprobe",
        summary: "the helper that loads every autoloaded module",
        hardened: "/bin/false",
        recommended: "/sbin/modprobe with kgate's modprobe gating, or /bin/false if no module \
                      is ever loaded on demand",
        rule: SysctlRule::AutoloadHelperDisabled,
        why: "The helper the kernel runs for request_module(); with the normal /sbin/modprobe, \
              any module an unprivileged action triggers (socket(2) family, TIOCSETD, mount \
              type, crypto algorithm...) is loaded. Empty or /bin/false makes every autoload \
              fail while explicit modprobe by root still works. With \
              CONFIG_STATIC_USERMODEHELPER the kernel runs a fixed helper instead.",
        distribution: None,
    },
    SysctlSpec {
        name: "kernel.kptr_restrict",
        summary: "kernel addresses leak to users (KASLR bypass)",
        hardened: ">= 1",
        recommended: "2",
        rule: SysctlRule::AtLeast(1),
        why: "0 shows real kernel addresses in /proc/kallsyms and /proc/modules to any user \
              while kernel.perf_event_paranoid <= 1 (a KASLR bypass); 1 shows them, and real \
              %pK pointers, only to CAP_SYSLOG holders; 2 hides them from everyone.",
        distribution: None,
    },
    SysctlSpec {
        name: "kernel.dmesg_restrict",
        summary: "the kernel log leaks addresses and oopses to users",
        hardened: "1",
        recommended: "1",
        rule: SysctlRule::Equals(1),
        why: "0 lets any user read the kernel log (dmesg, /dev/kmsg), which leaks addresses, \
              oops traces and feedback useful to exploits; 1 requires CAP_SYSLOG.",
        distribution: None,
    },
    SysctlSpec {
        name: "kernel.yama.ptrace_scope",
        summary: "a process can ptrace any other process of its user",
        hardened: ">= 1",
        recommended: "2",
        rule: SysctlRule::AtLeast(1),
        why: "0 lets a process ptrace any other process of the same user (steal secrets from \
              the user's ssh-agent, browser, etc.); 1 only descendants, 2 only CAP_SYS_PTRACE, \
              3 no ptrace at all (one-way until reboot). Requires the Yama LSM.",
        distribution: None,
    },
    SysctlSpec {
        name: "kernel.kexec_load_disabled",
        summary: "root can boot another kernel with kexec",
        hardened: "1",
        recommended: "1",
        rule: SysctlRule::Equals(1),
        why: "Not reachable by unprivileged users (kexec needs CAP_SYS_BOOT); 1 stops a \
              compromised root from booting another kernel with kexec_load(2) / \
              kexec_file_load(2), and is one-way until reboot.",
        distribution: None,
    },
    SysctlSpec {
        name: "kernel.unprivileged_userns_clone",
        summary: "Debian/Ubuntu: users can create user namespaces",
        hardened: "0",
        recommended: "0 only without rootless containers/sandboxes",
        rule: SysctlRule::Equals(0),
        why: "Debian/Ubuntu kernel patch: 1 (the default since Debian 11) lets users without \
              CAP_SYS_ADMIN create user namespaces, with the reach described under \
              user.max_user_namespaces; 0 reserves user namespace creation for CAP_SYS_ADMIN.",
        distribution: Some("debian"),
    },
    SysctlSpec {
        name: "kernel.apparmor_restrict_unprivileged_userns",
        summary: "Ubuntu: user namespaces without capabilities",
        hardened: "1",
        recommended: "1",
        rule: SysctlRule::Equals(1),
        why: "Ubuntu AppArmor: with 1, unprivileged processes whose AppArmor profile does not \
              grant `userns` may still create a user namespace but get no capabilities in it, \
              which cuts off the user-namespace attack surface; 0 leaves it open. Only \
              effective while AppArmor is an active LSM.",
        distribution: Some("ubuntu"),
    },
];

/// Looks up a spec by dotted name.
pub fn spec(name: &str) -> Option<&'static SysctlSpec> {
    ATTACK_SURFACE_SYSCTLS.iter().find(|s| s.name == name)
}

/// Build-time defaults of the attack-surface sysctls, as a kernel built
/// with `c` (release `release`, LSM list `lsms`) presents them at boot.
pub(crate) fn kernel_defaults(
    release: &str,
    c: &KernelConfig,
    lsms: &[String],
) -> Vec<SysctlReading> {
    let v = crate::lsm::kernel_version(release);
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

/// Verdict for one sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SysctlStatus {
    /// The value satisfies the spec's rule.
    Hardened,
    /// The value does not satisfy the spec's rule.
    NotHardened,
    /// The sysctl does not exist on this kernel (feature not built in, or
    /// distribution patch not applied).
    Absent,
    /// The sysctl exists but could not be read (or, for a
    /// [`SysctlSource::KernelDefault`] reading, its default is not derivable
    /// from the config).
    Unreadable,
}

/// Where a reading's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SysctlSource {
    /// Read from `/proc/sys` on a running host.
    Live,
    /// The value a kernel built with a given config has at boot, before any
    /// `sysctl.d` setting ("kernel default").
    KernelDefault,
}

/// One sysctl as found on a host (or as a kernel would default it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlReading {
    /// Dotted name.
    pub name: String,
    /// Trimmed value; `None` when absent, unreadable or not derivable.
    pub value: Option<String>,
    /// One line on what is exposed when it is not hardened.
    pub summary: String,
    /// The hardened value(s), for display.
    pub hardened: String,
    /// The value kgate recommends.
    pub recommended: String,
    /// What an unprivileged user can reach when it is not hardened.
    pub why: String,
    /// The verdict.
    pub status: SysctlStatus,
    /// Live value or kernel default.
    pub source: SysctlSource,
    /// `Some(distribution)` for distribution-specific sysctls.
    pub distribution: Option<String>,
    /// Extra detail: the read error, or how a kernel default was derived.
    pub note: Option<String>,
}

impl SysctlReading {
    /// Builds a reading for `spec` and judges `value` with its rule.
    pub fn judge(
        spec: &SysctlSpec,
        value: Option<String>,
        status_if_none: SysctlStatus,
        source: SysctlSource,
        note: Option<String>,
    ) -> SysctlReading {
        let status = match &value {
            Some(v) if spec.rule.is_hardened(v) => SysctlStatus::Hardened,
            Some(_) => SysctlStatus::NotHardened,
            None => status_if_none,
        };
        SysctlReading {
            name: spec.name.to_string(),
            value,
            summary: spec.summary.to_string(),
            hardened: spec.hardened.to_string(),
            recommended: spec.recommended.to_string(),
            why: spec.why.to_string(),
            status,
            source,
            distribution: spec.distribution.map(str::to_string),
            note,
        }
    }

    /// The value as an integer, when present and numeric.
    pub fn int(&self) -> Option<i64> {
        self.value.as_deref().and_then(|v| v.trim().parse().ok())
    }
}

/// `kernel.yama.ptrace_scope` → `proc/sys/kernel/yama/ptrace_scope`.
pub fn proc_path(name: &str) -> String {
    format!("proc/sys/{}", name.replace('.', "/"))
}

/// The value of a `/proc/sys` file: its text (invalid UTF-8 replaced),
/// trimmed.
pub fn parse_value(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Reads one sysctl under `root/proc/sys`: trimmed value, or `None` with
/// [`SysctlStatus::Absent`] (not found) / [`SysctlStatus::Unreadable`] (any
/// other error, e.g. permission denied) and the error text.
pub fn read_one(root: &Path, name: &str) -> Result<String, (SysctlStatus, String)> {
    let path = root.join(proc_path(name));
    match crate::bounded::read(root, &path, crate::bounded::Limit::HOST_FILE) {
        Ok(bytes) => Ok(parse_value(&bytes)),
        Err(e) if e.is_not_found() => Err((
            SysctlStatus::Absent,
            format!("{} does not exist", path.display()),
        )),
        Err(crate::bounded::ReadError::Io { source, .. }) => Err((
            SysctlStatus::Unreadable,
            format!("cannot read {}: {source}", path.display()),
        )),
        Err(e) => Err((SysctlStatus::Unreadable, format!("cannot read {e}"))),
    }
}

/// Reads every sysctl of [`ATTACK_SURFACE_SYSCTLS`] from `root/proc/sys`
/// (`root` is `/` on a live host).
pub fn read_sysctls(root: &Path) -> Vec<SysctlReading> {
    ATTACK_SURFACE_SYSCTLS
        .iter()
        .map(|spec| match read_one(root, spec.name) {
            Ok(v) => SysctlReading::judge(
                spec,
                Some(v),
                SysctlStatus::Unreadable,
                SysctlSource::Live,
                None,
            ),
            Err((status, note)) => {
                let note = (status == SysctlStatus::Unreadable).then_some(note);
                SysctlReading::judge(spec, None, status, SysctlSource::Live, note)
            }
        })
        .collect()
}

/// Finds a reading by dotted name.
pub fn find<'a>(readings: &'a [SysctlReading], name: &str) -> Option<&'a SysctlReading> {
    readings.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn table_is_complete_and_unique() {
        let names: Vec<_> = ATTACK_SURFACE_SYSCTLS.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), 14);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for s in ATTACK_SURFACE_SYSCTLS {
            assert!(!s.why.is_empty() && !s.hardened.is_empty(), "{}", s.name);
            // The recommended value must itself be hardened, when it is one.
            if let Ok(v) = s.recommended.parse::<i64>() {
                assert!(s.rule.is_hardened(&v.to_string()), "{}", s.name);
            }
        }
        assert_eq!(
            spec("kernel.unprivileged_userns_clone")
                .unwrap()
                .distribution,
            Some("debian")
        );
    }

    #[test]
    fn rules() {
        assert!(SysctlRule::AtLeast(1).is_hardened("2"));
        assert!(SysctlRule::AtLeast(1).is_hardened(" 1\n"));
        assert!(!SysctlRule::AtLeast(1).is_hardened("0"));
        assert!(!SysctlRule::AtLeast(1).is_hardened("-1"));
        assert!(!SysctlRule::AtLeast(1).is_hardened("x"));
        assert!(SysctlRule::Equals(0).is_hardened("0"));
        assert!(!SysctlRule::Equals(0).is_hardened("1"));
        let m = SysctlRule::AutoloadHelperDisabled;
        assert!(m.is_hardened("") && m.is_hardened("/bin/false"));
        assert!(!m.is_hardened("/sbin/modprobe"));
    }

    #[test]
    fn absent_present_hardened_not_hardened() {
        let t = TempDir::new("sysctl");
        t.write("proc/sys/kernel/unprivileged_bpf_disabled", "2\n");
        t.write("proc/sys/dev/tty/ldisc_autoload", "1\n");
        t.write("proc/sys/kernel/modprobe", "/sbin/modprobe\n");
        t.write("proc/sys/kernel/yama/ptrace_scope", "1\n");
        let r = read_sysctls(t.path());
        assert_eq!(r.len(), ATTACK_SURFACE_SYSCTLS.len());
        let get = |n: &str| find(&r, n).unwrap();
        let bpf = get("kernel.unprivileged_bpf_disabled");
        assert_eq!(bpf.status, SysctlStatus::Hardened);
        assert_eq!(bpf.value.as_deref(), Some("2"));
        assert_eq!(bpf.source, SysctlSource::Live);
        let ldisc = get("dev.tty.ldisc_autoload");
        assert_eq!(ldisc.status, SysctlStatus::NotHardened);
        assert_eq!(ldisc.int(), Some(1));
        assert_eq!(get("kernel.modprobe").status, SysctlStatus::NotHardened);
        assert_eq!(
            get("kernel.yama.ptrace_scope").status,
            SysctlStatus::Hardened
        );
        let io = get("kernel.io_uring_disabled");
        assert_eq!(io.status, SysctlStatus::Absent);
        assert_eq!(io.value, None);
    }

    #[test]
    fn unreadable_when_not_a_file() {
        let t = TempDir::new("sysctl");
        // A directory where a file is expected: read fails with an error
        // other than NotFound.
        std::fs::create_dir_all(t.path().join("proc/sys/kernel/dmesg_restrict")).unwrap();
        let r = read_sysctls(t.path());
        let d = find(&r, "kernel.dmesg_restrict").unwrap();
        assert_eq!(d.status, SysctlStatus::Unreadable);
        assert!(d.note.as_deref().unwrap().contains("dmesg_restrict"));
    }

    #[test]
    fn serializes_snake_case() {
        let s = serde_json::to_string(&SysctlStatus::NotHardened).unwrap();
        assert_eq!(s, "\"not_hardened\"");
        let s = serde_json::to_string(&SysctlSource::KernelDefault).unwrap();
        assert_eq!(s, "\"kernel_default\"");
    }
}
