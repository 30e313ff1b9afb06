//! Remove kgate's pins, and wait until the kernel has detached the
//! programs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hook::Hook;
use crate::pins::{link_ids, link_pin, map_pin, pinned_maps, prog_pin};
use crate::BpfError;

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
    paths.extend(pinned_maps().map(|m| map_pin(pin_dir, m)));
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

/// Does the program with this id still exist? The kernel drops a program
/// only after every link to it has been released, i.e. after the LSM
/// trampoline no longer calls it; a link id, by contrast, is freed before
/// the release runs.
pub(crate) fn prog_alive(id: u32) -> bool {
    // SAFETY: plain syscall wrapper; a returned fd is ours to close.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just returned to us and is closed exactly once.
    unsafe { libc::close(fd) };
    true
}

/// Does the link with this id still exist (attached)?
pub(crate) fn link_alive(id: u32) -> bool {
    // SAFETY: plain syscall wrapper; a returned fd is ours to close.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_link_get_fd_by_id(id) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just returned to us and is closed exactly once.
    unsafe { libc::close(fd) };
    true
}
