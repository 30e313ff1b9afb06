//! Inputs several subcommands read: a policy file, and the seccomp source
//! of `kgate run` and `kgate export` (a policy or a recorded profile).
//! Subcommand modules take them from here, never from each other.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use kgate_policy::profile::Profile;
use kgate_policy::Policy;

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
