//! A classic-BPF interpreter for seccomp programs, and a mirror of the
//! kernel's action-cache check.
//!
//! Since Linux 5.11 `seccomp_cache_prepare` (kernel/seccomp.c) emulates a
//! new filter once per syscall number of each ABI with only `nr` and
//! `arch` known: a path that loads anything else (an argument, the
//! instruction pointer) is "not constant"; a path that reaches
//! `ret SECCOMP_RET_ALLOW` marks the number allowed in a bitmap, and the
//! kernel then skips running any filter for it. [`const_allow`] follows
//! the same rules, instruction by instruction, so a test can prove which
//! syscalls of a generated program the kernel will cache.

use crate::filter::{data, op, SockFilter, RET_ALLOW};

/// `struct seccomp_data` for [`run`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeccompData {
    /// Syscall number.
    pub nr: u32,
    /// `AUDIT_ARCH_*`.
    pub arch: u32,
    /// Instruction pointer.
    pub ip: u64,
    /// Arguments.
    pub args: [u64; 6],
}

impl SeccompData {
    fn word(&self, off: u32) -> Option<u32> {
        Some(match off {
            0 => self.nr,
            4 => self.arch,
            8 => self.ip as u32,
            12 => (self.ip >> 32) as u32,
            o if (16..64).contains(&o) && o % 4 == 0 => {
                let a = self.args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => return None,
        })
    }
}

/// Why [`run`] stopped without a return value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// An opcode this interpreter does not know.
    #[error("unsupported opcode {code:#x} at {pc}")]
    Opcode {
        /// Opcode.
        code: u16,
        /// Position.
        pc: usize,
    },
    /// A load outside `seccomp_data`.
    #[error("bad load offset {off} at {pc}")]
    Load {
        /// Offset.
        off: u32,
        /// Position.
        pc: usize,
    },
    /// Fell off the end.
    #[error("ran off the end of the program")]
    End,
}

/// Run the program on `d`; returns the seccomp return value and how many
/// instructions ran.
pub fn run(prog: &[SockFilter], d: &SeccompData) -> Result<(u32, usize), RunError> {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0usize;
    while pc < prog.len() {
        let i = prog[pc];
        steps += 1;
        match i.code {
            op::LD_W_ABS => a = d.word(i.k).ok_or(RunError::Load { off: i.k, pc })?,
            op::RET_K => return Ok((i.k, steps)),
            op::JA => pc += i.k as usize,
            op::JEQ_K | op::JGE_K | op::JGT_K | op::JSET_K => {
                let t = match i.code {
                    op::JEQ_K => a == i.k,
                    op::JGE_K => a >= i.k,
                    op::JGT_K => a > i.k,
                    _ => a & i.k != 0,
                };
                pc += usize::from(if t { i.jt } else { i.jf });
            }
            op::AND_K => a &= i.k,
            code => return Err(RunError::Opcode { code, pc }),
        }
        pc += 1;
    }
    Err(RunError::End)
}

/// The kernel's `seccomp_is_const_allow`: does every path for `(nr, arch)`
/// reach `ret SECCOMP_RET_ALLOW` while reading only `nr` and `arch`?
pub fn const_allow(prog: &[SockFilter], nr: u32, arch: u32) -> bool {
    let mut reg: u32 = 0;
    let mut pc = 0usize;
    while pc < prog.len() {
        let i = prog[pc];
        match i.code {
            op::LD_W_ABS => match i.k {
                data::NR => reg = nr,
                data::ARCH => reg = arch,
                // Not constant: the kernel gives up on this number.
                _ => return false,
            },
            op::RET_K => return i.k == RET_ALLOW,
            op::JA => pc += i.k as usize,
            op::JEQ_K | op::JGE_K | op::JGT_K | op::JSET_K => {
                let t = match i.code {
                    op::JEQ_K => reg == i.k,
                    op::JGE_K => reg >= i.k,
                    op::JGT_K => reg > i.k,
                    _ => reg & i.k != 0,
                };
                pc += usize::from(if t { i.jt } else { i.jf });
            }
            op::AND_K => reg &= i.k,
            _ => return false,
        }
        pc += 1;
    }
    false
}

/// The numbers `0..n` the kernel would cache as allowed for `arch`.
pub fn cache_bitmap(prog: &[SockFilter], n: u32, arch: u32) -> Vec<bool> {
    (0..n).map(|nr| const_allow(prog, nr, arch)).collect()
}
