//! The Debian kernels the lab boots, as unpacked by `cargo xtask fetch`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};

/// The lab cache: `$KGATE_LAB_DIR`, default `~/.cache/kgate-lab`.
pub fn lab_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KGATE_LAB_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/kgate-lab")
}

/// Which kernel: the name scenarios see in `KGATE_LAB_KERNEL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flavour {
    /// `linux-image-6.12.113+deb12-cloud-amd64-unsigned`.
    Cloud612,
    /// `linux-image-6.12.113+deb12-amd64-unsigned` (generic, all drivers).
    Generic612,
    /// The newest `linux-image-6.1.0-N-cloud-amd64-unsigned`.
    Cloud61,
}

impl Flavour {
    /// Every flavour, in the order the lab boots them.
    pub const ALL: [Flavour; 3] = [Flavour::Cloud612, Flavour::Generic612, Flavour::Cloud61];

    /// `cloud-6.12`, `generic-6.12` or `cloud-6.1`.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Cloud612 => "cloud-6.12",
            Flavour::Generic612 => "generic-6.12",
            Flavour::Cloud61 => "cloud-6.1",
        }
    }

    /// The package name, with `*` where the ABI number varies.
    pub fn package_pattern(self) -> &'static str {
        match self {
            Flavour::Cloud612 => "linux-image-6.12.113+deb12-cloud-amd64-unsigned",
            Flavour::Generic612 => "linux-image-6.12.113+deb12-amd64-unsigned",
            Flavour::Cloud61 => "linux-image-6.1.0-*-cloud-amd64-unsigned",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Flavour {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Flavour::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .with_context(|| {
                format!("unknown kernel {s:?}; expected cloud-6.12, generic-6.12 or cloud-6.1")
            })
    }
}

/// One unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Which kernel.
    pub flavour: Flavour,
    /// The package name, e.g. `linux-image-6.1.0-56-cloud-amd64-unsigned`.
    pub package: String,
    /// The unpacked package: `<lab>/kernels/<package>`.
    pub root: PathBuf,
    /// `uname -r`, e.g. `6.12.113+deb12-cloud-amd64`.
    pub release: String,
    /// `<root>/boot/vmlinuz-<release>`.
    pub vmlinuz: PathBuf,
    /// `<root>/lib/modules/<release>`.
    pub modules: PathBuf,
}

impl Kernel {
    /// Find `flavour` in the default lab dir.
    pub fn find(flavour: Flavour) -> Result<Kernel> {
        Kernel::find_in(&lab_dir(), flavour)
    }

    /// Find `flavour` under `lab/kernels`.
    pub fn find_in(lab: &Path, flavour: Flavour) -> Result<Kernel> {
        let kernels = lab.join("kernels");
        let pattern = flavour.package_pattern();
        let package = match pattern.split_once('*') {
            None => pattern.to_owned(),
            Some((prefix, suffix)) => {
                let mut found: Vec<(u32, String)> = std::fs::read_dir(&kernels)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let mid = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
                        Some((mid.parse().ok()?, name))
                    })
                    .collect();
                found.sort();
                match found.pop() {
                    Some((_, name)) => name,
                    None => bail!(
                        "kernel {flavour} ({pattern}) is not in {}: run `cargo xtask fetch`",
                        kernels.display()
                    ),
                }
            }
        };
        let root = kernels.join(&package);
        let release = only_release(&root).with_context(|| {
            format!(
                "kernel {flavour} ({package}) is missing or incomplete: run `cargo xtask fetch`"
            )
        })?;
        let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
        if !vmlinuz.is_file() {
            bail!("{} is missing: run `cargo xtask fetch`", vmlinuz.display());
        }
        let modules = root.join("lib/modules").join(&release);
        Ok(Kernel {
            flavour,
            package,
            root,
            release,
            vmlinuz,
            modules,
        })
    }
}

/// The single release below `root/lib/modules`.
fn only_release(root: &Path) -> Result<String> {
    let dir = root.join("lib/modules");
    let mut releases: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .filter(|e| e.path().join("kernel").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match releases.len() {
        1 => Ok(releases.remove(0)),
        0 => bail!("no kernel below {}", dir.display()),
        _ => bail!("several kernels below {}: {releases:?}", dir.display()),
    }
}
