//! `kgate events`: what BPF-LSM enforcement denied or audited.

use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use kgate_bpf::Event;

use crate::backend::bpf_lsm::pin_dir;
use crate::output::{escape_field, Format};

/// Read what BPF-LSM enforcement denied or audited.
///
/// Each event carries the time, pid, comm, uid, cgroup id, executable, hook,
/// request (the module alias, or the socket family/type/protocol), the rule
/// that decided and the verdict. Events lost to a full ring buffer are
/// counted and always reported, never dropped silently.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep reading new events until interrupted (or --seconds pass).
    #[arg(long)]
    pub follow: bool,

    /// With --follow, stop after this many seconds.
    #[arg(long, value_name = "N", requires = "follow")]
    pub seconds: Option<u64>,

    /// Output format: text lines, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Send each event to the systemd journal as a structured entry
    /// (MESSAGE, PRIORITY, KGATE_VERDICT, KGATE_HOOK, KGATE_REQUEST,
    /// KGATE_RULE, KGATE_UID, KGATE_PID, KGATE_COMM, KGATE_EXE,
    /// KGATE_CGROUP) instead of printing it; `journalctl -u kgate` shows
    /// them. With --follow, a new `kgate apply` (which pins a new ring
    /// buffer) is followed too. kgate-events.service runs
    /// `kgate events --follow --wait --journal`.
    #[arg(long)]
    pub journal: bool,

    /// With --follow: when nothing is enforced, wait for `kgate apply`
    /// instead of failing.
    #[arg(long, requires = "follow")]
    pub wait: bool,
}

/// Run `kgate events`.
pub fn run(args: &Args) -> Result<ExitCode> {
    if args.journal {
        return run_journal(args);
    }
    let deadline = deadline_of(args);
    if args.wait && !wait_applied(deadline) {
        return Ok(ExitCode::SUCCESS);
    }
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
            until(deadline)
        },
        warn_lost,
    )?;
    if let Some(err) = failed {
        return Err(err).context("failed to write events");
    }
    let line = format!(
        "events: delivered={} dropped_total={} undecodable={}",
        summary.delivered, summary.dropped_total, summary.undecodable
    );
    if summary.dropped_total > 0 {
        eprintln!(
            "kgate: warning: {} events were lost to a full ring buffer since the policy was applied \
             (the decisions still counted: see `kgate status`); keep `kgate events --follow` \
             running to read them as they come",
            summary.dropped_total
        );
    }
    warn_undecodable(&summary);
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
                    "undecodable": summary.undecodable,
                }),
            )?;
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Go on reading until `deadline` (if any) has passed.
fn until(deadline: Option<Instant>) -> ControlFlow<()> {
    match deadline {
        Some(d) if Instant::now() >= d => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    }
}

/// Events lost to a full ring buffer while reading: said on stderr (stdout
/// stays one event, or JSON object, per line; under kgate-events.service
/// stderr is the unit's log).
fn warn_lost(total: u64, new: u64) {
    eprintln!(
        "kgate: warning: {new} events lost: the ring buffer was full ({total} lost since the policy was applied)"
    );
}

/// Records this kgate could not decode, counted in `summary`.
fn warn_undecodable(summary: &kgate_bpf::EventsSummary) {
    if let Some(why) = &summary.first_undecodable {
        eprintln!(
            "kgate: warning: {} event records could not be decoded and were not shown; the first: {why}",
            summary.undecodable
        );
    }
}

fn deadline_of(args: &Args) -> Option<Instant> {
    args.seconds
        .map(|s| Instant::now() + Duration::from_secs(s))
}

/// Wait until a policy is pinned; false when `deadline` passed first.
fn wait_applied(deadline: Option<Instant>) -> bool {
    while !kgate_bpf::is_applied(&pin_dir()) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    true
}

/// `kgate events --journal`: every event to journald, again after each
/// new apply when following.
fn run_journal(args: &Args) -> Result<ExitCode> {
    let deadline = deadline_of(args);
    let mut journal = crate::journal::Journal::open().with_context(|| {
        format!(
            "cannot connect to the systemd journal ({})",
            crate::journal::SOCKET
        )
    })?;
    let mut send_failures = 0u64;
    loop {
        if args.wait && !wait_applied(deadline) {
            return Ok(ExitCode::SUCCESS);
        }
        let summary = kgate_bpf::events(
            &pin_dir(),
            args.follow,
            |e: Event| {
                if let Err(err) = journal.send(&e, &event_line(&e)) {
                    // journald restarting or full: say so on stderr (the
                    // unit's own log), keep reading.
                    send_failures += 1;
                    if send_failures.is_power_of_two() {
                        eprintln!(
                            "kgate: warning: {send_failures} events not written to the journal: {err}; this one: {}",
                            event_line(&e)
                        );
                    }
                }
                until(deadline)
            },
            warn_lost,
        )?;
        warn_undecodable(&summary);
        if !args.follow || until(deadline).is_break() {
            return Ok(ExitCode::SUCCESS);
        }
        if summary.ring_replaced {
            eprintln!("kgate: the policy was applied again or reverted; following the new one");
        }
    }
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
    let req = e.request.describe(escape_field);
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

#[cfg(test)]
mod tests {
    use super::*;
    use kgate_bpf::{Hook, Request, Rule, Verdict};

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
