//! Which splice-family paths can be gated on a host, and by what.
//!
//! `splice(2)` between a pipe and anything else, `sendfile(2)`,
//! `copy_file_range(2)` and io_uring's splice reach the `file_permission`
//! LSM hook (kgate's BPF-LSM registry). `tee(2)`, `vmsplice(2)` and
//! pipe-to-pipe `splice(2)` reach no LSM hook at all: seccomp (per
//! workload: `kgate run`, exported profiles) can stop them, and for `tee`
//! and `vmsplice` a BPF `fmod_ret` on the syscall entry, which needs
//! `CONFIG_FUNCTION_ERROR_INJECTION` (kgate attaches one with `[splice]`
//! on). Pipe-to-pipe `splice` cannot be told apart at the syscall entry
//! without reading both fds, which a thread sharing the fd table can swap
//! after the check: no host-wide gate.
//!
//! The table joins the host's facts ([`kgate_kernel::host`]) with kgate's
//! own BPF state ([`AppliedSplice`], read from the pins by [`crate::status`]),
//! so it lives here, next to the enforcer.

use serde::Serialize;

use kgate_kernel::host::{BpfLsm, HostFacts};

use crate::{Hook, SectionMode, Status};

/// How a mechanism stands on this host for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    /// kgate enforces it now.
    Enforced,
    /// kgate reports it now (audit mode), denies nothing.
    Audited,
    /// Usable here, not in force.
    Available,
    /// Not usable on this host (`detail` says why).
    Unavailable,
}

/// One mechanism for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    /// `bpf-lsm`, `seccomp`, `fmod_ret`, `sysctl`.
    pub mechanism: &'static str,
    /// Its state.
    pub status: GateStatus,
    /// One line: what it does here, or why it cannot.
    pub detail: String,
}

/// One splice-family path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplicePath {
    /// What a user calls.
    pub path: &'static str,
    /// The LSM hook the kernel calls on it, if any.
    pub lsm_hook: Option<&'static str>,
    /// The mechanisms that can gate it.
    pub gates: Vec<Gate>,
}

impl SplicePath {
    /// Is some mechanism enforcing (not only auditing) this path now?
    pub fn gated(&self) -> bool {
        self.gates.iter().any(|g| g.status == GateStatus::Enforced)
    }
}

/// kgate's BPF-LSM splice enforcement in force, from `kgate status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppliedSplice {
    /// `file_permission` attached with `[splice]` mode enforce.
    pub enforce: bool,
    /// Attached in audit mode.
    pub audit: bool,
    /// The io_uring splice marks (fentry/fexit on io_splice) attached.
    pub io_uring: bool,
    /// The `tee(2)` syscall gate (fmod_ret) attached on every entry.
    pub tee: bool,
    /// The `vmsplice(2)` syscall gate (fmod_ret) attached on every entry.
    pub vmsplice: bool,
}

impl AppliedSplice {
    /// The splice enforcement `status` shows. `kallsyms` is the text of
    /// `/proc/kallsyms` ([`kgate_kernel::inventory::kallsyms`]): a syscall
    /// gate covers its call when the 64-bit entry is gated and the 32-bit
    /// one is too, or the kernel has none (no `IA32_EMULATION`).
    pub fn of(status: &Status, kallsyms: &str) -> AppliedSplice {
        let attached = |hook| status.hooks.iter().any(|h| h.hook == hook && h.attached);
        let file = attached(Hook::SpliceFile);
        let has_symbol = |name: &str| kallsyms.lines().any(|l| l.ends_with(&format!(" {name}")));
        let gate =
            |x64, ia32: Hook| attached(x64) && (attached(ia32) || !has_symbol(ia32.lsm_name()));
        AppliedSplice {
            enforce: file && status.splice_mode == SectionMode::Enforce,
            audit: file && status.splice_mode == SectionMode::Audit,
            io_uring: attached(Hook::UringSpliceEnter) && attached(Hook::UringSpliceExit),
            tee: gate(Hook::TeeSyscall, Hook::TeeSyscall32),
            vmsplice: gate(Hook::VmspliceSyscall, Hook::VmspliceSyscall32),
        }
    }
}

/// The paths and their gates. `applied` is kgate's live state (`None`:
/// nothing applied, or an offline kernel).
pub fn paths(h: &HostFacts, applied: Option<AppliedSplice>) -> Vec<SplicePath> {
    let a = applied.unwrap_or_default();
    let bpf = |uring: bool| -> Gate {
        let attached = if uring { a.io_uring } else { true };
        let (status, detail) = if (a.enforce || a.audit) && attached {
            (
                if a.enforce {
                    GateStatus::Enforced
                } else {
                    GateStatus::Audited
                },
                "kgate's [splice] registry at file_permission".to_string(),
            )
        } else if (a.enforce || a.audit) && uring {
            (
                GateStatus::Unavailable,
                "fentry/io_splice did not attach (no BTF trampolines or no io_uring): io_uring splice is not checked"
                    .to_string(),
            )
        } else if h.bpf_lsm == BpfLsm::Active {
            (
                GateStatus::Available,
                "`kgate apply` with a [splice] section".to_string(),
            )
        } else {
            (GateStatus::Unavailable, h.bpf_lsm.explain())
        };
        Gate {
            mechanism: "bpf-lsm",
            status,
            detail,
        }
    };
    let seccomp = |what: &str| -> Gate {
        if h.seccomp.available {
            Gate {
                mechanism: "seccomp",
                status: GateStatus::Available,
                detail: format!("per workload (`kgate run`, exported profiles): {what}"),
            }
        } else {
            Gate {
                mechanism: "seccomp",
                status: GateStatus::Unavailable,
                detail: h.seccomp.evidence.clone(),
            }
        }
    };
    let fmod_ret = |call: &str, attached: bool| -> Gate {
        if attached && (a.enforce || a.audit) {
            return Gate {
                mechanism: "fmod_ret",
                status: if a.enforce {
                    GateStatus::Enforced
                } else {
                    GateStatus::Audited
                },
                detail: format!(
                    "kgate's fmod_ret on the {call}(2) entry, judged by the [splice] registry"
                ),
            };
        }
        match h.error_injection {
            Some(true) if a.enforce || a.audit => Gate {
                mechanism: "fmod_ret",
                status: GateStatus::Unavailable,
                detail: format!("CONFIG_FUNCTION_ERROR_INJECTION=y, but kgate's fmod_ret on {call}(2) did not attach (no BTF trampolines?)"),
            },
            Some(true) => Gate {
                mechanism: "fmod_ret",
                status: GateStatus::Available,
                detail: format!("CONFIG_FUNCTION_ERROR_INJECTION=y: `kgate apply` with a [splice] section gates {call}(2) host-wide"),
            },
            Some(false) => Gate {
                mechanism: "fmod_ret",
                status: GateStatus::Unavailable,
                detail: "CONFIG_FUNCTION_ERROR_INJECTION is off (as on Debian kernels): no host-wide gate".into(),
            },
            None => Gate {
                mechanism: "fmod_ret",
                status: GateStatus::Unavailable,
                detail: "unknown: no kernel config to tell whether CONFIG_FUNCTION_ERROR_INJECTION is set".into(),
            },
        }
    };
    let io_uring_sysctl = || -> Gate {
        let v = h
            .sysctls
            .iter()
            .find(|s| s.name == "kernel.io_uring_disabled")
            .and_then(|s| s.value.clone());
        match v.as_deref() {
            Some("2") => Gate {
                mechanism: "sysctl",
                status: GateStatus::Enforced,
                detail: "kernel.io_uring_disabled = 2: io_uring is off for everyone".into(),
            },
            Some("1") => Gate {
                mechanism: "sysctl",
                status: GateStatus::Enforced,
                detail: "kernel.io_uring_disabled = 1: off for unprivileged users outside kernel.io_uring_group".into(),
            },
            Some(v) => Gate {
                mechanism: "sysctl",
                status: GateStatus::Available,
                detail: format!("kernel.io_uring_disabled = {v}: set 2 (or 1) to turn io_uring off"),
            },
            None => Gate {
                mechanism: "sysctl",
                status: GateStatus::Unavailable,
                detail: "kernel.io_uring_disabled is absent (kernel before 6.6)".into(),
            },
        }
    };
    vec![
        SplicePath {
            path: "splice(2) pipe <-> file/socket/device",
            lsm_hook: Some("file_permission"),
            gates: vec![bpf(false), seccomp("the whole syscall")],
        },
        SplicePath {
            path: "sendfile(2)",
            lsm_hook: Some("file_permission"),
            gates: vec![bpf(false), seccomp("the whole syscall")],
        },
        SplicePath {
            path: "copy_file_range(2)",
            lsm_hook: Some("file_permission"),
            gates: vec![bpf(false), seccomp("the whole syscall")],
        },
        SplicePath {
            path: "io_uring IORING_OP_SPLICE",
            lsm_hook: Some("file_permission"),
            gates: vec![bpf(true), io_uring_sysctl(), seccomp("io_uring_setup(2)")],
        },
        SplicePath {
            path: "tee(2)",
            lsm_hook: None,
            gates: vec![seccomp("tee(2)"), fmod_ret("tee", a.tee)],
        },
        SplicePath {
            path: "vmsplice(2)",
            lsm_hook: None,
            gates: vec![seccomp("vmsplice(2)"), fmod_ret("vmsplice", a.vmsplice)],
        },
        SplicePath {
            path: "splice(2) pipe -> pipe, io_uring IORING_OP_TEE",
            lsm_hook: None,
            gates: vec![seccomp("splice(2), io_uring_setup(2)"), io_uring_sysctl()],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Counters, HookStatus, RootMode, UsernsMode};

    fn status(mode: SectionMode, attached: &[Hook]) -> Status {
        Status {
            pin_dir: "/sys/fs/bpf/kgate".into(),
            hooks: attached
                .iter()
                .map(|&hook| HookStatus {
                    hook,
                    attached: true,
                    counters: Counters::default(),
                    runs: None,
                })
                .collect(),
            hash: String::new(),
            generation: 1,
            modules_mode: SectionMode::Off,
            root_mode: RootMode::Allow,
            sockets_mode: SectionMode::Off,
            userns_mode: UsernsMode::Allow,
            splice_mode: mode,
            dropped_events: 0,
        }
    }

    #[test]
    fn applied_splice_follows_the_attached_hooks() {
        let s = status(
            SectionMode::Enforce,
            &[
                Hook::SpliceFile,
                Hook::UringSpliceEnter,
                Hook::TeeSyscall,
                Hook::VmspliceSyscall,
                Hook::VmspliceSyscall32,
            ],
        );
        // The kernel has a 32-bit tee entry that is not gated.
        let kallsyms =
            "ffffffff81000000 T __ia32_sys_tee\nffffffff81000010 T __ia32_sys_vmsplice\n";
        let a = AppliedSplice::of(&s, kallsyms);
        assert_eq!(
            a,
            AppliedSplice {
                enforce: true,
                audit: false,
                io_uring: false,
                tee: false,
                vmsplice: true,
            }
        );
        // Without IA32_EMULATION the 64-bit entry is enough.
        assert!(AppliedSplice::of(&s, "").tee);
        let audit = AppliedSplice::of(&status(SectionMode::Audit, &[Hook::SpliceFile]), "");
        assert!(audit.audit && !audit.enforce);
        let off = AppliedSplice::of(&status(SectionMode::Enforce, &[]), "");
        assert_eq!(off, AppliedSplice::default());
    }

    #[test]
    fn paths_show_kgate_enforcement() {
        let host = kgate_kernel::host::offline_facts("6.12.0", None);
        let none = paths(&host, None);
        assert!(none.iter().all(|p| !p.gated()), "{none:?}");
        let applied = AppliedSplice {
            enforce: true,
            ..AppliedSplice::default()
        };
        let some = paths(&host, Some(applied));
        let sendfile = some.iter().find(|p| p.path == "sendfile(2)").unwrap();
        assert!(sendfile.gated());
        let uring = some
            .iter()
            .find(|p| p.path == "io_uring IORING_OP_SPLICE")
            .unwrap();
        assert_eq!(uring.gates[0].status, GateStatus::Unavailable);
    }
}
