//! Building the guest initramfs.
//!
//! The initrd is two concatenated `newc` archives (the kernel unpacks both):
//!
//! 1. the kernel's modules: the whole `lib/modules/<release>` tree of the
//!    package plus `depmod` output. It depends only on the kernel package,
//!    so it is cached under `<lab>/cache/` (depmod of the generic kernel
//!    takes seconds);
//! 2. the userland, rebuilt every run (it is small): busybox-static and its
//!    applet links, kmod and its links (`/sbin/modprobe` is what the kernel
//!    runs to autoload), the kgate binary (stripped), the shared libraries
//!    `ldd` lists for kmod and kgate, `/etc/passwd` and `/etc/group`, the
//!    static `probe` helper compiled from `lab/probe.c`, `lab/init.sh` as
//!    `/init`, `lab/lib.sh` and the scenario scripts.
//!
//! Both archives are uncompressed: the modules are already xz-compressed
//! (6.12) and the kernel unpacks a plain cpio faster than it inflates one
//! under TCG.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cpio::CpioWriter;
use crate::kernel::Kernel;
use crate::scenario::Scenario;

/// Module tools that must be kmod's, not busybox's: the kernel runs
/// `/sbin/modprobe` and kgate relies on real modprobe behaviour.
const KMOD_TOOLS: &[&str] = &["modprobe", "insmod", "rmmod", "lsmod", "depmod", "modinfo"];

/// Inputs of the userland archive.
#[derive(Debug, Clone)]
pub struct Userland<'a> {
    /// The repository's `lab/` directory (init.sh, lib.sh, probe.c).
    pub guest_src: &'a Path,
    /// The kgate binary to install as `/bin/kgate`.
    pub kgate: &'a Path,
    /// Scenario scripts, installed in `/lab/scenarios/`.
    pub scenarios: &'a [Scenario],
    /// Shell assignments written to `/lab/config.sh`.
    pub config: &'a [(String, String)],
}

/// Build `<out>`: the cached modules archive followed by a fresh userland
/// archive. Returns the initrd size in bytes.
pub fn build(kernel: &Kernel, user: &Userland<'_>, cache: &Path, out: &Path) -> Result<u64> {
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let modules = modules_archive(kernel, cache)?;
    let file = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = BufWriter::new(file);
    std::io::copy(
        &mut File::open(&modules).with_context(|| format!("cannot open {}", modules.display()))?,
        &mut w,
    )?;
    userland_archive(user, cache, &mut w)?;
    w.flush()?;
    drop(w);
    Ok(std::fs::metadata(out)?.len())
}

/// A cache key over file paths, sizes and mtimes below `dir`.
fn tree_key(dir: &Path, h: &mut DefaultHasher) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let meta = e.metadata()?;
        e.file_name().hash(h);
        if meta.is_dir() {
            tree_key(&e.path(), h)?;
        } else {
            meta.len().hash(h);
            meta.modified().ok().hash(h);
        }
    }
    Ok(())
}

/// The cached modules archive of `kernel`, built on first use.
fn modules_archive(kernel: &Kernel, cache: &Path) -> Result<PathBuf> {
    let mut h = DefaultHasher::new();
    tree_key(&kernel.modules, &mut h)?;
    tool_version("depmod").hash(&mut h);
    let out = cache.join(format!(
        "modules-{}-{:016x}.cpio",
        kernel.package,
        h.finish()
    ));
    if out.is_file() {
        return Ok(out);
    }
    // Drop archives of older inputs for this package.
    for e in std::fs::read_dir(cache)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("modules-{}-", kernel.package)) {
            let _ = std::fs::remove_file(e.path());
        }
    }

    // depmod writes next to the modules, and the unpacked package must stay
    // pristine (tests check it has no modules.dep): run it on a hard-linked
    // (or copied) staging tree.
    let staging = cache.join(format!(".depmod-{}-{}", kernel.package, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let staged_modules = staging.join("lib/modules").join(&kernel.release);
    link_tree(&kernel.modules, &staged_modules)?;
    let status = Command::new(find_tool("depmod")?)
        .arg("-b")
        .arg(&staging)
        .arg(&kernel.release)
        .status()
        .context("failed to run depmod")?;
    if !status.success() {
        bail!("depmod -b {} {} failed", staging.display(), kernel.release);
    }

    let tmp = cache.join(format!(".modules-{}.tmp", std::process::id()));
    let mut w = CpioWriter::new(BufWriter::new(File::create(&tmp)?), 1);
    w.dir("/lib", 0o755)?;
    w.dir("/lib/modules", 0o755)?;
    add_tree(
        &mut w,
        &staged_modules,
        &format!("/lib/modules/{}", kernel.release),
    )?;
    w.finish()?.flush()?;
    std::fs::rename(&tmp, &out)?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(out)
}

/// Mirror `src` into `dst` with hard links, copying where linking fails.
fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)?.flatten() {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if e.file_type()?.is_dir() {
            link_tree(&from, &to)?;
        } else if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// Add the directory `src` as `dst` (recursively, files and symlinks).
fn add_tree<W: Write>(w: &mut CpioWriter<W>, src: &Path, dst: &str) -> Result<()> {
    w.dir(dst, 0o755)?;
    let mut entries: Vec<_> = std::fs::read_dir(src)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = format!("{dst}/{name}");
        let ft = e.file_type()?;
        if ft.is_dir() {
            add_tree(w, &e.path(), &path)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(e.path())?;
            w.symlink(&path, &target.to_string_lossy())?;
        } else {
            let data = std::fs::read(e.path())?;
            let mode = e.metadata()?.permissions().mode();
            w.file(&path, mode, &data)?;
        }
    }
    Ok(())
}

/// Write the userland archive.
fn userland_archive<W: Write>(user: &Userland<'_>, cache: &Path, out: W) -> Result<()> {
    // Inode numbers after the modules archive's (which starts at 1).
    let mut w = CpioWriter::new(out, 1 << 24);
    let mut dirs = Dirs::default();
    for d in [
        "/bin",
        "/sbin",
        "/etc",
        "/dev",
        "/proc",
        "/sys",
        "/tmp",
        "/run",
        "/root",
        "/lab",
        "/lab/bin",
        "/lab/scenarios",
        "/lib",
        "/lib64",
    ] {
        dirs.ensure(&mut w, d)?;
    }
    w.char_dev("/dev/console", 0o600, 5, 1)?;
    w.char_dev("/dev/null", 0o666, 1, 3)?;

    // busybox and its applets (except the module tools, which are kmod's).
    let busybox = find_tool("busybox")?;
    w.file("/bin/busybox", 0o755, &std::fs::read(&busybox)?)?;
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .context("failed to run busybox --list")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty()
            || applet.contains('/')
            || KMOD_TOOLS.contains(&applet)
            || matches!(applet, "busybox" | "init" | "linuxrc")
        {
            continue;
        }
        w.symlink(&format!("/bin/{applet}"), "busybox")?;
    }

    // kmod: the kernel runs /sbin/modprobe to autoload modules.
    let kmod = find_tool("kmod")?;
    w.file("/bin/kmod", 0o755, &std::fs::read(&kmod)?)?;
    for tool in KMOD_TOOLS {
        w.symlink(&format!("/sbin/{tool}"), "/bin/kmod")?;
    }

    // kgate, stripped (a debug build is ~40 MB of which most is DWARF).
    let kgate = stripped(user.kgate, cache)?;
    w.file("/bin/kgate", 0o755, &std::fs::read(&kgate)?)?;

    // Shared libraries of the dynamic binaries, at the paths ldd reports.
    let mut libs = BTreeSet::new();
    for bin in [kmod.as_path(), user.kgate] {
        libs.extend(ldd(bin)?);
    }
    for lib in libs {
        let guest = lib.to_string_lossy().into_owned();
        if let Some(parent) = Path::new(&guest).parent() {
            dirs.ensure(&mut w, &parent.to_string_lossy())?;
        }
        let data = std::fs::read(&lib).with_context(|| format!("cannot read {}", lib.display()))?;
        w.file(&guest, 0o755, &data)?;
    }

    w.file(
        "/etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    w.file("/etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;

    // Guest-side lab files.
    let probe = build_probe(user.guest_src, cache)?;
    w.file("/lab/bin/probe", 0o755, &std::fs::read(&probe)?)?;
    w.file("/init", 0o755, &read(&user.guest_src.join("init.sh"))?)?;
    w.file("/lab/lib.sh", 0o644, &read(&user.guest_src.join("lib.sh"))?)?;
    let mut config = String::from("# Written by the kgate lab host.\n");
    for (k, v) in user.config {
        config.push_str(&format!("export {k}='{}'\n", v.replace('\'', "'\\''")));
    }
    w.file("/lab/config.sh", 0o644, config.as_bytes())?;
    for s in user.scenarios {
        w.file(
            &format!("/lab/scenarios/{}.sh", s.name),
            0o644,
            &read(&s.path)?,
        )?;
    }
    w.finish()?;
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Directories already in the archive (parents are created first).
#[derive(Default)]
struct Dirs(BTreeSet<String>);

impl Dirs {
    fn ensure<W: Write>(&mut self, w: &mut CpioWriter<W>, dir: &str) -> Result<()> {
        let dir = dir.trim_end_matches('/');
        if dir.is_empty() || self.0.contains(dir) {
            return Ok(());
        }
        if let Some(parent) = Path::new(dir).parent() {
            self.ensure(w, &parent.to_string_lossy())?;
        }
        w.dir(dir, 0o755)?;
        self.0.insert(dir.to_owned());
        Ok(())
    }
}

/// The shared libraries (and ELF interpreter) `ldd` lists for `bin`.
fn ldd(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .context("failed to run ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        bail!("ldd {} failed: {text}", bin.display());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
        if line.contains("not found") {
            bail!("ldd {}: {line}", bin.display());
        }
    }
    Ok(libs)
}

/// Find a host tool in PATH or the sbin directories.
pub fn find_tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} not found on the host (the lab needs busybox-static, kmod, gcc, qemu-system-x86)"))
}

fn tool_version(name: &str) -> String {
    find_tool(name)
        .ok()
        .and_then(|t| Command::new(t).arg("--version").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Hash of a file's content, for cache names.
fn content_key(path: &Path) -> Result<u64> {
    let mut h = DefaultHasher::new();
    read(path)?.hash(&mut h);
    Ok(h.finish())
}

/// `lab/probe.c` compiled with `gcc -static -O2`, cached by content.
pub fn build_probe(guest_src: &Path, cache: &Path) -> Result<PathBuf> {
    let src = guest_src.join("probe.c");
    let out = cache.join(format!("probe-{:016x}", content_key(&src)?));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let tmp = cache.join(format!(".probe-{}.tmp", std::process::id()));
    let result = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Wextra", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .context("failed to run gcc (the lab needs gcc with static glibc)")?;
    if !result.status.success() {
        bail!(
            "gcc -static {} failed:\n{}",
            src.display(),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// `bin` without debug info, cached by path, size and mtime.
fn stripped(bin: &Path, cache: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(bin).with_context(|| format!("cannot read {}", bin.display()))?;
    let mut h = DefaultHasher::new();
    bin.hash(&mut h);
    meta.len().hash(&mut h);
    meta.modified().ok().hash(&mut h);
    let out = cache.join(format!("kgate-{:016x}", h.finish()));
    if out.is_file() {
        return Ok(out);
    }
    for e in std::fs::read_dir(cache)?.flatten() {
        if e.file_name().to_string_lossy().starts_with("kgate-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let tmp = cache.join(format!(".kgate-{}.tmp", std::process::id()));
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&tmp)
        .arg(bin)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        // No binutils: ship it unstripped.
        std::fs::copy(bin, &tmp)?;
    }
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}
