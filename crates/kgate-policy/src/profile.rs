//! Workload profiles (`kgate.profile/1`, written by `kgate record`) and
//! [`generate`]: a policy's `[seccomp]` section from one or more profiles.
//!
//! The JSON schema is documented in `docs/json.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{Entry, Mode, Policy, SeccompErrno, SeccompSection, SocketFamily};

/// The `schema` value of a profile.
pub const PROFILE_SCHEMA: &str = "kgate.profile/1";

/// Syscalls that move data between pipes and files without a copy. They
/// reach `file_operations` nobody audited and no LSM hook gates `vmsplice`
/// or `tee`: a generated policy allows them only when a profile used them.
pub const SPLICE_FAMILY: &[&str] = &["splice", "vmsplice", "tee"];

/// Syscalls that create sockets and are checked by their family argument
/// (argument 0 of both) against `[seccomp] sockets`. `socketpair(2)`
/// creates the family's sockets, autoloading its module, before the
/// family can refuse a pair, so it is checked like `socket(2)`.
pub const FAMILY_CHECKED: &[&str] = &["socket", "socketpair"];

/// io_uring's syscalls. A generated policy allows them only when a profile
/// used them: io_uring's operations (`IORING_OP_SOCKET`, `IORING_OP_SPLICE`,
/// `IORING_OP_TEE`, ...) run without a syscall seccomp could check.
pub const IO_URING: &[&str] = &["io_uring_setup", "io_uring_enter", "io_uring_register"];

/// The io_uring syscalls that let a process submit operations: a ring of
/// its own (`io_uring_setup`) or one it was given (`io_uring_enter`).
pub const IO_URING_SUBMIT: &[&str] = &["io_uring_setup", "io_uring_enter"];

/// Syscalls every generated policy allows: `kgate run` calls `execve`
/// after installing the filter, and a process must always be able to exit
/// and return from a signal handler.
pub const ALWAYS_ALLOWED: &[&str] = &["execve", "exit", "exit_group", "rt_sigreturn"];

/// What a recording watched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Target {
    /// A command kgate started (`kgate record -- CMD`), and its descendants.
    Command {
        /// The command line.
        argv: Vec<String>,
    },
    /// Every task in a cgroup (v2) and its descendant cgroups.
    Cgroup {
        /// The cgroup directory.
        path: PathBuf,
    },
    /// A running process (all its threads), and optionally its new children.
    Pid {
        /// The process id.
        pid: u32,
        /// Whether children forked after the recording started were followed.
        follow_children: bool,
    },
}

/// One syscall and how often it was entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallCount {
    /// The x86_64 name; `null` for a number kgate does not know.
    pub name: Option<String>,
    /// The syscall number.
    pub nr: u32,
    /// How many times it was entered.
    pub count: u64,
}

/// One `socket(2)` or `socketpair(2)` call shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketTuple {
    /// The address family's name (`inet`), or its number as text.
    pub family: String,
    /// `AF_*` number.
    pub family_nr: u32,
    /// `SOCK_*` type with `SOCK_NONBLOCK`/`SOCK_CLOEXEC` masked off.
    pub sock_type: u32,
    /// The protocol argument as passed (0 = the family's default).
    pub protocol: u32,
    /// How many calls had this shape (allowed or not by the kernel).
    pub count: u64,
}

/// A string seen with a count (exec'd path, module request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameCount {
    /// The path or name.
    pub name: String,
    /// How many times.
    pub count: u64,
}

/// Module requests made on the workload's behalf.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRequests {
    /// Whether the kernel let kgate observe them (the `module:module_request`
    /// tracepoint exists only with `CONFIG_MODULES`).
    pub observable: bool,
    /// The request strings (`net-pf-40`, `fs-hfsplus`, ...).
    pub requests: Vec<NameCount>,
}

/// Observations the recorder could not keep because a map was full. All
/// zero means the profile is complete; syscall counters cannot be lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    /// New tasks of the tree that could not be tracked (their syscalls are
    /// missing).
    pub tasks: u64,
    /// Socket tuples not kept.
    pub sockets: u64,
    /// Exec'd paths not kept.
    pub execs: u64,
    /// Module requests not kept.
    pub module_requests: u64,
}

impl Lost {
    /// Is every counter zero?
    pub fn is_zero(&self) -> bool {
        self == &Lost::default()
    }
}

/// A recorded workload profile (`kgate.profile/1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Always [`PROFILE_SCHEMA`].
    pub schema: String,
    /// The syscall ABI recorded (`x86_64`).
    pub arch: String,
    /// The kernel release it was recorded on.
    pub kernel: Option<String>,
    /// What was recorded.
    pub target: Target,
    /// How long the recording ran, in milliseconds.
    pub duration_ms: u64,
    /// The command's exit code (`Command` targets that exited normally).
    pub exit_code: Option<i32>,
    /// Tasks seen: processes (including the first) and threads.
    pub processes: u64,
    /// Threads created by the tree (not counting each process's first).
    pub threads: u64,
    /// Syscalls entered, sorted by number.
    pub syscalls: Vec<SyscallCount>,
    /// Compat (ia32) syscalls entered by 32-bit code (`int 0x80`, a 32-bit
    /// process), by ia32 number, `name` null; sorted. `kgate run` and the
    /// exports allow only the x86_64 ABI, so a profile with any is one a
    /// policy cannot serve as recorded. Absent in older profiles: empty.
    #[serde(default)]
    pub ia32_syscalls: Vec<SyscallCount>,
    /// `socket(2)` and `socketpair(2)` shapes, sorted (one list: both are
    /// checked against the same `[seccomp] sockets`).
    pub sockets: Vec<SocketTuple>,
    /// Module requests.
    pub module_requests: ModuleRequests,
    /// Executed paths as passed to `execve` (relative if the caller used a
    /// relative path), sorted.
    pub execs: Vec<NameCount>,
    /// What could not be kept.
    pub lost: Lost,
}

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read profile {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not JSON of the profile schema.
    #[error("{} is not a kgate profile: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// Another schema or architecture.
    #[error("{}: {what}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        what: String,
    },
}

impl Profile {
    /// Read and check a profile file.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, ProfileError> {
        let path = path.as_ref();
        let text = kgate_kernel::bounded::read_text(
            Path::new("/"),
            path,
            kgate_kernel::bounded::Limit::POLICY,
        )
        .map_err(|e| ProfileError::Read {
            path: path.to_owned(),
            source: e.into(),
        })?;
        Profile::from_json(&text, path)
    }

    /// Parse and check profile JSON; `path` is used in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Profile, ProfileError> {
        let p: Profile = serde_json::from_str(text).map_err(|source| ProfileError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if p.schema != PROFILE_SCHEMA {
            return Err(ProfileError::Unsupported {
                path: path.to_owned(),
                what: format!("schema {:?}; this kgate reads {PROFILE_SCHEMA:?}", p.schema),
            });
        }
        if p.arch != "x86_64" {
            return Err(ProfileError::Unsupported {
                path: path.to_owned(),
                what: format!("architecture {:?}; kgate records x86_64 only", p.arch),
            });
        }
        Ok(p)
    }

    /// Names of the syscalls entered, sorted.
    pub fn syscall_names(&self) -> BTreeSet<&str> {
        self.syscalls
            .iter()
            .filter_map(|s| s.name.as_deref())
            .collect()
    }
}

/// What [`generate`] found beyond the policy itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GenerateReport {
    /// Profiles merged.
    pub profiles: usize,
    /// Distinct syscalls allowed (including [`ALWAYS_ALLOWED`]).
    pub syscalls: usize,
    /// Whether splice, vmsplice and tee are needed (recorded) by name.
    pub splice_family: BTreeMap<String, bool>,
    /// Socket shapes seen, merged.
    pub sockets: Vec<SocketTuple>,
    /// Executed paths, merged.
    pub execs: Vec<NameCount>,
    /// Module requests, merged (empty when not observable).
    pub module_requests: Vec<NameCount>,
    /// Whether every profile could observe module requests.
    pub module_requests_observable: bool,
    /// Syscall numbers recorded that have no x86_64 name (not allowed).
    pub unknown_syscalls: Vec<u32>,
    /// The io_uring syscalls recorded (and so allowed); never added
    /// otherwise.
    pub io_uring: Vec<String>,
    /// The io_uring operations that skip this policy's restrictions
    /// ([`SeccompSection::io_uring_bypass`]); empty when io_uring is denied.
    pub io_uring_bypass: Vec<&'static str>,
    /// Problems to tell the user (incomplete profiles, ...).
    pub warnings: Vec<String>,
}

/// Merge profiles into a policy whose `[seccomp]` section (mode enforce,
/// EPERM) allows exactly the syscalls they entered plus [`ALWAYS_ALLOWED`],
/// and the socket families they created. `name` goes to `meta.name`.
///
/// The policy has no other section: host-wide sections are `kgate freeze`'s
/// job, and a workload's recording says nothing about the rest of the host.
pub fn generate(profiles: &[(PathBuf, Profile)], name: Option<String>) -> (Policy, GenerateReport) {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    let mut sockets: BTreeMap<(u32, u32, u32), SocketTuple> = BTreeMap::new();
    let mut execs: BTreeMap<String, u64> = BTreeMap::new();
    let mut modules: BTreeMap<String, u64> = BTreeMap::new();
    let mut report = GenerateReport {
        profiles: profiles.len(),
        module_requests_observable: !profiles.is_empty(),
        ..GenerateReport::default()
    };
    let mut kernels = BTreeSet::new();
    for (path, p) in profiles {
        if let Some(k) = &p.kernel {
            kernels.insert(k.clone());
        }
        for s in &p.syscalls {
            match &s.name {
                Some(n) => *counts.entry(n.clone()).or_default() += s.count,
                None => {
                    unknown.insert(s.nr);
                }
            }
        }
        for t in &p.sockets {
            sockets
                .entry((t.family_nr, t.sock_type, t.protocol))
                .and_modify(|e| e.count += t.count)
                .or_insert_with(|| t.clone());
        }
        for e in &p.execs {
            *execs.entry(e.name.clone()).or_default() += e.count;
        }
        for m in &p.module_requests.requests {
            *modules.entry(m.name.clone()).or_default() += m.count;
        }
        report.module_requests_observable &= p.module_requests.observable;
        let ia32: u64 = p.ia32_syscalls.iter().map(|s| s.count).sum();
        if ia32 > 0 {
            report.warnings.push(format!(
                "{} has {ia32} ia32 (32-bit) syscalls ({} distinct numbers): kgate run and the exports allow only the x86_64 ABI, so that code will fail under this policy",
                path.display(),
                p.ia32_syscalls.len()
            ));
        }
        if !p.lost.is_zero() {
            report.warnings.push(format!(
                "{} is incomplete (lost: {} tasks, {} socket shapes, {} execs, {} module requests): record again with fewer concurrent processes",
                path.display(),
                p.lost.tasks,
                p.lost.sockets,
                p.lost.execs,
                p.lost.module_requests
            ));
        }
    }
    if kernels.len() > 1 {
        report.warnings.push(format!(
            "profiles come from different kernels ({}): syscalls a newer kernel's libc uses may be missing from older recordings",
            kernels.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let mut allow: Vec<Entry<String>> = Vec::new();
    for (name, count) in &counts {
        let e = if SPLICE_FAMILY.contains(&name.as_str()) {
            Entry::with_reason(name.clone(), format!("recorded: {count} calls"))
        } else {
            Entry::new(name.clone())
        };
        allow.push(e);
    }
    for a in ALWAYS_ALLOWED {
        if !counts.contains_key(*a) {
            allow.push(Entry::with_reason(
                (*a).to_owned(),
                "always allowed: kgate run execs the command; processes must be able to exit",
            ));
        }
    }
    let families: BTreeSet<u32> = sockets.keys().map(|k| k.0).collect();
    if counts.contains_key("socketpair") && families.is_empty() {
        report.warnings.push(
            "socketpair was recorded but no socket shape: kgate record before issue 13 did not record socketpair's family, and this policy allows no family, so socketpair fails with EAFNOSUPPORT under it; record again, or add the family (usually \"unix\") to [seccomp] sockets".to_owned(),
        );
    }
    let mut policy = Policy::default();
    policy.meta.name = name;
    policy.meta.kernel = (kernels.len() == 1)
        .then(|| kernels.iter().next().cloned())
        .flatten();
    policy.meta.generated_by = Some(format!(
        "kgate policy generate from {} profile(s)",
        profiles.len()
    ));
    policy.seccomp = SeccompSection {
        mode: Mode::Enforce,
        allow,
        sockets: families
            .into_iter()
            .map(|f| Entry::new(SocketFamily::Family(f)))
            .collect(),
        on_deny: SeccompErrno::Eperm,
    };
    policy.normalize();
    report.syscalls = policy.seccomp.allow.len();
    for s in SPLICE_FAMILY {
        report
            .splice_family
            .insert((*s).to_owned(), counts.contains_key(*s));
    }
    report.sockets = sockets.into_values().collect();
    report.execs = execs
        .into_iter()
        .map(|(name, count)| NameCount { name, count })
        .collect();
    report.module_requests = modules
        .into_iter()
        .map(|(name, count)| NameCount { name, count })
        .collect();
    report.io_uring = IO_URING
        .iter()
        .filter(|n| counts.contains_key(**n))
        .map(|n| (*n).to_owned())
        .collect();
    report.io_uring_bypass = policy.seccomp.io_uring_bypass();
    if let Some(w) = policy.seccomp.io_uring_warning() {
        report.warnings.push(format!(
            "the workload used io_uring ({} recorded): {w}",
            report.io_uring.join(", ")
        ));
    }
    report.unknown_syscalls = unknown.into_iter().collect();
    if !report.unknown_syscalls.is_empty() {
        report.warnings.push(format!(
            "syscall numbers without an x86_64 name were recorded and are not allowed: {:?} (a kernel newer than this kgate?)",
            report.unknown_syscalls
        ));
    }
    (policy, report)
}

/// A profile allowing `syscalls` (by name), for tests and `kgate run
/// --profile` of hand-made files.
pub fn profile_of(syscalls: &[&str], families: &[u32]) -> Profile {
    Profile {
        schema: PROFILE_SCHEMA.into(),
        arch: "x86_64".into(),
        kernel: None,
        target: Target::Pid {
            pid: 0,
            follow_children: false,
        },
        duration_ms: 0,
        exit_code: None,
        processes: 1,
        threads: 0,
        syscalls: syscalls
            .iter()
            .filter_map(|n| {
                crate::syscall::number(n).map(|nr| SyscallCount {
                    name: Some((*n).to_owned()),
                    nr,
                    count: 1,
                })
            })
            .collect(),
        ia32_syscalls: Vec::new(),
        sockets: families
            .iter()
            .map(|f| SocketTuple {
                family: crate::socket::family_name(*f).map_or_else(|| f.to_string(), str::to_owned),
                family_nr: *f,
                sock_type: 1,
                protocol: 0,
                count: 1,
            })
            .collect(),
        module_requests: ModuleRequests::default(),
        execs: Vec::new(),
        lost: Lost::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_merges_and_round_trips() {
        let a = profile_of(&["read", "write", "socket", "splice"], &[1]);
        let b = profile_of(&["read", "openat"], &[2, 10]);
        let (policy, report) = generate(
            &[(PathBuf::from("a.json"), a), (PathBuf::from("b.json"), b)],
            Some("web".into()),
        );
        let names: Vec<&str> = policy
            .seccomp
            .allow
            .iter()
            .map(|e| e.value.as_str())
            .collect();
        for n in [
            "read",
            "write",
            "socket",
            "splice",
            "openat",
            "execve",
            "exit_group",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert!(!names.contains(&"vmsplice"));
        assert!(report.splice_family["splice"]);
        assert!(!report.splice_family["vmsplice"]);
        assert_eq!(policy.seccomp.socket_families(), Some(vec![1, 2, 10]));
        let text = policy.to_toml();
        assert!(text.contains("[seccomp]"), "{text}");
        let again = Policy::parse(&text, "gen.toml").unwrap();
        assert_eq!(again.policy, policy);
        assert!(again.warnings.is_empty());
    }

    #[test]
    fn bad_seccomp_entries_are_errors_with_lines() {
        let text = "version = 1\n[seccomp]\nmode = \"enforce\"\nallow = [\"read\", \"getpdi\"]\nsockets = [\"inet\", \"nope\"]\non_deny = \"kill\"\n";
        let err = Policy::parse(text, "x.toml").unwrap_err();
        let crate::PolicyError::Invalid { errors, .. } = err else {
            panic!("not invalid")
        };
        let msgs: Vec<String> = errors
            .iter()
            .map(|d| format!("{}:{}", d.line, d.message))
            .collect();
        assert_eq!(errors.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].starts_with("4:") && msgs[0].contains("getpdi"),
            "{msgs:?}"
        );
        assert!(
            errors[0].hint.as_deref().unwrap_or("").contains("getpid"),
            "{:?}",
            errors[0]
        );
        assert!(
            msgs[1].starts_with("5:") && msgs[1].contains("nope"),
            "{msgs:?}"
        );
        assert!(msgs[2].starts_with("6:"), "{msgs:?}");
    }

    /// Issue 13, item 6: io_uring's SOCKET, SPLICE and TEE operations skip
    /// seccomp, so io_uring is allowed only when recorded, and then the
    /// report says what escapes.
    #[test]
    fn io_uring_only_when_recorded_and_then_warned() {
        let plain = profile_of(&["read", "write", "socket", "socketpair"], &[1]);
        let (policy, report) = generate(&[(PathBuf::from("plain.json"), plain)], None);
        for n in IO_URING {
            assert!(!policy.seccomp.allows(n), "{n} allowed implicitly");
        }
        assert!(report.io_uring.is_empty() && report.io_uring_bypass.is_empty());
        assert!(
            !report.warnings.iter().any(|w| w.contains("io_uring")),
            "{:?}",
            report.warnings
        );

        let uring = profile_of(&["read", "io_uring_setup", "io_uring_enter"], &[1]);
        let (policy, report) = generate(&[(PathBuf::from("uring.json"), uring)], None);
        assert!(policy.seccomp.allows("io_uring_setup"));
        assert!(!policy.seccomp.allows("io_uring_register"));
        assert_eq!(report.io_uring, ["io_uring_setup", "io_uring_enter"]);
        assert_eq!(
            report.io_uring_bypass,
            ["IORING_OP_SOCKET", "IORING_OP_SPLICE", "IORING_OP_TEE"]
        );
        let w = report
            .warnings
            .iter()
            .find(|w| w.contains("io_uring_setup, io_uring_enter recorded"))
            .unwrap_or_else(|| panic!("no io_uring warning: {:?}", report.warnings));
        for op in ["IORING_OP_SOCKET", "IORING_OP_SPLICE", "IORING_OP_TEE"] {
            assert!(w.contains(op), "{w}");
        }
        // The JSON report carries both.
        let j = serde_json::to_value(&report).unwrap();
        assert_eq!(j["io_uring_bypass"][2], "IORING_OP_TEE");
    }

    #[test]
    fn io_uring_bypass_names_only_what_is_restricted() {
        let text = |allow: &str, sockets: &str| {
            format!("version = 1\n[seccomp]\nmode = \"enforce\"\nallow = [{allow}]\nsockets = [{sockets}]\n")
        };
        let sec = |allow: &str, sockets: &str| {
            Policy::parse(&text(allow, sockets), "p.toml")
                .unwrap()
                .policy
                .seccomp
        };
        // No io_uring: nothing escapes.
        assert!(sec("\"socket\"", "\"unix\"").io_uring_bypass().is_empty());
        assert!(sec("\"socket\"", "\"unix\"").io_uring_warning().is_none());
        // Everything io_uring could do is allowed anyway.
        assert!(sec(
            "\"socket\", \"splice\", \"tee\", \"io_uring_setup\"",
            "\"*\""
        )
        .io_uring_bypass()
        .is_empty());
        // Families restricted, splice allowed: SOCKET and TEE escape.
        assert_eq!(
            sec(
                "\"socket\", \"splice\", \"io_uring_enter\"",
                "\"unix\", \"inet\""
            )
            .io_uring_bypass(),
            ["IORING_OP_SOCKET", "IORING_OP_TEE"]
        );
        // socket(2) denied altogether: IORING_OP_SOCKET still creates sockets.
        let s = sec("\"io_uring_setup\", \"splice\", \"tee\"", "\"*\"");
        assert_eq!(s.io_uring_bypass(), ["IORING_OP_SOCKET"]);
        assert!(s
            .io_uring_warning()
            .unwrap()
            .contains("IORING_OP_SOCKET skip seccomp"));
    }

    #[test]
    fn wrong_schema_is_refused() {
        let mut p = profile_of(&["read"], &[]);
        p.schema = "kgate.profile/9".into();
        let text = serde_json::to_string(&p).unwrap();
        let err = Profile::from_json(&text, Path::new("p.json")).unwrap_err();
        assert!(err.to_string().contains("kgate.profile/1"), "{err}");
    }

    #[test]
    fn ia32_syscalls_warn_and_older_profiles_read() {
        let mut p = profile_of(&["read"], &[]);
        p.ia32_syscalls.push(SyscallCount {
            name: None,
            nr: 20,
            count: 3,
        });
        let (_, report) = generate(&[(PathBuf::from("p32.json"), p.clone())], None);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("p32.json has 3 ia32")),
            "{:?}",
            report.warnings
        );
        // A profile written before ia32_syscalls existed still reads.
        let mut v: serde_json::Value = serde_json::to_value(&p).unwrap();
        v.as_object_mut().unwrap().remove("ia32_syscalls");
        let back = Profile::from_json(&v.to_string(), Path::new("old.json")).unwrap();
        assert!(back.ia32_syscalls.is_empty());
    }
}
