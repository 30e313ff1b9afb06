//! [`ApplyError`]: the errors of plan, apply and revert.

use std::path::PathBuf;

use crate::atomic::AtomicError;
use crate::plan::Refusal;

/// Errors of plan, apply and revert. Each names the path and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// A file operation failed or was refused (symlink, not a directory...).
    #[error(transparent)]
    File(#[from] AtomicError),
    /// The target exists and kgate did not write it.
    #[error("{path} exists and was not written by kgate (its first line is not kgate's header); kgate never overwrites a file it did not write: move it away (or merge it by hand) and re-run")]
    NotOurs {
        /// The file.
        path: PathBuf,
    },
    /// The plan blocks modules that are loaded or needed to boot.
    #[error("refusing to block {} module(s) that are loaded now or needed to boot: {}; allow them in the policy, or re-run with --force if you are sure", .refusals.len(), refusal_list(.refusals))]
    Refused {
        /// What was refused.
        refusals: Vec<Refusal>,
    },
    /// A sysctl name or value that cannot be written to a sysctl.d file.
    #[error("sysctl {name:?} = {value:?}: {why}; fix the policy")]
    InvalidSysctl {
        /// Name.
        name: String,
        /// Value.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The state manifest cannot be parsed.
    #[error("{path}: the kgate state manifest is damaged ({reason}); inspect it, remove kgate's files by hand if needed, then delete it")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The parse error.
        reason: String,
    },
    /// A file changed between plan and apply.
    #[error("{path} changed after the plan was made; nothing was written: plan again (kgate apply shows the new diff)")]
    Stale {
        /// The file.
        path: PathBuf,
    },
    /// A plan made for one root was applied to another.
    #[error("this plan was made for {planned}, not {given}; plan again for this root")]
    RootMismatch {
        /// Root of the plan.
        planned: PathBuf,
        /// Root passed to apply.
        given: PathBuf,
    },
    /// Writing a live sysctl failed.
    #[error("{path}: cannot set sysctl {name} to {value:?}: {source}; is it read-only in this namespace, or is the value out of range?")]
    Sysctl {
        /// Dotted name.
        name: String,
        /// Value.
        value: String,
        /// `/proc/sys/...`.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A write failed after others succeeded; they were rolled back.
    #[error("{cause}; everything kgate had already changed was rolled back{}", rollback_note(.rollback_problems))]
    RolledBack {
        /// The failure.
        cause: Box<ApplyError>,
        /// Rollback steps that failed themselves (empty: clean rollback).
        rollback_problems: Vec<String>,
    },
    /// Another kgate holds the state lock.
    #[error("another kgate apply or revert is running on {root} (it holds the lock on {dir}); nothing was changed: run this again when it has finished")]
    Busy {
        /// The root.
        root: PathBuf,
        /// The locked state directory.
        dir: PathBuf,
    },
}

pub(crate) fn refusal_list(r: &[Refusal]) -> String {
    r.iter()
        .map(|r| format!("{} ({})", r.module, r.why))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn rollback_note(problems: &[String]) -> String {
    if problems.is_empty() {
        String::new()
    } else {
        format!(", EXCEPT (fix by hand): {}", problems.join("; "))
    }
}
