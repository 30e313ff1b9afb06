//! BPF-LSM enforcement of kgate policies (issue 4): module autoload
//! (`lsm/kernel_module_request`), socket families (`lsm/socket_create`)
//! and user namespaces (`lsm/userns_create`, 6.1+), decided per request in
//! the kernel, with audit events and per-verdict counters.
//!
//! ```no_run
//! use std::path::Path;
//! use kgate_bpf::{BpfPolicy, DEFAULT_PIN_DIR};
//! kgate_bpf::probe()?;                      // can this host run BPF-LSM?
//! # let policy = BpfPolicy::default();
//! let report = kgate_bpf::apply(&policy, Path::new(DEFAULT_PIN_DIR))?;
//! let status = kgate_bpf::status(Path::new(DEFAULT_PIN_DIR))?;
//! kgate_bpf::revert(Path::new(DEFAULT_PIN_DIR))?;
//! # Ok::<(), kgate_bpf::BpfError>(())
//! ```
//!
//! # Design
//!
//! * **One object, one file per concern.** `src/bpf/kgate.bpf.c` holds the
//!   shared maps and `#include`s `modules.bpf.c`, `sockets.bpf.c` and
//!   `userns.bpf.c`. Three objects would each get their own copy of the
//!   config, event ring buffer and counter maps; sharing them needs
//!   `reuse_fd`/pin-by-name plumbing on every load and makes an atomic
//!   policy swap span three objects. One skeleton keeps one set of maps.
//!   A kernel without the `userns_create` hook (before 6.1) loads the
//!   other two programs (`autoload` off for the third).
//! * **CO-RE with a hand-written type subset** (`src/bpf/vmlinux_min.h`):
//!   the six structs and the fields actually read, each
//!   `preserve_access_index`, relocated by libbpf against the running
//!   kernel's BTF. Nothing generated from the build host's kernel is
//!   needed, so a fresh machine builds with clang alone (libbpf's headers
//!   come with libbpf-cargo).
//! * **Atomic policy swap by generation.** Every policy map key, and the
//!   two-entry config array, carries a generation bit; `kg_active` names
//!   the live one. Re-apply fills the inactive generation (after deleting
//!   its stale entries), then flips `kg_active` with one 4-byte map write:
//!   a hook sees the whole old or the whole new policy. The programs and
//!   links stay attached throughout (no detach window). `HASH_OF_MAPS` would
//!   do the same with a map per generation, at the cost of creating inner
//!   maps from userspace with layouts duplicated outside the skeleton.
//! * **Pinned**: programs, links and maps under the pin directory
//!   (`/sys/fs/bpf/kgate`), so enforcement outlives the loader; a pinned
//!   link detaches only when its pin is removed ([`revert`]).
//! * **Who is privileged**: a task holding the section's capability in the
//!   initial user namespace (`CAP_SYS_MODULE` modules, `CAP_NET_ADMIN`
//!   sockets, `CAP_SYS_ADMIN` userns and splice), never uid 0: root in a
//!   default container and root inside a user namespace are unprivileged.
//!   Crypto manager threads act for the task whose lookup started them.
//! * **userns exceptions by (device, inode)** of `current->mm->exe_file`,
//!   and its change time, filled from `stat()` of each `allow_exe` path at
//!   apply time (`bpf_d_path` is not allowed in `userns_create`). A replaced
//!   or changed binary (package update) no longer matches: re-apply after
//!   updates (`kgate status` names stale entries). On btrfs
//!   subvolumes `st_dev` differs from the superblock's device and the
//!   exception does not match (documented limit).
//!
//! # Limits
//!
//! * Explicit loads (`modprobe`, `insmod`: `finit_module` or, for kmod
//!   before 31 with compressed modules, `init_module`) do not pass through
//!   `kernel_module_request`. kgate gates them at `kernel_read_file`
//!   (the file name, up to its first `.`) and `kernel_post_load_data` (the
//!   name in the image's `.gnu.linkonce.this_module`, as the kernel reads
//!   it), by the same `modules.root` rule. An image whose name cannot be
//!   read is treated as not listed. Only tasks with `CAP_SYS_MODULE` reach
//!   these hooks: this gates root, not attackers who already are root
//!   (root can detach BPF programs).
//! * Requests matching only glob aliases (hardware: `pci:`, `usb:`, ...)
//!   are not in the allowlist map (see [`BpfPolicy::from_policy`]).
//! * The event's executable is the file name of `exe_file` (no directory).

#![deny(missing_docs)]

mod abi;
mod attach;
mod entries;
mod events;
mod hook;
mod pindir;
mod pins;
mod policy;
mod probe;
pub mod record;
mod revert;
pub mod selftest;
pub mod splice;
mod status;

#[allow(
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/kgate.skel.rs"));
}

use std::path::PathBuf;

pub use attach::{apply, exe_key_of, ApplyReport};
pub use events::{decode_event, events, DecodeError, Event, EventsSummary, Request};
pub use hook::{Hook, Rule, Verdict};
pub use pindir::{bpffs_mode, bpffs_recommendation};
pub use pins::is_applied;
pub use policy::{
    concrete_key, endpoint_key, BpfPolicy, EndpointKey, ModulesRules, RootMode, SectionMode,
    SocketMatch, SocketsRules, SpliceRules, UsernsMode, UsernsRules, MAX_REQUEST_LEN,
};
pub use probe::{probe, Support};
pub use revert::revert;
pub use status::{status, Counters, HookStatus, RunStats, Status};

/// Where `kgate` pins its programs, links and maps.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/kgate";

/// Let libbpf print its own diagnostics (verifier logs, load errors) on
/// stderr, or silence them. kgate's errors already say what failed and what
/// to do; the raw logs are for debugging (`KGATE_DEBUG=1` in the CLI).
pub fn libbpf_logging(on: bool) {
    if on {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Warn, |_, msg| {
            eprint!("{msg}")
        })));
    } else {
        libbpf_rs::set_print(None);
    }
}

/// What failed, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BpfError {
    /// BPF-LSM cannot be used on this host.
    #[error("BPF-LSM enforcement is not available on this host: {reason}. Use `--backend modprobe` instead")]
    NotSupported {
        /// Why, and how to fix it.
        reason: String,
    },
    /// The policy cannot be enforced as is; nothing was changed.
    #[error("the policy cannot be loaded into BPF maps, nothing was changed: {}", problems.join("; "))]
    InvalidPolicy {
        /// Each problem, naming the entry.
        problems: Vec<String>,
    },
    /// A BPF operation failed.
    #[error("{what}: {source}{}", hint.map(|h| format!(" ({h})")).unwrap_or_default())]
    Bpf {
        /// What kgate was doing.
        what: String,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
        /// What to do, when known.
        hint: Option<&'static str>,
    },
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What kgate was doing.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing is pinned there.
    #[error("kgate's BPF-LSM enforcement is not applied ({} holds no kgate links): run `kgate apply --backend bpf-lsm` first", pin_dir.display())]
    NotApplied {
        /// The pin directory.
        pin_dir: PathBuf,
    },
    /// A hook is attached but does not enforce (the self-test).
    #[error("the BPF-LSM self-test failed, so the policy is not enforced by BPF-LSM{}: {}. Check `cat /sys/kernel/security/lsm` (it must list bpf; add `lsm=...,bpf` to the kernel command line), or use `--backend modprobe`",
        if *detached { " (kgate detached what it had attached)" } else { " (the programs stay attached from before; the new policy is in their maps)" },
        broken.join("; "))]
    SelfTest {
        /// What is broken, per hook.
        broken: Vec<String>,
        /// Whether kgate detached the programs it had just attached.
        detached: bool,
    },
    /// The pin directory exists but is not root's alone: another user
    /// could remove kgate's pins (detaching enforcement) or plant links.
    #[error(
        "the pin directory {} is not safe to use: {why}. Remove it (`rm -r {}`) and mount bpffs \
         with mode=0700 (`mount -o remount,mode=0700 {}`) so that only root can create it; \
         then apply again",
        path.display(), path.display(), parent.display()
    )]
    UnsafePinDir {
        /// The pin directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
        /// The bpffs mount it lives on.
        parent: PathBuf,
    },
    /// The pinned state is partial or from another kgate version.
    #[error("the pinned state under {} is not usable: {what}. Run `kgate revert` and apply again", pin_dir.display())]
    Inconsistent {
        /// The pin directory.
        pin_dir: PathBuf,
        /// What is wrong.
        what: String,
    },
}
