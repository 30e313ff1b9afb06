//! `cargo xtask build-kernel`: the lab's own kernels, built from Debian's
//! kernel source package.
//!
//! For a flavour with a [`KernelBuild`] (today `fei-6.12`): download the
//! source package with `apt-get download` (the `fetch` code), unpack its
//! tarball into `$KGATE_LAB_DIR/build/<flavour>/`, configure with
//! `make tinyconfig`, the committed fragment (`merge_config.sh -m`) and
//! `make olddefconfig`, check that every line of the fragment survived (and
//! that no option is `=m`: the lab installs no modules),
//! `make -jN bzImage`, and install into `$KGATE_LAB_DIR/kernels/kgate-<flavour>/`
//! in the layout of an unpacked kernel package (`boot/vmlinuz-<release>`,
//! `boot/config-<release>`, `lib/modules/<release>/kernel/`, empty: no
//! modules), plus a [`BUILD_STAMP`]. The stamp's key covers the fragment and
//! the source package's version: when both are unchanged the command does
//! nothing, and the build tree is removed after a successful build.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use kgate_lab::{sha256_hex, Flavour, Kernel, KernelBuild, BUILD_STAMP};

/// Bump when the build steps change in a way that changes the kernel.
const RECIPE: &str = "kgate-lab kernel build 1";

/// Options of `cargo xtask build-kernel`.
pub struct Options {
    /// Rebuild even when the installed build is current.
    pub force: bool,
    /// Keep `$KGATE_LAB_DIR/build/<flavour>` after a successful build.
    pub keep_build: bool,
    /// `make -jN`.
    pub jobs: usize,
}

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What a fragment asks for: `CONFIG_X=v` (value `Some("v")`) or
/// `# CONFIG_X is not set` (`None`), in file order.
pub fn parse_fragment(text: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut wanted = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(sym) = line
            .strip_prefix("# ")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            if !sym.starts_with("CONFIG_") {
                bail!("line {}: {line:?} is not a config line", i + 1);
            }
            wanted.push((sym.to_owned(), None));
        } else if line.is_empty() || line.starts_with('#') {
            continue;
        } else if let Some((sym, value)) = line.split_once('=') {
            if !sym.starts_with("CONFIG_") || value.is_empty() {
                bail!("line {}: {line:?} is not a config line", i + 1);
            }
            wanted.push((sym.to_owned(), Some(value.to_owned())));
        } else {
            bail!("line {}: {line:?} is not a config line", i + 1);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (sym, _) in &wanted {
        if !seen.insert(sym) {
            bail!("{sym} appears twice");
        }
    }
    Ok(wanted)
}

/// The symbols a `.config` sets: `CONFIG_X=v` lines (`is not set` and
/// absent symbols are both off).
fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Every way `config` differs from what the fragment asks for.
pub fn check_config(wanted: &[(String, Option<String>)], config: &str) -> Vec<String> {
    let have = parse_config(config);
    let mut wrong = Vec::new();
    for (sym, want) in wanted {
        let got = have.get(sym);
        match (want, got) {
            (Some(w), Some(g)) if w == g => {}
            (None, None) => {}
            (Some(w), Some(g)) => wrong.push(format!("{sym}: wanted {w}, got {g}")),
            (Some(w), None) => wrong.push(format!("{sym}: wanted {w}, got not set")),
            (None, Some(g)) => wrong.push(format!("{sym}: wanted not set, got {g}")),
        }
    }
    wrong
}

/// The options `config` builds as modules (`=m`). The lab installs no
/// modules, so a built kernel must have none.
pub fn modular(config: &str) -> Vec<String> {
    parse_config(config)
        .into_iter()
        .filter(|(_, v)| v == "m")
        .map(|(k, _)| k)
        .collect()
}

/// Run `cmd`; fail with its name and, when `log` is given, the log's tail.
fn run(cmd: &mut Command, what: &str, log: Option<&Path>) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("failed to run {what}"))?;
    if !status.success() {
        let tail = log
            .and_then(|l| std::fs::read_to_string(l).ok())
            .map(|t| {
                let lines: Vec<&str> = t.lines().collect();
                format!(
                    "\n--- last lines of {} ---\n{}",
                    log.unwrap_or(Path::new("")).display(),
                    lines[lines.len().saturating_sub(60)..].join("\n")
                )
            })
            .unwrap_or_default();
        bail!("{what} failed ({status}){tail}");
    }
    Ok(())
}

/// Install the build dependencies the way scripts/test.sh installs its
/// own: `deps_install kernel` from scripts/deps.sh (apt-get, only what is
/// missing).
fn install_deps() -> Result<()> {
    run(
        Command::new("bash")
            .current_dir(workspace())
            .args(["-c", "source scripts/deps.sh && deps_install kernel"]),
        "scripts/deps.sh (deps_install kernel)",
        None,
    )
}

/// The version inside a `.deb`.
fn deb_version(deb: &Path) -> Result<String> {
    let out = Command::new("dpkg-deb")
        .args(["-f"])
        .arg(deb)
        .arg("Version")
        .output()
        .context("failed to run dpkg-deb")?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || version.is_empty() {
        bail!("dpkg-deb -f {} Version failed", deb.display());
    }
    Ok(version)
}

/// Build `flavour` (or find it current) and return the installed kernel.
pub fn build(flavour: Flavour, opts: &Options) -> Result<Kernel> {
    let spec: KernelBuild = flavour.build().with_context(|| {
        format!("{flavour} is one of Debian's packaged kernels: `cargo xtask fetch` provides it")
    })?;
    // Held until the new build is installed: a concurrent boot waits.
    let _lock = kgate_lab::BuildLock::take(flavour, true)?;
    let fragment_path = workspace().join(spec.fragment);
    let fragment = std::fs::read(&fragment_path)
        .with_context(|| format!("cannot read {}", fragment_path.display()))?;
    let wanted = parse_fragment(&String::from_utf8_lossy(&fragment))
        .with_context(|| format!("{}", fragment_path.display()))?;

    // The source package: apt's candidate version, downloaded once.
    let deb = crate::download(spec.source_package, crate::candidate(spec.source_package))?;
    let version = deb_version(&deb)?;
    let mut keyed = format!("{RECIPE}\n{} {version}\n", spec.source_package).into_bytes();
    keyed.extend_from_slice(&fragment);
    let key = sha256_hex(&keyed);

    let lab = kgate_lab::lab_dir();
    let kernels = lab.join("kernels");
    let dest = kernels.join(flavour.package_pattern());
    if !opts.force {
        if let Ok(kernel) = Kernel::find(flavour) {
            if kernel.stamp("key") == Some(key.as_str()) {
                eprintln!(
                    "build-kernel: {flavour} is current ({} {version}, {}): {}",
                    spec.source_package,
                    spec.fragment,
                    dest.display()
                );
                return Ok(kernel);
            }
        }
    }

    install_deps()?;
    let started = Instant::now();
    let work = lab.join("build").join(flavour.name());
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("cannot remove {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;

    // Unpack: dpkg-deb --fsys-tarfile DEB | tar -xO ./TARBALL | tar -xJ.
    eprintln!(
        "build-kernel: unpacking {} {version} into {}",
        spec.source_package,
        work.display()
    );
    let top = Path::new(spec.tarball)
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.xz"))
        .with_context(|| format!("{} is not a .tar.xz", spec.tarball))?;
    let mut deb_tar = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to run dpkg-deb")?;
    let mut xz = Command::new("tar")
        .arg("-xO")
        .arg(format!("./{}", spec.tarball))
        .stdin(deb_tar.stdout.take().context("dpkg-deb stdout")?)
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to run tar")?;
    let untar = Command::new("tar")
        .args(["-xJ", "-C"])
        .arg(&work)
        .stdin(xz.stdout.take().context("tar stdout")?)
        .status()
        .context("failed to run tar")?;
    let (a, b) = (deb_tar.wait()?, xz.wait()?);
    if !(a.success() && b.success() && untar.success()) {
        bail!("unpacking {} from {} failed", spec.tarball, deb.display());
    }
    let src = work.join(top);
    let out = work.join("out");
    std::fs::create_dir_all(&out)?;
    let make = |args: &[&str]| {
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(&src)
            .arg(format!("O={}", out.display()))
            .arg("ARCH=x86_64")
            .args(args)
            .env("KBUILD_BUILD_USER", "kgate")
            .env("KBUILD_BUILD_HOST", "kgate-lab");
        cmd
    };

    // Configure: tinyconfig + fragment + olddefconfig, then check.
    let config_log = work.join("config.log");
    let log_to = |path: &Path| -> Result<(Stdio, Stdio)> {
        let f = File::options().create(true).append(true).open(path)?;
        Ok((Stdio::from(f.try_clone()?), Stdio::from(f)))
    };
    eprintln!(
        "build-kernel: make tinyconfig + {} + olddefconfig",
        spec.fragment
    );
    let (o, e) = log_to(&config_log)?;
    run(
        make(&["tinyconfig"]).stdout(o).stderr(e),
        "make tinyconfig",
        Some(&config_log),
    )?;
    let (o, e) = log_to(&config_log)?;
    run(
        Command::new(src.join("scripts/kconfig/merge_config.sh"))
            .current_dir(&src)
            .arg("-m")
            .arg("-O")
            .arg(&out)
            .arg(out.join(".config"))
            .arg(&fragment_path)
            .stdout(o)
            .stderr(e),
        "merge_config.sh",
        Some(&config_log),
    )?;
    let (o, e) = log_to(&config_log)?;
    run(
        make(&["olddefconfig"]).stdout(o).stderr(e),
        "make olddefconfig",
        Some(&config_log),
    )?;
    let config = std::fs::read_to_string(out.join(".config"))?;
    let mut wrong = check_config(&wanted, &config);
    wrong.extend(
        modular(&config)
            .into_iter()
            .map(|sym| format!("{sym}=m: the lab installs no modules; turn it off or =y")),
    );
    if !wrong.is_empty() {
        bail!(
            "the {flavour} config does not hold what {} asks for (a dependency is missing, or the option does not exist in this source):\n  {}\n(config in {})",
            spec.fragment,
            wrong.join("\n  "),
            out.join(".config").display()
        );
    }
    eprintln!(
        "build-kernel: all {} options of {} are set as asked",
        wanted.len(),
        spec.fragment
    );

    // Build.
    let build_log = work.join("build.log");
    eprintln!(
        "build-kernel: make -j{} bzImage (log: {})",
        opts.jobs,
        build_log.display()
    );
    let (o, e) = log_to(&build_log)?;
    run(
        make(&[&format!("-j{}", opts.jobs), "bzImage"])
            .stdout(o)
            .stderr(e),
        "make bzImage",
        Some(&build_log),
    )?;
    let release = make(&["-s", "kernelrelease"])
        .output()
        .context("failed to run make kernelrelease")?;
    let release = String::from_utf8_lossy(&release.stdout).trim().to_owned();
    if release.is_empty() || release.contains(char::is_whitespace) {
        bail!("make kernelrelease printed {release:?}");
    }
    let seconds = started.elapsed().as_secs();

    // Install next to the unpacked packages, then swap it in.
    let tmp = kernels.join(format!(".{}.tmp", flavour.package_pattern()));
    let _ = std::fs::remove_dir_all(&tmp);
    let boot = tmp.join("boot");
    let modules = tmp.join("lib/modules").join(&release);
    std::fs::create_dir_all(&boot)?;
    // `kernel/` stays empty: Kernel::find and depmod see a release without modules.
    std::fs::create_dir_all(modules.join("kernel"))?;
    let copy = |from: PathBuf, to: PathBuf| -> Result<()> {
        std::fs::copy(&from, &to)
            .map(drop)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
    };
    copy(
        out.join("arch/x86/boot/bzImage"),
        boot.join(format!("vmlinuz-{release}")),
    )?;
    copy(out.join(".config"), boot.join(format!("config-{release}")))?;
    copy(
        out.join("System.map"),
        boot.join(format!("System.map-{release}")),
    )?;
    // What depmod reads besides modules (empty when the build has none),
    // and modules.builtin for lib.sh's `builtin`.
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        if out.join(f).is_file() {
            copy(out.join(f), modules.join(f))?;
        } else {
            std::fs::write(modules.join(f), "")?;
        }
    }
    std::fs::write(
        tmp.join(BUILD_STAMP),
        format!(
            "# Written by `cargo xtask build-kernel {flavour}`.\nkey={key}\nsource={} {version}\nfragment={}\nfragment_sha256={}\nrelease={release}\njobs={}\nbuild_seconds={seconds}\n",
            spec.source_package,
            spec.fragment,
            sha256_hex(&fragment),
            opts.jobs,
        ),
    )?;
    let old = kernels.join(format!(".{}.old", flavour.package_pattern()));
    let _ = std::fs::remove_dir_all(&old);
    if dest.exists() {
        std::fs::rename(&dest, &old)?;
    }
    std::fs::rename(&tmp, &dest)?;
    let _ = std::fs::remove_dir_all(&old);
    if !opts.keep_build {
        let _ = std::fs::remove_dir_all(&work);
    }
    eprintln!(
        "build-kernel: {flavour} ({release}) built in {}m{:02}s with -j{}: {}",
        seconds / 60,
        seconds % 60,
        opts.jobs,
        dest.display()
    );
    Kernel::find(flavour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_lines() {
        let w =
            parse_fragment("# comment\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_LSM=\"bpf\"\n")
                .unwrap();
        assert_eq!(
            w,
            vec![
                ("CONFIG_A".to_owned(), Some("y".to_owned())),
                ("CONFIG_B".to_owned(), None),
                ("CONFIG_LSM".to_owned(), Some("\"bpf\"".to_owned())),
            ]
        );
        assert!(parse_fragment("CONFIG_A=y\nCONFIG_A=n\n").is_err());
        assert!(parse_fragment("A=y\n").is_err());
        assert!(parse_fragment("CONFIG_A\n").is_err());
    }

    #[test]
    fn config_mismatches_are_all_reported() {
        let w = parse_fragment(
            "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_D=y\n# CONFIG_E is not set\n",
        )
        .unwrap();
        let config =
            "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=m\n# CONFIG_E is not set\n";
        assert_eq!(modular(config), vec!["CONFIG_D"]);
        assert_eq!(
            check_config(&w, config),
            vec![
                "CONFIG_B: wanted not set, got y",
                "CONFIG_C: wanted y, got not set",
                "CONFIG_D: wanted y, got m",
            ]
        );
    }

    #[test]
    fn the_committed_fragment_parses() {
        let path = workspace().join(Flavour::Fei612.build().unwrap().fragment);
        let w = parse_fragment(&std::fs::read_to_string(path).unwrap()).unwrap();
        for sym in [
            "CONFIG_FUNCTION_ERROR_INJECTION",
            "CONFIG_BPF_LSM",
            "CONFIG_DEBUG_INFO_BTF",
        ] {
            assert!(w.iter().any(|(s, v)| s == sym && v.as_deref() == Some("y")));
        }
    }
}
