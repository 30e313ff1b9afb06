//! `kgate status`: what kgate enforces on this host.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use kgate_bpf::BpfError;

use crate::backend::bpf_lsm::{
    namespaced_processes, pin_dir, print_splice_paths, splice_state, stale_allow_exe,
};
use crate::output::{Format, TextOut};

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
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Run `kgate status`.
pub fn run(args: &Args) -> Result<ExitCode> {
    let bpf = kgate_bpf::status(&pin_dir());
    let host = kgate_kernel::host::read_host(Path::new("/"));
    let splice_paths = kgate_bpf::splice::paths(&host, splice_state(bpf.as_ref().ok()));
    let manifest = Path::new("/").join(kgate_apply::STATE_FILE);
    let modprobe = manifest.is_file();
    let boot = kgate_apply::boot_record::read(Path::new("/"));
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let json = serde_json::json!({
                "schema": "kgate.status/1",
                "bpf_lsm": bpf.as_ref().ok(),
                "bpf_lsm_error": bpf.as_ref().err().map(|e| e.to_string()),
                "modprobe": { "applied": modprobe, "manifest": manifest },
                "splice_paths": splice_paths,
                "boot": boot,
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
            match &boot {
                Some(b) => writeln!(
                    out,
                    "boot: {}{}{}",
                    boot_state(&b.state),
                    b.policy
                        .as_deref()
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default(),
                    b.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )?,
                None => writeln!(
                    out,
                    "boot: kgate boot has not run this boot (kgate.service)"
                )?,
            }
            writeln!(out)?;
            print_splice_paths(&mut out, &splice_paths)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A boot record's state as `kgate status` says it.
fn boot_state(state: &str) -> &str {
    match state {
        "enforced" => "enforced",
        "last-good" => "the last good policy is enforced",
        "off" => "nothing enforced (kgate=off)",
        "nothing" => "nothing to enforce",
        "failed" => "FAILED: nothing enforced",
        other => other,
    }
}
