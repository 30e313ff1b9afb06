//! The BPF-LSM backend from the CLI: `kgate apply --backend bpf-lsm`,
//! `kgate status`, `kgate events`, and its part of `kgate revert`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use kgate_bpf::{BpfError, BpfPolicy, Event, Request};
use kgate_policy::Loaded;

use crate::output::{escape_field, Format, TextOut};
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

/// One row of `kgate apply`'s section table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SectionRow {
    /// The policy section (`modules`, `sysctl`, ...).
    pub section: &'static str,
    /// What enforces it.
    pub mechanism: String,
    /// In force or not, and how.
    pub state: String,
    /// The attach points that enforce it (bpf-lsm sections), and of those
    /// the ones not attached on this kernel.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<String>,
    /// Attach points of `hooks` that are not attached (empty in a dry run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

pub(crate) fn row(section: &'static str, mechanism: &str, state: String) -> SectionRow {
    SectionRow {
        section,
        mechanism: mechanism.to_owned(),
        state,
        hooks: Vec::new(),
        missing: Vec::new(),
    }
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

/// The `[sysctl]` row, for either backend: `set` is `None` in a dry run.
pub(crate) fn sysctl_row(
    p: &kgate_policy::Policy,
    plan: &kgate_apply::Plan,
    set: Option<&[kgate_apply::SysctlChange]>,
) -> SectionRow {
    let sysctls: Vec<String> = p
        .sysctl
        .iter()
        .map(|(n, e)| format!("{n}={}", e.value.to_proc_string()))
        .collect();
    let not_live = plan
        .warnings()
        .iter()
        .filter(|w| w.starts_with("sysctl "))
        .count();
    let state = if sysctls.is_empty() {
        "nothing to set (no [sysctl] in the policy)".to_owned()
    } else {
        let mut s = match set {
            None => format!("would be set ({})", sysctls.join(" ")),
            Some(set) => format!("set ({}); {} changed now", sysctls.join(" "), set.len()),
        };
        if not_live > 0 {
            s.push_str(&format!(
                "; {not_live} not on this kernel (listed in sysctl.d only, see the warnings)"
            ));
        }
        s
    };
    row("sysctl", "sysctl.d + /proc/sys", state)
}

/// The `[seccomp]` row: never host-wide.
pub(crate) fn seccomp_row(p: &kgate_policy::Policy) -> SectionRow {
    let state = if p.seccomp.allow.is_empty() && p.seccomp.sockets.is_empty() {
        "not host-wide (no [seccomp] rules in the policy)"
    } else {
        "not host-wide: in force only for workloads started with `kgate run` or an exported profile"
    };
    row(
        "seccomp",
        "per workload (kgate run/export)",
        state.to_owned(),
    )
}

/// Print the section table.
pub fn print_sections(out: &mut dyn Write, rows: &[SectionRow]) -> std::io::Result<()> {
    let w = rows.iter().map(|r| r.mechanism.len()).max().unwrap_or(0);
    writeln!(out, "\n{:<8} {:<w$}  STATE", "SECTION", "MECHANISM")?;
    for r in rows {
        writeln!(out, "{:<8} {:<w$}  {}", r.section, r.mechanism, r.state)?;
    }
    Ok(())
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
fn stale_allow_exe() -> Vec<String> {
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

/// Show what kgate enforces on this host.
///
/// The BPF-LSM programs attached (with their per-verdict counters, the
/// policy hash and generation, and the number of events lost), and whether
/// the modprobe backend's files are in place.
///
/// What the programs cost: while the sysctl kernel.bpf_stats_enabled is 1
/// the kernel counts each program's runs and time, and every hook line
/// shows them (runs=N run_ns=T mean_ns=M; JSON: hooks[].runs). Counting
/// itself adds two clock reads per run: turn it off again afterwards.
///
///   sysctl -w kernel.bpf_stats_enabled=1; sleep 60; kgate status; sysctl -w kernel.bpf_stats_enabled=0
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Run `kgate status`.
pub fn status(args: &StatusArgs) -> Result<ExitCode> {
    let bpf = kgate_bpf::status(&pin_dir());
    let host = kgate_kernel::host::read_host(Path::new("/"));
    let splice_paths = kgate_bpf::splice::paths(&host, splice_state(bpf.as_ref().ok()));
    let manifest = Path::new("/").join(kgate_apply::STATE_FILE);
    let modprobe = manifest.is_file();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let json = serde_json::json!({
                "schema": "kgate.status/1",
                "bpf_lsm": bpf.as_ref().ok(),
                "bpf_lsm_error": bpf.as_ref().err().map(|e| e.to_string()),
                "modprobe": { "applied": modprobe, "manifest": manifest },
                "splice_paths": splice_paths,
            });
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
        }
        Format::Text => {
            let mut out = TextOut::new(&mut out);
            match &bpf {
                Ok(s) => {
                    writeln!(
                        out,
                        "status: hash={} generation={} modules={:?} root={:?} sockets={:?} userns={:?} splice={:?} dropped={}",
                        s.hash,
                        s.generation,
                        s.modules_mode,
                        s.root_mode,
                        s.sockets_mode,
                        s.userns_mode,
                        s.splice_mode,
                        s.dropped_events
                    )?;
                    for h in &s.hooks {
                        let runs = match h.runs {
                            Some(r) if r.count > 0 => format!(
                                " runs={} run_ns={} mean_ns={:.1}",
                                r.count,
                                r.time_ns,
                                r.mean_ns().unwrap_or(0.0)
                            ),
                            _ => String::new(),
                        };
                        writeln!(
                            out,
                            "hook {} attached={} allow={} deny={} audit={} pass={}{runs}",
                            if h.hook.optional() {
                                h.hook.attach_point()
                            } else {
                                h.hook.lsm_name().to_owned()
                            },
                            h.attached,
                            h.counters.allow,
                            h.counters.deny,
                            h.counters.audit,
                            h.counters.pass
                        )?;
                    }
                    for p in stale_allow_exe() {
                        writeln!(
                            out,
                            "warning: userns.allow_exe {p} is stale: the file was replaced or changed since apply, so it matches nothing (re-run `kgate apply` if the new file is trusted)"
                        )?;
                    }
                    let ns = namespaced_processes();
                    if !ns.is_empty() {
                        writeln!(
                            out,
                            "note: {} processes live in user namespaces created before or outside kgate's checks (pids {}): they keep their namespace capabilities (docs/policy.md, \"What kgate does not stop\")",
                            ns.len(),
                            ns.iter().take(10).map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
                        )?;
                    }
                    if s.dropped_events > 0 {
                        writeln!(
                            out,
                            "warning: {} events were lost because the ring buffer was full",
                            s.dropped_events
                        )?;
                    }
                }
                Err(BpfError::NotApplied { .. }) => writeln!(out, "bpf-lsm: not applied")?,
                Err(e) => writeln!(out, "bpf-lsm: {e}")?,
            }
            writeln!(
                out,
                "modprobe: {}",
                if modprobe {
                    format!("applied (manifest {})", manifest.display())
                } else {
                    "not applied".to_owned()
                }
            )?;
            writeln!(out)?;
            print_splice_paths(&mut out, &splice_paths)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// kgate's splice enforcement in force on this host, from the pins.
pub fn applied_splice() -> Option<kgate_bpf::splice::AppliedSplice> {
    splice_state(kgate_bpf::status(&pin_dir()).ok().as_ref())
}

fn splice_state(s: Option<&kgate_bpf::Status>) -> Option<kgate_bpf::splice::AppliedSplice> {
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

/// Read what BPF-LSM enforcement denied or audited.
///
/// Each event carries the time, pid, comm, uid, cgroup id, executable, hook,
/// request (the module alias, or the socket family/type/protocol), the rule
/// that decided and the verdict. Events lost to a full ring buffer are
/// counted and always reported, never dropped silently.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Keep reading new events until interrupted (or --seconds pass).
    #[arg(long)]
    pub follow: bool,

    /// With --follow, stop after this many seconds.
    #[arg(long, value_name = "N", requires = "follow")]
    pub seconds: Option<u64>,

    /// Output format: text lines, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Run `kgate events`.
pub fn events(args: &EventsArgs) -> Result<ExitCode> {
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let stdout = std::io::stdout();
    let mut failed: Option<std::io::Error> = None;
    let summary = kgate_bpf::events(
        &pin_dir(),
        args.follow,
        |e: Event| {
            let mut out = stdout.lock();
            let written = match args.format {
                Format::Json => serde_json::to_writer(
                    &mut out,
                    &EventLine {
                        schema: "kgate.event/1",
                        event: &e,
                    },
                )
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out)),
                Format::Text => writeln!(out, "{}", event_line(&e)),
            }
            .and_then(|()| out.flush());
            if let Err(err) = written {
                failed = Some(err);
                return ControlFlow::Break(());
            }
            match deadline {
                Some(d) if Instant::now() >= d => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        },
        |total, new| {
            // On stderr, so that stdout stays one event (or JSON object) per line.
            eprintln!(
                "kgate: warning: {new} events lost: the ring buffer was full ({total} lost since the policy was applied)"
            );
        },
    )?;
    if let Some(err) = failed {
        return Err(err).context("failed to write events");
    }
    let line = format!(
        "events: delivered={} dropped_total={}",
        summary.delivered, summary.dropped_total
    );
    if summary.dropped_total > 0 {
        eprintln!(
            "kgate: warning: {} events were lost to a full ring buffer since the policy was applied \
             (the decisions still counted: see `kgate status`); keep `kgate events --follow` \
             running to read them as they come",
            summary.dropped_total
        );
    }
    match args.format {
        Format::Text => writeln!(std::io::stdout().lock(), "{line}")?,
        Format::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({
                    "schema": "kgate.events-summary/1",
                    "delivered": summary.delivered,
                    "dropped_total": summary.dropped_total,
                    "dropped_while_reading": summary.dropped_while_reading,
                }),
            )?;
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One `--format json` line: the event with its schema name.
#[derive(serde::Serialize)]
struct EventLine<'a> {
    schema: &'static str,
    #[serde(flatten)]
    event: &'a Event,
}

/// One event as a text line. Every string the kernel copied from a task
/// (comm, executable name, request) is escaped ([`escape_field`]): a file
/// named `x\nevent allow ...` must not print a second, forged event line,
/// nor an ESC sequence that rewrites the terminal.
fn event_line(e: &Event) -> String {
    let req = match &e.request {
        Request::Module { alias } => format!("module:{}", escape_field(alias)),
        Request::Socket {
            family,
            sock_type,
            protocol,
        } => format!("socket:{family}/{sock_type}/{protocol}"),
        Request::Userns => "userns".into(),
        Request::ModuleLoad { module } => format!("load:{}", escape_field(module)),
        Request::Splice {
            call,
            source,
            destination,
        } => format!(
            "splice:{} {} -> {}",
            escape_field(call),
            escape_field(source),
            escape_field(destination)
        ),
    };
    format!(
        "event {} {} uid={} pid={} comm={} exe={} cgroup={} rule=\"{}\"",
        e.verdict.as_str(),
        req,
        e.uid,
        e.tgid,
        escape_field(&e.comm),
        escape_field(&e.exe),
        e.cgroup_id,
        e.rule.describe()
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use kgate_bpf::{Hook, Rule, Verdict};

    fn event(comm: &str, exe: &str, alias: &str) -> Event {
        Event {
            time_ns: 1,
            unix_time_ns: 2,
            pid: 7,
            tgid: 7,
            uid: 65534,
            cgroup_id: 1,
            comm: comm.into(),
            exe: exe.into(),
            hook: Hook::ModuleRequest,
            request: Request::Module {
                alias: alias.into(),
            },
            rule: Rule::ModuleNotListed,
            verdict: Verdict::Deny,
        }
    }

    /// Issue 13, 5d: a file name with a newline and an ESC sequence must
    /// not forge a second event line or reach the terminal.
    #[test]
    fn event_line_escapes_newline_and_escape() {
        let name = "ev\nevent allow module:FORGED\x1b[2K";
        let line = event_line(&event(&name[..15], name, "net_pf_40"));
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(!line.contains('\x1b'), "{line}");
        assert!(
            line.contains(r"exe=ev\nevent\x20allow\x20module:FORGED\x1b[2K cgroup="),
            "{line}"
        );
        assert!(line.contains(r"comm=ev\nevent\x20allow\x20 exe="), "{line}");
        assert!(line.starts_with("event deny module:net_pf_40 uid=65534 pid=7 "));
    }

    /// JSON keeps the exact strings (serde escapes them).
    #[test]
    fn event_json_is_exact() {
        let name = "a\nb\x1bc\\d";
        let e = event(name, name, "x");
        let json = serde_json::to_string(&EventLine {
            schema: "kgate.event/1",
            event: &e,
        })
        .unwrap();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["exe"], name);
        assert_eq!(back["comm"], name);
        assert!(!json.contains('\n'));
    }

    #[test]
    fn event_line_plain_names_unchanged() {
        let line = event_line(&event("sshd", "sshd", "net_pf_40"));
        assert_eq!(
            line,
            "event deny module:net_pf_40 uid=65534 pid=7 comm=sshd exe=sshd cgroup=1 rule=\"not in modules.allow\""
        );
    }
}
