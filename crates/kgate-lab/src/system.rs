//! The real-system lab: a Debian 12 disk image (systemd, udev, sshd,
//! nginx, postgresql, Debian's generic 6.12 kernel and the initramfs
//! initramfs-tools made for it), built by mmdebstrap, booted under qemu
//! (TCG) from a virtio disk with the host's loopback ports forwarded to
//! the guest's ssh, http and postgres. The host drives it over ssh, as an
//! administrator would.
//!
//! The image is cached under `<lab>/system/<recipe hash>/`: the recipe is
//! [`PACKAGES`], [`KERNEL`] and `lab/system/customize.sh`. Each run boots a
//! copy, so that the cached image stays stock.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::initramfs::find_tool;
use crate::sha256_hex;

/// The kernel the image boots first.
pub const KERNEL: &str = "6.12.113+deb12-amd64";
/// The kernel the upgrade scenario installs with `dpkg -i`.
pub const UPGRADE_KERNEL: &str = "6.12.118+deb12-amd64";

/// What the image holds besides mmdebstrap's `apt` variant.
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "initramfs-tools",
    "linux-image-6.12.113+deb12-amd64-unsigned",
    "openssh-server",
    "nginx-light",
    "postgresql",
    "iproute2",
    "procps",
];

/// A built image: its directory holds `disk.raw`, the ssh key (`key`),
/// the first kernel and initrd (`boot/`) and the upgrade kernel's package.
#[derive(Debug, Clone)]
pub struct Image {
    /// `<lab>/system/<recipe hash>`.
    pub dir: PathBuf,
}

impl Image {
    /// The stock disk image (raw ext4).
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.raw")
    }

    /// The ssh private key that logs in as root and as alice.
    pub fn key(&self) -> PathBuf {
        self.dir.join("key")
    }

    /// The `.deb` of [`UPGRADE_KERNEL`].
    pub fn upgrade_deb(&self) -> Result<PathBuf> {
        let prefix = format!("linux-image-{UPGRADE_KERNEL}-unsigned_");
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                return Ok(e.path());
            }
        }
        bail!("{} holds no {prefix}*.deb", self.dir.display())
    }
}

/// The recipe's hash: packages, kernels and the customisation script.
pub fn recipe_hash(guest_src: &Path) -> Result<String> {
    let script = std::fs::read(guest_src.join("system/customize.sh"))
        .with_context(|| format!("failed to read {}/system/customize.sh", guest_src.display()))?;
    let mut recipe = format!("{PACKAGES:?}\n{KERNEL}\n{UPGRADE_KERNEL}\n").into_bytes();
    recipe.extend_from_slice(&script);
    Ok(sha256_hex(&recipe)[..16].to_owned())
}

/// The image in the lab cache, if built.
pub fn find_image(lab: &Path, guest_src: &Path) -> Result<Option<Image>> {
    let dir = lab.join("system").join(recipe_hash(guest_src)?);
    Ok(dir.join("done").is_file().then_some(Image { dir }))
}

/// The image, built first if the cache lacks it (about two minutes with
/// a fast mirror; needs root, mmdebstrap, mke2fs and apt-get). Uses the
/// host's apt sources, so that Debian's main, updates and security suites
/// are all there.
pub fn ensure_image(lab: &Path, guest_src: &Path) -> Result<Image> {
    let hash = recipe_hash(guest_src)?;
    let base = lab.join("system");
    std::fs::create_dir_all(&base)?;
    let _lock = crate::FileLock::exclusive(&base.join(format!("{hash}.lock")))?;
    if let Some(img) = find_image(lab, guest_src)? {
        return Ok(img);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("building the real-system lab image needs root (mmdebstrap --mode=root, mke2fs -d of root-owned files)");
    }
    let dir = base.join(&hash);
    let tmp = base.join(format!(".{hash}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let started = Instant::now();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kgate-lab", "-f"])
        .arg(tmp.join("key"))
        .status()
        .context("failed to run ssh-keygen")?;
    if !status.success() {
        bail!("ssh-keygen failed");
    }
    let pubkey = std::fs::read_to_string(tmp.join("key.pub"))?;
    let sources = Path::new("/etc/apt/sources.list.d/debian.sources");
    let mirror = if sources.is_file() {
        sources.display().to_string()
    } else {
        "http://deb.debian.org/debian".to_owned()
    };
    let rootdir = tmp.join("root");
    let customize = guest_src.join("system/customize.sh");
    let out = Command::new(find_tool("mmdebstrap")?)
        .args(["--variant=apt", "--mode=root", "--quiet"])
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(format!(
            "--customize-hook=sh {} \"$1\"",
            customize.display()
        ))
        .arg("bookworm")
        .arg(&rootdir)
        .arg(&mirror)
        .env("KGATE_SYS_PUBKEY", pubkey.trim())
        .stdin(Stdio::null())
        .output()
        .context("failed to run mmdebstrap")?;
    if !out.status.success() {
        bail!(
            "mmdebstrap failed: {}\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 40)
        );
    }
    let boot = tmp.join("boot");
    std::fs::create_dir_all(&boot)?;
    for f in [format!("vmlinuz-{KERNEL}"), format!("initrd.img-{KERNEL}")] {
        std::fs::copy(rootdir.join("boot").join(&f), boot.join(&f))
            .with_context(|| format!("the image has no /boot/{f}"))?;
    }
    let out = Command::new(find_tool("mke2fs")?)
        .args(["-q", "-F", "-t", "ext4", "-L", "kgate-sys", "-d"])
        .arg(&rootdir)
        .arg(tmp.join("disk.raw"))
        .arg("6G")
        .output()
        .context("failed to run mke2fs")?;
    if !out.status.success() {
        bail!("mke2fs -d failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::remove_dir_all(&rootdir)?;
    let out = Command::new("apt-get")
        .current_dir(&tmp)
        .args(["download", "-q"])
        .arg(format!("linux-image-{UPGRADE_KERNEL}-unsigned"))
        .output()
        .context("failed to run apt-get download")?;
    if !out.status.success() {
        bail!(
            "apt-get download linux-image-{UPGRADE_KERNEL}-unsigned failed (run apt-get update?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(
        tmp.join("done"),
        format!("built in {:.0}s\n", started.elapsed().as_secs_f64()),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir)?;
    Ok(Image { dir })
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A port on host loopback that was free a moment ago.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One running guest: qemu booted from the run's disk copy.
pub struct Guest {
    child: Child,
    /// The host ports forwarded to the guest's ssh, http and postgres.
    pub ssh_port: u16,
    /// See `ssh_port`.
    pub http_port: u16,
    /// See `ssh_port`.
    pub pg_port: u16,
    key: PathBuf,
    console: PathBuf,
    /// Seconds from starting qemu to the first ssh login.
    pub boot_seconds: f64,
}

/// What a guest boots: the run's disk, and the kernel and initrd read
/// from that disk's `/boot` (qemu loads them directly: no boot loader).
pub struct BootSpec<'a> {
    /// The run's copy of the disk.
    pub disk: &'a Path,
    /// The ssh key.
    pub key: &'a Path,
    /// Kernel release (`/boot/vmlinuz-<release>` on the disk).
    pub release: &'a str,
    /// Extra kernel command line words.
    pub cmdline: &'a str,
    /// Where the serial console goes.
    pub console: &'a Path,
    /// Scratch directory for the extracted kernel and initrd.
    pub work: &'a Path,
}

/// Copy `path` out of the ext4 image `disk` with debugfs (no mount, no root).
pub fn extract(disk: &Path, path: &str, out: &Path) -> Result<()> {
    let _ = std::fs::remove_file(out);
    let o = Command::new(find_tool("debugfs")?)
        .arg("-R")
        .arg(format!("dump {path} {}", out.display()))
        .arg(disk)
        .output()
        .context("failed to run debugfs")?;
    if !o.status.success() || !out.is_file() || std::fs::metadata(out)?.len() == 0 {
        bail!(
            "debugfs could not read {path} from {}: {}",
            disk.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

impl Guest {
    /// Boot and wait (up to `timeout`) until root can log in over ssh.
    pub fn boot(spec: &BootSpec<'_>, timeout: Duration) -> Result<Guest> {
        let kernel = spec.work.join(format!("vmlinuz-{}", spec.release));
        let initrd = spec.work.join(format!("initrd.img-{}", spec.release));
        extract(
            spec.disk,
            &format!("/boot/vmlinuz-{}", spec.release),
            &kernel,
        )?;
        // /boot/initrd.img-* may be a symlink target path; debugfs dumps
        // the file itself.
        extract(
            spec.disk,
            &format!("/boot/initrd.img-{}", spec.release),
            &initrd,
        )?;
        let (ssh_port, http_port, pg_port) = (free_port()?, free_port()?, free_port()?);
        let console = std::fs::File::create(spec.console)?;
        let started = Instant::now();
        let child = Command::new(find_tool("qemu-system-x86_64")?)
            .args(["-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "1"])
            .args(["-nographic", "-no-reboot", "-vga", "none", "-monitor", "none"])
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&initrd)
            .arg("-append")
            .arg(format!(
                "root=/dev/vda rw console=ttyS0 panic=-1 {}",
                spec.cmdline
            ))
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", spec.disk.display()))
            .arg("-netdev")
            .arg(format!(
                "user,id=n0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22,hostfwd=tcp:127.0.0.1:{http_port}-:80,hostfwd=tcp:127.0.0.1:{pg_port}-:5432"
            ))
            .args(["-device", "virtio-net-pci,netdev=n0"])
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(Stdio::piped())
            .spawn()
            .context("failed to start qemu-system-x86_64")?;
        let mut g = Guest {
            child,
            ssh_port,
            http_port,
            pg_port,
            key: spec.key.to_owned(),
            console: spec.console.to_owned(),
            boot_seconds: 0.0,
        };
        loop {
            if let Some(status) = g.child.try_wait()? {
                bail!(
                    "qemu exited ({status}) before ssh came up; console:\n{}",
                    g.console_tail(60)
                );
            }
            if started.elapsed() > timeout {
                g.kill();
                bail!(
                    "no ssh login after {}s; console:\n{}",
                    timeout.as_secs(),
                    g.console_tail(60)
                );
            }
            if let Ok(o) = g.ssh_as("root", "true", Duration::from_secs(20)) {
                if o.status.success() {
                    break;
                }
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        g.boot_seconds = started.elapsed().as_secs_f64();
        Ok(g)
    }

    /// The console's last `n` lines.
    pub fn console_tail(&self, n: usize) -> String {
        let text = std::fs::read(&self.console).unwrap_or_default();
        tail(&String::from_utf8_lossy(&text), n)
    }

    fn ssh_command(&self, user: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-q")
            .arg("-i")
            .arg(&self.key)
            .args(["-p", &self.ssh_port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg(format!("{user}@127.0.0.1"));
        c
    }

    /// Run `cmd` (a shell command line) as `user` over ssh, killed after
    /// `timeout`.
    pub fn ssh_as(&self, user: &str, cmd: &str, timeout: Duration) -> Result<Output> {
        let mut c = self.ssh_command(user);
        c.arg(cmd);
        run_with_timeout(c, timeout)
    }

    /// Run `cmd` as root; an error unless it exits 0. Returns stdout.
    pub fn root(&self, cmd: &str) -> Result<String> {
        let o = self.ssh_as("root", cmd, Duration::from_secs(600))?;
        if !o.status.success() {
            bail!(
                "`{cmd}` failed ({}):\n{}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Copy `local` to `remote` (as root) over ssh.
    pub fn copy_in(&self, local: &Path, remote: &str) -> Result<()> {
        let mut c = self.ssh_command("root");
        c.arg(format!("cat > '{remote}'"));
        c.stdin(std::fs::File::open(local)?);
        let o = run_with_timeout(c, Duration::from_secs(300))?;
        if !o.status.success() {
            bail!(
                "copying {} to {remote} failed: {}",
                local.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(())
    }

    /// Reboot from inside (`systemctl reboot`: a clean shutdown) and wait
    /// for qemu to exit (`-no-reboot`).
    pub fn shutdown(mut self, timeout: Duration) -> Result<()> {
        let _ = self.ssh_as("root", "systemctl reboot", Duration::from_secs(30));
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let tail = self.console_tail(40);
        self.kill();
        bail!(
            "the guest did not shut down within {}s; console:\n{tail}",
            timeout.as_secs()
        )
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Run `c` with stdout and stderr captured, killed after `timeout`.
pub fn run_with_timeout(mut c: Command, timeout: Duration) -> Result<Output> {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("failed to start a command")?;
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Output {
        status,
        stdout: o.join().unwrap_or_default(),
        stderr: e.join().unwrap_or_default(),
    })
}
