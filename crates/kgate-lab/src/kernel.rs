//! The kernels the lab boots: Debian's, as unpacked by `cargo xtask fetch`,
//! and the lab's own build of Debian's kernel source, installed by
//! `cargo xtask build-kernel` in the same layout (`boot/vmlinuz-<release>`,
//! `lib/modules/<release>/kernel/`, empty when the kernel has no modules).

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
    /// Debian's `linux-source-6.12` built by the lab with
    /// `lab/kernel/fei-6.12.config` ("function error injection": BPF
    /// `fmod_ret` on syscalls works); ships no modules (all built in).
    Fei612,
}

impl Flavour {
    /// Every flavour, in the order the lab boots them.
    pub const ALL: [Flavour; 4] = [
        Flavour::Cloud612,
        Flavour::Generic612,
        Flavour::Cloud61,
        Flavour::Fei612,
    ];

    /// Debian's own kernels: what `cargo xtask fetch` provides, `--kernel
    /// all` boots and the cargo lab tests run on.
    pub const DEBIAN: [Flavour; 3] = [Flavour::Cloud612, Flavour::Generic612, Flavour::Cloud61];

    /// `cloud-6.12`, `generic-6.12`, `cloud-6.1` or `fei-6.12`.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Cloud612 => "cloud-6.12",
            Flavour::Generic612 => "generic-6.12",
            Flavour::Cloud61 => "cloud-6.1",
            Flavour::Fei612 => "fei-6.12",
        }
    }

    /// The directory below `<lab>/kernels`: the package name, with `*`
    /// where the ABI number varies, or `kgate-<name>` for a built kernel.
    pub fn package_pattern(self) -> &'static str {
        match self {
            Flavour::Cloud612 => "linux-image-6.12.113+deb12-cloud-amd64-unsigned",
            Flavour::Generic612 => "linux-image-6.12.113+deb12-amd64-unsigned",
            Flavour::Cloud61 => "linux-image-6.1.0-*-cloud-amd64-unsigned",
            Flavour::Fei612 => "kgate-fei-6.12",
        }
    }

    /// How to build a flavour the lab compiles itself: `None` for Debian's
    /// packaged kernels.
    pub fn build(self) -> Option<KernelBuild> {
        match self {
            Flavour::Fei612 => Some(KernelBuild {
                source_package: "linux-source-6.12",
                tarball: "usr/src/linux-source-6.12.tar.xz",
                fragment: "lab/kernel/fei-6.12.config",
            }),
            _ => None,
        }
    }

    /// The command that puts this kernel into the lab cache.
    pub fn provide_command(self) -> String {
        match self.build() {
            Some(_) => format!("cargo xtask build-kernel {self}"),
            None => "cargo xtask fetch".to_owned(),
        }
    }
}

/// A kernel the lab builds from a Debian kernel source package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelBuild {
    /// The Debian package holding the source tarball.
    pub source_package: &'static str,
    /// The tarball inside that package (no leading `/`).
    pub tarball: &'static str,
    /// The config fragment, relative to the repository root.
    pub fragment: &'static str,
}

/// The stamp `cargo xtask build-kernel` writes into a built kernel's root:
/// `key=value` lines (`key`, `source`, `fragment_sha256`, ...).
pub const BUILD_STAMP: &str = "kgate-build";

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
                format!(
                    "unknown kernel {s:?}; expected cloud-6.12, generic-6.12, cloud-6.1 or fei-6.12"
                )
            })
    }
}

/// One unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Which kernel.
    pub flavour: Flavour,
    /// The package name, e.g. `linux-image-6.1.0-56-cloud-amd64-unsigned`
    /// (`kgate-fei-6.12` for a built kernel).
    pub package: String,
    /// The unpacked package (or installed build): `<lab>/kernels/<package>`.
    pub root: PathBuf,
    /// `uname -r`, e.g. `6.12.113+deb12-cloud-amd64`.
    pub release: String,
    /// `<root>/boot/vmlinuz-<release>`.
    pub vmlinuz: PathBuf,
    /// `<root>/lib/modules/<release>`.
    pub modules: PathBuf,
    /// A built kernel's stamp ([`BUILD_STAMP`]): `key=value` pairs.
    pub build_stamp: Option<Vec<(String, String)>>,
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
                        "kernel {flavour} ({pattern}) is not in {}: run `{}`",
                        kernels.display(),
                        flavour.provide_command()
                    ),
                }
            }
        };
        let root = kernels.join(&package);
        let release = only_release(&root).with_context(|| {
            format!(
                "kernel {flavour} ({package}) is missing or incomplete: run `{}`",
                flavour.provide_command()
            )
        })?;
        let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
        if !vmlinuz.is_file() {
            bail!(
                "{} is missing: run `{}`",
                vmlinuz.display(),
                flavour.provide_command()
            );
        }
        let modules = root.join("lib/modules").join(&release);
        let build_stamp = std::fs::read_to_string(root.join(BUILD_STAMP))
            .ok()
            .map(|text| parse_stamp(&text));
        Ok(Kernel {
            flavour,
            package,
            root,
            release,
            vmlinuz,
            modules,
            build_stamp,
        })
    }

    /// One value of a built kernel's stamp.
    pub fn stamp(&self, key: &str) -> Option<&str> {
        self.build_stamp
            .as_ref()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Fails when this is a build whose config fragment has changed since
    /// it was built: booting it would test the old config. Packaged
    /// kernels are always current.
    pub fn check_current(&self) -> Result<()> {
        let Some(build) = self.flavour.build() else {
            return Ok(());
        };
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(build.fragment);
        let now = sha256_hex(
            &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
        );
        match self.stamp("fragment_sha256") {
            Some(built) if built == now => Ok(()),
            Some(_) => bail!(
                "{} changed since {} was built: run `{}`",
                build.fragment,
                self.flavour,
                self.flavour.provide_command()
            ),
            None => bail!(
                "{} has no {BUILD_STAMP}: run `{}`",
                self.root.display(),
                self.flavour.provide_command()
            ),
        }
    }
}

/// The lock of a lab kernel build: `cargo xtask build-kernel` holds it
/// exclusively while it builds and installs; a boot holds it shared while
/// it finds the kernel, so that a boot started beside a build (scripts/test.sh
/// builds fei-6.12 in the background) waits for the build to finish instead
/// of failing or booting a half-installed kernel. An `flock` on
/// `<lab>/build/<flavour>.lock`: the kernel drops it when the holder exits.
#[derive(Debug)]
pub struct BuildLock {
    _file: FileLock,
}

impl BuildLock {
    /// Take the lock of `flavour`'s build, waiting for it (with a line on
    /// stderr when it is held elsewhere). `exclusive`: to build.
    pub fn take(flavour: Flavour, exclusive: bool) -> Result<BuildLock> {
        let path = lab_dir()
            .join("build")
            .join(format!("{}.lock", flavour.name()));
        let lock = FileLock::take(&path, exclusive, &format!("{flavour}: the build"))?;
        Ok(BuildLock { _file: lock })
    }
}

/// An `flock` on a file of the lab cache, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    /// Take the exclusive lock on `path` (created), waiting for it.
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        FileLock::take(path, true, &path.display().to_string())
    }

    /// Take the lock on `path`, shared or exclusive, waiting with a line
    /// on stderr naming `what` when another process holds it.
    pub fn take(path: &Path, exclusive: bool, what: &str) -> Result<FileLock> {
        use std::os::fd::AsRawFd;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mode = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: `file` is an open fd; flock does not touch memory.
        if unsafe { libc::flock(file.as_raw_fd(), mode | libc::LOCK_NB) } != 0 {
            eprintln!("lab: waiting for {what} (it holds {})", path.display());
            // SAFETY: as above.
            if unsafe { libc::flock(file.as_raw_fd(), mode) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        Ok(FileLock { _file: file })
    }
}

/// Lowercase hex SHA-256 of `data` (build stamps).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `key=value` lines; others are ignored.
pub fn parse_stamp(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
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
