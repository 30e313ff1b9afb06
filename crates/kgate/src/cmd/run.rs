//! `kgate run`: a command under a workload's seccomp filter.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::ValueEnum;

use kgate_policy::SeccompErrno;
use kgate_seccomp::FilterSpec;

/// Run a command with only the syscalls (and socket families) a policy's
/// `[seccomp]` section or a recorded profile allows.
///
/// kgate builds a seccomp filter, sets no_new_privs, installs the filter on
/// itself and execs CMD, which keeps it for life, with its children.
/// Syscalls outside the allowlist fail with EPERM (or ENOSYS with --errno
/// enosys, which makes programs fall back to older calls); socket(2) and
/// socketpair(2) are checked by their family argument and fail with
/// EAFNOSUPPORT for other families (a socketpair creates its sockets, and
/// autoloads the family's module, before the family can refuse a pair);
/// splice, vmsplice and tee are denied unless listed. execve,
/// exit, exit_group and rt_sigreturn are always allowed. Syscalls allowed
/// without an argument check are served from the kernel's seccomp action
/// cache (Linux 5.11+): they cost nothing extra.
///
/// With --audit nothing is denied: every call the policy would deny is
/// logged by the kernel (SECCOMP_RET_LOG, "type=1326" audit records in
/// the kernel log or audit.log) and allowed. Use it to try a policy on a
/// live service.
///
/// io_uring: when the policy allows io_uring_setup or io_uring_enter,
/// io_uring's IORING_OP_SOCKET, IORING_OP_SPLICE and IORING_OP_TEE run in
/// the kernel without a syscall the filter sees, so they create sockets
/// of denied families and splice or tee although those are denied. kgate
/// warns on standard error when that undoes the policy; allow io_uring
/// only for workloads that need it.
///
/// Examples:
///
///   kgate record -o app.json -- ./app --selftest
///   kgate policy generate --from app.json -o app.toml
///   kgate run --policy app.toml -- ./app
///
///   kgate run --profile app.json --audit -- ./app     (log, do not deny)
///
/// EXIT STATUS: CMD's exit status when it ran; 1 when kgate could not
/// start it (bad policy, command not found, filter refused; nothing was
/// run); 2 usage error.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub source: crate::inputs::SeccompSource,
    /// Log what would be denied and allow it (SECCOMP_RET_LOG).
    #[arg(long)]
    pub audit: bool,
    /// The error denied syscalls return [default: the policy's on_deny, else eperm].
    #[arg(long, value_enum, value_name = "ERRNO")]
    pub errno: Option<Errno>,
    /// Print what would be installed, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `--errno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Errno {
    /// EPERM, "operation not permitted".
    Eperm,
    /// ENOSYS, "function not implemented".
    Enosys,
}

/// Run `kgate run`; returns only on error (or with --dry-run).
pub fn run(args: Args) -> Result<ExitCode> {
    let policy = args.source.load()?;
    let errno = args.errno.map(|e| match e {
        Errno::Eperm => SeccompErrno::Eperm,
        Errno::Enosys => SeccompErrno::Enosys,
    });
    let spec = FilterSpec::from_section(&policy.seccomp, args.audit, errno)?;
    let prog = spec.build()?;
    if let Some(w) = policy.seccomp.io_uring_warning() {
        eprintln!("kgate: warning: {w}");
    }
    if args.dry_run {
        println!(
            "would run {} with {} allowed syscalls, socket families {}, {} ({} BPF instructions), no_new_privs",
            args.command[0].to_string_lossy(),
            spec.allow.len(),
            match &spec.socket_families {
                None => "unchecked".to_owned(),
                Some(f) => format!(
                    "{:?}",
                    f.iter()
                        .map(|n| kgate_policy::family_name(*n).unwrap_or("?"))
                        .collect::<Vec<_>>()
                ),
            },
            match spec.deny {
                kgate_seccomp::Deny::Log => "audit (log, allow)".to_owned(),
                kgate_seccomp::Deny::Errno(e) => format!("deny with errno {e}"),
                _ => "deny".to_owned(),
            },
            prog.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let e = kgate_seccomp::exec::exec(&prog, &args.command);
    Err(e).context("kgate run: nothing was run")
}
