//! [`plan`](fn@crate::plan) and [`plan_sysctls`]: what an apply would change, read-only,
//! as per-file diffs, live sysctl changes and refusals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kgate_kernel::name::ModuleName;
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::ApplyError;
use crate::leftover;
use crate::manifest::{
    manifest_text, read_manifest, Manifest, ManifestFile, ManifestState, ManifestSysctl,
};
use crate::render::{
    blocked_modules, invalid_module_names, is_ours, render_modprobe, render_sysctl,
};
use crate::{
    is_live_root, read_text, sha256_hex, ModprobeInput, MODPROBE_CONF, ONE_WAY_SYSCTLS, OWN_FILES,
    STATE_FILE, SYSCTL_CONF,
};

/// What happens to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The file does not exist yet.
    Create,
    /// kgate's earlier version is replaced.
    Replace,
    /// Already as it should be: not written.
    Unchanged,
}

/// One file of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Path relative to the root (e.g. `etc/modprobe.d/kgate.conf`).
    pub rel: String,
    /// Full path (root joined).
    pub path: PathBuf,
    /// Current content; `None` when absent.
    pub old: Option<String>,
    /// Content kgate writes.
    pub new: String,
    /// What happens.
    pub action: Action,
}

/// One live sysctl change (root `/` only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SysctlChange {
    /// Dotted name.
    pub name: String,
    /// Current value.
    pub old: String,
    /// Value to set.
    pub new: String,
}

/// A module the plan would block although the host needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Canonical module name.
    pub module: String,
    /// Why it is needed (`loaded now`, `root filesystem (ext4)`...).
    pub why: String,
}

/// What [`apply`](fn@crate::apply) would do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub(crate) root: PathBuf,
    /// `root/proc/sys` to set live sysctls under; `None` for offline roots.
    pub(crate) live: Option<PathBuf>,
    pub(crate) files: Vec<FileChange>,
    pub(crate) sysctls: Vec<SysctlChange>,
    pub(crate) refusals: Vec<Refusal>,
    pub(crate) warnings: Vec<String>,
    pub(crate) blocked: Vec<ModuleName>,
    pub(crate) modules_supported: bool,
    pub(crate) manifest: Manifest,
    /// The state manifest on disk is already `manifest`.
    pub(crate) manifest_current: bool,
    /// Temporary files a killed kgate left ([`leftover`]).
    pub(crate) leftovers: Vec<PathBuf>,
}

impl Plan {
    /// The root the plan was made for.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Every file kgate manages, with its action (unchanged ones included).
    pub fn files(&self) -> &[FileChange] {
        &self.files
    }
    /// Live sysctl changes (empty unless the root is `/`).
    pub fn sysctls(&self) -> &[SysctlChange] {
        &self.sysctls
    }
    /// Modules the plan blocks although they are loaded now or needed to
    /// boot. [`apply`](fn@crate::apply) refuses a plan with refusals unless forced.
    pub fn refusals(&self) -> &[Refusal] {
        &self.refusals
    }
    /// Things the user should know (skipped live sysctls, no module support).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// Modules `kgate.conf` blocks, sorted.
    pub fn blocked(&self) -> &[ModuleName] {
        &self.blocked
    }
    /// False when the kernel has no loadable modules: only the sysctl file
    /// is written.
    pub fn modules_supported(&self) -> bool {
        self.modules_supported
    }
    /// Nothing would change: the files and sysctls are as planned, the
    /// state manifest records them (a file that is already right but that
    /// no complete manifest lists is not a no-op: apply records it), and no
    /// temporary file of a killed kgate is left.
    pub fn is_noop(&self) -> bool {
        self.files.iter().all(|f| f.action == Action::Unchanged)
            && self.sysctls.is_empty()
            && self.manifest_current
            && self.leftovers.is_empty()
    }

    /// A unified diff of every file change, then the live sysctl changes;
    /// empty when nothing changes.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for f in self.files.iter().filter(|f| f.action != Action::Unchanged) {
            let old = f.old.as_deref().unwrap_or("");
            let a = if f.old.is_some() {
                format!("a/{}", f.rel)
            } else {
                "/dev/null".to_owned()
            };
            let b = format!("b/{}", f.rel);
            let diff = similar::TextDiff::from_lines(old, f.new.as_str());
            let _ = write!(
                out,
                "{}",
                diff.unified_diff().context_radius(3).header(&a, &b)
            );
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        if !self.sysctls.is_empty() {
            out.push_str("live sysctls (/proc/sys):\n");
            for s in &self.sysctls {
                let _ = writeln!(out, "  {}: {} -> {}", s.name, s.old, s.new);
            }
        }
        out
    }
}

/// Plans the modprobe backend for `root` (`/` for this host; then live
/// sysctls are planned too). Reads only.
///
/// Fails when a target is a symlink, lies below a symlinked directory, or
/// exists without kgate's header, and for invalid sysctls. Modules that are
/// loaded or boot-critical are not an error here: they are
/// [`Plan::refusals`].
pub fn plan(input: &ModprobeInput<'_>, root: &Path) -> Result<Plan, ApplyError> {
    let live = is_live_root(root).then(|| PathBuf::from("/"));
    plan_with_live(input, root, live, true)
}

/// Plans only the `[sysctl]` part: `etc/sysctl.d/90-kgate.conf`, the live
/// values, and the manifest, for a backend that enforces modules some
/// other way (BPF-LSM). `input.allowed`, `loaded` and `boot` are not used.
/// [`apply`](fn@crate::apply) and [`revert`](fn@crate::revert) treat the plan like any other: atomic writes,
/// rollback, exact revert of what was changed.
pub fn plan_sysctls(input: &ModprobeInput<'_>, root: &Path) -> Result<Plan, ApplyError> {
    let live = is_live_root(root).then(|| PathBuf::from("/"));
    plan_with_live(input, root, live, false)
}

/// [`plan`](fn@crate::plan) with an explicit root for live sysctls (`live/proc/sys`);
/// without `modprobe`, [`plan_sysctls`].
pub(crate) fn plan_with_live(
    input: &ModprobeInput<'_>,
    root: &Path,
    live: Option<PathBuf>,
    modprobe: bool,
) -> Result<Plan, ApplyError> {
    let mut warnings = Vec::new();
    let modules_supported = modprobe && input.tree.modules.iter().any(|m| !m.builtin);
    let blocked = if modules_supported {
        for bad in invalid_module_names(input.tree) {
            warnings.push(format!(
                "{bad}: kgate.conf cannot name this module, so it does not block it"
            ));
        }
        blocked_modules(input.tree, input.allowed)
    } else if !modprobe {
        Vec::new()
    } else {
        warnings.push(format!(
            "kernel {} has no loadable modules (module support is off or {} is empty): \
             kgate writes only the sysctl file",
            input.kernel_release,
            input.tree.modules_dir.display()
        ));
        Vec::new()
    };

    // An allowed name that is an alias of a blocked module: modprobe would
    // resolve it to that module, whose `install ... /bin/false` line still
    // stops it here; say that the entry allows nothing (issue 13, 5c).
    if modules_supported {
        for (name, blocked) in input.tree.aliases_of_unallowed(input.allowed) {
            warnings.push(format!(
                "modules.allow {name:?} is not a module of this kernel but an alias of {} \
                 that the policy blocks: it is dropped (the blocked module stays blocked). \
                 Allow the module by name if it is meant to load, or remove {name:?}",
                blocked.join(", ")
            ));
        }
    }

    // Refusals: blocked but loaded now or needed to boot.
    let mut needed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in input.loaded {
        needed
            .entry(kgate_kernel::canonical_name(m))
            .or_default()
            .push("loaded now".to_owned());
    }
    for b in input.boot {
        needed
            .entry(kgate_kernel::canonical_name(&b.name))
            .or_default()
            .push(b.reason.clone());
    }
    let refusals: Vec<Refusal> = blocked
        .iter()
        .filter_map(|m| {
            needed.get(m.as_str()).map(|why| Refusal {
                module: m.to_string(),
                why: why.join("; "),
            })
        })
        .collect();

    let mut wanted: Vec<(&str, String)> = Vec::new();
    if modules_supported {
        wanted.push((MODPROBE_CONF, render_modprobe(input, &blocked)));
    }
    wanted.push((SYSCTL_CONF, render_sysctl(input)?));

    let mut files = Vec::new();
    for (rel, new) in wanted {
        atomic::check_writable(root, Path::new(rel))?;
        let old = read_text(root, rel)?;
        let path = root.join(rel);
        if let Some(old) = &old {
            if !is_ours(old) {
                return Err(ApplyError::NotOurs { path });
            }
        }
        let action = match &old {
            None => Action::Create,
            Some(o) if *o == new => Action::Unchanged,
            Some(_) => Action::Replace,
        };
        files.push(FileChange {
            rel: rel.to_owned(),
            path,
            old,
            new,
            action,
        });
    }
    atomic::check_writable(root, Path::new(STATE_FILE))?;
    let previous = read_manifest(root)?;

    // Live sysctls.
    let mut sysctls = Vec::new();
    if let Some(live) = &live {
        for (name, value) in input.sysctls {
            match kgate_kernel::sysctl::read_one(live, name) {
                Ok(cur) if cur == *value => {}
                // Multi-value sysctls are tab-separated in /proc/sys.
                Ok(cur) if cur.split_whitespace().eq(value.split_whitespace()) => {}
                Ok(cur) => sysctls.push(SysctlChange {
                    name: name.clone(),
                    old: cur,
                    new: value.clone(),
                }),
                Err((_, note)) => warnings.push(format!(
                    "sysctl {name} is not set live: {note} (the sysctl.d file still lists it; \
                     systemd-sysctl will report it at boot)"
                )),
            }
        }
        sysctls.sort_by_key(|s| ONE_WAY_SYSCTLS.contains(&s.name.as_str()));
    }

    // The manifest after apply: the files of this plan, plus files of an
    // earlier apply this plan no longer writes (so revert still removes
    // them), plus the oldest known previous value of every live sysctl.
    let mut manifest = Manifest {
        version: 1,
        kgate_version: env!("CARGO_PKG_VERSION").to_owned(),
        backend: if modprobe { "modprobe" } else { "bpf-lsm" }.to_owned(),
        policy_path: input.policy_path.to_owned(),
        policy_sha256: input.policy_hash.to_owned(),
        kernel_release: input.kernel_release.to_owned(),
        files: files
            .iter()
            .map(|f| ManifestFile {
                path: f.rel.clone(),
                sha256: sha256_hex(f.new.as_bytes()),
                previous_sha256: None,
                replaced_existing: f.old.is_some(),
            })
            .collect(),
        sysctls: Vec::new(),
        state: ManifestState::Complete,
    };
    let mut prev_sysctls: BTreeMap<String, String> = BTreeMap::new();
    if let Some(prev) = &previous {
        for f in &prev.files {
            if !manifest.files.iter().any(|m| m.path == f.path) {
                manifest.files.push(f.clone());
            }
            if let Some(m) = manifest.files.iter_mut().find(|m| m.path == f.path) {
                m.replaced_existing = f.replaced_existing;
            }
        }
        for s in &prev.sysctls {
            prev_sysctls.insert(s.name.clone(), s.previous.clone());
        }
        // modprobe.d from an earlier modprobe apply is still in force.
        if prev.files.iter().any(|f| f.path == MODPROBE_CONF) {
            manifest.backend = "modprobe".to_owned();
        }
    }
    for s in &sysctls {
        prev_sysctls
            .entry(s.name.clone())
            .or_insert_with(|| s.old.clone());
    }
    manifest.sysctls = prev_sysctls
        .into_iter()
        .map(|(name, previous)| ManifestSysctl { name, previous })
        .collect();

    match &previous {
        None => {
            for f in files.iter().filter(|f| f.old.is_some()) {
                warnings.push(format!(
                    "{} carries kgate's header but no state manifest records it (an earlier \
                     kgate was interrupted): this apply records it, so that kgate revert \
                     removes it",
                    f.path.display()
                ));
            }
        }
        Some(m) if m.state == ManifestState::Pending => warnings.push(format!(
            "{} records an apply that was interrupted: this apply completes it \
             (kgate revert would undo it)",
            root.join(STATE_FILE).display()
        )),
        Some(_) => {}
    }
    let manifest_current =
        read_text(root, STATE_FILE)?.as_deref() == Some(&*manifest_text(&manifest));
    let leftovers = leftover::clean(root, OWN_FILES, true)?;
    if !leftovers.is_empty() {
        warnings.push(format!(
            "temporary files of an interrupted kgate are left and will be removed: {}",
            leftovers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    Ok(Plan {
        root: root.to_owned(),
        live,
        files,
        sysctls,
        refusals,
        warnings,
        blocked,
        modules_supported,
        manifest,
        manifest_current,
        leftovers,
    })
}
