//! The validated policy model.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::diag::Location;
use crate::socket::SocketRule;
use crate::splice::{Endpoint, OnDeny, SplicePair, SplicePreset};

/// The only policy format version this crate reads and writes.
pub const FORMAT_VERSION: i64 = 1;

/// A validated kgate policy (format version 1).
///
/// Lists are sorted and free of duplicates. Two policies compare equal when
/// their content is equal: the file they came from and the positions of
/// their entries are provenance, not content.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Policy {
    /// `[meta]`.
    pub meta: Meta,
    /// `[modules]`: module autoload.
    pub modules: ModulesSection,
    /// `[sockets]`: `socket(2)` by unprivileged users.
    pub sockets: SocketsSection,
    /// `[splice]`: endpoints of splice-family calls.
    pub splice: SpliceSection,
    /// `[userns]`: user namespace creation.
    pub userns: UsernsSection,
    /// `[sysctl]`: values to set, by dotted name.
    pub sysctl: BTreeMap<String, Entry<SysctlValue>>,
    /// `[seccomp]`: the per-workload syscall filter of `kgate run` and the
    /// exports (never applied host-wide by `kgate apply`).
    pub seccomp: SeccompSection,
    /// The file the policy was read from, if any.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.meta == other.meta
            && self.modules == other.modules
            && self.sockets == other.sockets
            && self.splice == other.splice
            && self.userns == other.userns
            && self.sysctl == other.sysctl
            && self.seccomp == other.seccomp
    }
}

impl Eq for Policy {}

/// `[meta]`: descriptive only; never changes what is enforced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// A name for humans.
    pub name: Option<String>,
    /// The kernel release the policy was generated or carried for.
    pub kernel: Option<String>,
    /// The tool that wrote the policy.
    pub generated_by: Option<String>,
}

/// One allowlist entry (or sysctl value) with its optional reason and where
/// it was written. Equality ignores `at`.
#[derive(Debug, Clone, Serialize)]
pub struct Entry<T> {
    /// The value: a module name, a socket rule, an endpoint, ...
    pub value: T,
    /// Why it is allowed (`{ name = "...", reason = "..." }`).
    pub reason: Option<String>,
    /// Position of the entry in the file it was read from.
    pub at: Option<Location>,
}

impl<T> Entry<T> {
    /// An entry without reason or position.
    pub fn new(value: T) -> Self {
        Entry {
            value,
            reason: None,
            at: None,
        }
    }

    /// An entry with a reason.
    pub fn with_reason(value: T, reason: impl Into<String>) -> Self {
        Entry {
            value,
            reason: Some(reason.into()),
            at: None,
        }
    }

    /// The line it was written on, if known.
    pub fn line(&self) -> Option<usize> {
        self.at.map(|l| l.line)
    }
}

impl<T: PartialEq> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.reason == other.reason
    }
}

impl<T: Eq> Eq for Entry<T> {}

/// How a section is applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// Deny what the allowlist does not allow.
    Enforce,
    /// Allow everything, but report what enforce would deny.
    Audit,
    /// The section is not applied (the default when a section is missing).
    #[default]
    Off,
}

impl Mode {
    /// Every TOML spelling.
    pub const ALL: &'static [&'static str] = &["enforce", "audit", "off"];

    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::Off => "off",
        }
    }

    /// Parse the TOML spelling.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to module autoload requests made by real root (a task with
/// global uid 0 or `CAP_SYS_MODULE` in the initial user namespace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RootMode {
    /// Root's autoload requests always pass (the default): administrators
    /// keep `ip link add type vxlan`, `mount -t hfsplus`, ... working.
    #[default]
    Allow,
    /// Root's requests pass but are reported when the allowlist would deny.
    Audit,
    /// Root is subject to the allowlist like everyone else.
    Policy,
}

impl RootMode {
    /// Every TOML spelling.
    pub const ALL: &'static [&'static str] = &["allow", "audit", "policy"];

    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RootMode::Allow => "allow",
            RootMode::Audit => "audit",
            RootMode::Policy => "policy",
        }
    }

    /// Parse the TOML spelling.
    pub fn parse(s: &str) -> Option<RootMode> {
        match s {
            "allow" => Some(RootMode::Allow),
            "audit" => Some(RootMode::Audit),
            "policy" => Some(RootMode::Policy),
            _ => None,
        }
    }
}

/// `[modules]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModulesSection {
    /// How the allowlist is applied.
    pub mode: Mode,
    /// Requests by real root.
    pub root: RootMode,
    /// Canonical module names (`-` written `_`), sorted. Their load closure
    /// and the kernel's builtin modules are allowed implicitly (see
    /// [`Policy::effective_modules`]).
    pub allow: Vec<Entry<String>>,
}

/// `[sockets]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SocketsSection {
    /// How the allowlist is applied.
    pub mode: Mode,
    /// Allowed families/protocols, sorted.
    pub allow: Vec<Entry<SocketRule>>,
}

impl SocketsSection {
    /// Would `socket(family, sock_type, protocol)` be allowed? (Regardless
    /// of mode.)
    pub fn allows(&self, family: u32, sock_type: u32, protocol: u32) -> bool {
        self.allow
            .iter()
            .any(|e| e.value.matches(family, sock_type, protocol))
    }

    /// Is some protocol of `family` allowed?
    pub fn allows_family(&self, family: u32) -> bool {
        self.allow.iter().any(|e| e.value.family == family)
    }
}

/// `[splice]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpliceSection {
    /// How the allowlist is applied.
    pub mode: Mode,
    /// Allowed endpoints, sorted. Both sides of a call must be allowed.
    pub allow: Vec<Entry<Endpoint>>,
    /// Allowed source → destination combinations. Empty: any combination
    /// of allowed endpoints; otherwise a call must also match one pair.
    pub pairs: Vec<Entry<SplicePair>>,
    /// What a denied call returns.
    pub on_deny: OnDeny,
}

impl SpliceSection {
    /// A section from a preset, with the given mode.
    pub fn preset(preset: SplicePreset, mode: Mode) -> Self {
        SpliceSection {
            mode,
            allow: preset.endpoints().into_iter().map(Entry::new).collect(),
            pairs: preset.pairs().into_iter().map(Entry::new).collect(),
            on_deny: OnDeny::Einval,
        }
    }

    /// Would a transfer from `source` to `destination` be allowed?
    /// (Regardless of mode.)
    pub fn allows(&self, source: &Endpoint, destination: &Endpoint) -> bool {
        let ok = |e: &Endpoint| self.allow.iter().any(|a| a.value.covers(e));
        ok(source)
            && ok(destination)
            && (self.pairs.is_empty()
                || self
                    .pairs
                    .iter()
                    .any(|p| p.value.matches(source, destination)))
    }
}

/// `userns.unprivileged`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UsernsMode {
    /// Unprivileged users may not create user namespaces, except through
    /// the executables of `allow_exe`.
    Deny,
    /// No restriction (the default when `[userns]` is missing).
    #[default]
    Allow,
    /// Allowed, but creations outside `allow_exe` are reported.
    Audit,
}

impl UsernsMode {
    /// Every TOML spelling.
    pub const ALL: &'static [&'static str] = &["deny", "allow", "audit"];

    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UsernsMode::Deny => "deny",
            UsernsMode::Allow => "allow",
            UsernsMode::Audit => "audit",
        }
    }

    /// Parse the TOML spelling.
    pub fn parse(s: &str) -> Option<UsernsMode> {
        match s {
            "deny" => Some(UsernsMode::Deny),
            "allow" => Some(UsernsMode::Allow),
            "audit" => Some(UsernsMode::Audit),
            _ => None,
        }
    }
}

/// `[userns]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsernsSection {
    /// What unprivileged users may do.
    pub unprivileged: UsernsMode,
    /// Absolute paths of executables that may create user namespaces
    /// (bubblewrap, browsers' sandboxes), sorted.
    pub allow_exe: Vec<Entry<String>>,
}

/// A sysctl value as written in `[sysctl]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum SysctlValue {
    /// An integer.
    Int(i64),
    /// A string (written to the file as is).
    Str(String),
    /// A boolean (written as `1`/`0`).
    Bool(bool),
}

impl SysctlValue {
    /// The text written to `/proc/sys/...`.
    pub fn to_proc_string(&self) -> String {
        match self {
            SysctlValue::Int(i) => i.to_string(),
            SysctlValue::Str(s) => s.clone(),
            SysctlValue::Bool(b) => u8::from(*b).to_string(),
        }
    }
}

impl fmt::Display for SysctlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysctlValue::Int(i) => write!(f, "{i}"),
            SysctlValue::Str(s) => write!(f, "{s:?}"),
            SysctlValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Policy {
    /// Sort every list and drop duplicates (keeping the first occurrence,
    /// and so its reason and position). Parsing and [`crate::freeze`] do
    /// this already; call it after editing lists by hand.
    pub fn normalize(&mut self) {
        fn norm<T: Ord + Clone>(v: &mut Vec<Entry<T>>) {
            let mut seen = std::collections::BTreeSet::new();
            v.retain(|e| seen.insert(e.value.clone()));
            v.sort_by(|a, b| a.value.cmp(&b.value));
        }
        for e in &mut self.modules.allow {
            e.value = kgate_kernel::canonical_name(&e.value);
        }
        norm(&mut self.modules.allow);
        norm(&mut self.sockets.allow);
        norm(&mut self.splice.allow);
        norm(&mut self.splice.pairs);
        norm(&mut self.userns.allow_exe);
        norm(&mut self.seccomp.allow);
        norm(&mut self.seccomp.sockets);
    }

    /// Is `module` (canonical name) listed in `modules.allow`?
    pub fn lists_module(&self, module: &str) -> Option<&Entry<String>> {
        self.modules.allow.iter().find(|e| e.value == module)
    }
}

/// What a syscall outside `[seccomp].allow` returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SeccompErrno {
    /// `EPERM` (the default, like Docker's and podman's profiles).
    #[default]
    Eperm,
    /// `ENOSYS`: "not implemented", which makes programs such as glibc
    /// fall back to an older syscall (`clone3` → `clone`, `statx` → `stat`).
    Enosys,
}

impl SeccompErrno {
    /// Every TOML spelling.
    pub const ALL: &'static [&'static str] = &["eperm", "enosys"];

    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SeccompErrno::Eperm => "eperm",
            SeccompErrno::Enosys => "enosys",
        }
    }

    /// Parse the TOML spelling.
    pub fn parse(s: &str) -> Option<SeccompErrno> {
        match s {
            "eperm" => Some(SeccompErrno::Eperm),
            "enosys" => Some(SeccompErrno::Enosys),
            _ => None,
        }
    }

    /// The errno value on Linux.
    pub fn errno(self) -> u32 {
        match self {
            SeccompErrno::Eperm => 1,
            SeccompErrno::Enosys => 38,
        }
    }
}

/// One `[seccomp].sockets` entry: an address family `socket(2)` may
/// create, or `*` for any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SocketFamily {
    /// Any family: `socket(2)` is not checked by argument.
    Any,
    /// One family, by number (`AF_*`).
    Family(u32),
}

impl SocketFamily {
    /// Parse `*` or a family name/number of the [`crate::socket`] grammar.
    pub fn parse(s: &str) -> Result<SocketFamily, crate::socket::GrammarError> {
        if s == "*" {
            return Ok(SocketFamily::Any);
        }
        crate::socket::family_number(s)
            .map(SocketFamily::Family)
            .ok_or_else(|| {
                crate::socket::GrammarError::new(
                    format!("unknown address family `{s}`"),
                    std::iter::once("*".to_owned())
                        .chain(crate::socket::FAMILIES.iter().map(|(_, n)| (*n).to_owned()))
                        .collect(),
                    s,
                )
            })
    }
}

impl fmt::Display for SocketFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketFamily::Any => f.write_str("*"),
            SocketFamily::Family(n) => match crate::socket::family_name(*n) {
                Some(name) => f.write_str(name),
                None => write!(f, "{n}"),
            },
        }
    }
}

impl Serialize for SocketFamily {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `[seccomp]`: the syscalls (and socket families) a workload started by
/// `kgate run`, or exported to a container runtime or systemd, may use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeccompSection {
    /// How the filter acts: enforce (deny with `on_deny`), audit (log with
    /// `SECCOMP_RET_LOG`, allow), off (the section is not used).
    pub mode: Mode,
    /// Allowed syscalls by x86_64 name, sorted.
    pub allow: Vec<Entry<String>>,
    /// Families `socket(2)` and `socketpair(2)` may create when they are
    /// allowed, sorted.
    pub sockets: Vec<Entry<SocketFamily>>,
    /// What a denied syscall returns.
    pub on_deny: SeccompErrno,
}

impl SeccompSection {
    /// Is `name` in `allow`?
    pub fn allows(&self, name: &str) -> bool {
        self.allow.iter().any(|e| e.value == name)
    }

    /// The io_uring operations that would escape what this section
    /// restricts, when it lets the workload use io_uring (`io_uring_setup`
    /// or `io_uring_enter` allowed); empty otherwise.
    ///
    /// io_uring runs its operations in the kernel, from a submission ring
    /// in shared memory: seccomp sees `io_uring_enter`, never the socket,
    /// splice or tee they perform. So `IORING_OP_SOCKET` (5.19+) creates
    /// sockets of any family whatever `sockets` says (or when `socket` is
    /// not allowed at all), and `IORING_OP_SPLICE` and `IORING_OP_TEE` move
    /// data when `splice` or `tee` is denied.
    pub fn io_uring_bypass(&self) -> Vec<&'static str> {
        if !crate::profile::IO_URING_SUBMIT
            .iter()
            .any(|n| self.allows(n))
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        let sockets_restricted = self.socket_families().is_some() || !self.allows("socket");
        if sockets_restricted {
            out.push("IORING_OP_SOCKET");
        }
        if !self.allows("splice") {
            out.push("IORING_OP_SPLICE");
        }
        if !self.allows("tee") {
            out.push("IORING_OP_TEE");
        }
        out
    }

    /// The warning for [`SeccompSection::io_uring_bypass`], or `None`
    /// when nothing escapes. `kgate policy generate`, `kgate run` and
    /// `kgate export` print it.
    pub fn io_uring_warning(&self) -> Option<String> {
        let ops = self.io_uring_bypass();
        if ops.is_empty() {
            return None;
        }
        let mut what = Vec::new();
        if ops.contains(&"IORING_OP_SOCKET") {
            what.push("can create sockets of families the filter denies (neither socket/socketpair nor [seccomp] sockets is checked)");
        }
        if ops.contains(&"IORING_OP_SPLICE") || ops.contains(&"IORING_OP_TEE") {
            what.push("can move data with splice/tee although the filter denies those syscalls");
        }
        Some(format!(
            "io_uring is allowed (io_uring_setup/io_uring_enter), and io_uring's {} skip seccomp entirely: through io_uring the workload {}. Remove io_uring_setup, io_uring_enter and io_uring_register from [seccomp] allow if it can do without io_uring, or rely on the host-wide sections ([sockets] is enforced by BPF-LSM for io_uring sockets too; kernel.io_uring_disabled = 2 turns io_uring off)",
            ops.join(", "),
            what.join(" and ")
        ))
    }

    /// The families `socket(2)` may create: `None` when any may (`*`).
    pub fn socket_families(&self) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        for e in &self.sockets {
            match e.value {
                SocketFamily::Any => return None,
                SocketFamily::Family(n) => out.push(n),
            }
        }
        Some(out)
    }
}
