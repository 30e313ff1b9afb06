//! Per-workload seccomp for kgate (issue 6): a classic-BPF filter from a
//! policy's `[seccomp]` section ([`FilterSpec`]), apply-and-exec
//! ([`exec::exec`], used by `kgate run`), exports for OCI runtimes,
//! Docker, podman, systemd and the Security Profiles Operator
//! ([`export::export`]), and Docker/podman profiles as a baseline to
//! compare with ([`baseline`]).
//!
//! ```
//! use kgate_seccomp::{emulate, filter::{FilterSpec, Deny, AUDIT_ARCH_X86_64}};
//! let spec = FilterSpec {
//!     allow: [0, 1, 39, 60, 231].into_iter().collect(), // read write getpid exit exit_group
//!     socket_families: None,
//!     deny: Deny::Errno(1),
//! };
//! let prog = spec.build()?;
//! assert!(emulate::const_allow(&prog, 39, AUDIT_ARCH_X86_64));   // cached by the kernel
//! assert!(!emulate::const_allow(&prog, 40, AUDIT_ARCH_X86_64));  // sendfile: denied
//! # Ok::<(), kgate_seccomp::filter::FilterError>(())
//! ```
//!
//! # Why a builder of our own
//!
//! Measured on the development VM (`bench/RESULTS.md`, issue 6): for the
//! same allowlist, libseccomp 2.5's binary-tree output
//! (`SCMP_FLTATR_CTL_OPTIMIZE=2`) and this builder cost the same per cached
//! syscall (the kernel's action cache skips both programs), and this
//! builder's program is shorter and runs fewer instructions on uncached
//! paths (it merges runs of adjacent numbers and checks the architecture
//! once). It needs no C library at run time, and its output is plain data
//! that tests can emulate exactly like the kernel does.
//!
//! # Compatibility
//!
//! x86_64 only (the recorder's syscall numbers are x86_64's). Other ABIs
//! entering the kernel (i386 via `int 0x80`, x32) are denied. Needs
//! `CONFIG_SECCOMP_FILTER` (every distribution kernel); the action cache
//! needs Linux 5.11 or later, and is an optimisation only.
//!
//! # Tests
//!
//! Pure tests emulate generated programs (including the kernel's cache
//! check for every x86_64 syscall number) and compare them with
//! libseccomp's output for the same allowlist; filters are installed for
//! real in forked children (irreversible for the process that installs
//! them). The CLI tests run `kgate run` and the exports under crun and
//! `systemd-analyze verify`.

#![deny(missing_docs)]

pub mod baseline;
pub mod emulate;
pub mod exec;
pub mod export;
pub mod filter;

pub use filter::{Deny, FilterError, FilterSpec, SockFilter};

#[cfg(test)]
mod tests;
