//! `kgate boot`: what kgate.service runs at every boot. It puts
//! /etc/kgate/policy.toml in force by the same code as `kgate apply`, in
//! the mode and with the backend of the last successful apply; never
//! bricks a boot (it only ever applies a policy that passed every check,
//! and a failure leaves boot going on); and falls back to the last good
//! policy when the file cannot be put in force.
//!
//! The decision is pure ([`decide`]) and unit-tested; [`run`] carries it
//! out and records what happened in /run/kgate/boot.json for `kgate
//! status`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use kgate_apply::boot_record::{self, BootRecord, BOOT_RECORD};
use kgate_apply::last_good::{self, LastGood};
use kgate_kernel::bounded::{self, Limit};

use super::{apply_to, ApplyArgs, ApplyModeArg, Backend};
use crate::output::{Format, TextOut};
use crate::target::TargetArgs;

/// The policy kgate.service enforces.
pub const POLICY: &str = "/etc/kgate/policy.toml";

/// Put the host's policy in force at boot (kgate.service runs this).
///
/// Applies POLICY (default /etc/kgate/policy.toml) with every check of
/// `kgate apply`, in the mode (`--mode`) and with the backend of the last
/// successful `kgate apply`. If the file is missing, unreadable or invalid,
/// or fails to apply, the last policy that applied successfully (kept in
/// /var/lib/kgate/last-good.toml) is enforced instead and the command
/// fails, so that `systemctl --failed` shows it with the reason in the
/// journal. Boot goes on either way.
///
/// `kgate=off` on the kernel command line skips enforcement and says so:
/// the recovery path, like `apparmor=0`. With neither a policy file nor a
/// last good policy there is nothing to enforce, which is not an error.
///
/// What happened is recorded in /run/kgate/boot.json; `kgate status`
/// shows it.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXIT STATUS:
    0 the policy is in force, or kgate=off, or there is no policy at all;
    1 the policy could not be put in force (the last good one is, if there
    is one): see the journal (journalctl -u kgate).")]
pub struct Args {
    /// The policy file [default: /etc/kgate/policy.toml below the root].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Act on a mounted image below DIR (its proc/cmdline, etc/kgate,
    /// var/lib/kgate and run/kgate; the modprobe backend) instead of this
    /// host: for tests and images.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Say what would be applied; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What the kernel command line and the files say to do at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `kgate=off`: enforce nothing.
    Off,
    /// No policy file and no last good policy: nothing to enforce.
    Nothing,
    /// Apply the policy file; on failure, fall back to the last good one
    /// when there is one.
    Apply {
        /// `--mode` of the last apply.
        mode: Option<ApplyModeArg>,
        /// The backend of the last apply.
        backend: Option<Backend>,
        /// Whether a last good policy is there to fall back to.
        fallback: bool,
    },
    /// The policy file is missing but a last good policy exists (the file
    /// was removed or moved): enforce the last good one, and fail.
    LastGoodOnly,
}

/// Decide from the kernel command line, whether the policy file exists,
/// and the last good record.
pub fn decide(cmdline: &str, policy_exists: bool, last: Option<&LastGood>) -> Decision {
    if kgate_kernel::lsm::cmdline_param(cmdline, "kgate").as_deref() == Some("off") {
        return Decision::Off;
    }
    match (policy_exists, last) {
        (false, None) => Decision::Nothing,
        (false, Some(_)) => Decision::LastGoodOnly,
        (true, last) => Decision::Apply {
            mode: last.and_then(|l| l.mode.as_deref().and_then(ApplyModeArg::parse)),
            backend: last.and_then(recorded_backend),
            fallback: last.is_some(),
        },
    }
}

/// The backend a last-good record names (`None`: unknown, apply's default).
fn recorded_backend(l: &LastGood) -> Option<Backend> {
    match l.backend.as_str() {
        "bpf-lsm" => Some(Backend::BpfLsm),
        "modprobe" => Some(Backend::Modprobe),
        _ => None,
    }
}

fn apply_args(
    root: Option<&Path>,
    policy: &Path,
    mode: Option<ApplyModeArg>,
    backend: Option<Backend>,
) -> ApplyArgs {
    ApplyArgs {
        policy: policy.to_owned(),
        backend,
        dry_run: false,
        force: false,
        mode,
        initramfs: None,
        no_initramfs: false,
        format: Format::Text,
        target: TargetArgs {
            root: root.map(Path::to_owned),
            ..TargetArgs::default()
        },
        no_record: false,
    }
}

/// Run `kgate boot`.
pub fn run(args: &Args) -> Result<ExitCode> {
    let root = args.root.as_deref().unwrap_or(Path::new("/"));
    let image = args.root.as_deref();
    let policy = args
        .policy
        .clone()
        .unwrap_or_else(|| root.join(POLICY.trim_start_matches('/')));
    let mut out = TextOut::new(std::io::stdout().lock());
    let cmdline =
        bounded::read_text(root, &root.join("proc/cmdline"), Limit::HOST_FILE).unwrap_or_default();
    let last = last_good::load(root);
    let decision = decide(&cmdline, policy.exists(), last.as_ref().map(|(_, m)| m));
    if args.dry_run {
        writeln!(
            out,
            "kgate boot would: {decision:?} (dry run: nothing changed)"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let last_good_path = root.join(last_good::LAST_GOOD);
    let (record, code) = match decision {
        Decision::Off => {
            writeln!(
                out,
                "kgate=off on the kernel command line: nothing is enforced this boot"
            )?;
            (
                record("off", None, Some("kgate=off on the kernel command line")),
                0,
            )
        }
        Decision::Nothing => {
            writeln!(
                out,
                "no policy: {} does not exist and nothing was applied before; nothing to enforce \
                 (write one with `kgate freeze -o {}`)",
                policy.display(),
                policy.display()
            )?;
            (record("nothing", None, Some("no policy file")), 0)
        }
        Decision::Apply {
            mode,
            backend,
            fallback,
        } => match apply_to(&apply_args(image, &policy, mode, backend), &mut out) {
            Ok(_) => {
                writeln!(out, "kgate boot: {} is in force", policy.display())?;
                (record("enforced", Some(&policy), None), 0)
            }
            Err(e) => {
                let why = format!("{} could not be put in force: {e:#}", policy.display());
                writeln!(out, "kgate boot: error: {why}")?;
                if fallback {
                    fall_back(
                        image,
                        &last_good_path,
                        last.as_ref().map(|(_, m)| m),
                        &why,
                        &mut out,
                    )?
                } else {
                    (record("failed", None, Some(&why)), 1)
                }
            }
        },
        Decision::LastGoodOnly => {
            let why = format!(
                "{} does not exist, but a policy was applied before",
                policy.display()
            );
            writeln!(out, "kgate boot: error: {why}")?;
            fall_back(
                image,
                &last_good_path,
                last.as_ref().map(|(_, m)| m),
                &why,
                &mut out,
            )?
        }
    };
    if let Err(e) = boot_record::write(root, &record) {
        writeln!(
            out,
            "warning: cannot record this boot in /{BOOT_RECORD}: {e}"
        )?;
    }
    Ok(ExitCode::from(code))
}

fn record(state: &str, policy: Option<&Path>, reason: Option<&str>) -> BootRecord {
    BootRecord::new(state, policy, reason)
}

/// Enforce the last good policy after the file failed; always exit 1.
fn fall_back(
    image: Option<&Path>,
    path: &Path,
    meta: Option<&LastGood>,
    why: &str,
    out: &mut dyn Write,
) -> Result<(BootRecord, u8)> {
    // The record holds the policy as enforced, --mode already applied.
    let backend = meta.and_then(recorded_backend);
    let mut a = apply_args(image, path, None, backend);
    a.no_record = true;
    match apply_to(&a, out) {
        Ok(_) => {
            writeln!(
                out,
                "kgate boot: the last good policy ({}, from {}) is in force instead",
                path.display(),
                meta.map(|m| m.source.as_str()).unwrap_or("?")
            )?;
            Ok((record("last-good", Some(path), Some(why)), 1))
        }
        Err(e) => {
            let why = format!("{why}; the last good policy failed too: {e:#}");
            writeln!(out, "kgate boot: error: nothing is enforced: {why}")?;
            Ok((record("failed", None, Some(&why)), 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(mode: Option<&str>, backend: &str) -> LastGood {
        LastGood {
            schema: last_good::SCHEMA.into(),
            source: POLICY.into(),
            mode: mode.map(str::to_owned),
            backend: backend.into(),
            hash: "h".into(),
        }
    }

    #[test]
    fn kgate_off_wins_over_everything() {
        let l = last(None, "bpf-lsm");
        assert_eq!(
            decide("root=/dev/vda1 kgate=off quiet", true, Some(&l)),
            Decision::Off
        );
        assert_eq!(decide("kgate=off", false, None), Decision::Off);
        // After `--`, words belong to init, not to the kernel.
        assert_ne!(decide("quiet -- kgate=off", true, None), Decision::Off);
        assert_ne!(decide("kgate=on", true, None), Decision::Off);
    }

    #[test]
    fn the_last_apply_gives_mode_and_backend() {
        let l = last(Some("audit"), "modprobe");
        assert_eq!(
            decide("quiet", true, Some(&l)),
            Decision::Apply {
                mode: Some(ApplyModeArg::Audit),
                backend: Some(Backend::Modprobe),
                fallback: true,
            }
        );
        assert_eq!(
            decide("quiet", true, None),
            Decision::Apply {
                mode: None,
                backend: None,
                fallback: false,
            }
        );
    }

    #[test]
    fn a_missing_file_falls_back_only_if_something_was_applied() {
        assert_eq!(decide("", false, None), Decision::Nothing);
        assert_eq!(
            decide("", false, Some(&last(None, "bpf-lsm"))),
            Decision::LastGoodOnly
        );
    }
}
