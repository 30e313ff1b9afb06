//! Loading, attaching, pinning, the policy swap, status, events, revert.

use std::cell::Cell;
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, RingBufferBuilder};
use serde::Serialize;

use crate::abi::{self, Config};
use crate::policy::{BpfPolicy, RootMode, SectionMode, UsernsMode};
use crate::skel::KgateSkelBuilder;
use crate::BpfError;

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

    fn pin_name(self) -> &'static str {
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

    fn from_raw(v: u32) -> Option<Hook> {
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
    const ALL: [Verdict; 4] = [Verdict::Allow, Verdict::Deny, Verdict::Audit, Verdict::Pass];

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
    fn from_raw(v: u32) -> Rule {
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

/// What was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Request {
    /// A module autoload request string (kmod-normalized: `net_pf_40`).
    Module {
        /// The request.
        alias: String,
    },
    /// `socket(family, type, protocol)`.
    Socket {
        /// `AF_*`.
        family: u32,
        /// `SOCK_*` (low 4 bits).
        sock_type: u32,
        /// Protocol as passed.
        protocol: u32,
    },
    /// A user namespace.
    Userns,
    /// An explicit module load (`finit_module`/`init_module`).
    ModuleLoad {
        /// The module name (kmod-normalized), empty when unreadable.
        module: String,
    },
    /// A splice-family transfer.
    Splice {
        /// `splice`, `sendfile`, `copy_file_range`, `io_uring`, `vmsplice`
        /// or `tee`.
        call: String,
        /// Source endpoint, in the policy grammar (`file:tmpfs`, `pipe`,
        /// `socket:inet/tcp`, `chardev:1:9`, `memory`, `other`).
        source: String,
        /// Destination endpoint.
        destination: String,
    },
}

/// A concrete endpoint key as policy text: names where the policy has
/// them, numbers otherwise.
pub fn endpoint_text(k: [u32; 4]) -> String {
    let [kind, a, b, c] = k;
    match kind {
        1 => "pipe".into(),
        2 => match kgate_policy::splice::FILESYSTEMS
            .iter()
            .find(|(_, m)| *m == a)
        {
            Some((name, _)) => format!("file:{name}"),
            None => format!("file:0x{a:x}"),
        },
        3 => {
            let fam = kgate_policy::family_name(a)
                .map(str::to_owned)
                .unwrap_or_else(|| a.to_string());
            let proto = match (a, c) {
                (2 | 10, 6) => "tcp".to_owned(),
                (2 | 10, 17) => "udp".to_owned(),
                (1, _) | (_, 0) => return format!("socket:{fam}"),
                _ => c.to_string(),
            };
            let _ = b;
            format!("socket:{fam}/{proto}")
        }
        4 => match kgate_policy::splice::CHARDEVS
            .iter()
            .find(|(_, x, y)| *x == a && *y == b)
        {
            Some((name, _, _)) => format!("chardev:{name}"),
            None => format!("chardev:{a}:{b}"),
        },
        6 => "memory".into(),
        _ => "other".into(),
    }
}

/// One event from the ring buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`).
    pub time_ns: u64,
    /// Wall-clock estimate: nanoseconds since the Unix epoch.
    pub unix_time_ns: u64,
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// Global uid.
    pub uid: u32,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// Task name.
    pub comm: String,
    /// File name of the executable (best effort, no directory).
    pub exe: String,
    /// The hook.
    pub hook: Hook,
    /// What was requested.
    pub request: Request,
    /// The deciding rule.
    pub rule: Rule,
    /// The verdict.
    pub verdict: Verdict,
}

impl Event {
    fn decode(b: &[u8], clock_offset: i128) -> Option<Event> {
        if b.len() < abi::EVENT_SIZE {
            return None;
        }
        let hook = Hook::from_raw(abi::u32_at(b, 28))?;
        let verdict = *Verdict::ALL.get(abi::u32_at(b, 32) as usize)?;
        let time_ns = abi::u64_at(b, 0);
        let request = match hook {
            Hook::ModuleRequest => Request::Module {
                alias: abi::cstr(&b[72..136]),
            },
            Hook::SocketCreate => Request::Socket {
                family: abi::u32_at(b, 40),
                sock_type: abi::u32_at(b, 44),
                protocol: abi::u32_at(b, 48),
            },
            Hook::UsernsCreate | Hook::SetnsEnter | Hook::PtraceAttach | Hook::MmapExec => {
                Request::Userns
            }
            Hook::CryptoNotify | Hook::CryptoProbe => return None,
            Hook::ModuleLoadFile | Hook::ModuleLoadData => Request::ModuleLoad {
                module: abi::cstr(&b[72..136]),
            },
            Hook::SpliceFile
            | Hook::UringSpliceEnter
            | Hook::UringSpliceExit
            | Hook::VmspliceSyscall
            | Hook::TeeSyscall
            | Hook::VmspliceSyscall32
            | Hook::TeeSyscall32 => {
                let r = &b[72..72 + abi::SPLICE_REQUEST_SIZE];
                let ep = |off: usize| {
                    [
                        abi::u32_at(r, off),
                        abi::u32_at(r, off + 4),
                        abi::u32_at(r, off + 8),
                        abi::u32_at(r, off + 12),
                    ]
                };
                Request::Splice {
                    call: match abi::u32_at(r, 0) {
                        1 => "splice",
                        2 => "sendfile",
                        3 => "copy_file_range",
                        4 => "io_uring",
                        5 => "vmsplice",
                        6 => "tee",
                        _ => "unknown",
                    }
                    .into(),
                    source: endpoint_text(ep(4)),
                    destination: endpoint_text(ep(20)),
                }
            }
        };
        Some(Event {
            time_ns,
            unix_time_ns: (time_ns as i128 + clock_offset).max(0) as u64,
            cgroup_id: abi::u64_at(b, 8),
            pid: abi::u32_at(b, 16),
            tgid: abi::u32_at(b, 20),
            uid: abi::u32_at(b, 24),
            comm: abi::cstr(&b[56..72]),
            exe: abi::cstr(&b[136..200]),
            hook,
            request,
            rule: Rule::from_raw(abi::u32_at(b, 36)),
            verdict,
        })
    }
}

/// BPF-LSM works here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Support {
    /// `uname -r`.
    pub release: String,
    /// Hooks a program can attach to here (`userns_create` needs 6.1+).
    pub hooks: Vec<Hook>,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// `true`: programs were loaded, attached and pinned now. `false`: they
    /// were already pinned and only the policy was swapped.
    pub attached_now: bool,
    /// The attached hooks.
    pub hooks: Vec<Hook>,
    /// The new policy generation (1 on first apply).
    pub generation: u64,
    /// The policy hash now enforced.
    pub hash: String,
    /// Module request strings in the map.
    pub module_requests: usize,
    /// Socket patterns in the map.
    pub socket_patterns: usize,
    /// `allow_exe` executables in the map.
    pub userns_exe: usize,
    /// `allow_exe` paths that could not be stat()ed, with the error: they
    /// match nothing.
    pub skipped_exe: Vec<(PathBuf, String)>,
    /// The self-test of each attached hook of an enabled section
    /// ([`crate::selftest`]).
    pub selftest: Vec<crate::selftest::HookCheck>,
}

/// One hook in [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookStatus {
    /// The hook.
    pub hook: Hook,
    /// Its link is pinned and opens (the program is attached).
    pub attached: bool,
    /// Decisions per verdict since the programs were loaded.
    pub counters: Counters,
    /// The kernel's run statistics of the hook's program; `None` when the
    /// program cannot be queried. They count only while the sysctl
    /// `kernel.bpf_stats_enabled` is 1 (which itself costs two clock
    /// reads per run).
    pub runs: Option<RunStats>,
}

/// The kernel's run statistics of one program (`bpf_prog_info`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunStats {
    /// Runs counted.
    pub count: u64,
    /// Time spent in the program over those runs, in ns.
    pub time_ns: u64,
}

impl RunStats {
    /// Mean ns per run, `None` before any counted run.
    pub fn mean_ns(&self) -> Option<f64> {
        (self.count > 0).then(|| self.time_ns as f64 / self.count as f64)
    }
}

/// Decision counts of one hook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Allowed by a rule.
    pub allow: u64,
    /// Denied.
    pub deny: u64,
    /// Allowed, enforce would deny.
    pub audit: u64,
    /// Not checked (root under `allow`).
    pub pass: u64,
}

/// What [`status`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The pin directory.
    pub pin_dir: PathBuf,
    /// Each hook with a pin.
    pub hooks: Vec<HookStatus>,
    /// The enforced policy's hash.
    pub hash: String,
    /// Policy generation (increments on every apply).
    pub generation: u64,
    /// `[modules]` mode.
    pub modules_mode: SectionMode,
    /// `modules.root`.
    pub root_mode: RootMode,
    /// `[sockets]` mode.
    pub sockets_mode: SectionMode,
    /// `userns.unprivileged`.
    pub userns_mode: UsernsMode,
    /// `[splice]` mode.
    pub splice_mode: SectionMode,
    /// Events lost because the ring buffer was full.
    pub dropped_events: u64,
}

/// What [`events`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventsSummary {
    /// Events passed to the sink.
    pub delivered: u64,
    /// Events lost since load because the ring buffer was full.
    pub dropped_total: u64,
    /// How much `dropped_total` grew while this call was reading.
    pub dropped_while_reading: u64,
}

/// Pinned maps; the first [`POLICY_MAPS`] hold the policy.
/// Every map of the object, in pin order, given to `$f!` as a list of
/// identifiers: the one definition of what is pinned.
macro_rules! with_maps {
    ($f:ident!($($args:tt)*)) => {
        $f!($($args)*; kg_active, kg_config, kg_module_allow, kg_socket_allow,
            kg_socket_family, kg_userns_exe, kg_splice_ep, kg_splice_pair,
            kg_uring_splice, kg_uring_unmarked, kg_events, kg_drops, kg_counters,
            kg_selftest, kg_selftest_hits, kg_crypto_larval, kg_task_attr)
    };
}

macro_rules! map_names {
    (; $($m:ident),*) => { [$(stringify!($m)),*] };
}

macro_rules! map_refs {
    ($maps:expr, $ty:ty; $($m:ident),*) => {
        [$((stringify!($m), &mut $maps.$m as &mut $ty)),*]
    };
}

const MAPS: [&str; 17] = with_maps!(map_names!());

fn link_pin(dir: &Path, h: Hook) -> PathBuf {
    dir.join(format!("link_{}", h.pin_name()))
}

fn prog_pin(dir: &Path, h: Hook) -> PathBuf {
    dir.join(format!("prog_{}", h.pin_name()))
}

fn map_pin(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("map_{name}"))
}

fn bpf_err(
    what: impl Into<String>,
    hint: Option<&'static str>,
) -> impl FnOnce(libbpf_rs::Error) -> BpfError {
    let what = what.into();
    move |source| BpfError::Bpf { what, source, hint }
}

const ROOT_HINT: &str = "kgate must run as root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)";

/// The hooks this kernel has: `userns_create` needs 6.1, the others are
/// older than any kernel kgate supports. Read from the `bpf_lsm_*`
/// attachment points in /proc/kallsyms; when that is unreadable, assume all
/// and let the load say otherwise.
///
/// The `fmod_ret` syscall gates also need the function on the kernel's
/// error-injection list (`CONFIG_FUNCTION_ERROR_INJECTION`): read from
/// debugfs when it is mounted, else told by kallsyms (the list's lookup
/// function exists only with that option), else by the kernel config;
/// when nothing tells, they are tried (and dropped if the load fails).
fn available_hooks() -> Vec<Hook> {
    let kallsyms = std::fs::read("/proc/kallsyms").ok();
    let injectable = error_injection_list();
    let has_sym = |name: &str| {
        kallsyms.as_ref().map(|k| {
            let sym = format!(" {name}\n");
            k.windows(sym.len()).any(|w| w == sym.as_bytes())
        })
    };
    let fei = has_sym("within_error_injection_list").or_else(|| {
        kgate_kernel::config::KernelConfig::load_live(Path::new("/"), &release())
            .ok()
            .flatten()
            .map(|(c, _)| c.is_builtin("FUNCTION_ERROR_INJECTION"))
    });
    let hooks = Hook::ALL
        .into_iter()
        .filter(|h| {
            if h.is_fmod_ret() {
                let ok = match &injectable {
                    Some(list) => list.iter().any(|f| f == h.lsm_name()),
                    None => fei.unwrap_or(true),
                };
                if !ok {
                    return false;
                }
            }
            let Some(k) = &kallsyms else { return true };
            let sym = if h.optional() {
                format!(" {}\n", h.lsm_name())
            } else {
                format!(" bpf_lsm_{}\n", h.lsm_name())
            };
            k.windows(sym.len()).any(|w| w == sym.as_bytes())
        })
        .collect::<Vec<_>>();
    complete_groups(hooks)
}

/// Drop the hooks whose [`Hook::group`] is not all there.
fn complete_groups(hooks: Vec<Hook>) -> Vec<Hook> {
    hooks
        .iter()
        .copied()
        .filter(|h| h.group().iter().all(|g| hooks.contains(g)))
        .collect()
}

/// The functions on the kernel's error-injection list (debugfs), `None`
/// when it cannot be read.
fn error_injection_list() -> Option<Vec<String>> {
    let text = std::fs::read_to_string("/sys/kernel/debug/error_injection/list").ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect(),
    )
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

fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Can kgate load and attach its LSM programs here?
///
/// Checks, in order: the host's BPF-LSM state (kernel BTF, `bpf` in the
/// LSM list, `CONFIG_BPF_LSM`, from `kgate_kernel::host`), then a trial:
/// loads the programs (the verifier runs) and attaches the
/// `kernel_module_request` one for an instant. The trial object has its own
/// maps with every section off, so it changes no decision, and it does not
/// touch an enforcement already pinned.
///
/// Errors: [`BpfError::NotSupported`] with the reason and the fix (add
/// `bpf` to `lsm=`, a kernel with BTF, run as root, ...).
pub fn probe() -> Result<Support, BpfError> {
    let facts = kgate_kernel::host::read_host(Path::new("/"));
    let diagnosis = &facts.bpf_lsm;
    match diagnosis {
        kgate_kernel::host::BpfLsm::Active | kgate_kernel::host::BpfLsm::Unknown { .. } => {}
        other => {
            return Err(BpfError::NotSupported {
                reason: other.explain(),
            })
        }
    }
    let not_supported = |stage: &str, e: libbpf_rs::Error| {
        let mut reason = format!("the kernel refused to {stage} an LSM program ({e})");
        if !nix_is_root() {
            reason.push_str(&format!("; {ROOT_HINT}"));
        } else if e.kind() == libbpf_rs::ErrorKind::PermissionDenied {
            reason.push_str("; EPERM as root: BPF-LSM is not active or kernel lockdown forbids it");
        }
        if !diagnosis.is_active() {
            reason.push_str(&format!("; {}", diagnosis.explain()));
        }
        BpfError::NotSupported { reason }
    };
    let hooks = available_hooks();
    let mut storage = MaybeUninit::uninit();
    let mut open = KgateSkelBuilder::default()
        .open(&mut storage)
        .map_err(|e| not_supported("open", e))?;
    // The trial is about the LSM programs: the optional ones (fentry,
    // fmod_ret) are left out, `apply` attaches them where they load.
    for h in Hook::ALL {
        if !hooks.contains(&h) || h.optional() {
            hook_prog!([&mut] open.progs, h).set_autoload(false);
        }
    }
    let skel = open.load().map_err(|e| not_supported("load", e))?;
    let link = skel
        .progs
        .kg_module_request
        .attach_lsm()
        .map_err(|e| not_supported("attach", e))?;
    drop(link);
    Ok(Support {
        release: release(),
        hooks,
    })
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// An `allow_exe` file as the kernel identifies it: device (kernel
/// encoding), inode, change time.
pub type ExeKey = (u32, u64, i64, u32);

/// The key of the file at `p` now (following symlinks, as `exec` does).
pub fn exe_key_of(p: &Path) -> std::io::Result<ExeKey> {
    let m = std::fs::metadata(p)?;
    Ok((
        abi::kernel_dev(m.dev()),
        m.ino(),
        m.ctime(),
        m.ctime_nsec() as u32,
    ))
}

/// The policy's userns executables, resolved before anything is touched.
struct Prepared<'a> {
    policy: &'a BpfPolicy,
    exes: Vec<ExeKey>,
    skipped: Vec<(PathBuf, String)>,
}

fn prepare(policy: &BpfPolicy) -> Result<Prepared<'_>, BpfError> {
    policy.validate()?;
    let mut exes = Vec::new();
    let mut skipped = Vec::new();
    for p in &policy.userns.allow_exe {
        match exe_key_of(p) {
            Ok(k) => exes.push(k),
            Err(e) => skipped.push((p.clone(), e.to_string())),
        }
    }
    Ok(Prepared {
        policy,
        exes,
        skipped,
    })
}

/// The policy maps, from a fresh skeleton or from pins.
const POLICY_MAPS: usize = 8;

struct PolicyMaps<'a> {
    active: &'a dyn MapCore,
    config: &'a dyn MapCore,
    module_allow: &'a dyn MapCore,
    socket_allow: &'a dyn MapCore,
    socket_family: &'a dyn MapCore,
    userns_exe: &'a dyn MapCore,
    splice_ep: &'a dyn MapCore,
    splice_pair: &'a dyn MapCore,
}

fn read_active(active: &dyn MapCore, config: &dyn MapCore) -> Result<(u32, Config), BpfError> {
    let zero = 0u32.to_ne_bytes();
    let gen = active
        .lookup(&zero, MapFlags::ANY)
        .map_err(bpf_err("reading kg_active", None))?
        .map(|v| abi::u32_at(&v, 0) & 1)
        .unwrap_or(0);
    let cfg = config
        .lookup(&gen.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf_err("reading kg_config", None))?
        .and_then(|v| Config::decode(&v))
        .unwrap_or_default();
    Ok((gen, cfg))
}

/// Fill the inactive generation, then flip `kg_active`. Until the flip the
/// running policy is untouched; an error before it leaves it in force.
fn write_policy(maps: &PolicyMaps<'_>, p: &Prepared<'_>) -> Result<u64, BpfError> {
    let (cur, cur_cfg) = read_active(maps.active, maps.config)?;
    let next = 1 - cur;
    let one = [1u8];
    // Stale entries of the inactive generation (from the apply before last).
    for (name, map) in [
        ("kg_module_allow", maps.module_allow),
        ("kg_socket_allow", maps.socket_allow),
        ("kg_userns_exe", maps.userns_exe),
        ("kg_splice_ep", maps.splice_ep),
        ("kg_splice_pair", maps.splice_pair),
    ] {
        let stale: Vec<Vec<u8>> = map
            .keys()
            .filter(|k| abi::key_gen(k) == Some(next))
            .collect();
        for k in stale {
            map.delete(&k).map_err(bpf_err(
                format!("clearing the inactive generation of {name}"),
                None,
            ))?;
        }
    }
    let policy = p.policy;
    for r in &policy.modules.allowed_requests {
        maps.module_allow
            .update(&abi::module_key(next, r), &one, MapFlags::ANY)
            .map_err(bpf_err(
                format!("adding module request {r:?} to kg_module_allow"),
                None,
            ))?;
    }
    let mut families = [0u8; abi::FAMILIES as usize];
    for s in &policy.sockets.allow {
        families[s.family as usize] = 1;
        let key = abi::socket_key(
            next,
            s.family,
            s.sock_type.unwrap_or(abi::ANY),
            s.protocol.unwrap_or(abi::ANY),
        );
        maps.socket_allow
            .update(&key, &one, MapFlags::ANY)
            .map_err(bpf_err(
                format!("adding socket rule {s:?} to kg_socket_allow"),
                None,
            ))?;
    }
    for (fam, listed) in families.iter().enumerate() {
        let idx = next * abi::FAMILIES + fam as u32;
        maps.socket_family
            .update(&idx.to_ne_bytes(), &[*listed], MapFlags::ANY)
            .map_err(bpf_err("writing kg_socket_family", None))?;
    }
    for &(dev, ino, sec, nsec) in &p.exes {
        maps.userns_exe
            .update(
                &abi::exe_key(next, dev, ino, sec, nsec),
                &one,
                MapFlags::ANY,
            )
            .map_err(bpf_err(
                "adding an allow_exe executable to kg_userns_exe",
                None,
            ))?;
    }
    for ep in &policy.splice.map_endpoints() {
        maps.splice_ep
            .update(&abi::splice_ep_key(next, *ep), &one, MapFlags::ANY)
            .map_err(bpf_err(
                format!("adding splice endpoint {ep:?} to kg_splice_ep"),
                None,
            ))?;
    }
    for (src, dst) in &policy.splice.pairs {
        maps.splice_pair
            .update(&abi::splice_pair_key(next, *src, *dst), &one, MapFlags::ANY)
            .map_err(bpf_err(
                format!("adding splice pair {src:?} -> {dst:?} to kg_splice_pair"),
                None,
            ))?;
    }
    let generation = cur_cfg.generation + 1;
    let cfg = Config {
        modules_mode: policy.modules.mode.raw(),
        root_mode: policy.modules.root_mode.raw(),
        sockets_mode: policy.sockets.mode.raw(),
        userns_mode: policy.userns.mode.raw(),
        splice_mode: policy.splice.mode.raw(),
        splice_flags: policy.splice.flags(),
        generation,
        hash: policy.hash.clone(),
    };
    maps.config
        .update(&next.to_ne_bytes(), &cfg.encode(), MapFlags::ANY)
        .map_err(bpf_err("writing kg_config", None))?;
    // The swap: one 4-byte array write.
    maps.active
        .update(&0u32.to_ne_bytes(), &next.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf_err("switching kg_active to the new policy", None))?;
    Ok(generation)
}

fn is_applied(pin_dir: &Path) -> bool {
    Hook::ALL.iter().any(|h| link_pin(pin_dir, *h).exists())
}

fn open_pinned(pin_dir: &Path, name: &str) -> Result<MapHandle, BpfError> {
    let path = map_pin(pin_dir, name);
    MapHandle::from_pinned_path(&path).map_err(|source| BpfError::Inconsistent {
        pin_dir: pin_dir.to_owned(),
        what: format!("cannot open the pinned map {}: {source}", path.display()),
    })
}

/// Check `path`'s directory is on a BPF filesystem.
fn check_bpffs(pin_dir: &Path) -> Result<(), BpfError> {
    let parent = pin_dir.parent().unwrap_or(Path::new("/"));
    let c = CString::new(parent.as_os_str().as_bytes()).map_err(|_| BpfError::Io {
        what: "pin directory path contains NUL:",
        path: pin_dir.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable
    // memory of the right size.
    let rc = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(BpfError::Io {
            what: "cannot statfs the parent of the pin directory",
            path: parent.to_owned(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: statfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    // f_type's integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    let f_type = st.f_type as i64;
    if f_type != BPF_FS_MAGIC {
        return Err(BpfError::NotSupported {
            reason: format!(
                "{} is not a BPF filesystem, so programs cannot be pinned there: mount it \
                 (`mount -t bpf bpf /sys/fs/bpf`) or add it to /etc/fstab",
                parent.display()
            ),
        });
    }
    Ok(())
}

/// Enforce `policy`: load, attach and pin the programs, their links and
/// maps under `pin_dir` (normally [`crate::DEFAULT_PIN_DIR`]), so that
/// enforcement outlives this process. When kgate's links are already
/// pinned there, only the policy is swapped, atomically (see the crate
/// docs); the programs stay attached.
///
/// The policy is validated first ([`BpfPolicy::validate`]); any error
/// leaves the running enforcement as it was: on first apply, everything
/// pinned so far is removed again (nothing stays attached); on re-apply,
/// the active generation is not switched.
pub fn apply(policy: &BpfPolicy, pin_dir: &Path) -> Result<ApplyReport, BpfError> {
    let prepared = prepare(policy)?;
    crate::pindir::check(pin_dir)?;
    let report = |attached_now, hooks: Vec<Hook>, generation| -> Result<ApplyReport, BpfError> {
        let tested: Vec<Hook> = hooks
            .iter()
            .copied()
            .filter(|h| h.section_enabled(policy))
            .collect();
        let selftest = crate::selftest::run(pin_dir, &tested)?;
        let broken: Vec<String> = selftest
            .iter()
            .filter_map(|c| match &c.state {
                crate::selftest::CheckState::Broken(why) => Some(why.clone()),
                _ => None,
            })
            .collect();
        if !broken.is_empty() {
            let detached = attached_now;
            if detached {
                let _ = revert(pin_dir);
            }
            return Err(BpfError::SelfTest { broken, detached });
        }
        Ok(ApplyReport {
            selftest,
            attached_now,
            hooks,
            generation,
            hash: policy.hash.clone(),
            module_requests: policy.modules.allowed_requests.len(),
            socket_patterns: policy.sockets.allow.len(),
            userns_exe: prepared.exes.len(),
            skipped_exe: prepared.skipped.clone(),
        })
    };

    if is_applied(pin_dir) {
        let h: Vec<MapHandle> = MAPS[..POLICY_MAPS]
            .iter()
            .map(|n| open_pinned(pin_dir, n))
            .collect::<Result<_, _>>()?;
        let expected = [4usize, abi::CONFIG_SIZE, 1, 1, 1, 1, 1, 1];
        for (m, (name, size)) in h.iter().zip(MAPS.iter().zip(expected)) {
            if m.value_size() as usize != size {
                return Err(BpfError::Inconsistent {
                    pin_dir: pin_dir.to_owned(),
                    what: format!(
                        "pinned map {name} has {}-byte values, this kgate expects {size} (another kgate version)",
                        m.value_size()
                    ),
                });
            }
        }
        let maps = PolicyMaps {
            active: &h[0],
            config: &h[1],
            module_allow: &h[2],
            socket_allow: &h[3],
            socket_family: &h[4],
            userns_exe: &h[5],
            splice_ep: &h[6],
            splice_pair: &h[7],
        };
        let generation = write_policy(&maps, &prepared)?;
        // A policy that turns [splice] on where it was off needs the
        // splice programs, which the first apply left out: attach them to
        // the pinned maps (the new policy is in force already).
        let missing: Vec<Hook> = hooks_for(policy, available_hooks())
            .into_iter()
            .filter(|h| !link_pin(pin_dir, *h).exists())
            .collect();
        if !missing.is_empty() {
            attach_more(pin_dir, &missing)?;
        }
        let hooks = Hook::ALL
            .into_iter()
            .filter(|h| link_pin(pin_dir, *h).exists())
            .collect();
        return report(false, hooks, generation);
    }

    check_bpffs(pin_dir)?;
    let mut hooks = hooks_for(policy, available_hooks());
    let mut storage = MaybeUninit::uninit();
    let mut retry_storage = MaybeUninit::uninit();
    let mut last_storage = MaybeUninit::uninit();
    // The optional programs need BTF trampolines, and the fmod_ret ones
    // error injection: when the load fails, try without the fmod_ret
    // ones, then without any optional program.
    let mut skel = match open_and_load(&mut storage, &hooks) {
        Ok(skel) => skel,
        Err(first) if hooks.iter().any(|h| h.optional()) => {
            let without_fmod: Vec<Hook> =
                hooks.iter().copied().filter(|h| !h.is_fmod_ret()).collect();
            let retry = if without_fmod.len() < hooks.len() {
                open_and_load(&mut retry_storage, &without_fmod).map(|s| (s, without_fmod))
            } else {
                Err(first)
            };
            match retry {
                Ok((skel, kept)) => {
                    hooks = kept;
                    skel
                }
                Err(_) => {
                    hooks.retain(|h| !h.optional());
                    open_and_load(&mut last_storage, &hooks)
                        .map_err(bpf_err("loading the BPF-LSM programs", Some(ROOT_HINT)))?
                }
            }
        }
        Err(e) => {
            return Err(bpf_err("loading the BPF-LSM programs", Some(ROOT_HINT))(e));
        }
    };
    {
        let m = &skel.maps;
        let maps = PolicyMaps {
            active: &m.kg_active,
            config: &m.kg_config,
            module_allow: &m.kg_module_allow,
            socket_allow: &m.kg_socket_allow,
            socket_family: &m.kg_socket_family,
            userns_exe: &m.kg_userns_exe,
            splice_ep: &m.kg_splice_ep,
            splice_pair: &m.kg_splice_pair,
        };
        write_policy(&maps, &prepared)?;
    }

    // Attach, then pin; on any error remove what was pinned (dropping the
    // links then detaches them).
    let created_dir = !pin_dir.exists();
    let mut pinned: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<(Vec<Link>, Vec<Hook>), BpfError> {
        if created_dir {
            crate::pindir::create(pin_dir)?;
        }
        let mut links = Vec::new();
        let mut attached = Vec::new();
        for h in &hooks {
            let prog = hook_prog!([&] skel.progs, *h);
            let link = if h.optional() {
                match prog.attach() {
                    Ok(link) => link,
                    // Reported by `status` as not attached.
                    Err(_) => continue,
                }
            } else {
                prog.attach_lsm().map_err(bpf_err(
                    format!("attaching to {}", h.attach_point()),
                    Some("is BPF-LSM active? see `kgate_bpf::probe`"),
                ))?
            };
            links.push(link);
            attached.push(*h);
        }
        let (mut links, hooks) = whole_groups(links, attached);
        let m = &mut skel.maps;
        let maps = with_maps!(map_refs!(m, libbpf_rs::MapMut<'_>));
        for (name, map) in maps {
            let path = map_pin(pin_dir, name);
            map.pin(&path)
                .map_err(bpf_err(format!("pinning map {}", path.display()), None))?;
            pinned.push(path);
        }
        for h in &hooks {
            let prog = hook_prog!([&mut] skel.progs, *h);
            let path = prog_pin(pin_dir, *h);
            prog.pin(&path)
                .map_err(bpf_err(format!("pinning program {}", path.display()), None))?;
            pinned.push(path);
        }
        for (h, link) in hooks.iter().zip(links.iter_mut()) {
            // (links and hooks stay parallel: whole_groups filters both.)
            let path = link_pin(pin_dir, *h);
            link.pin(&path)
                .map_err(bpf_err(format!("pinning link {}", path.display()), None))?;
            pinned.push(path);
        }
        Ok((links, hooks))
    })();
    match result {
        Ok((links, hooks)) => {
            // The links are pinned: dropping them keeps the programs
            // attached. The self-test runs against the pins.
            drop(links);
            report(true, hooks, 1)
        }
        Err(e) => {
            for p in pinned.iter().rev() {
                let _ = std::fs::remove_file(p);
            }
            if created_dir {
                let _ = std::fs::remove_dir(pin_dir);
            }
            Err(e)
        }
    }
}

/// Keep only the hooks whose whole [`Hook::group`] is attached (an
/// io_uring mark set but never cleared would decide every io_uring read as
/// a splice; cleared but never set, it would let splices through). The
/// dropped links detach when they are dropped here.
fn whole_groups(links: Vec<Link>, hooks: Vec<Hook>) -> (Vec<Link>, Vec<Hook>) {
    let kept = complete_groups(hooks.clone());
    let kept_links = links
        .into_iter()
        .zip(hooks)
        .filter(|(_, h)| kept.contains(h))
        .map(|(link, _)| link)
        .collect();
    (kept_links, kept)
}

/// The hooks a policy needs: all, except the splice programs when
/// `[splice]` is off (`file_permission` runs on every read and write; a
/// host that does not use the registry should not pay for it).
fn hooks_for(policy: &BpfPolicy, available: Vec<Hook>) -> Vec<Hook> {
    available
        .into_iter()
        .filter(|h| policy.splice.mode != SectionMode::Off || !h.is_splice())
        .collect()
}

/// Load the programs of `hooks` against the maps pinned in `pin_dir`,
/// attach and pin them. On error nothing new stays pinned.
fn attach_more(pin_dir: &Path, hooks: &[Hook]) -> Result<(), BpfError> {
    let mut storage = MaybeUninit::uninit();
    let mut open = KgateSkelBuilder::default()
        .open(&mut storage)
        .map_err(bpf_err("opening the BPF object", None))?;
    for h in Hook::ALL {
        if !hooks.contains(&h) {
            hook_prog!([&mut] open.progs, h).set_autoload(false);
        }
    }
    {
        let m = &mut open.maps;
        let maps = with_maps!(map_refs!(m, libbpf_rs::OpenMapMut<'_>));
        for (name, map) in maps {
            map.reuse_pinned_map(map_pin(pin_dir, name))
                .map_err(bpf_err(format!("reusing the pinned map {name}"), None))?;
        }
    }
    let mut skel = open
        .load()
        .map_err(bpf_err("loading the BPF-LSM programs", Some(ROOT_HINT)))?;
    let mut pinned: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<Vec<Link>, BpfError> {
        let mut attached_links = Vec::new();
        let mut attached = Vec::new();
        for h in hooks {
            let prog = hook_prog!([&] skel.progs, *h);
            let link = if h.optional() {
                match prog.attach() {
                    Ok(link) => link,
                    Err(_) => continue,
                }
            } else {
                prog.attach_lsm()
                    .map_err(bpf_err(format!("attaching to {}", h.attach_point()), None))?
            };
            attached_links.push(link);
            attached.push(*h);
        }
        let (attached_links, attached) = whole_groups(attached_links, attached);
        let mut links = Vec::new();
        for (h, mut link) in attached.iter().zip(attached_links) {
            let path = link_pin(pin_dir, *h);
            link.pin(&path)
                .map_err(bpf_err(format!("pinning link {}", path.display()), None))?;
            pinned.push(path);
            let prog = hook_prog!([&mut] skel.progs, *h);
            let path = prog_pin(pin_dir, *h);
            prog.pin(&path)
                .map_err(bpf_err(format!("pinning program {}", path.display()), None))?;
            pinned.push(path);
            links.push(link);
        }
        Ok(links)
    })();
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            for p in pinned.iter().rev() {
                let _ = std::fs::remove_file(p);
            }
            Err(e)
        }
    }
}

/// Open the object and load it with the programs of `hooks` only.
fn open_and_load<'obj>(
    storage: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
    hooks: &[Hook],
) -> Result<crate::skel::KgateSkel<'obj>, libbpf_rs::Error> {
    let mut open = KgateSkelBuilder::default().open(storage)?;
    for h in Hook::ALL {
        if !hooks.contains(&h) {
            hook_prog!([&mut] open.progs, h).set_autoload(false);
        }
    }
    open.load()
}

fn sum_percpu(map: &dyn MapCore, idx: u32) -> Result<u64, BpfError> {
    let v = map
        .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf_err(
            format!("reading per-CPU map {:?}", map.name()),
            None,
        ))?;
    Ok(v.unwrap_or_default()
        .iter()
        .map(|c| abi::u64_at(c, 0))
        .sum())
}

/// What is attached under `pin_dir`, the enforced policy's hash and modes,
/// per-hook decision counters and the number of dropped events.
///
/// Errors: [`BpfError::NotApplied`] when nothing is pinned there.
pub fn status(pin_dir: &Path) -> Result<Status, BpfError> {
    crate::pindir::check(pin_dir)?;
    if !is_applied(pin_dir) {
        return Err(BpfError::NotApplied {
            pin_dir: pin_dir.to_owned(),
        });
    }
    let active = open_pinned(pin_dir, "kg_active")?;
    let config = open_pinned(pin_dir, "kg_config")?;
    let counters = open_pinned(pin_dir, "kg_counters")?;
    let drops = open_pinned(pin_dir, "kg_drops")?;
    let (_, cfg) = read_active(&active, &config)?;
    let mut hooks = Vec::new();
    debug_assert!(Hook::ALL.len() <= abi::SECTIONS);
    for (i, h) in Hook::ALL.into_iter().enumerate() {
        let path = link_pin(pin_dir, h);
        if !path.exists() {
            continue;
        }
        let attached = Link::open(&path).is_ok();
        let runs = link_ids(&path).and_then(|(_, prog)| prog_run_stats(prog));
        let base = (i * abi::VERDICTS) as u32;
        let c = Counters {
            allow: sum_percpu(&counters, base)?,
            deny: sum_percpu(&counters, base + 1)?,
            audit: sum_percpu(&counters, base + 2)?,
            pass: sum_percpu(&counters, base + 3)?,
        };
        hooks.push(HookStatus {
            hook: h,
            attached,
            counters: c,
            runs,
        });
    }
    Ok(Status {
        pin_dir: pin_dir.to_owned(),
        hooks,
        hash: cfg.hash,
        generation: cfg.generation,
        modules_mode: SectionMode::from_raw(cfg.modules_mode).unwrap_or_default(),
        root_mode: RootMode::from_raw(cfg.root_mode).unwrap_or_default(),
        sockets_mode: SectionMode::from_raw(cfg.sockets_mode).unwrap_or_default(),
        userns_mode: UsernsMode::from_raw(cfg.userns_mode).unwrap_or_default(),
        splice_mode: SectionMode::from_raw(cfg.splice_mode).unwrap_or_default(),
        dropped_events: sum_percpu(&drops, 0)?,
    })
}

/// Remove kgate's pins under `pin_dir`: links first (which detaches the
/// programs once no process holds them), then programs and maps, then the
/// directory. Returns the removed pins; empty when nothing was applied.
///
/// The kernel detaches a link only after its last reference is gone, which
/// for a bpffs pin happens after an RCU grace period and a workqueue run:
/// `revert` waits (up to 10 s) until every link it unpinned is gone, so
/// stock behaviour is back when it returns. A link still held (by a
/// process that opened it) is reported as [`BpfError::Inconsistent`].
pub fn revert(pin_dir: &Path) -> Result<Vec<PathBuf>, BpfError> {
    crate::pindir::check(pin_dir)?;
    let ids: Vec<(u32, u32)> = Hook::ALL
        .iter()
        .filter_map(|h| link_ids(&link_pin(pin_dir, *h)))
        .collect();
    let mut removed = Vec::new();
    let mut paths: Vec<PathBuf> = Hook::ALL.iter().map(|h| link_pin(pin_dir, *h)).collect();
    paths.extend(Hook::ALL.iter().map(|h| prog_pin(pin_dir, *h)));
    paths.extend(MAPS.iter().map(|m| map_pin(pin_dir, m)));
    for p in paths {
        match std::fs::remove_file(&p) {
            Ok(()) => removed.push(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BpfError::Io {
                    what: "cannot unpin",
                    path: p,
                    source,
                })
            }
        }
    }
    match std::fs::remove_dir(pin_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BpfError::Io {
                what: "cannot remove the pin directory (does it hold files kgate did not pin?)",
                path: pin_dir.to_owned(),
                source,
            })
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        // Done when both the links and their programs are gone: enforcement
        // has stopped only once the programs are released.
        let alive: Vec<u32> = ids
            .iter()
            .filter(|(link, prog)| link_alive(*link) || prog_alive(*prog))
            .map(|(link, _)| *link)
            .collect();
        if alive.is_empty() {
            break;
        }
        if std::time::Instant::now() >= deadline {
            return Err(BpfError::Inconsistent {
                pin_dir: pin_dir.to_owned(),
                what: format!(
                    "links {alive:?} are unpinned but still attached after 10 s: a process holds \
                     them open (see `bpftool link show`); end it to detach"
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(removed)
}

/// The kernel id of the link pinned at `path`.
/// The ids of a pinned link and of the program it attaches.
fn link_ids(path: &Path) -> Option<(u32, u32)> {
    use std::os::fd::{AsFd, AsRawFd};
    let link = Link::open(path).ok()?;
    // SAFETY: bpf_link_info is plain old data; all-zero is a valid value.
    let mut info: libbpf_rs::libbpf_sys::bpf_link_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: the fd is a valid link fd owned by `link` for this call;
    // `info` and `len` are valid for writes of `len` bytes.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_link_get_info_by_fd(
            link.as_fd().as_raw_fd(),
            &mut info,
            &mut len,
        )
    };
    (rc == 0).then_some((info.id, info.prog_id))
}

/// Does the program with this id still exist? The kernel drops a program
/// only after every link to it has been released, i.e. after the LSM
/// trampoline no longer calls it; a link id, by contrast, is freed before
/// the release runs.
fn prog_alive(id: u32) -> bool {
    // SAFETY: plain syscall wrapper; a returned fd is ours to close.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just returned to us and is closed exactly once.
    unsafe { libc::close(fd) };
    true
}

/// Run statistics of the program with this id.
fn prog_run_stats(id: u32) -> Option<RunStats> {
    // SAFETY: plain syscall wrapper; a returned fd is ours to close.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return None;
    }
    // SAFETY: bpf_prog_info is plain old data; all-zero is a valid value
    // (and asks for no arrays).
    let mut info: libbpf_rs::libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `fd` is a program fd we own; `info` and `len` are valid for
    // writes of `len` bytes.
    let rc = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    // SAFETY: `fd` was returned to us above and is closed exactly once.
    unsafe { libc::close(fd) };
    (rc == 0).then_some(RunStats {
        count: info.run_cnt,
        time_ns: info.run_time_ns,
    })
}

/// Does the link with this id still exist (attached)?
fn link_alive(id: u32) -> bool {
    // SAFETY: plain syscall wrapper; a returned fd is ours to close.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_link_get_fd_by_id(id) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just returned to us and is closed exactly once.
    unsafe { libc::close(fd) };
    true
}

fn clock_offset() -> i128 {
    let now = |clock| {
        let mut ts = MaybeUninit::<libc::timespec>::uninit();
        // SAFETY: `ts` is writable memory for one timespec.
        let rc = unsafe { libc::clock_gettime(clock, ts.as_mut_ptr()) };
        if rc != 0 {
            return 0i128;
        }
        // SAFETY: clock_gettime returned 0, so it filled `ts`.
        let ts = unsafe { ts.assume_init() };
        ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
    };
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_MONOTONIC)
}

/// Read events from the pinned ring buffer and pass each to `sink`.
/// Reading consumes them (one reader at a time). Without `follow`, returns
/// once the buffer is empty; with it, waits for more until `sink` returns
/// [`ControlFlow::Break`]. The summary includes the drop counter, so lost
/// events are never silent; while following, `on_drop(total, new)` is
/// called as soon as the counter grows.
pub fn events(
    pin_dir: &Path,
    follow: bool,
    mut sink: impl FnMut(Event) -> ControlFlow<()>,
    mut on_drop: impl FnMut(u64, u64),
) -> Result<EventsSummary, BpfError> {
    crate::pindir::check(pin_dir)?;
    if !is_applied(pin_dir) {
        return Err(BpfError::NotApplied {
            pin_dir: pin_dir.to_owned(),
        });
    }
    let ring = open_pinned(pin_dir, "kg_events")?;
    let drops = open_pinned(pin_dir, "kg_drops")?;
    let offset = clock_offset();
    let mut dropped_seen = sum_percpu(&drops, 0)?;
    let dropped_at_start = dropped_seen;
    let delivered = Cell::new(0u64);
    let stop = Cell::new(false);
    {
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&ring, |data: &[u8]| {
                if stop.get() {
                    return -1;
                }
                if let Some(ev) = Event::decode(data, offset) {
                    delivered.set(delivered.get() + 1);
                    if sink(ev).is_break() {
                        stop.set(true);
                        return -1;
                    }
                }
                0
            })
            .map_err(bpf_err("reading the event ring buffer", None))?;
        let rb = builder
            .build()
            .map_err(bpf_err("reading the event ring buffer", None))?;
        loop {
            let r = rb.consume();
            if stop.get() || !follow {
                if !stop.get() {
                    r.map_err(bpf_err("reading the event ring buffer", None))?;
                }
                break;
            }
            r.map_err(bpf_err("reading the event ring buffer", None))?;
            let p = rb.poll(Duration::from_millis(250));
            if stop.get() {
                break;
            }
            p.map_err(bpf_err("waiting for events", None))?;
            let now = sum_percpu(&drops, 0)?;
            if now > dropped_seen {
                on_drop(now, now - dropped_seen);
                dropped_seen = now;
            }
        }
    }
    let dropped_total = sum_percpu(&drops, 0)?;
    Ok(EventsSummary {
        delivered: delivered.get(),
        dropped_total,
        dropped_while_reading: dropped_total - dropped_at_start,
    })
}
