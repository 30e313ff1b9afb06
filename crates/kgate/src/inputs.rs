//! Inputs several subcommands read: a policy file, the seccomp source of
//! `kgate run` and `kgate export` (a policy or a recorded profile), and the
//! loaded-module set of `kgate freeze` and `kgate policy diff`.
//! Subcommand modules take them from here, never from each other.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kgate_kernel::bounded::{self, Limit};
use kgate_kernel::depmod;
use kgate_policy::profile::Profile;
use kgate_policy::Policy;

use crate::target::Target;

/// Load a policy; an invalid one is an error listing every problem.
pub fn load_policy(path: &Path) -> Result<kgate_policy::Loaded> {
    Policy::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Where a seccomp filter comes from: `--policy FILE` or `--profile FILE`.
#[derive(Debug, clap::Args)]
pub struct SeccompSource {
    /// A policy file whose `[seccomp]` section is used.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "profile",
        required_unless_present = "profile"
    )]
    pub policy: Option<PathBuf>,
    /// A recorded profile (kgate.profile/1) instead of a policy: allow what
    /// it recorded.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
}

impl SeccompSource {
    /// The policy named, or the one generated from the profile.
    pub fn load(&self) -> Result<Policy> {
        match (&self.policy, &self.profile) {
            (Some(p), _) => Ok(load_policy(p)?.policy),
            (None, Some(f)) => {
                let prof = Profile::load(f)?;
                Ok(kgate_policy::profile::generate(&[(f.to_owned(), prof)], None).0)
            }
            (None, None) => bail!("give --policy FILE or --profile FILE"),
        }
    }
}

/// The loaded-module set: `--loaded FILE` (/proc/modules or lsmod format),
/// else the target's. An empty file means no module is loaded (that is
/// what /proc/modules of such a host holds); a file with text but not a
/// single module name is an error: it is not what the user meant to pass.
pub fn loaded_modules(
    file: Option<&Path>,
    t: &Target,
) -> Result<std::collections::BTreeSet<String>> {
    let Some(file) = file else {
        return Ok(t.loaded.clone());
    };
    let text = bounded::read_text(Path::new("/"), file, Limit::HOST_FILE)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let loaded = depmod::parse_proc_modules(&text);
    if loaded.is_empty() && !text.trim().is_empty() {
        bail!(
            "{}: no module names found; expected /proc/modules or lsmod output",
            file.display()
        );
    }
    Ok(loaded)
}
