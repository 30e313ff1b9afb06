//! `kgate policy generate`: a workload policy from recorded profiles.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use kgate_policy::profile::{generate, GenerateReport, Profile};
use kgate_seccomp::baseline::{compare, Comparison, DockerProfile, PODMAN_DEFAULT};

use crate::output::{Format, TextOut};

/// `kgate policy generate`.
///
/// Merges profiles written by `kgate record` into a policy with a `[seccomp]`
/// section (mode enforce, EPERM): the union of the syscalls they entered,
/// the socket families they created (with socket or socketpair), and
/// splice, vmsplice and tee, and io_uring_setup, io_uring_enter and
/// io_uring_register, only if some profile used them. execve, exit,
/// exit_group and rt_sigreturn are always allowed. Use it with `kgate run
/// --policy` or `kgate export`.
///
/// When a profile used io_uring the report warns: io_uring's
/// IORING_OP_SOCKET, IORING_OP_SPLICE and IORING_OP_TEE skip seccomp
/// entirely, so the policy's socket families and its splice/tee denial do
/// not hold for operations submitted through io_uring.
///
/// The report (standard error, or standard output with --format json)
/// lists what the workload needs (splice family, socket shapes, exec'd
/// programs, module requests) and compares the result with the
/// podman/Docker default profile: how many syscalls the default allows
/// that this policy denies.
///
/// Example: kgate policy generate --from test-run.json --from day.json -o app.toml
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// A profile from `kgate record` (repeat to merge several).
    #[arg(long = "from", value_name = "PROFILE", required = true)]
    pub from: Vec<PathBuf>,
    /// Write the policy to FILE atomically [default: standard output].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// meta.name of the policy.
    #[arg(long)]
    pub name: Option<String>,
    /// The Docker/podman profile to compare with.
    #[arg(long, value_name = "FILE", default_value = PODMAN_DEFAULT)]
    pub baseline: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Serialize)]
struct GenerateJson<'a> {
    schema: &'static str,
    output: Option<&'a Path>,
    policy: Option<String>,
    hash: String,
    report: &'a GenerateReport,
    baseline: Option<&'a Comparison>,
    baseline_error: Option<String>,
}

/// Run `kgate policy generate`.
pub fn run(args: &GenerateArgs) -> Result<ExitCode> {
    let mut profiles = Vec::new();
    for f in &args.from {
        profiles.push((f.clone(), Profile::load(f)?));
    }
    let (policy, report) = generate(&profiles, args.name.clone());
    let toml = policy.to_toml();
    let allowed: BTreeSet<String> = policy
        .seccomp
        .allow
        .iter()
        .map(|e| e.value.clone())
        .collect();
    let families = policy.seccomp.socket_families();
    let (cmp, cmp_err) = match DockerProfile::load(&args.baseline) {
        Ok(b) => (
            Some(compare(&args.baseline, &b, &allowed, families.as_deref())),
            None,
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    if let Some(o) = &args.output {
        crate::output::write_file(o, toml.as_bytes())?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &GenerateJson {
                    schema: "kgate.policy-generate/1",
                    output: args.output.as_deref(),
                    policy: args.output.is_none().then(|| toml.clone()),
                    hash: policy.hash(),
                    report: &report,
                    baseline: cmp.as_ref(),
                    baseline_error: cmp_err,
                },
            )?;
            writeln!(out)?;
        }
        Format::Text => {
            if args.output.is_none() {
                out.write_all(toml.as_bytes())?;
            }
            let mut e = TextOut::new(std::io::stderr().lock());
            writeln!(
                e,
                "kgate: {} profile(s): {} syscalls allowed, socket families {}",
                report.profiles,
                report.syscalls,
                match &families {
                    None => "any".to_owned(),
                    Some(f) if f.is_empty() => "none".to_owned(),
                    Some(f) => f
                        .iter()
                        .map(|n| kgate_policy::family_name(*n).unwrap_or("?"))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            )?;
            let needed: Vec<&str> = report
                .splice_family
                .iter()
                .filter(|(_, v)| **v)
                .map(|(k, _)| k.as_str())
                .collect();
            writeln!(
                e,
                "  io_uring: {}",
                if report.io_uring.is_empty() {
                    "not used (denied)".to_owned()
                } else {
                    format!(
                        "used: {}; {} skip this policy (see the warning)",
                        report.io_uring.join(", "),
                        report.io_uring_bypass.join(", ")
                    )
                }
            )?;
            writeln!(
                e,
                "  splice/vmsplice/tee: {}",
                if needed.is_empty() {
                    "not needed (denied)".to_owned()
                } else {
                    format!("needed: {}", needed.join(", "))
                }
            )?;
            for s in &report.sockets {
                writeln!(
                    e,
                    "  socket/socketpair({}, type {}, protocol {}): {} calls",
                    s.family, s.sock_type, s.protocol, s.count
                )?;
            }
            writeln!(e, "  executed: {}", report.execs.len())?;
            for x in &report.execs {
                writeln!(e, "    {} ({}x)", x.name, x.count)?;
            }
            if report.module_requests_observable {
                writeln!(e, "  module requests: {}", report.module_requests.len())?;
                for m in &report.module_requests {
                    writeln!(e, "    {} ({}x)", m.name, m.count)?;
                }
            } else {
                writeln!(
                    e,
                    "  module requests: not observable where recorded (no CONFIG_MODULES)"
                )?;
            }
            match (&cmp, &cmp_err) {
                (Some(c), _) => {
                    writeln!(
                        e,
                        "  compared with {} (podman default capabilities): it allows {} syscalls, this policy {}; this policy denies {} more: {}",
                        c.baseline.display(),
                        c.baseline_allowed,
                        c.policy_allowed,
                        c.denied_extra.len(),
                        c.denied_extra.join(" ")
                    )?;
                    if !c.allowed_extra.is_empty() {
                        writeln!(
                            e,
                            "  allowed here but denied by the default profile (review them): {}",
                            c.allowed_extra.join(" ")
                        )?;
                    }
                    writeln!(
                        e,
                        "  socket families denied: {} (the default profile allows every family)",
                        c.socket_families_denied
                    )?;
                }
                (None, Some(err)) => writeln!(e, "  no comparison: {err}")?,
                _ => {}
            }
            for w in &report.warnings {
                writeln!(e, "kgate: warning: {w}")?;
            }
            if let Some(o) = &args.output {
                writeln!(e, "kgate: policy written to {}", o.display())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
