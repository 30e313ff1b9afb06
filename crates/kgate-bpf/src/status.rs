//! What is enforced now: attached hooks, the policy's modes and hash,
//! per-hook decision counters and the kernel's run statistics.

use std::path::{Path, PathBuf};

use libbpf_rs::{Link, MapCore, MapFlags};
use serde::Serialize;

use crate::abi;
use crate::attach::read_active;
use crate::hook::Hook;
use crate::pins::{bpf_err, is_applied, link_ids, link_pin, map, open_pinned};
use crate::policy::{RootMode, SectionMode, UsernsMode};
use crate::BpfError;

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

pub(crate) fn sum_percpu(map: &dyn MapCore, idx: u32) -> Result<u64, BpfError> {
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
    let active = open_pinned(pin_dir, map::ACTIVE)?;
    let config = open_pinned(pin_dir, map::CONFIG)?;
    let counters = open_pinned(pin_dir, map::COUNTERS)?;
    let drops = open_pinned(pin_dir, map::DROPS)?;
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

/// Run statistics of the program with this id.
pub(crate) fn prog_run_stats(id: u32) -> Option<RunStats> {
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
