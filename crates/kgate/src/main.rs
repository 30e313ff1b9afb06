//! `kgate`: block access to kernel code by default, allow only what is known
//! good. This file only parses arguments and dispatches; each subcommand
//! lives in `cmd/<name>.rs` with its `Args` struct and `run` function.

mod backend;
mod cmd;
mod cvedata;
mod ftrace;
mod inputs;
mod journal;
mod output;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Measure and cut the kernel attack surface that unprivileged users can reach.
///
/// kgate finds which kernel modules an ordinary user can get loaded (by
/// calling socket(), mounting in a user namespace, binding an AF_ALG socket,
/// ...), how much code they hold, and through which trigger; freezes what a
/// host really uses into a reviewable policy; and enforces it.
///
/// With no subcommand, kgate surveys this host.
///
/// A typical lockdown: `kgate freeze -o policy.toml`, `kgate policy diff
/// policy.toml`, `kgate apply policy.toml --dry-run`, `kgate apply
/// policy.toml`; undo with `kgate revert`. Measure what it removes: `kgate
/// cve update` (or `kgate cve import PATH` offline), then `kgate score
/// --policy policy.toml`.
///
/// EXIT STATUS: 0 success; 1 error or refusal (bad input, invalid policy,
/// unreadable kernel tree, a policy that would block what the host needs,
/// write failure; nothing was changed); 2 usage error; 3 the survey
/// completed but some module files could not be read (they are listed and
/// skipped). A broken pipe on output is not an error.
#[derive(Debug, Parser)]
#[command(
    name = "kgate",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    Survey(cmd::survey::Args),
    Freeze(cmd::freeze::Args),
    Policy(cmd::policy::Args),
    Apply(cmd::apply::ApplyArgs),
    Revert(cmd::apply::RevertArgs),
    Boot(cmd::apply::boot::Args),
    Status(cmd::status::Args),
    Events(cmd::events::Args),
    Record(cmd::record::Args),
    Run(cmd::run::Args),
    Export(cmd::export::Args),
    Hap(cmd::hap::Args),
    Report(cmd::report::Args),
    Cve(cmd::cve::Args),
    Score(cmd::score::Args),
    Explain(cmd::explain::Args),
    #[command(hide = true)]
    GenerateDocs(cmd::docs::Args),
}

fn main() -> ExitCode {
    let start = std::time::Instant::now();
    let code = run();
    report_time(start);
    code
}

/// `KGATE_TIMES_FD=N`: when this run ends, write its wall time and
/// arguments (`1.23 kgate apply p.toml`) to file descriptor N, which the
/// caller opened (the lab's guests pass their console, so that a slow
/// scenario shows which kgate run took the time). Nothing is opened by
/// name, so the variable cannot make kgate write a file; a descriptor
/// that is not open is ignored.
fn report_time(start: std::time::Instant) {
    let Some(fd) = std::env::var("KGATE_TIMES_FD")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|fd| *fd > 2)
    else {
        return;
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let line = format!(
        "KGATE-TIME {:.2} kgate {}\n",
        start.elapsed().as_secs_f64(),
        args.join(" ").replace(char::is_control, "?")
    );
    // SAFETY: write(2) on a caller-provided descriptor with a valid buffer;
    // a closed or bad descriptor only returns EBADF, which is ignored.
    let _ = unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    // libbpf's raw logs only with KGATE_DEBUG=1: kgate's own errors explain.
    kgate_bpf::libbpf_logging(std::env::var_os("KGATE_DEBUG").is_some_and(|v| v == "1"));
    let result = match cli.command {
        Some(Command::Survey(args)) => cmd::survey::run(&args),
        Some(Command::Freeze(args)) => cmd::freeze::run(&args),
        Some(Command::Policy(args)) => cmd::policy::run(&args),
        Some(Command::Apply(args)) => cmd::apply::run_apply(&args),
        Some(Command::Revert(args)) => cmd::apply::run_revert(&args),
        Some(Command::Boot(args)) => cmd::apply::boot::run(&args),
        Some(Command::Status(args)) => cmd::status::run(&args),
        Some(Command::Events(args)) => cmd::events::run(&args),
        Some(Command::Record(args)) => cmd::record::run(&args),
        Some(Command::Run(args)) => cmd::run::run(args),
        Some(Command::Export(args)) => cmd::export::run(&args),
        Some(Command::Hap(args)) => cmd::hap::run(&args),
        Some(Command::Report(args)) => cmd::report::run(&args),
        Some(Command::Cve(args)) => cmd::cve::run(&args),
        Some(Command::Score(args)) => cmd::score::run(&args),
        Some(Command::Explain(args)) => cmd::explain::run(&args),
        Some(Command::GenerateDocs(args)) => {
            cmd::docs::run(&args, <Cli as clap::CommandFactory>::command())
        }
        None => cmd::survey::run(&cmd::survey::Args::default()),
    };
    match result {
        Ok(code) => code,
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Errors quote paths, names and file contents others control.
            use std::io::Write;
            let mut stderr = output::TextOut::new(std::io::stderr().lock());
            let _ = writeln!(stderr, "kgate: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
