//! What the kernel supports: which hooks exist here, and a trial load.

use std::mem::MaybeUninit;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use serde::Serialize;

use crate::hook::{hook_prog, Hook};
use crate::skel::KgateSkelBuilder;
use crate::BpfError;

/// BPF-LSM works here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Support {
    /// `uname -r`.
    pub release: String,
    /// Hooks a program can attach to here (`userns_create` needs 6.1+).
    pub hooks: Vec<Hook>,
}

pub(crate) const ROOT_HINT: &str =
    "kgate must run as root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)";

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
pub(crate) fn available_hooks() -> Vec<Hook> {
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
pub(crate) fn complete_groups(hooks: Vec<Hook>) -> Vec<Hook> {
    hooks
        .iter()
        .copied()
        .filter(|h| h.group().iter().all(|g| hooks.contains(g)))
        .collect()
}

/// The functions on the kernel's error-injection list (debugfs), `None`
/// when it cannot be read.
pub(crate) fn error_injection_list() -> Option<Vec<String>> {
    let text = std::fs::read_to_string("/sys/kernel/debug/error_injection/list").ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect(),
    )
}

pub(crate) fn release() -> String {
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

pub(crate) fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
