//! The hooks kgate attaches to, and what their events report: the
//! verdict and the deciding rule.

use serde::Serialize;

use crate::policy::{BpfPolicy, SectionMode, UsernsMode};

/// A hook kgate attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    /// `lsm/kernel_module_request`: module autoload.
    ModuleRequest,
    /// `lsm/socket_create`: `socket(2)`.
    SocketCreate,
    /// `lsm/userns_create`: user namespace creation (6.1+).
    UsernsCreate,
    /// `lsm/kernel_post_read_file` (a module file's bytes):
    /// `finit_module(2)`, an explicit load of a module file.
    ModuleLoadFile,
    /// `lsm/kernel_post_load_data` (a module image): `init_module(2)`, an
    /// explicit load from memory (kmod before 31 for compressed modules).
    ModuleLoadData,
    /// `lsm/file_permission` in splice context: `splice(2)`, `sendfile(2)`,
    /// `copy_file_range(2)`, io_uring's splice.
    SpliceFile,
    /// `fentry/io_splice`: marks io_uring splice work (no decision).
    UringSpliceEnter,
    /// `fexit/io_splice`: clears the mark.
    UringSpliceExit,
    /// `fmod_ret/__x64_sys_vmsplice`: `vmsplice(2)`, which reaches no LSM
    /// hook (needs `CONFIG_FUNCTION_ERROR_INJECTION`).
    VmspliceSyscall,
    /// `fmod_ret/__x64_sys_tee`: `tee(2)` (likewise).
    TeeSyscall,
    /// `fmod_ret/__ia32_sys_vmsplice`: 32-bit `vmsplice(2)`.
    VmspliceSyscall32,
    /// `fmod_ret/__ia32_sys_tee`: 32-bit `tee(2)`.
    TeeSyscall32,
    /// `lsm/capable` inside `setns(2)`: entering another user namespace.
    SetnsEnter,
    /// `lsm/ptrace_access_check` (attach mode): taking over a task in
    /// another user namespace, or an `allow_exe` task.
    PtraceAttach,
    /// `lsm/mmap_file` (`PROT_EXEC`): user-writable code mapped into an
    /// `allow_exe` process (`LD_PRELOAD`).
    MmapExec,
    /// `fentry/cryptomgr_notify`: remembers who looked up a crypto
    /// algorithm the crypto manager will build (no decision).
    CryptoNotify,
    /// `fentry/cryptomgr_probe`: the crypto manager thread acts for that
    /// task (no decision).
    CryptoProbe,
}

impl Hook {
    /// Every hook, in counter order.
    pub const ALL: [Hook; 17] = [
        Hook::ModuleRequest,
        Hook::SocketCreate,
        Hook::UsernsCreate,
        Hook::ModuleLoadFile,
        Hook::ModuleLoadData,
        Hook::SpliceFile,
        Hook::UringSpliceEnter,
        Hook::UringSpliceExit,
        Hook::VmspliceSyscall,
        Hook::TeeSyscall,
        Hook::VmspliceSyscall32,
        Hook::TeeSyscall32,
        Hook::SetnsEnter,
        Hook::PtraceAttach,
        Hook::MmapExec,
        Hook::CryptoNotify,
        Hook::CryptoProbe,
    ];

    /// The program's attach point (`lsm/...`, `fentry/...`,
    /// `fmod_ret/...`).
    pub fn attach_point(self) -> String {
        match self {
            Hook::UringSpliceEnter => "fentry/io_splice".into(),
            Hook::UringSpliceExit => "fexit/io_splice".into(),
            Hook::CryptoNotify => "fentry/cryptomgr_notify".into(),
            Hook::CryptoProbe => "fentry/cryptomgr_probe".into(),
            h if h.is_fmod_ret() => format!("fmod_ret/{}", h.lsm_name()),
            h => format!("lsm/{}", h.lsm_name()),
        }
    }

    /// A hook whose absence weakens enforcement but must not stop it: the
    /// io_uring splice marks and the crypto attribution (fentry needs BTF
    /// trampolines) and the syscall gates (fmod_ret needs error
    /// injection). `status` reports what is missing and what it means.
    pub fn optional(self) -> bool {
        self.is_fentry() || self.is_fmod_ret()
    }

    /// An `fentry`/`fexit` program.
    pub fn is_fentry(self) -> bool {
        matches!(
            self,
            Hook::UringSpliceEnter | Hook::UringSpliceExit | Hook::CryptoNotify | Hook::CryptoProbe
        )
    }

    /// The hooks that only work together (a mark set and cleared): attached
    /// all or none.
    pub fn group(self) -> &'static [Hook] {
        match self {
            Hook::UringSpliceEnter | Hook::UringSpliceExit => {
                &[Hook::UringSpliceEnter, Hook::UringSpliceExit]
            }
            Hook::CryptoNotify | Hook::CryptoProbe => &[Hook::CryptoNotify, Hook::CryptoProbe],
            _ => &[],
        }
    }

    /// An `fmod_ret` program on a syscall entry point.
    pub fn is_fmod_ret(self) -> bool {
        matches!(
            self,
            Hook::VmspliceSyscall | Hook::TeeSyscall | Hook::VmspliceSyscall32 | Hook::TeeSyscall32
        )
    }

    /// Does the hook make decisions (and so have counters)?
    pub fn decides(self) -> bool {
        !self.is_fentry()
    }

    /// Part of the splice registry: attached only when `[splice]` is on.
    pub fn is_splice(self) -> bool {
        self.section() == "splice"
    }

    /// The kernel function the program attaches to: the LSM hook name
    /// (`bpf_lsm_` + it), or the traced function.
    pub fn lsm_name(self) -> &'static str {
        match self {
            Hook::ModuleRequest => "kernel_module_request",
            Hook::SocketCreate => "socket_create",
            Hook::UsernsCreate => "userns_create",
            Hook::ModuleLoadFile => "kernel_post_read_file",
            Hook::ModuleLoadData => "kernel_post_load_data",
            Hook::SpliceFile => "file_permission",
            Hook::UringSpliceEnter | Hook::UringSpliceExit => "io_splice",
            Hook::VmspliceSyscall => "__x64_sys_vmsplice",
            Hook::TeeSyscall => "__x64_sys_tee",
            Hook::VmspliceSyscall32 => "__ia32_sys_vmsplice",
            Hook::TeeSyscall32 => "__ia32_sys_tee",
            Hook::SetnsEnter => "capable",
            Hook::PtraceAttach => "ptrace_access_check",
            Hook::MmapExec => "mmap_file",
            Hook::CryptoNotify => "cryptomgr_notify",
            Hook::CryptoProbe => "cryptomgr_probe",
        }
    }

    pub(crate) fn pin_name(self) -> &'static str {
        match self {
            Hook::ModuleRequest => "modules",
            Hook::SocketCreate => "sockets",
            Hook::UsernsCreate => "userns",
            Hook::ModuleLoadFile => "module_file",
            Hook::ModuleLoadData => "module_data",
            Hook::SpliceFile => "splice",
            Hook::UringSpliceEnter => "uring_splice_enter",
            Hook::UringSpliceExit => "uring_splice_exit",
            Hook::VmspliceSyscall => "vmsplice",
            Hook::TeeSyscall => "tee",
            Hook::VmspliceSyscall32 => "vmsplice32",
            Hook::TeeSyscall32 => "tee32",
            Hook::SetnsEnter => "setns",
            Hook::PtraceAttach => "ptrace",
            Hook::MmapExec => "mmap_exec",
            Hook::CryptoNotify => "crypto_notify",
            Hook::CryptoProbe => "crypto_probe",
        }
    }

    /// The hook's number: its counters' section and `KG_HOOK_*`.
    pub fn index(self) -> u32 {
        Hook::ALL.iter().position(|h| *h == self).unwrap_or(0) as u32
    }

    /// The policy section the hook enforces: `modules`, `sockets`,
    /// `userns` or `splice`.
    pub fn section(self) -> &'static str {
        match self {
            Hook::ModuleRequest
            | Hook::ModuleLoadFile
            | Hook::ModuleLoadData
            | Hook::CryptoNotify
            | Hook::CryptoProbe => "modules",
            Hook::SocketCreate => "sockets",
            Hook::UsernsCreate | Hook::SetnsEnter | Hook::PtraceAttach | Hook::MmapExec => "userns",
            _ => "splice",
        }
    }

    /// Does `policy` turn on the section this hook enforces?
    pub fn section_enabled(self, policy: &BpfPolicy) -> bool {
        match self.section() {
            "modules" => policy.modules.mode != SectionMode::Off,
            "sockets" => policy.sockets.mode != SectionMode::Off,
            "userns" => policy.userns.mode != UsernsMode::Allow,
            _ => policy.splice.mode != SectionMode::Off,
        }
    }

    pub(crate) fn from_raw(v: u32) -> Option<Hook> {
        Hook::ALL.get(v as usize).copied()
    }
}

/// What a hook decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Allowed by a rule.
    Allow,
    /// Denied.
    Deny,
    /// Allowed, but enforce mode would have denied it.
    Audit,
    /// Not checked: real root (under `allow`), or the section is off.
    Pass,
}

impl Verdict {
    pub(crate) const ALL: [Verdict; 4] =
        [Verdict::Allow, Verdict::Deny, Verdict::Audit, Verdict::Pass];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Audit => "audit",
            Verdict::Pass => "pass",
        }
    }
}

/// Which rule decided an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The request string is in the module allowlist.
    ModuleListed,
    /// The request string is not in the module allowlist (`modules.allow`).
    ModuleNotListed,
    /// A request by real root, judged by `modules.root`.
    ModuleRoot,
    /// The socket matches `sockets.allow`.
    SocketListed,
    /// No `sockets.allow` rule names the family.
    SocketFamilyNotListed,
    /// The family is listed, not this type/protocol.
    SocketProtocolNotListed,
    /// The executable is in `userns.allow_exe`.
    UsernsAllowExe,
    /// `userns.unprivileged`.
    UsernsUnprivileged,
    /// An explicit load whose module name could not be read from the image
    /// (treated as not listed).
    ModuleUnnamed,
    /// Both splice endpoints (and the pair) are allowed.
    SpliceListed,
    /// The source endpoint is not in `splice.allow`.
    SpliceSourceNotListed,
    /// The destination endpoint is not in `splice.allow`.
    SpliceDestinationNotListed,
    /// Both endpoints are allowed, the combination is not in `splice.pairs`.
    SplicePairNotListed,
    /// `tee(2)` or `vmsplice(2)`: not every pipe/memory combination the
    /// call can make is allowed by `splice.allow` and `splice.pairs`.
    SpliceCallNotAllowed,
    /// `setns(2)` into a user namespace, not from an `allow_exe` executable.
    UsernsEnter,
    /// Taking over (ptrace attach, `/proc/PID/mem`, `process_vm_writev`) a
    /// task in another user namespace or an `allow_exe` task.
    UsernsPtrace,
    /// User-writable code mapped executable into an `allow_exe` process.
    UsernsInject,
    /// `sendfile(2)` from a shared descriptor table to a non-pipe: another
    /// thread could make the destination a pipe after the check, and
    /// source -> pipe is not allowed.
    SpliceSharedFdTable,
    /// Unknown rule number (a newer BPF object).
    Other(u32),
}

impl Rule {
    pub(crate) fn from_raw(v: u32) -> Rule {
        match v {
            1 => Rule::ModuleListed,
            2 => Rule::ModuleNotListed,
            3 => Rule::ModuleRoot,
            4 => Rule::SocketListed,
            5 => Rule::SocketFamilyNotListed,
            6 => Rule::SocketProtocolNotListed,
            7 => Rule::UsernsAllowExe,
            8 => Rule::UsernsUnprivileged,
            9 => Rule::ModuleUnnamed,
            10 => Rule::SpliceListed,
            11 => Rule::SpliceSourceNotListed,
            12 => Rule::SpliceDestinationNotListed,
            13 => Rule::SplicePairNotListed,
            14 => Rule::SpliceCallNotAllowed,
            15 => Rule::UsernsEnter,
            16 => Rule::UsernsPtrace,
            17 => Rule::UsernsInject,
            18 => Rule::SpliceSharedFdTable,
            n => Rule::Other(n),
        }
    }

    /// The policy key behind the rule, for people.
    pub fn describe(self) -> String {
        match self {
            Rule::ModuleListed => "modules.allow".into(),
            Rule::ModuleNotListed => "not in modules.allow".into(),
            Rule::ModuleRoot => "modules.root".into(),
            Rule::SocketListed => "sockets.allow".into(),
            Rule::SocketFamilyNotListed => "family not in sockets.allow".into(),
            Rule::SocketProtocolNotListed => "protocol not in sockets.allow".into(),
            Rule::UsernsAllowExe => "userns.allow_exe".into(),
            Rule::UsernsUnprivileged => "userns.unprivileged".into(),
            Rule::ModuleUnnamed => "unreadable module name, not in modules.allow".into(),
            Rule::SpliceListed => "splice.allow".into(),
            Rule::SpliceSourceNotListed => "source not in splice.allow".into(),
            Rule::SpliceDestinationNotListed => "destination not in splice.allow".into(),
            Rule::SplicePairNotListed => "pair not in splice.pairs".into(),
            Rule::SpliceCallNotAllowed => {
                "tee needs pipe -> pipe, vmsplice memory -> pipe and pipe -> memory, in splice.allow/pairs".into()
            }
            Rule::UsernsEnter => "userns.unprivileged (entering a user namespace)".into(),
            Rule::UsernsPtrace => {
                "userns.unprivileged (attaching to a namespaced or allow_exe task)".into()
            }
            Rule::UsernsInject => {
                "userns.allow_exe (user-writable code in an allow_exe process)".into()
            }
            Rule::SpliceSharedFdTable => {
                "source -> pipe not allowed, and the fd table is shared (the destination could become a pipe)".into()
            }
            Rule::Other(n) => format!("rule {n}"),
        }
    }
}

/// The program for each hook.
macro_rules! hook_prog {
    ([$($borrow:tt)*] $progs:expr, $h:expr) => {
        match $h {
            Hook::ModuleRequest => $($borrow)* $progs.kg_module_request,
            Hook::SocketCreate => $($borrow)* $progs.kg_socket_create,
            Hook::UsernsCreate => $($borrow)* $progs.kg_userns_create,
            Hook::ModuleLoadFile => $($borrow)* $progs.kg_module_file,
            Hook::ModuleLoadData => $($borrow)* $progs.kg_module_data,
            Hook::SpliceFile => $($borrow)* $progs.kg_splice_file,
            Hook::UringSpliceEnter => $($borrow)* $progs.kg_uring_splice_enter,
            Hook::UringSpliceExit => $($borrow)* $progs.kg_uring_splice_exit,
            Hook::VmspliceSyscall => $($borrow)* $progs.kg_vmsplice,
            Hook::TeeSyscall => $($borrow)* $progs.kg_tee,
            Hook::VmspliceSyscall32 => $($borrow)* $progs.kg_vmsplice32,
            Hook::TeeSyscall32 => $($borrow)* $progs.kg_tee32,
            Hook::SetnsEnter => $($borrow)* $progs.kg_setns,
            Hook::PtraceAttach => $($borrow)* $progs.kg_ptrace,
            Hook::MmapExec => $($borrow)* $progs.kg_mmap_exec,
            Hook::CryptoNotify => $($borrow)* $progs.kg_crypto_notify,
            Hook::CryptoProbe => $($borrow)* $progs.kg_crypto_probe,
        }
    };
}
pub(crate) use hook_prog;
