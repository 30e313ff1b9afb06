//! Developer tasks: fetching the real Debian kernels that tests and
//! benchmarks survey, and (later) the qemu kernel lab.
//!
//! `cargo xtask fetch` downloads the kernel packages with `apt-get download`
//! into `$KGATE_LAB_DIR` (default `~/.cache/kgate-lab`) and unpacks each into
//! `kernels/<package>/`, the layout an unpacked `.deb` has: no modules.dep,
//! no modules.alias. Tests find them at `$KGATE_LAB_DIR/kernels/<package>`.
//!
//! `cargo xtask build-kernel fei-6.12` builds the lab's own kernel from
//! Debian's kernel source package (see `build_kernel.rs`).

mod build_kernel;
mod deb;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// Kernel packages the tests, benchmarks and the lab use.
const PACKAGES: &[&str] = &[
    "linux-image-6.12.113+deb12-cloud-amd64-unsigned",
    "linux-image-6.12.113+deb12-amd64-unsigned",
    // Resolved to the newest bookworm 6.1 cloud ABI at fetch time.
    "linux-image-6.1.0-*-cloud-amd64-unsigned",
];

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Download and unpack the Debian kernel packages into the lab cache.
    Fetch {
        /// Only these packages (default: all).
        packages: Vec<String>,
    },
    /// Build a lab kernel from Debian's kernel source (fei-6.12: Debian's
    /// linux-source-6.12 with lab/kernel/fei-6.12.config) into the lab
    /// cache. Does nothing when the installed build matches the fragment
    /// and the source package version.
    BuildKernel {
        /// The kernel to build.
        #[arg(default_value = "fei-6.12")]
        kernel: String,
        /// Rebuild even when the installed build is current.
        #[arg(long)]
        force: bool,
        /// Keep the source and object tree ($KGATE_LAB_DIR/build/KERNEL).
        #[arg(long)]
        keep_build: bool,
        /// Parallel make jobs (default: the number of CPUs).
        #[arg(long, short, value_name = "N")]
        jobs: Option<usize>,
    },
    /// Print the lab cache directory.
    Dir,
    /// Build the real-system lab's Debian 12 disk image into the lab
    /// cache (mmdebstrap; needs root), unless it is there; print its
    /// directory.
    SystemImage,
    /// Build the Debian package target/debian/kgate_VERSION_ARCH.deb
    /// (packaging/README.md), then check it with lintian when installed.
    Deb {
        /// Do not run lintian.
        #[arg(long)]
        no_lintian: bool,
    },
    /// Boot the kernels under qemu with kgate inside and run the lab
    /// scenarios (lab/scenarios/*.sh, or --scenarios DIR); exit 1 on any
    /// failure.
    Lab(LabArgs),
}

#[derive(clap::Args)]
struct LabArgs {
    /// cloud-6.12, generic-6.12, cloud-6.1, fei-6.12 (comma-separated), or
    /// all: the three Debian kernels (fei-6.12 is built, not fetched: name
    /// it).
    #[arg(long, default_value = "all")]
    kernel: String,
    /// Keep the initrd and console log under $KGATE_LAB_DIR/runs/.
    #[arg(long)]
    keep: bool,
    /// Run qemu with `-icount shift=N`: guest time counts executed
    /// instructions (2^N ns each), so guest timings are independent of the
    /// host's load. For benchmarks (slower).
    #[arg(long, value_name = "N")]
    icount: Option<u32>,
    /// Virtual CPUs of the guest (default 2). cloud-6.1 under --icount
    /// needs 1: it hangs bringing up the second vCPU (the guest clock stops
    /// at "x86: Booting SMP configuration").
    #[arg(long, value_name = "N", default_value_t = 2)]
    smp: u32,
    /// Only scenarios whose file name contains this (or one of these,
    /// comma-separated: `--only stock,bpf_lsm`).
    #[arg(long)]
    only: Option<String>,
    /// Run the scripts in this directory instead of lab/scenarios (the
    /// test suite), e.g. `lab/bench` for the overhead benchmarks.
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
    /// Copy the guest console to stderr as it runs.
    #[arg(long, short)]
    verbose: bool,
    /// Use a release build of kgate.
    #[arg(long)]
    release: bool,
    /// Use this kgate binary instead of building one.
    #[arg(long, value_name = "PATH")]
    kgate: Option<PathBuf>,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Fetch { packages } => {
            let wanted: Vec<String> = if packages.is_empty() {
                PACKAGES.iter().map(|s| s.to_string()).collect()
            } else {
                packages
            };
            for pattern in wanted {
                let package = resolve(&pattern)?;
                let dir = fetch(&package)?;
                println!("{package}: {}", dir.display());
            }
            Ok(())
        }
        Cmd::BuildKernel {
            kernel,
            force,
            keep_build,
            jobs,
        } => {
            let flavour: kgate_lab::Flavour = kernel.parse()?;
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            let opts = build_kernel::Options {
                force,
                keep_build,
                jobs,
            };
            let kernel = build_kernel::build(flavour, &opts)?;
            println!("{flavour}: {}", kernel.root.display());
            Ok(())
        }
        Cmd::Dir => {
            println!("{}", lab_dir().display());
            Ok(())
        }
        Cmd::SystemImage => {
            let img = kgate_lab::system::ensure_image(&lab_dir(), &kgate_lab::guest_src())?;
            println!("{}", img.dir.display());
            Ok(())
        }
        Cmd::Deb { no_lintian } => {
            let deb = deb::build()?;
            if !no_lintian {
                deb::lintian(&deb)?;
            }
            println!("{}", deb.display());
            Ok(())
        }
        Cmd::Lab(args) => lab(&args),
    }
}

/// `cargo xtask lab`: build kgate, boot each kernel once, print a table.
fn lab(args: &LabArgs) -> Result<()> {
    use kgate_lab::{Flavour, Kernel, Outcome, RunOptions};

    let flavours: Vec<Flavour> = if args.kernel == "all" {
        Flavour::DEBIAN.to_vec()
    } else {
        args.kernel
            .split(',')
            .map(str::parse)
            .collect::<Result<_>>()?
    };
    let kgate = match &args.kgate {
        Some(path) => path.clone(),
        None => build_kgate(args.release)?,
    };

    let mut scenarios = match &args.scenarios {
        Some(dir) => kgate_lab::Scenario::load_dir(dir)?,
        None => kgate_lab::default_scenarios()?,
    };
    if let Some(only) = &args.only {
        scenarios.retain(|s| only.split(',').any(|o| s.name.contains(o)));
    }
    let mut opts = RunOptions::new(kgate);
    opts.keep = args.keep;
    opts.icount = args.icount;
    opts.smp = args.smp;
    if args.icount.is_some() {
        // Instruction counting runs the guest single-threaded: allow more.
        opts.timeout *= 3;
    }
    opts.echo_console = args.verbose;

    let mut rows = Vec::new();
    let mut failed = 0;
    for flavour in flavours {
        let lock = match flavour.build() {
            Some(_) => Some(kgate_lab::BuildLock::take(flavour, false)?),
            None => None,
        };
        let kernel = Kernel::find(flavour)?;
        drop(lock);
        kernel.check_current()?;
        eprintln!("lab: booting {flavour} ({}) ...", kernel.package);
        let run = kgate_lab::run(&kernel, &scenarios, &opts)?;
        eprintln!(
            "lab: {flavour}: initrd {:.1} MiB, /init after {:.1}s, done after {:.1}s{}",
            run.initrd_bytes as f64 / (1 << 20) as f64,
            run.boot_seconds,
            run.total_seconds,
            run.log
                .as_ref()
                .map(|l| format!(", console log {}", l.display()))
                .unwrap_or_default()
        );
        eprintln!("lab: {flavour}: {}", run.time_report(8));
        let count = |o| {
            run.results
                .keys()
                .filter(|n| run.verdict(n) == Some(o))
                .count()
        };
        eprintln!(
            "lab: {flavour}: {} passed, {} skipped (declared missing in its manifest), {} failed",
            count(Outcome::Pass),
            count(Outcome::Skip),
            count(Outcome::Fail)
        );
        if run.failures() > 0 {
            failed += run.failures();
            eprintln!(
                "--- {flavour}: last 150 console lines ---\n{}\n---",
                run.console_tail(150)
            );
        }
        for (name, (outcome, detail)) in &run.results {
            // A SKIP counts only when the kernel's manifest declares what it
            // needs; otherwise it is a failure and the row says why.
            let row = match (outcome, run.declared_skip(detail)) {
                (Outcome::Skip, Err(why)) => (Outcome::Fail, why),
                (Outcome::Skip, Ok(m)) => (Outcome::Skip, format!("{detail} [{m}]", m = m.why)),
                _ => (*outcome, detail.clone()),
            };
            rows.push((flavour, name.clone(), row.0, row.1));
        }
    }
    println!("{:<13} {:<36} {:<5} DETAIL", "KERNEL", "RESULT", "");
    for (flavour, name, outcome, detail) in &rows {
        println!("{:<13} {name:<36} {outcome:<5} {detail}", flavour.name());
    }
    if failed > 0 {
        eprintln!("lab: {failed} failed");
        std::process::exit(1);
    }
    Ok(())
}

fn lab_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KGATE_LAB_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/kgate-lab")
}

/// Resolve a `*` in a package name to the newest matching package that apt
/// knows, e.g. the current bookworm 6.1 ABI.
fn resolve(pattern: &str) -> Result<String> {
    if !pattern.contains('*') {
        return Ok(pattern.to_owned());
    }
    let (prefix, suffix) = pattern.split_once('*').unwrap_or((pattern, ""));
    // An already unpacked match is good enough offline.
    let mut cached = Vec::new();
    if let Ok(entries) = std::fs::read_dir(lab_dir().join("kernels")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) && name.ends_with(suffix) {
                cached.push(name);
            }
        }
    }
    let out = Command::new("apt-cache")
        .args(["pkgnames", prefix])
        .output()
        .context("failed to run apt-cache (is this Debian?)")?;
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .filter(|n| {
            n[prefix.len()..n.len() - suffix.len()]
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .map(str::to_owned)
        .collect();
    names.extend(cached);
    names.sort_by_key(|n| {
        n[prefix.len()..n.len() - suffix.len()]
            .parse::<u32>()
            .unwrap_or(0)
    });
    names
        .pop()
        .with_context(|| format!("no package matches {pattern}; run `apt-get update` first"))
}

/// The version of `package` apt would install (`apt-cache policy`'s
/// candidate); `None` when apt does not know it.
fn candidate(package: &str) -> Option<String> {
    let out = Command::new("apt-cache")
        .args(["policy", package])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v != "(none)")
}

/// The `.deb` of `package` in `$KGATE_LAB_DIR/debs`, downloaded with
/// `apt-get download` unless already there. With a `version`, only that
/// version will do (older cached ones are removed once it is downloaded);
/// without, any cached version.
fn download(package: &str, version: Option<String>) -> Result<PathBuf> {
    let debs = lab_dir().join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    // Debian file names spell an epoch's ':' as "%3a".
    let prefix = match &version {
        Some(v) => format!("{package}_{}_", v.replace(':', "%3a")),
        None => format!("{package}_"),
    };
    if let Some(deb) = find_deb(&debs, &prefix)? {
        return Ok(deb);
    }
    let spec = match &version {
        Some(v) => format!("{package}={v}"),
        None => package.to_owned(),
    };
    let status = Command::new("apt-get")
        .arg("download")
        .arg(&spec)
        .current_dir(&debs)
        .status()
        .context("failed to run apt-get download")?;
    if !status.success() {
        // Offline, or apt knows a version it cannot fetch: any cached one.
        if let Some(deb) = find_deb(&debs, &format!("{package}_"))? {
            eprintln!(
                "apt-get download {spec} failed; using the cached {}",
                deb.display()
            );
            return Ok(deb);
        }
        bail!("apt-get download {spec} failed; run `apt-get update` and check that the package exists");
    }
    let deb = find_deb(&debs, &prefix)?
        .with_context(|| format!("apt-get download left no .deb for {spec}"))?;
    // Older versions of the same package.
    for e in std::fs::read_dir(&debs)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{package}_")) && name.ends_with(".deb") && e.path() != deb {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(deb)
}

/// Download (once) and unpack (once) one package; returns its root.
fn fetch(package: &str) -> Result<PathBuf> {
    let lab = lab_dir();
    let dest = lab.join("kernels").join(package);
    if dest.join("lib/modules").is_dir() {
        return Ok(dest);
    }
    let deb = download(package, None)?;
    let tmp = lab.join("kernels").join(format!(".{package}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&tmp)
        .status()
        .context("failed to run dpkg-deb")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
}

/// A `.deb` in `dir` whose name starts with `prefix` (`PACKAGE_` or
/// `PACKAGE_VERSION_`).
fn find_deb(dir: &Path, prefix: &str) -> Result<Option<PathBuf>> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.ends_with(".deb") {
            return Ok(Some(e.path()));
        }
    }
    Ok(None)
}

/// `cargo build -p kgate`; returns the binary.
fn build_kgate(release: bool) -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&workspace)
        .args(["build", "-p", "kgate", "--bin", "kgate"]);
    if release {
        build.arg("--release");
    }
    if !build
        .status()
        .context("failed to run cargo build")?
        .success()
    {
        bail!("cargo build -p kgate failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    Ok(target
        .join(if release { "release" } else { "debug" })
        .join("kgate"))
}
