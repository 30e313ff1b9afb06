//! A small driver of the kgate-bpf API for the kernel lab (until the kgate
//! CLI wires `apply --backend bpf-lsm`, `status`, `revert`, `events`).
//!
//! ```text
//! kgate-bpf-lab probe
//! kgate-bpf-lab apply POLICY.toml [--hold]   # --hold: sleep after applying (kill -9 test)
//! kgate-bpf-lab status
//! kgate-bpf-lab events [--follow SECONDS]
//! kgate-bpf-lab revert
//! ```
//! The pin directory is `$KGATE_BPF_PIN_DIR` or /sys/fs/bpf/kgate. Exit
//! status 0 on success, 1 on error (message on stderr), 2 on usage.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kgate_bpf::{BpfPolicy, Request};
use kgate_kernel::tree::{KernelTree, LoadOptions};
use kgate_policy::Policy;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pin = PathBuf::from(
        std::env::var("KGATE_BPF_PIN_DIR").unwrap_or_else(|_| kgate_bpf::DEFAULT_PIN_DIR.into()),
    );
    let r = match args.first().map(String::as_str) {
        Some("probe") => kgate_bpf::probe()
            .map(|s| println!("supported: {s:?}"))
            .map_err(|e| e.to_string()),
        Some("apply") if args.len() >= 2 => apply(
            Path::new(&args[1]),
            &pin,
            args.iter().any(|a| a == "--hold"),
        ),
        Some("status") => kgate_bpf::status(&pin)
            .map(|s| print_status(&s))
            .map_err(|e| e.to_string()),
        Some("revert") => kgate_bpf::revert(&pin)
            .map(|r| println!("reverted: {} pins removed", r.len()))
            .map_err(|e| e.to_string()),
        Some("events") => {
            let secs = match args.get(1).map(String::as_str) {
                Some("--follow") => args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5u64),
                _ => 0,
            };
            events(&pin, secs)
        }
        _ => {
            eprintln!("usage: kgate-bpf-lab probe|apply POLICY [--hold]|status|events [--follow SECS]|revert");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("kgate-bpf-lab: {e}");
        std::process::exit(1);
    }
}

fn apply(path: &Path, pin: &Path, hold: bool) -> Result<(), String> {
    let loaded = Policy::load(path).map_err(|e| e.to_string())?;
    let release =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let tree = KernelTree::load(&LoadOptions {
        modules_dir: PathBuf::from(format!("/lib/modules/{}", release.trim())),
        loaded: None,
        cache_dir: None,
        progress: None,
    })
    .map_err(|e| e.to_string())?;
    let policy = BpfPolicy::from_policy(&loaded.policy, &tree);
    let resolved = t0.elapsed();
    let report = kgate_bpf::apply(&policy, pin).map_err(|e| e.to_string())?;
    println!(
        "applied: attached_now={} hooks={:?} generation={} hash={} module_requests={} socket_patterns={} userns_exe={} skipped_exe={:?} (resolve {:.1}s)",
        report.attached_now,
        report.hooks,
        report.generation,
        report.hash,
        report.module_requests,
        report.socket_patterns,
        report.userns_exe,
        report.skipped_exe,
        resolved.as_secs_f64()
    );
    if std::env::var_os("KGATE_BPF_DUMP").is_some() {
        for r in &policy.modules.allowed_requests {
            println!("request {r}");
        }
    }
    if hold {
        println!("holding");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    Ok(())
}

fn print_status(s: &kgate_bpf::Status) {
    println!(
        "status: hash={} generation={} modules={:?} root={:?} sockets={:?} userns={:?} dropped={}",
        s.hash,
        s.generation,
        s.modules_mode,
        s.root_mode,
        s.sockets_mode,
        s.userns_mode,
        s.dropped_events
    );
    for h in &s.hooks {
        println!(
            "hook {} attached={} allow={} deny={} audit={} pass={}",
            h.hook.lsm_name(),
            h.attached,
            h.counters.allow,
            h.counters.deny,
            h.counters.audit,
            h.counters.pass
        );
    }
}

fn events(pin: &Path, follow_secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(follow_secs);
    let summary = kgate_bpf::events(pin, follow_secs > 0, |e| {
        let req = match &e.request {
            Request::Module { alias } => format!("module:{alias}"),
            Request::Socket {
                family,
                sock_type,
                protocol,
            } => format!("socket:{family}/{sock_type}/{protocol}"),
            Request::Userns => "userns".into(),
        };
        println!(
            "event {} {} uid={} pid={} comm={} exe={} cgroup={} rule=\"{}\"",
            e.verdict.as_str(),
            req,
            e.uid,
            e.tgid,
            e.comm,
            e.exe,
            e.cgroup_id,
            e.rule.describe()
        );
        if follow_secs > 0 && Instant::now() >= deadline {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .map_err(|e| e.to_string())?;
    println!(
        "events: delivered={} dropped_total={}",
        summary.delivered, summary.dropped_total
    );
    Ok(())
}
