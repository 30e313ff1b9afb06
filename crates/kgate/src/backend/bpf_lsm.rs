//! The bpf-lsm backend from the CLI: `kgate apply --backend bpf-lsm`, its
//! part of `kgate revert`, and what kgate's BPF state on this host says
//! (pins, `allow_exe` records, splice enforcement, namespaced processes)
//! for `kgate status` and `kgate survey`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use kgate_bpf::{BpfError, BpfPolicy};
use kgate_policy::Loaded;

use super::sections::{row, seccomp_row, sysctl_row, SectionRow};
use crate::target::Target;

/// Where the programs, links and maps are pinned.
pub fn pin_dir() -> PathBuf {
    PathBuf::from(kgate_bpf::DEFAULT_PIN_DIR)
}

/// What to do about the mode of the bpffs mount holding the pin
/// directory, when it is not 0700.
pub fn bpffs_recommendation() -> Option<String> {
    let pins = pin_dir();
    let parent = pins.parent()?;
    kgate_bpf::bpffs_recommendation(parent, kgate_bpf::bpffs_mode(parent)?)
}

/// Apply `loaded` with BPF-LSM: programs attached and pinned on the first
/// apply, an atomic policy swap afterwards; then `[sysctl]` through
/// `sysctl_plan` (sysctl.d and /proc/sys, recorded for `kgate revert`).
/// Both are checked before anything changes; the BPF part goes first, so
/// a failed attach leaves the sysctls untouched, and a failed sysctl write
/// is rolled back and reported with what stays applied. Returns the
/// section table.
pub fn apply(
    loaded: &Loaded,
    t: &Target,
    dry_run: bool,
    sysctl_plan: &kgate_apply::Plan,
    out: &mut dyn Write,
) -> Result<Vec<SectionRow>> {
    let policy = BpfPolicy::from_policy(&loaded.policy, &t.tree);
    // Everything that can be checked is checked before the kernel is touched.
    policy.validate()?;
    for w in policy.warnings() {
        writeln!(out, "warning: {w}")?;
    }
    for w in sysctl_plan.warnings() {
        writeln!(out, "warning: {w}")?;
    }
    if let Some(r) = bpffs_recommendation() {
        writeln!(out, "recommendation: {r}")?;
    }
    writeln!(
        out,
        "bpf-lsm: modules {:?} (root {:?}), {} allowed request strings; sockets {:?}, {} patterns; userns {:?}, {} exceptions",
        policy.modules.mode,
        policy.modules.root_mode,
        policy.modules.allowed_requests.len(),
        policy.sockets.mode,
        policy.sockets.allow.len(),
        policy.userns.mode,
        policy.userns.allow_exe.len(),
    )?;
    if dry_run {
        let state = match kgate_bpf::status(&pin_dir()) {
            Ok(s) => format!("replaces policy {} (generation {})", s.hash, s.generation),
            Err(_) => "would load, attach and pin the programs".to_owned(),
        };
        writeln!(out, "Dry run: {state}.")?;
        if !sysctl_plan.is_noop() {
            write!(out, "{}", sysctl_plan.diff())?;
        }
        writeln!(out, "Dry run: nothing was changed.")?;
        return Ok(section_rows(
            &loaded.policy,
            &policy,
            None,
            sysctl_plan,
            None,
        ));
    }
    let r = kgate_bpf::apply(&policy, &pin_dir())
        .context("BPF-LSM enforcement could not be applied; nothing was changed (no sysctl set)")?;
    writeln!(
        out,
        "applied: attached_now={} hooks={:?} generation={} hash={} module_requests={} socket_patterns={} userns_exe={}",
        r.attached_now,
        r.hooks,
        r.generation,
        r.hash,
        r.module_requests,
        r.socket_patterns,
        r.userns_exe
    )?;
    for c in &r.selftest {
        let state = match &c.state {
            kgate_bpf::selftest::CheckState::Works => "works (denied a test request)".to_owned(),
            kgate_bpf::selftest::CheckState::Broken(why) => format!("BROKEN: {why}"),
            kgate_bpf::selftest::CheckState::NotTested(why) => format!("not tested: {why}"),
        };
        writeln!(out, "self-test {}: {state}", c.hook.attach_point())?;
    }
    record_allow_exe(&policy.userns.allow_exe);
    for (path, why) in &r.skipped_exe {
        writeln!(
            out,
            "warning: userns.allow_exe {}: {why}; it matches nothing",
            path.display()
        )?;
    }
    let set = if sysctl_plan.is_noop() {
        Vec::new()
    } else {
        match kgate_apply::apply(sysctl_plan, sysctl_plan.root(), false) {
            Ok(rep) => {
                for p in &rep.written {
                    writeln!(out, "wrote {}", p.display())?;
                }
                for s in &rep.sysctls_set {
                    writeln!(out, "set {} = {} (was {})", s.name, s.new, s.old)?;
                }
                rep.sysctls_set
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "BPF-LSM enforcement is applied (pinned under {}; undo with `kgate revert --backend bpf-lsm`), \
                     but the [sysctl] section could not be put in force and was rolled back: no sysctl was left changed",
                    pin_dir().display()
                )))
            }
        }
    };
    writeln!(
        out,
        "Enforcement is pinned under {} and outlives kgate. Watch it with `kgate events --follow`; undo with `kgate revert`.",
        pin_dir().display()
    )?;
    Ok(section_rows(
        &loaded.policy,
        &policy,
        Some(&r.hooks),
        sysctl_plan,
        Some(&set),
    ))
}

/// The row of a section the BPF programs enforce: every hook of the
/// section ([`kgate_bpf::Hook::section`]), which of them are missing
/// (`attached`: `None` in a dry run), and the state that follows.
fn bpf_row(
    section: &'static str,
    mode: kgate_bpf::SectionMode,
    attached: Option<&[kgate_bpf::Hook]>,
) -> SectionRow {
    use kgate_bpf::{Hook, SectionMode};
    let hooks: Vec<Hook> = Hook::ALL
        .into_iter()
        .filter(|h| h.section() == section)
        .collect();
    let required: Vec<&str> = hooks
        .iter()
        .filter(|h| !h.optional())
        .map(|h| h.lsm_name())
        .collect();
    let mut r = row(
        section,
        &format!("bpf-lsm ({})", required.join(", ")),
        String::new(),
    );
    r.hooks = hooks.iter().map(|h| h.attach_point()).collect();
    let base = match mode {
        SectionMode::Enforce => "enforced",
        SectionMode::Audit => "audit only (logs, denies nothing)",
        SectionMode::Off => {
            r.state = "off (mode = \"off\" in the policy)".into();
            return r;
        }
    };
    let Some(attached) = attached else {
        r.state = format!("would be {base}");
        return r;
    };
    let missing: Vec<Hook> = hooks
        .iter()
        .copied()
        .filter(|h| !attached.contains(h))
        .collect();
    r.missing = missing.iter().map(|h| h.attach_point()).collect();
    r.state = if missing.is_empty() {
        base.to_owned()
    } else if missing.iter().any(|h| !h.optional()) {
        format!("NOT {base}: {} not attached", r.missing.join(", "))
    } else {
        format!(
            "{base}; not on this kernel: {} (see `kgate status`)",
            r.missing.join(", ")
        )
    };
    r
}

/// The section table of the bpf-lsm backend. `hooks`: attached hooks
/// (`None`: dry run); `set`: sysctls changed now.
fn section_rows(
    p: &kgate_policy::Policy,
    b: &BpfPolicy,
    hooks: Option<&[kgate_bpf::Hook]>,
    sysctl_plan: &kgate_apply::Plan,
    set: Option<&[kgate_apply::SysctlChange]>,
) -> Vec<SectionRow> {
    use kgate_bpf::SectionMode;
    let userns_mode = match b.userns.mode {
        kgate_bpf::UsernsMode::Allow => SectionMode::Off,
        kgate_bpf::UsernsMode::Audit => SectionMode::Audit,
        kgate_bpf::UsernsMode::Deny => SectionMode::Enforce,
    };
    vec![
        bpf_row("modules", b.modules.mode, hooks),
        bpf_row("sockets", b.sockets.mode, hooks),
        bpf_row("splice", b.splice.mode, hooks),
        bpf_row("userns", userns_mode, hooks),
        sysctl_row(p, sysctl_plan, set),
        seccomp_row(p),
    ]
}

/// Where apply records the `allow_exe` files as the kernel identifies them
/// (device, inode, change time), so that `status` can tell when one was
/// replaced or changed: /run, which goes with the pins at reboot.
const ALLOW_EXE_RECORD: &str = "run/kgate/bpf-allow-exe";

fn record_allow_exe<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) {
    let mut text = String::new();
    for p in paths {
        if let Ok((dev, ino, sec, nsec)) = kgate_bpf::exe_key_of(p) {
            text.push_str(&format!("{dev} {ino} {sec} {nsec} {}\n", p.display()));
        }
    }
    if let Err(e) =
        kgate_apply::atomic::write(Path::new("/"), Path::new(ALLOW_EXE_RECORD), text.as_bytes())
    {
        eprintln!("warning: cannot record the allow_exe keys for `kgate status` ({e})");
    }
}

/// The `allow_exe` paths whose file is no longer the one applied.
pub fn stale_allow_exe() -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(Path::new("/").join(ALLOW_EXE_RECORD)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(5, ' ');
            let key: Vec<&str> = it.by_ref().take(4).collect();
            let path = it.next()?;
            let now = kgate_bpf::exe_key_of(Path::new(path)).ok();
            let was = key.join(" ");
            let is = now.map(|(d, i, s, n)| format!("{d} {i} {s} {n}"));
            (is.as_deref() != Some(was.as_str())).then(|| path.to_owned())
        })
        .collect()
}

/// Processes in a user namespace other than the initial one: their
/// members keep their namespace capabilities whatever kgate decides now.
pub fn namespaced_processes() -> Vec<u32> {
    let Ok(init) = std::fs::read_link("/proc/1/ns/user") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(ns) = std::fs::read_link(e.path().join("ns/user")) {
                if ns != init {
                    pids.push(pid);
                }
            }
        }
    }
    pids.sort_unstable();
    pids
}

/// kgate's splice enforcement in force on this host, from the pins.
pub fn applied_splice() -> Option<kgate_bpf::splice::AppliedSplice> {
    splice_state(kgate_bpf::status(&pin_dir()).ok().as_ref())
}

pub fn splice_state(s: Option<&kgate_bpf::Status>) -> Option<kgate_bpf::splice::AppliedSplice> {
    let s = s?;
    let kallsyms = kgate_kernel::inventory::kallsyms(Path::new("/")).unwrap_or_default();
    Some(kgate_bpf::splice::AppliedSplice::of(s, &kallsyms))
}

/// The "Splice paths" table of `kgate survey` and `kgate status`.
pub fn print_splice_paths(
    out: &mut impl Write,
    paths: &[kgate_bpf::splice::SplicePath],
) -> std::io::Result<()> {
    use kgate_bpf::splice::GateStatus;
    writeln!(
        out,
        "Splice paths (what can stop unprivileged splice-family calls here)"
    )?;
    for p in paths {
        let hook = p
            .lsm_hook
            .map(|h| format!("LSM hook {h}"))
            .unwrap_or_else(|| "no LSM hook".into());
        let verdict = if p.gated() { "GATED" } else { "not gated" };
        writeln!(out, "  {} ({hook}): {verdict}", p.path)?;
        for g in &p.gates {
            let st = match g.status {
                GateStatus::Enforced => "enforced",
                GateStatus::Audited => "audit only",
                GateStatus::Available => "available",
                GateStatus::Unavailable => "unavailable",
            };
            writeln!(out, "    {:<9} {:<12} {}", g.mechanism, st, g.detail)?;
        }
    }
    Ok(())
}

/// Detach and unpin everything the BPF-LSM backend attached. `Ok(false)`
/// when nothing was applied.
pub fn revert(dry_run: bool, out: &mut dyn Write) -> Result<bool> {
    match kgate_bpf::status(&pin_dir()) {
        Err(BpfError::NotApplied { .. }) => {
            writeln!(out, "bpf-lsm: not applied")?;
            return Ok(false);
        }
        Err(e) => writeln!(out, "bpf-lsm: {e}; removing its pins anyway")?,
        Ok(s) if dry_run => {
            writeln!(
                out,
                "bpf-lsm: would detach {} hooks (policy {}, generation {})",
                s.hooks.len(),
                s.hash,
                s.generation
            )?;
            return Ok(true);
        }
        Ok(_) => {}
    }
    if dry_run {
        return Ok(true);
    }
    let removed = kgate_bpf::revert(&pin_dir())?;
    let _ = kgate_apply::atomic::remove(Path::new("/"), Path::new(ALLOW_EXE_RECORD));
    writeln!(out, "reverted: {} pins removed", removed.len())?;
    Ok(true)
}
