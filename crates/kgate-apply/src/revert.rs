//! [`revert`](fn@crate::revert): undo exactly what the manifest says kgate applied.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::apply::write_sysctl;
use crate::atomic;
use crate::error::ApplyError;
use crate::manifest::{read_manifest, ManifestState};
use crate::render::is_ours;
use crate::{checked, crash, leftover};
use crate::{
    is_live_root, read_text, sha256_hex, MODPROBE_CONF, ONE_WAY_SYSCTLS, OWN_FILES, STATE_FILE,
    SYSCTL_CONF,
};

/// What [`revert`](fn@crate::revert) did (or would do, with `dry_run`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RevertReport {
    /// A manifest was found.
    pub had_manifest: bool,
    /// Files removed (or to remove).
    pub removed: Vec<PathBuf>,
    /// Files left in place because they changed after kgate wrote them.
    pub modified: Vec<PathBuf>,
    /// Files listed in the manifest that no longer exist.
    pub missing: Vec<PathBuf>,
    /// Live sysctls restored (name, value).
    pub sysctls_restored: Vec<(String, String)>,
    /// Leftover temporary files of a killed kgate, removed (or to remove).
    pub leftovers_removed: Vec<PathBuf>,
    /// Problems that did not stop the revert (a sysctl that could not be
    /// restored...).
    pub problems: Vec<String>,
    /// One line per fact, for the user.
    pub messages: Vec<String>,
    /// Nothing was changed (dry run).
    pub dry_run: bool,
}

/// Undoes what kgate applied under `root`, as recorded in its manifest:
/// removes each file kgate wrote whose content is still exactly what kgate
/// wrote (an edited file is left in place and reported), restores the live
/// sysctls it changed (root `/` only), and removes the manifest. Files not
/// in the manifest are never touched. With `dry_run`, only reports.
pub fn revert(root: &Path, dry_run: bool) -> Result<RevertReport, ApplyError> {
    let live = is_live_root(root).then(|| PathBuf::from("/"));
    revert_with_live(root, dry_run, live.as_deref())
}

pub(crate) fn revert_with_live(
    root: &Path,
    dry_run: bool,
    live: Option<&Path>,
) -> Result<RevertReport, ApplyError> {
    revert_with_hook(root, dry_run, live, &|_| {})
}

/// [`revert_with_live`] with a hook called with each relative path after
/// its content was checked and before it is removed; tests use it to swap
/// the file in between.
pub(crate) fn revert_with_hook(
    root: &Path,
    dry_run: bool,
    live: Option<&Path>,
    hook: &dyn Fn(&str),
) -> Result<RevertReport, ApplyError> {
    let mut report = RevertReport {
        dry_run,
        ..RevertReport::default()
    };
    report.leftovers_removed = leftover::clean(root, OWN_FILES, dry_run)?;
    for p in &report.leftovers_removed {
        let verb = if dry_run { "would remove" } else { "removed" };
        report.messages.push(format!(
            "{verb} {}, a temporary file of an interrupted kgate",
            p.display()
        ));
    }
    let Some(manifest) = read_manifest(root)? else {
        report.messages.push(format!(
            "kgate has not applied anything here (no {})",
            root.join(STATE_FILE).display()
        ));
        // A file with kgate's header that no manifest records (an older
        // kgate killed between its files and its manifest): not removed,
        // since nothing says it is unedited, but never passed over silently.
        for rel in [MODPROBE_CONF, SYSCTL_CONF] {
            if read_text(root, rel)?.is_some_and(|t| is_ours(&t)) {
                let msg = format!(
                    "{} carries kgate's header but no state manifest records it, so kgate \
                     does not know it is unedited and leaves it in force: run `kgate apply` \
                     with the policy named in its header (that records it), then `kgate \
                     revert`; or remove it by hand",
                    root.join(rel).display()
                );
                report.messages.push(msg.clone());
                report.problems.push(msg);
            }
        }
        return Ok(report);
    };
    report.had_manifest = true;
    if manifest.state == ManifestState::Pending {
        report.messages.push(format!(
            "{} records an apply that was interrupted; reverting what it may have changed",
            root.join(STATE_FILE).display()
        ));
    }
    if !dry_run {
        crash::point("revert-start");
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for f in &manifest.files {
        let path = root.join(&f.path);
        // Only kgate's own file names, whatever the manifest says.
        if f.path != MODPROBE_CONF && f.path != SYSCTL_CONF {
            report.problems.push(format!(
                "{}: listed in the manifest but not a file kgate writes; not removed",
                path.display()
            ));
            continue;
        }
        let accept = |bytes: &[u8]| {
            let h = sha256_hex(bytes);
            h == f.sha256 || f.previous_sha256.as_deref() == Some(h.as_str())
        };
        let checked = checked::remove_if(root, Path::new(&f.path), &accept, dry_run, &|| {
            hook(&f.path)
        });
        match checked {
            Ok(c) => {
                if let Some(note) = c.dir_note {
                    if !report.messages.contains(&note) {
                        report.messages.push(note);
                    }
                }
                match c.outcome {
                    checked::Outcome::Gone => {
                        report
                            .messages
                            .push(format!("{}: already gone", path.display()));
                        report.missing.push(path);
                    }
                    checked::Outcome::Removed => {
                        if !dry_run {
                            crash::point(&format!("revert-removed:{}", f.path));
                        }
                        report.messages.push(format!("{verb} {}", path.display()));
                        report.removed.push(path);
                    }
                    checked::Outcome::Modified => {
                        report.messages.push(format!(
                            "{}: modified since kgate wrote it; not removed",
                            path.display()
                        ));
                        report.modified.push(path);
                    }
                    checked::Outcome::Swapped => {
                        report.messages.push(format!(
                            "{}: replaced by another file while kgate checked it; not removed",
                            path.display()
                        ));
                        report.modified.push(path);
                    }
                    checked::Outcome::RemovedOther => {
                        let msg = format!(
                            "{}: replaced by another file at the instant kgate removed it: the \
                             removed file is not the one kgate checked; look at the directory",
                            path.display()
                        );
                        report.messages.push(msg.clone());
                        report.problems.push(msg);
                        report.removed.push(path);
                    }
                }
            }
            Err(e) => {
                report.messages.push(format!("{e}; not removed"));
                report.problems.push(e.to_string());
            }
        }
    }
    if let Some(live) = live {
        for s in &manifest.sysctls {
            if dry_run {
                report
                    .messages
                    .push(format!("would restore sysctl {} = {}", s.name, s.previous));
                report
                    .sysctls_restored
                    .push((s.name.clone(), s.previous.clone()));
                continue;
            }
            match write_sysctl(live, &s.name, &s.previous) {
                Ok(()) => {
                    crash::point(&format!("revert-restored:{}", s.name));
                    report
                        .messages
                        .push(format!("restored sysctl {} = {}", s.name, s.previous));
                    report
                        .sysctls_restored
                        .push((s.name.clone(), s.previous.clone()));
                }
                Err(e) => {
                    let note = if ONE_WAY_SYSCTLS.contains(&s.name.as_str()) {
                        " (this sysctl cannot be set back until reboot)"
                    } else {
                        ""
                    };
                    report.problems.push(format!("{e}{note}"));
                }
            }
        }
    } else if !manifest.sysctls.is_empty() {
        report.messages.push(format!(
            "{} live sysctl value(s) are recorded but {} is not this host's root; not restored",
            manifest.sysctls.len(),
            root.display()
        ));
    }
    if dry_run {
        report
            .messages
            .push(format!("would remove {}", root.join(STATE_FILE).display()));
    } else {
        atomic::remove(root, Path::new(STATE_FILE))?;
        report
            .messages
            .push(format!("removed {}", root.join(STATE_FILE).display()));
    }
    Ok(report)
}
