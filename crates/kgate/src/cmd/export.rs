//! `kgate export`: a policy's `[seccomp]` section for other tools.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;

use kgate_seccomp::export::{export, Format as ExportFormat};

/// Export a workload's seccomp policy for container runtimes, systemd or
/// Kubernetes.
///
/// Formats:
///
///   oci      the linux.seccomp object of an OCI bundle's config.json (crun, runc)
///   docker   a profile for `docker run --security-opt seccomp=FILE`
///   podman   a profile for `podman run --security-opt seccomp=FILE`
///   systemd  a drop-in (UNIT.service.d/kgate.conf) with SystemCallFilter=,
///            RestrictAddressFamilies=, ProtectKernelModules= and related settings
///   spo      a Security Profiles Operator SeccompProfile manifest (kubectl apply)
///
/// All allow the same syscalls as `kgate run`, socket(2) and socketpair(2)
/// only for the allowed families; another family fails with EAFNOSUPPORT,
/// as under `kgate run` (oci/docker/podman/spo: a few SCMP_CMP_MASKED_EQ
/// rules cover the denied values; systemd: RestrictAddressFamilies=, which
/// checks socket(2) only, so socketpair(2) is not family-checked there:
/// kgate warns). Non-x86_64 ABIs are refused by the runtime's own rules.
///
/// io_uring: a profile that allows io_uring_setup or io_uring_enter lets
/// io_uring's IORING_OP_SOCKET, IORING_OP_SPLICE and IORING_OP_TEE skip
/// seccomp entirely (sockets of denied families, splice and tee although
/// denied); kgate warns on standard error when the policy allows that.
///
/// Examples:
///
///   kgate export --format oci --policy app.toml > seccomp.json
///   kgate export --format systemd --policy app.toml -o /etc/systemd/system/app.service.d/kgate.conf
///   kgate export --format spo --profile app.json --name app
///
/// EXIT STATUS: 0 success; 1 error (bad policy or profile, no `[seccomp]`
/// section, bad name; nothing written); 2 usage error.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Format,
    #[command(flatten)]
    pub source: crate::inputs::SeccompSource,
    /// Export audit mode: log what would be denied, deny nothing.
    #[arg(long)]
    pub audit: bool,
    /// Object name for spo [default: the policy's meta.name, else kgate-workload].
    #[arg(long)]
    pub name: Option<String>,
    /// Write to FILE atomically instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// OCI runtime-spec linux.seccomp JSON.
    Oci,
    /// Docker seccomp profile JSON.
    Docker,
    /// Podman seccomp profile JSON.
    Podman,
    /// systemd unit drop-in.
    Systemd,
    /// Kubernetes Security Profiles Operator SeccompProfile.
    Spo,
}

/// Run `kgate export`.
pub fn run(args: &Args) -> Result<ExitCode> {
    let policy = args.source.load()?;
    let name = args
        .name
        .clone()
        .or_else(|| policy.meta.name.clone())
        .unwrap_or_else(|| "kgate-workload".into());
    let format = match args.format {
        Format::Oci => ExportFormat::Oci,
        Format::Docker => ExportFormat::Docker,
        Format::Podman => ExportFormat::Podman,
        Format::Systemd => ExportFormat::Systemd,
        Format::Spo => ExportFormat::Spo,
    };
    let text = export(&policy, format, args.audit, &name)?;
    for w in kgate_seccomp::export::warnings(&policy, format) {
        eprintln!("kgate: warning: {w}");
    }
    match args.output.as_deref() {
        Some(p) if p != Path::new("-") => crate::output::write_file(p, text.as_bytes())?,
        _ => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
