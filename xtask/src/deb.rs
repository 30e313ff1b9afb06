//! `cargo xtask deb`: the Debian package, `target/debian/kgate_VERSION_ARCH.deb`,
//! built with dpkg-deb from a staged tree (packaging/README.md lists what
//! it holds and why).
//!
//! Steps: `cargo build --release -p kgate`; the binary stripped into
//! `usr/sbin`; man pages and completions from the binary itself (`kgate
//! generate-docs`: clap_mangen, clap_complete); the systemd unit, the
//! kernel and initramfs hooks from `packaging/`; docs; the maintainer
//! scripts; `Depends` from dpkg-shlibdeps; md5sums; `dpkg-deb --root-owner-group
//! --build`. Every file's mode is set explicitly, so the package does not
//! depend on the umask of the machine that built it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::build_kernel::workspace;

/// The package name.
pub const PACKAGE: &str = "kgate";

/// Files under /etc the package ships: dpkg keeps an administrator's
/// changes to them (conffiles).
pub const CONFFILES: &[&str] = &[
    "/etc/kernel/postinst.d/zz-kgate",
    "/etc/initramfs-tools/hooks/kgate",
    "/etc/kgate/README",
];

fn run(cmd: &mut Command, what: &str) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        mkdir(dir)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(to: &Path, text: &[u8], mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        mkdir(dir)?;
    }
    fs::write(to, text).with_context(|| format!("cannot write {}", to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn mkdir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// gzip -9n (no name, no time stamp: reproducible), as Debian wants for
/// man pages and changelogs.
fn gzip(from: &Path, to: &Path) -> Result<()> {
    let data = run(Command::new("gzip").args(["-9n", "-c"]).arg(from), "gzip")?;
    write(to, &data, 0o644)
}

/// The architecture dpkg builds for (`amd64`).
fn arch() -> Result<String> {
    let out = run(
        Command::new("dpkg").arg("--print-architecture"),
        "dpkg --print-architecture",
    )?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// `Depends` for `binary`, from dpkg-shlibdeps (which wants a
/// debian/control beside it: a throwaway one in `scratch`).
fn shlib_depends(binary: &Path, scratch: &Path) -> Result<String> {
    let debian = scratch.join("debian");
    mkdir(&debian)?;
    write(
        &debian.join("control"),
        format!("Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n").as_bytes(),
        0o644,
    )?;
    let out = run(
        Command::new("dpkg-shlibdeps")
            .current_dir(scratch)
            .args(["-O", "--warnings=0"])
            .arg(binary),
        "dpkg-shlibdeps (apt-get install dpkg-dev)",
    )?;
    let text = String::from_utf8_lossy(&out);
    let deps = text
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or("")
        .trim()
        .to_owned();
    Ok(deps)
}

/// The maintainer scripts.
const POSTINST: &str = r#"#!/bin/sh
# kgate postinst: register kgate.service (enabled: it enforces
# /etc/kgate/policy.toml at every boot once there is one) and
# kgate-events.service (denials and audits to the journal; started now).
# Nothing is enforced by installing the package.
set -e
if [ "$1" = configure ]; then
    if command -v deb-systemd-helper >/dev/null; then
        for unit in kgate.service kgate-events.service; do
            deb-systemd-helper unmask $unit >/dev/null || true
            deb-systemd-helper enable $unit >/dev/null || true
        done
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        # Events of the first `kgate apply` go to the journal too.
        deb-systemd-invoke restart kgate-events.service >/dev/null 2>&1 || true
    fi
fi
exit 0
"#;

const PRERM: &str = r#"#!/bin/sh
# kgate prerm: `apt remove` takes enforcement down at once: the BPF-LSM
# programs are detached and unpinned, and the modprobe.d and sysctl.d files
# kgate wrote are removed (sysctls restored), exactly as `kgate revert`.
set -e
if [ "$1" = remove ] || [ "$1" = deconfigure ]; then
    if command -v kgate >/dev/null; then
        kgate revert || echo "kgate: warning: kgate revert failed; see above" >&2
    fi
    if [ -d /run/systemd/system ] && command -v deb-systemd-invoke >/dev/null; then
        deb-systemd-invoke stop kgate-events.service kgate.service >/dev/null 2>&1 || true
    fi
fi
exit 0
"#;

const POSTRM: &str = r#"#!/bin/sh
# kgate postrm: `apt purge` leaves nothing of kgate's: its state, caches,
# carried policies, the policy an administrator wrote into /etc/kgate, and
# the unit's enablement.
set -e
if [ "$1" = purge ]; then
    rm -rf /var/lib/kgate /var/cache/kgate /run/kgate /etc/kgate
    rm -rf /sys/fs/bpf/kgate 2>/dev/null || true
    if command -v deb-systemd-helper >/dev/null; then
        for unit in kgate.service kgate-events.service; do
            deb-systemd-helper purge $unit >/dev/null || true
            deb-systemd-helper unmask $unit >/dev/null || true
        done
    fi
fi
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
exit 0
"#;

const ETC_README: &str = "\
kgate reads its policy from /etc/kgate/policy.toml; the package ships none.

  kgate freeze -o /etc/kgate/policy.toml        # what this host uses now
  kgate apply /etc/kgate/policy.toml --mode audit   # report, deny nothing
  journalctl -u kgate; kgate events              # what enforce would deny
  kgate apply /etc/kgate/policy.toml             # enforce, now and at every boot

kgate.service enforces it at every boot (kgate boot). `kgate=off` on the
kernel command line skips it. See kgate(1), kgate-boot(1).
";

/// Build the package; returns its path.
pub fn build() -> Result<PathBuf> {
    let ws = workspace();
    let version = env!("CARGO_PKG_VERSION");
    let arch = arch()?;
    eprintln!("deb: cargo build --release -p kgate");
    let status = Command::new(env!("CARGO"))
        .current_dir(&ws)
        .args(["build", "--release", "--quiet", "-p", "kgate"])
        .status()
        .context("failed to run cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p kgate failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    let binary = target.join("release/kgate");
    let out_dir = target.join("debian");
    let stage = out_dir.join(format!("stage-{PACKAGE}_{version}_{arch}"));
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    mkdir(&stage)?;

    // The binary, stripped.
    let sbin = stage.join("usr/sbin/kgate");
    mkdir(sbin.parent().unwrap())?;
    run(
        Command::new("strip")
            .args(["--strip-unneeded", "--remove-section=.comment", "-o"])
            .arg(&sbin)
            .arg(&binary),
        "strip",
    )?;
    fs::set_permissions(&sbin, fs::Permissions::from_mode(0o755))?;

    // Man pages and completions, from the binary.
    let gen = out_dir.join("generated");
    let _ = fs::remove_dir_all(&gen);
    run(
        Command::new(&binary)
            .arg("generate-docs")
            .arg("--man")
            .arg(gen.join("man"))
            .arg("--completions")
            .arg(gen.join("completions")),
        "kgate generate-docs",
    )?;
    let mut pages: Vec<PathBuf> = fs::read_dir(gen.join("man"))?
        .flatten()
        .map(|e| e.path())
        .collect();
    pages.sort();
    for page in &pages {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        gzip(page, &stage.join(format!("usr/share/man/man1/{name}.gz")))?;
    }
    let comp = gen.join("completions");
    install(
        &comp.join("kgate.bash"),
        &stage.join("usr/share/bash-completion/completions/kgate"),
        0o644,
    )?;
    install(
        &comp.join("_kgate"),
        &stage.join("usr/share/zsh/vendor-completions/_kgate"),
        0o644,
    )?;
    install(
        &comp.join("kgate.fish"),
        &stage.join("usr/share/fish/vendor_completions.d/kgate.fish"),
        0o644,
    )?;

    // systemd, kernel and initramfs hooks, /etc/kgate.
    let pk = ws.join("packaging");
    install(
        &pk.join("systemd/kgate.service"),
        &stage.join("lib/systemd/system/kgate.service"),
        0o644,
    )?;
    install(
        &pk.join("systemd/kgate-events.service"),
        &stage.join("lib/systemd/system/kgate-events.service"),
        0o644,
    )?;
    install(
        &pk.join("kernel/zz-kgate"),
        &stage.join("etc/kernel/postinst.d/zz-kgate"),
        0o755,
    )?;
    install(
        &pk.join("initramfs-tools/kgate"),
        &stage.join("etc/initramfs-tools/hooks/kgate"),
        0o755,
    )?;
    write(
        &stage.join("etc/kgate/README"),
        ETC_README.as_bytes(),
        0o644,
    )?;

    // Docs.
    let doc = stage.join("usr/share/doc/kgate");
    write(&doc.join("copyright"), copyright().as_bytes(), 0o644)?;
    let changelog = out_dir.join("changelog");
    write(
        &changelog,
        format!(
            "{PACKAGE} ({version}) unstable; urgency=medium\n\n  * Built from the kgate repository (cargo xtask deb).\n\n -- {}  Mon, 07 Dec 2026 00:00:00 +0000\n",
            maintainer()
        )
        .as_bytes(),
        0o644,
    )?;
    // A native package (no Debian revision): changelog.gz.
    gzip(&changelog, &doc.join("changelog.gz"))?;
    gzip(&ws.join("README.md"), &doc.join("README.md.gz"))?;
    for entry in fs::read_dir(ws.join("docs"))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            gzip(&entry.path(), &doc.join(format!("{name}.gz")))?;
        }
    }

    // DEBIAN/.
    let control_dir = stage.join("DEBIAN");
    mkdir(&control_dir)?;
    let depends = shlib_depends(&sbin, &out_dir.join("shlibdeps"))?;
    let maintainer = maintainer();
    let installed_kb = du_kb(&stage)?;
    let control = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: {maintainer}\n\
         Installed-Size: {installed_kb}\n\
         Depends: {depends}\n\
         Recommends: kmod, systemd\n\
         Section: admin\n\
         Priority: optional\n\
         Homepage: https://github.com/kgate/kgate\n\
         Description: block kernel code a Linux host does not use\n \
         kgate measures which kernel modules unprivileged users can make a\n \
         stock kernel load (socket families, user namespaces, filesystems,\n \
         crypto), freezes what the host really uses into a policy, and\n \
         enforces it with BPF-LSM (module requests, sockets, user namespaces,\n \
         splice endpoints) or modprobe.d, from early boot (kgate.service) and\n \
         across kernel upgrades.\n"
    );
    write(&control_dir.join("control"), control.as_bytes(), 0o644)?;
    let conffiles: String = CONFFILES.iter().map(|c| format!("{c}\n")).collect();
    write(&control_dir.join("conffiles"), conffiles.as_bytes(), 0o644)?;
    write(&control_dir.join("postinst"), POSTINST.as_bytes(), 0o755)?;
    write(&control_dir.join("prerm"), PRERM.as_bytes(), 0o755)?;
    write(&control_dir.join("postrm"), POSTRM.as_bytes(), 0o755)?;
    write(&control_dir.join("md5sums"), &md5sums(&stage)?, 0o644)?;

    let deb = out_dir.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb),
        "dpkg-deb --build",
    )?;
    eprintln!("deb: {}", deb.display());
    Ok(deb)
}

/// `Maintainer`: `DEBFULLNAME <DEBEMAIL>` as Debian's tools take it, or
/// the project's default.
fn maintainer() -> String {
    match (std::env::var("DEBFULLNAME"), std::env::var("DEBEMAIL")) {
        (Ok(n), Ok(e)) if !n.is_empty() && !e.is_empty() => format!("{n} <{e}>"),
        _ => "kgate developers <kgate-maintainers@users.noreply.github.com>".to_owned(),
    }
}

/// Every regular file below `stage` (DEBIAN/ excepted), for DEBIAN/md5sums.
fn md5sums(stage: &Path) -> Result<Vec<u8>> {
    let mut files = Vec::new();
    walk(stage, &mut files)?;
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(stage).unwrap();
        if rel.starts_with("DEBIAN") {
            continue;
        }
        let sum = run(Command::new("md5sum").arg(&f), "md5sum")?;
        let sum = String::from_utf8_lossy(&sum);
        let hex = sum.split_whitespace().next().unwrap_or("");
        writeln!(out, "{hex}  {}", rel.display())?;
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir)?.flatten() {
        let p = e.path();
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&p, out)?;
        } else if t.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

fn du_kb(dir: &Path) -> Result<u64> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    let bytes: u64 = files
        .iter()
        .filter_map(|f| fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    Ok(bytes.div_ceil(1024))
}

fn copyright() -> String {
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
     Upstream-Name: kgate\n\
     Source: https://github.com/kgate/kgate\n\
     \n\
     Files: *\n\
     Copyright: 2026 kgate developers\n\
     License: Apache-2.0\n \
     On Debian systems, the full text of the Apache License, Version 2.0\n \
     is in /usr/share/common-licenses/Apache-2.0.\n"
        .to_owned()
}

/// Run lintian on `deb` (errors fail; warnings are printed: the accepted
/// ones are listed, with a reason each, in packaging/README.md and passed
/// to lintian as suppressed tags).
pub fn lintian(deb: &Path) -> Result<()> {
    if Command::new("lintian").arg("--version").output().is_err() {
        bail!("lintian is not installed (apt-get install lintian), or pass --no-lintian");
    }
    let out = Command::new("lintian")
        .args(["--fail-on", "error", "--suppress-tags"])
        .arg(SUPPRESSED.join(","))
        .arg(deb)
        .output()
        .context("failed to run lintian")?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprint!("{text}");
    if !out.status.success() {
        bail!("lintian reports errors in {}", deb.display());
    }
    Ok(())
}

/// Lintian tags accepted, each explained in packaging/README.md.
pub const SUPPRESSED: &[&str] = &[];
