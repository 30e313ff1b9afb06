//! [`apply`](fn@crate::apply): write a plan atomically, journaled by the manifest, rolled
//! back on failure.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::atomic::{self, AtomicError};
use crate::error::ApplyError;
use crate::manifest::{manifest_text, ManifestState};
use crate::plan::{Plan, Refusal, SysctlChange};
use crate::render::is_ours;
use crate::{crash, leftover};
use crate::{read_text, sha256_hex, OWN_FILES, STATE_FILE};

/// What [`apply`](fn@crate::apply) did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// Files written (created or replaced).
    pub written: Vec<PathBuf>,
    /// Files already up to date.
    pub unchanged: Vec<PathBuf>,
    /// Live sysctls set.
    pub sysctls_set: Vec<SysctlChange>,
    /// The manifest was (re)written.
    pub manifest_written: bool,
    /// Leftover temporary files of a killed kgate, removed.
    pub leftovers_removed: Vec<PathBuf>,
    /// Refused modules blocked anyway (with force).
    pub forced: Vec<Refusal>,
}

/// Writes a plan: the files (atomically, in order), the manifest, then the
/// live sysctls. Refuses a plan with [`Plan::refusals`] unless `force`.
/// Re-validates every target before the first write. On any failure,
/// everything already written is rolled back ([`ApplyError::RolledBack`]).
/// Unchanged files are not touched (a second apply of the same plan writes
/// nothing).
pub fn apply(plan: &Plan, root: &Path, force: bool) -> Result<ApplyReport, ApplyError> {
    apply_with_hook(plan, root, force, &|_| Ok(()))
}

enum Undo {
    File { rel: String, old: Option<String> },
    Sysctl { name: String, old: String },
}

pub(crate) fn sysctl_path(live: &Path, name: &str) -> PathBuf {
    live.join(kgate_kernel::sysctl::proc_path(name))
}

pub(crate) fn write_sysctl(live: &Path, name: &str, value: &str) -> Result<(), ApplyError> {
    let path = sysctl_path(live, name);
    std::fs::write(&path, format!("{value}\n")).map_err(|source| ApplyError::Sysctl {
        name: name.to_owned(),
        value: value.to_owned(),
        path,
        source,
    })
}

/// [`apply`](fn@crate::apply) with a hook called with each relative path (or `sysctl NAME`)
/// before it is written; tests use it to inject failures.
pub(crate) fn apply_with_hook(
    plan: &Plan,
    root: &Path,
    force: bool,
    hook: &dyn Fn(&str) -> std::io::Result<()>,
) -> Result<ApplyReport, ApplyError> {
    if plan.root != root {
        return Err(ApplyError::RootMismatch {
            planned: plan.root.clone(),
            given: root.to_owned(),
        });
    }
    if !plan.refusals.is_empty() && !force {
        return Err(ApplyError::Refused {
            refusals: plan.refusals.clone(),
        });
    }
    // Validate everything again before writing anything: the host may have
    // changed since the plan (and a plan may be applied long after it).
    for f in &plan.files {
        atomic::check_writable(root, Path::new(&f.rel))?;
        let now = read_text(root, &f.rel)?;
        if let Some(now) = &now {
            if !is_ours(now) {
                return Err(ApplyError::NotOurs {
                    path: f.path.clone(),
                });
            }
        }
        if now != f.old && now.as_deref() != Some(f.new.as_str()) {
            return Err(ApplyError::Stale {
                path: f.path.clone(),
            });
        }
    }
    atomic::check_writable(root, Path::new(STATE_FILE))?;
    let old_manifest = read_text(root, STATE_FILE)?;

    let mut report = ApplyReport {
        written: Vec::new(),
        unchanged: Vec::new(),
        sysctls_set: Vec::new(),
        manifest_written: false,
        leftovers_removed: leftover::clean(root, OWN_FILES, false)?,
        forced: if force {
            plan.refusals.clone()
        } else {
            Vec::new()
        },
    };
    crash::point("apply-start");
    let manifest = manifest_text(&plan.manifest);
    let mut undo: Vec<Undo> = Vec::new();
    let result = (|| -> Result<(), ApplyError> {
        let write_manifest = |text: &str| -> Result<(), ApplyError> {
            hook(STATE_FILE).map_err(|source| AtomicError::Io {
                path: root.join(STATE_FILE),
                op: "write",
                source,
            })?;
            atomic::write(root, Path::new(STATE_FILE), text.as_bytes())?;
            Ok(())
        };
        // Write-ahead: before the first change, the manifest lists every
        // file this apply may write (with the hash of what is there now)
        // and every sysctl's value from before kgate, marked pending. A
        // kill from here on leaves a manifest that revert undoes and the
        // next apply completes (docs/ARCHITECTURE.md, "Nothing is
        // half-applied").
        let mut current = Vec::new();
        for f in &plan.files {
            current.push(read_text(root, &f.rel)?);
        }
        let to_write = plan
            .files
            .iter()
            .zip(&current)
            .any(|(f, c)| c.as_deref() != Some(f.new.as_str()));
        let journaled = to_write || !plan.sysctls.is_empty();
        if journaled {
            let mut journal = plan.manifest.clone();
            journal.state = ManifestState::Pending;
            for (f, c) in plan.files.iter().zip(&current) {
                if let Some(m) = journal.files.iter_mut().find(|m| m.path == f.rel) {
                    m.previous_sha256 = c.as_deref().map(|c| sha256_hex(c.as_bytes()));
                }
            }
            undo.push(Undo::File {
                rel: STATE_FILE.to_owned(),
                old: old_manifest.clone(),
            });
            write_manifest(&manifest_text(&journal))?;
            crash::point("apply-journaled");
        }
        for (f, current) in plan.files.iter().zip(current) {
            if current.as_deref() == Some(f.new.as_str()) {
                report.unchanged.push(f.path.clone());
                continue;
            }
            hook(&f.rel).map_err(|source| AtomicError::Io {
                path: f.path.clone(),
                op: "write",
                source,
            })?;
            undo.push(Undo::File {
                rel: f.rel.clone(),
                old: current,
            });
            atomic::write(root, Path::new(&f.rel), f.new.as_bytes())?;
            crash::point(&format!("apply-wrote:{}", f.rel));
            report.written.push(f.path.clone());
        }
        if let Some(live) = &plan.live {
            for s in &plan.sysctls {
                hook(&format!("sysctl {}", s.name)).map_err(|source| ApplyError::Sysctl {
                    name: s.name.clone(),
                    value: s.new.clone(),
                    path: sysctl_path(live, &s.name),
                    source,
                })?;
                undo.push(Undo::Sysctl {
                    name: s.name.clone(),
                    old: s.old.clone(),
                });
                write_sysctl(live, &s.name, &s.new)?;
                crash::point(&format!("apply-set:{}", s.name));
                report.sysctls_set.push(s.clone());
            }
        }
        if journaled || old_manifest.as_deref() != Some(manifest.as_str()) {
            if undo.is_empty() {
                undo.push(Undo::File {
                    rel: STATE_FILE.to_owned(),
                    old: old_manifest.clone(),
                });
            }
            write_manifest(&manifest)?;
            crash::point("apply-committed");
            report.manifest_written = true;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(report),
        Err(cause) => {
            let mut problems = Vec::new();
            for u in undo.into_iter().rev() {
                match u {
                    Undo::File {
                        rel,
                        old: Some(old),
                    } => {
                        if let Err(e) = atomic::write(root, Path::new(&rel), old.as_bytes()) {
                            problems.push(format!("restore {}: {e}", root.join(&rel).display()));
                        }
                    }
                    Undo::File { rel, old: None } => {
                        if let Err(e) = atomic::remove(root, Path::new(&rel)) {
                            problems.push(format!("remove {}: {e}", root.join(&rel).display()));
                        }
                    }
                    Undo::Sysctl { name, old } => {
                        if let Some(live) = &plan.live {
                            if let Err(e) = write_sysctl(live, &name, &old) {
                                problems.push(format!("restore sysctl {name}: {e}"));
                            }
                        }
                    }
                }
            }
            Err(ApplyError::RolledBack {
                cause: Box::new(cause),
                rollback_problems: problems,
            })
        }
    }
}
