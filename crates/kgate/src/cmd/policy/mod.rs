//! `kgate policy check|diff|explain`: read a policy against a kernel
//! without changing anything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use kgate_policy::{Diagnostic, DiffReport, Policy, Surface};

use crate::inputs::{load_policy, loaded_modules};

pub mod generate;

use crate::output::{human_bytes, Format, TextOut};
use crate::target::{Target, TargetArgs};

/// Check, compare and explain a policy against a kernel. Read-only.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// `kgate policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy: syntax, types, known keys and values (with file,
    /// line and key for every problem), then the module names against the
    /// kernel. Exit status 1 when the policy is invalid.
    Check(CheckArgs),
    /// What an apply would block compared with today: module counts, and the
    /// unprivileged-reachable code removed, in bytes and functions.
    Diff(DiffArgs),
    /// Is a module (or a request such as net-pf-40) allowed or blocked by
    /// this policy, by which rule, and which triggers reach it?
    ///
    /// About the policy's verdict only, no CVEs; for a module's known CVEs
    /// and who can get it loaded without any policy, use `kgate explain
    /// MODULE`.
    Explain(ExplainArgs),
    /// Merge recorded profiles (kgate record) into a policy whose `[seccomp]`
    /// section allows what they used, and show what it denies compared
    /// with the podman/Docker default profile.
    Generate(generate::GenerateArgs),
}

/// `kgate policy check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The policy file.
    pub policy: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Treat warnings (e.g. modules the kernel does not have) as errors.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `kgate policy diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The policy file.
    pub policy: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Modules loaded now, from FILE (/proc/modules or lsmod format)
    /// [default: this host's /proc/modules].
    #[arg(long, value_name = "FILE")]
    pub loaded: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `kgate policy explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The policy file.
    pub policy: PathBuf,
    /// A module name (sctp) or a request string (net-pf-132, fs-xfs).
    pub query: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Run `kgate policy …`.
pub fn run(args: &Args) -> Result<ExitCode> {
    match &args.command {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Diff(a) => diff(a),
        PolicyCommand::Explain(a) => explain(a),
        PolicyCommand::Generate(a) => generate::run(a),
    }
}

#[derive(Serialize)]
struct CheckJson<'a> {
    schema: &'static str,
    policy: &'a Path,
    valid: bool,
    kernel: Option<&'a str>,
    hash: Option<String>,
    errors: Vec<&'a Diagnostic>,
    warnings: Vec<&'a Diagnostic>,
}

fn check(args: &CheckArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let loaded = match Policy::load(&args.policy) {
        Ok(l) => l,
        Err(kgate_policy::PolicyError::Invalid { errors, warnings }) => {
            match args.format {
                Format::Json => {
                    serde_json::to_writer_pretty(
                        &mut out,
                        &CheckJson {
                            schema: "kgate.policy-check/1",
                            policy: &args.policy,
                            valid: false,
                            kernel: None,
                            hash: None,
                            errors: errors.iter().collect(),
                            warnings: warnings.iter().collect(),
                        },
                    )?;
                    writeln!(out)?;
                }
                Format::Text => {
                    let mut out = TextOut::new(&mut out);
                    for d in errors.iter().chain(&warnings) {
                        writeln!(out, "{d}")?;
                    }
                    writeln!(
                        out,
                        "{}: invalid: {} error(s); nothing was applied",
                        args.policy.display(),
                        errors.len()
                    )?;
                }
            }
            out.flush()?;
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    // Checked by names, aliases and dependencies: no module file is read.
    let t = Target::load_facts(&args.target, kgate_kernel::tree::Facts::Depmod)?;
    let mut warnings: Vec<Diagnostic> = loaded.warnings.clone();
    warnings.extend(loaded.policy.check_against(&t.tree));
    let failed = args.deny_warnings && !warnings.is_empty();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &CheckJson {
                    schema: "kgate.policy-check/1",
                    policy: &args.policy,
                    valid: !failed,
                    kernel: Some(&t.release),
                    hash: Some(loaded.policy.hash()),
                    errors: Vec::new(),
                    warnings: warnings.iter().collect(),
                },
            )?;
            writeln!(out)?;
        }
        Format::Text => {
            let mut out = TextOut::new(&mut out);
            for w in &warnings {
                writeln!(out, "{w}")?;
            }
            writeln!(
                out,
                "{}: {} for kernel {} ({} warning(s)); sha256 {}",
                args.policy.display(),
                if failed {
                    "rejected (--deny-warnings)"
                } else {
                    "valid"
                },
                t.release,
                warnings.len(),
                loaded.policy.hash()
            )?;
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A report about one policy file, as JSON: the schema, the file, then the
/// report's own fields.
#[derive(Serialize)]
struct PolicyJson<'a, T: Serialize> {
    schema: &'static str,
    policy: &'a Path,
    #[serde(flatten)]
    report: &'a T,
}

fn diff(args: &DiffArgs) -> Result<ExitCode> {
    let policy = load_policy(&args.policy)?.policy;
    let t = Target::load(&args.target)?;
    let loaded = loaded_modules(args.loaded.as_deref(), &t)?;
    let report = policy.diff(&t.tree, &t.ctx, &loaded);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &PolicyJson {
                    schema: "kgate.policy-diff/1",
                    policy: &args.policy,
                    report: &report,
                },
            )?;
            writeln!(out)?;
        }
        Format::Text => print_diff(&mut TextOut::new(&mut out), &args.policy, &report)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Print a diff report for people.
pub fn print_diff(out: &mut dyn Write, policy: &Path, r: &DiffReport) -> Result<()> {
    writeln!(
        out,
        "{} on kernel {} (modules.mode = {})",
        policy.display(),
        r.release,
        r.mode.as_str()
    )?;
    writeln!(
        out,
        "  blocks {} of {} loadable modules ({} allowed)",
        r.blocked.len(),
        r.loadable,
        r.allowed
    )?;
    let line = |label: &str, s: &Surface| {
        format!(
            "  {label:<34} {:>5} modules {:>10} {:>7} functions",
            s.modules,
            human_bytes(s.text_bytes),
            s.functions
        )
    };
    writeln!(out, "\n  Code an unprivileged user can get loaded:")?;
    writeln!(out, "{}", line("today", &r.before))?;
    writeln!(out, "{}", line("with the allowlist", &r.after))?;
    writeln!(
        out,
        "{}",
        line("with the allowlist and settings", &r.after_with_settings)
    )?;
    let pct = if r.before.text_bytes == 0 {
        0.0
    } else {
        r.removed.text_bytes as f64 * 100.0 / r.before.text_bytes as f64
    };
    writeln!(
        out,
        "  removed by the allowlist: {} modules, {} ({pct:.0}%), {} functions",
        r.removed.modules,
        human_bytes(r.removed.text_bytes),
        r.removed.functions
    )?;
    if !r.listed_not_in_kernel.is_empty() {
        writeln!(
            out,
            "\n  listed but not in this kernel: {}",
            r.listed_not_in_kernel.join(", ")
        )?;
    }
    if !r.blocked_loaded.is_empty() {
        writeln!(
            out,
            "\n  WARNING: blocks modules loaded right now: {} (apply refuses without --force)",
            r.blocked_loaded.join(", ")
        )?;
    }
    if r.mode != kgate_policy::Mode::Enforce {
        writeln!(
            out,
            "\n  modules.mode is {}: these figures describe the allowlist as if enforced; nothing is blocked yet",
            r.mode.as_str()
        )?;
    }
    Ok(())
}

fn explain(args: &ExplainArgs) -> Result<ExitCode> {
    let policy = load_policy(&args.policy)?.policy;
    let t = Target::load(&args.target)?;
    let e = policy.explain(&t.tree, &args.query);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &PolicyJson {
                    schema: "kgate.policy-explain/1",
                    policy: &args.policy,
                    report: &e,
                },
            )?;
            writeln!(out)?;
        }
        Format::Text => {
            let mut out = TextOut::new(&mut out);
            if e.modules.is_empty() {
                writeln!(
                    out,
                    "{}: no module of kernel {} answers this request; nothing would load",
                    e.query, t.release
                )?;
            }
            for m in &e.modules {
                let verdict = if m.builtin {
                    "builtin (always present)"
                } else if m.allowed {
                    "ALLOWED"
                } else {
                    "BLOCKED"
                };
                writeln!(out, "{}: {verdict} — {}", m.name, m.rule)?;
                if !m.in_tree {
                    writeln!(out, "  not in kernel {}", t.release)?;
                }
                if !m.matched_aliases.is_empty() {
                    writeln!(
                        out,
                        "  matches {} through {}",
                        e.query,
                        m.matched_aliases.join(", ")
                    )?;
                }
                for tr in &m.triggers {
                    writeln!(
                        out,
                        "  trigger {:<16} {:<40} reachable by {}",
                        tr.kind,
                        tr.alias,
                        tr.access.as_str()
                    )?;
                }
            }
            if let Some(s) = &e.socket {
                writeln!(
                    out,
                    "socket family {} ({}): {} for unprivileged users by [sockets] (mode {})",
                    s.family,
                    s.name.unwrap_or("?"),
                    if s.allowed { "allowed" } else { "denied" },
                    s.mode.as_str()
                )?;
            }
            if e.mode != kgate_policy::Mode::Enforce {
                writeln!(
                    out,
                    "modules.mode is {}: nothing is blocked yet",
                    e.mode.as_str()
                )?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
