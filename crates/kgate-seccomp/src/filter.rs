//! Classic-BPF seccomp filters from a [`FilterSpec`].
//!
//! Layout of a program:
//!
//! ```text
//! ld  [arch]
//! jeq AUDIT_ARCH_X86_64, +1        ; other ABIs (i386 int 0x80, ...) are denied
//! ret DENY
//! ld  [nr]
//! <binary search over the syscall-number intervals, JGE only>
//!   leaf: ret ALLOW | ret DENY | socket block
//! socket block (inline at the leaf of socket and of socketpair):
//!   ld [args[0] low word]; jeq AF_a, ->allow; jeq AF_b, ->allow; ...; ret DENY_FAMILY; ret ALLOW
//! ```
//!
//! `socketpair(2)` is family-checked exactly like `socket(2)`: the kernel
//! creates both sockets of the pair, autoloading the family's module,
//! before a family without pairs (vsock, inet) refuses with EOPNOTSUPP.
//! Only the x86_64 ABI reaches either check: other `arch` values (i386,
//! whose `socketcall(2)` hides the family behind a pointer) are denied at
//! the top, and x32 numbers (`0x40000000 | nr`, same `arch`) are never in
//! the allowlist, so they get the default deny.
//!
//! Only `ld` of `nr`/`arch`, `jge`/`jeq` against constants, `ja` and `ret`
//! are on every path to an argument-free leaf, so the kernel's
//! `seccomp_cache_prepare` proves every allowed syscall but `socket` and
//! `socketpair` constant-ALLOW (see [`crate::emulate`]). Adjacent syscall numbers with
//! the same action are merged into one interval first, so the tree has one
//! leaf per run, not per syscall.

use std::collections::BTreeSet;

use kgate_policy::{Mode, SeccompSection};

/// `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant.
    pub k: u32,
}

/// Classic BPF opcodes used here (`linux/filter.h`).
pub mod op {
    /// `BPF_LD | BPF_W | BPF_ABS`.
    pub const LD_W_ABS: u16 = 0x20;
    /// `BPF_JMP | BPF_JA`.
    pub const JA: u16 = 0x05;
    /// `BPF_JMP | BPF_JEQ | BPF_K`.
    pub const JEQ_K: u16 = 0x15;
    /// `BPF_JMP | BPF_JGT | BPF_K`.
    pub const JGT_K: u16 = 0x25;
    /// `BPF_JMP | BPF_JGE | BPF_K`.
    pub const JGE_K: u16 = 0x35;
    /// `BPF_JMP | BPF_JSET | BPF_K`.
    pub const JSET_K: u16 = 0x45;
    /// `BPF_RET | BPF_K`.
    pub const RET_K: u16 = 0x06;
    /// `BPF_ALU | BPF_AND | BPF_K`.
    pub const AND_K: u16 = 0x54;
}

/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_LOG`.
pub const RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ERRNO` (the errno goes in the low 16 bits).
pub const RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_KILL_PROCESS`.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `AUDIT_ARCH_X86_64`.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// The kernel's limit on one program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// `EAFNOSUPPORT`: what `socket(2)` of a denied family returns, the same
/// error as on a kernel without that family, which callers already handle.
pub const EAFNOSUPPORT: u32 = 97;

/// Offsets in `struct seccomp_data`.
pub mod data {
    /// `nr`.
    pub const NR: u32 = 0;
    /// `arch`.
    pub const ARCH: u32 = 4;
    /// `args[i]`, low 32 bits (little-endian).
    pub const fn arg_lo(i: u32) -> u32 {
        16 + 8 * i
    }
}

/// x86_64 `socket`.
pub const NR_SOCKET: u32 = 41;
/// x86_64 `socketpair`.
pub const NR_SOCKETPAIR: u32 = 53;
/// The x86_64 syscalls checked by their family argument (argument 0).
pub const FAMILY_CHECKED: [u32; 2] = [NR_SOCKET, NR_SOCKETPAIR];
/// The bit x32 syscall numbers carry (`__X32_SYSCALL_BIT`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What a denied call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deny {
    /// Fail with this errno.
    Errno(u32),
    /// Log (`SECCOMP_RET_LOG`) and allow: audit mode.
    Log,
}

impl Deny {
    /// The return value for a denied syscall.
    pub fn ret(self) -> u32 {
        match self {
            Deny::Errno(e) => RET_ERRNO | (e & 0xffff),
            Deny::Log => RET_LOG,
        }
    }

    /// The return value for `socket(2)` or `socketpair(2)` of a denied
    /// family.
    pub fn ret_family(self) -> u32 {
        match self {
            Deny::Errno(_) => RET_ERRNO | EAFNOSUPPORT,
            Deny::Log => RET_LOG,
        }
    }
}

/// What to build: allowed x86_64 syscall numbers, the socket families
/// `socket(2)` and `socketpair(2)` may create, and what everything else
/// gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    /// Allowed syscall numbers (x86_64).
    pub allow: BTreeSet<u32>,
    /// When `socket` or `socketpair` is allowed: the families they may
    /// create; `None` = any.
    pub socket_families: Option<BTreeSet<u32>>,
    /// What denied calls get.
    pub deny: Deny,
}

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The section is missing or `mode = "off"`.
    #[error("the policy's [seccomp] section is off or missing: generate one with `kgate policy generate --from PROFILE`, or set mode = \"enforce\"")]
    Off,
    /// Too long for the kernel.
    #[error("the filter has {len} instructions, more than the kernel's limit of {MAX_INSNS}")]
    TooLong {
        /// Its length.
        len: usize,
    },
}

impl FilterSpec {
    /// The spec of a policy's `[seccomp]` section. `audit` forces audit
    /// mode; `errno` overrides `on_deny`. Names are x86_64 syscall names
    /// (the parser has checked them).
    pub fn from_section(
        s: &SeccompSection,
        audit: bool,
        errno: Option<kgate_policy::SeccompErrno>,
    ) -> Result<FilterSpec, FilterError> {
        let deny = match (s.mode, audit) {
            (Mode::Off, false) => return Err(FilterError::Off),
            (Mode::Audit, _) | (_, true) => Deny::Log,
            _ => Deny::Errno(errno.unwrap_or(s.on_deny).errno()),
        };
        let mut allow: BTreeSet<u32> = s
            .allow
            .iter()
            .filter_map(|e| kgate_policy::syscall::number(&e.value))
            .collect();
        // kgate run execs after installing the filter.
        allow.extend(
            kgate_policy::profile::ALWAYS_ALLOWED
                .iter()
                .filter_map(|n| kgate_policy::syscall::number(n)),
        );
        Ok(FilterSpec {
            allow,
            socket_families: s
                .socket_families()
                .map(|v| v.into_iter().collect::<BTreeSet<u32>>()),
            deny,
        })
    }

    /// Build the program.
    pub fn build(&self) -> Result<Vec<SockFilter>, FilterError> {
        let deny = self.deny.ret();
        let mut prog = vec![
            stmt(op::LD_W_ABS, data::ARCH),
            jump(op::JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
            stmt(op::RET_K, deny),
            stmt(op::LD_W_ABS, data::NR),
        ];
        prog.extend(self.tree(&self.intervals()));
        if prog.len() > MAX_INSNS {
            return Err(FilterError::TooLong { len: prog.len() });
        }
        Ok(prog)
    }

    /// The action of one syscall number.
    fn leaf_of(&self, nr: u32) -> Leaf {
        if !self.allow.contains(&nr) {
            Leaf::Deny
        } else if FAMILY_CHECKED.contains(&nr) && self.socket_families.is_some() {
            Leaf::Socket
        } else {
            Leaf::Allow
        }
    }

    /// `(first number, action)` of each maximal run, covering 0..=u32::MAX.
    fn intervals(&self) -> Vec<(u32, Leaf)> {
        let mut points: BTreeSet<u32> = BTreeSet::new();
        for &nr in &self.allow {
            points.insert(nr);
            if let Some(n) = nr.checked_add(1) {
                points.insert(n);
            }
        }
        points.insert(0);
        let mut out: Vec<(u32, Leaf)> = Vec::new();
        for p in points {
            let leaf = self.leaf_of(p);
            if out.last().map(|l| l.1) != Some(leaf) {
                out.push((p, leaf));
            }
        }
        out
    }

    fn tree(&self, iv: &[(u32, Leaf)]) -> Vec<SockFilter> {
        if iv.len() == 1 {
            return self.leaf(iv[0].1);
        }
        let mid = iv.len() / 2;
        let left = self.tree(&iv[..mid]);
        let right = self.tree(&iv[mid..]);
        let k = iv[mid].0;
        let mut out = Vec::with_capacity(left.len() + right.len() + 2);
        match u8::try_from(left.len()) {
            Ok(skip) => out.push(jump(op::JGE_K, k, skip, 0)),
            Err(_) => {
                out.push(jump(op::JGE_K, k, 0, 1));
                out.push(stmt(op::JA, left.len() as u32));
            }
        }
        out.extend(left);
        out.extend(right);
        out
    }

    fn leaf(&self, leaf: Leaf) -> Vec<SockFilter> {
        match leaf {
            Leaf::Allow => vec![stmt(op::RET_K, RET_ALLOW)],
            Leaf::Deny => vec![stmt(op::RET_K, self.deny.ret())],
            Leaf::Socket => {
                let fams: Vec<u32> = self
                    .socket_families
                    .as_ref()
                    .map(|f| f.iter().copied().collect())
                    .unwrap_or_default();
                if fams.is_empty() {
                    return vec![stmt(op::RET_K, self.deny.ret_family())];
                }
                let n = fams.len();
                let mut out = vec![stmt(op::LD_W_ABS, data::arg_lo(0))];
                for (i, f) in fams.iter().enumerate() {
                    // To `ret ALLOW`: over the remaining compares and the deny.
                    out.push(jump(op::JEQ_K, *f, (n - i) as u8, 0));
                }
                out.push(stmt(op::RET_K, self.deny.ret_family()));
                out.push(stmt(op::RET_K, RET_ALLOW));
                out
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Allow,
    Deny,
    Socket,
}

/// A non-jump instruction.
pub const fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A conditional jump.
pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// The program as the kernel's byte layout (8 bytes per instruction).
pub fn to_bytes(prog: &[SockFilter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// Parse the kernel's byte layout (e.g. libseccomp's `seccomp_export_bpf`).
pub fn from_bytes(bytes: &[u8]) -> Vec<SockFilter> {
    bytes
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}
