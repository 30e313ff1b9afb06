//! Driving the ftrace `function` tracer for `kgate hap`: the only code that
//! touches tracefs.
//!
//! kgate never changes the global tracer. It works in its own tracefs
//! instance (`instances/kgate-hap-PID-sSTART`: own tracer, pid filter, options and
//! ring buffer), so "restoring ftrace state" means removing that instance,
//! which [`Instance`]'s `Drop` does on every exit path (errors, panics, and
//! the SIGINT/SIGTERM/SIGHUP that `kgate hap` catches). If kgate is killed
//! with SIGKILL the instance stays, still tracing its (dead) pids; the next
//! `kgate hap` removes instances whose kgate process is gone
//! ([`remove_stale_instances`]). The owner is named by its pid *and* its
//! start time (`/proc/PID/stat` field 22), which together are unique until
//! reboot (when tracefs instances are gone anyway): any user can start a
//! process called `kgate` on a recycled pid, but not one that started at
//! the killed kgate's start time. When tracefs is not mounted, kgate mounts
//! it on /sys/kernel/tracing (as trace-cmd does) and unmounts it afterwards.

use std::ffi::CString;
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where tracefs lives.
const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";
/// Instance names: this prefix, then `PID-sSTART` of the kgate that made it
/// (its pid and start time in clock ticks since boot), then optionally
/// `-eSIZE` (see [`Instance::create`]).
const INSTANCE_PREFIX: &str = "kgate-hap-";

/// A mounted tracefs; unmounted on drop when kgate mounted it.
#[derive(Debug)]
pub struct Tracefs {
    root: PathBuf,
    mounted_by_us: bool,
    /// The size the global ring buffer would expand to on first use, when
    /// it has not yet (`buffer_size_kb` reads `7 (expanded: 1408)`).
    unexpanded_global: Option<String>,
}

impl Tracefs {
    /// Find tracefs, mounting it on /sys/kernel/tracing when the kernel has
    /// it but nobody mounted it. Fails, saying why, when ftrace is absent
    /// or the caller is not root.
    pub fn open() -> Result<Tracefs> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            bail!("kgate hap needs root: ftrace is controlled through tracefs, whose files only root may write (run it with sudo)");
        }
        for dir in [TRACEFS, DEBUGFS_TRACING] {
            if Path::new(dir).join("current_tracer").exists() {
                return Ok(Tracefs::at(dir.into(), false));
            }
        }
        let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        if !filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some("tracefs"))
        {
            bail!("this kernel has no ftrace: /proc/filesystems lists no tracefs (the kernel was built without CONFIG_FTRACE/CONFIG_TRACING)");
        }
        mount_tracefs(Path::new(TRACEFS))?;
        Ok(Tracefs::at(TRACEFS.into(), true))
    }

    fn at(root: PathBuf, mounted_by_us: bool) -> Tracefs {
        let unexpanded_global = std::fs::read_to_string(root.join("buffer_size_kb"))
            .ok()
            .and_then(|t| {
                let n = t.split_once("(expanded: ")?.1.split_once(')')?.0;
                Some(n.trim().to_owned())
            });
        Tracefs {
            root,
            mounted_by_us,
            unexpanded_global,
        }
    }

    /// Check that the `function` tracer exists and is not switched off.
    pub fn check_function_tracer(&self) -> Result<()> {
        let path = self.root.join("available_tracers");
        let tracers = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if !tracers.split_whitespace().any(|t| t == "function") {
            bail!(
                "this kernel has no ftrace function tracer (built without CONFIG_FUNCTION_TRACER); {} lists only: {}",
                path.display(),
                tracers.trim()
            );
        }
        if std::fs::read_to_string("/proc/sys/kernel/ftrace_enabled").is_ok_and(|v| v.trim() == "0")
        {
            bail!("function tracing is switched off by the sysctl kernel.ftrace_enabled = 0; `sysctl -w kernel.ftrace_enabled=1` allows it");
        }
        Ok(())
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        // On 6.1 (not 6.12) "the ring buffer was expanded" is one global
        // flag, which any resize or tracer change in any instance sets; the
        // global buffer then stays at its 7 KiB boot size instead of
        // growing on first use. Give it the size its first use would have.
        if let Some(size) = &self.unexpanded_global {
            restore_global_buffer(&self.root, size);
        }
        if self.mounted_by_us {
            if let Ok(c) = CString::new(self.root.as_os_str().as_bytes()) {
                // SAFETY: c is a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// Give the global ring buffer `size` KiB if an instance's use marked it
/// expanded without expanding it.
fn restore_global_buffer(root: &Path, size: &str) {
    let path = root.join("buffer_size_kb");
    if std::fs::read_to_string(&path).is_ok_and(|t| !t.contains("expanded")) {
        let _ = std::fs::write(&path, size);
    }
}

fn mount_tracefs(target: &Path) -> Result<()> {
    let target_c = CString::new(target.as_os_str().as_bytes())?;
    let fstype = c"tracefs";
    // SAFETY: all pointers are valid NUL-terminated strings; data is null.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        bail!(
            "tracefs is not mounted and mounting it on {} failed: {err}; mount it with `mount -t tracefs nodev {}`",
            target.display(),
            target.display()
        );
    }
    Ok(())
}

/// Remove `kgate-hap-…` instances whose kgate is gone (killed with
/// SIGKILL). Returns their names.
pub fn remove_stale_instances(tracefs: &Tracefs) -> Vec<String> {
    let dir = tracefs.root.join("instances");
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return removed;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(owner) = InstanceName::parse(&name) else {
            continue;
        };
        if !owner.alive(Path::new("/proc")) {
            let stale = Instance { dir: e.path() };
            drop(stale);
            if let Some(size) = owner.unexpanded_global {
                restore_global_buffer(&tracefs.root, &size);
            }
            removed.push(name);
        }
    }
    removed
}

/// What an instance's name says about the kgate that made it.
#[derive(Debug, PartialEq, Eq)]
struct InstanceName {
    pid: u32,
    /// Start time of the owner (`/proc/PID/stat` field 22); `None` in the
    /// names of earlier kgate versions, which carried only the pid.
    start: Option<u64>,
    /// The global buffer's unexpanded size, all digits.
    unexpanded_global: Option<String>,
}

impl InstanceName {
    fn format(pid: u32, start: u64, unexpanded_global: Option<&str>) -> String {
        match unexpanded_global {
            Some(size) => format!("{INSTANCE_PREFIX}{pid}-s{start}-e{size}"),
            None => format!("{INSTANCE_PREFIX}{pid}-s{start}"),
        }
    }

    /// `kgate-hap-PID[-sSTART][-eSIZE]`; anything else is not kgate's.
    fn parse(name: &str) -> Option<InstanceName> {
        let rest = name.strip_prefix(INSTANCE_PREFIX)?;
        let mut parts = rest.split('-');
        let pid = parts.next()?.parse().ok()?;
        let mut start = None;
        let mut unexpanded_global = None;
        for part in parts {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            match part.split_at_checked(1)? {
                ("s", v) if start.is_none() && digits(v) => start = Some(v.parse().ok()?),
                ("e", v) if unexpanded_global.is_none() && digits(v) => {
                    unexpanded_global = Some(v.to_owned())
                }
                _ => return None,
            }
        }
        Some(InstanceName {
            pid,
            start,
            unexpanded_global,
        })
    }

    /// Is the kgate that made this instance still running? Yes only if the
    /// process with its pid is called `kgate` and, for names that carry it,
    /// started at the same clock tick.
    fn alive(&self, proc: &Path) -> bool {
        let base = proc.join(self.pid.to_string());
        let is_kgate =
            std::fs::read_to_string(base.join("comm")).is_ok_and(|c| c.trim() == "kgate");
        match self.start {
            None => is_kgate,
            Some(start) => is_kgate && process_start(&base) == Some(start),
        }
    }
}

/// Field 22 of `/proc/PID/stat` (`starttime`, clock ticks after boot). The
/// comm in field 2 may hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn process_start(proc_pid: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(proc_pid.join("stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    // after_comm starts with field 3 (state); starttime is field 22.
    after_comm
        .split_ascii_whitespace()
        .nth(22 - 3)?
        .parse()
        .ok()
}

/// kgate's own tracefs instance; removed on drop.
#[derive(Debug)]
pub struct Instance {
    dir: PathBuf,
}

impl Instance {
    /// Create `instances/kgate-hap-PID-sSTART[-eSIZE]`.
    pub fn create(tracefs: &Tracefs) -> Result<Instance> {
        // The name carries the global buffer's unexpanded size, so that the
        // run after a SIGKILL can restore it (see `Drop for Tracefs`).
        let pid = std::process::id();
        let start = process_start(Path::new("/proc/self"))
            .context("cannot read this process's start time from /proc/self/stat")?;
        let name = InstanceName::format(pid, start, tracefs.unexpanded_global.as_deref());
        let dir = tracefs.root.join("instances").join(&name);
        if let Err(e) = std::fs::create_dir(&dir) {
            bail!(
                "cannot create the tracefs instance {}: {e}{}",
                dir.display(),
                if e.kind() == ErrorKind::PermissionDenied {
                    refusal_context()
                } else {
                    String::new()
                }
            );
        }
        Ok(Instance { dir })
    }

    /// Write `value` to a control file of the instance.
    pub fn write(&self, file: &str, value: &str) -> std::io::Result<()> {
        std::fs::write(self.dir.join(file), value)
    }

    /// Write a control file, explaining a refusal.
    pub fn write_checked(&self, file: &str, value: &str) -> Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => refusal_context(),
                _ => String::new(),
            };
            anyhow::anyhow!("cannot write `{value}` to {}: {e}{hint}", path.display())
        })
    }

    /// Set an option (`options/NAME`), failing with a clear message when
    /// this kernel lacks it.
    pub fn option(&self, name: &str, on: bool, why: &str) -> Result<()> {
        let path = self.dir.join("options").join(name);
        if !path.exists() {
            bail!(
                "this kernel's ftrace has no `{name}` option ({} is missing), which kgate hap needs {why}",
                path.display()
            );
        }
        std::fs::write(&path, if on { "1" } else { "0" })
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Switch the instance to the function tracer, explaining a refusal.
    pub fn start_function_tracer(&self) -> Result<()> {
        let path = self.dir.join("current_tracer");
        match std::fs::write(&path, "function") {
            Ok(()) => Ok(()),
            Err(e) => {
                let hint = match e.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) => refusal_context(),
                    Some(libc::EBUSY) => {
                        "; another user of ftrace holds the function tracer".to_owned()
                    }
                    _ => String::new(),
                };
                bail!(
                    "the kernel refused to start the ftrace function tracer: writing `function` to {} failed: {e}{hint}",
                    path.display()
                )
            }
        }
    }

    /// Open `trace_pipe` for non-blocking reads.
    pub fn open_pipe(&self) -> Result<std::fs::File> {
        let path = self.dir.join("trace_pipe");
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    /// Events the ring buffer overwrote or dropped, over all CPUs.
    pub fn lost_events(&self) -> u64 {
        let Ok(cpus) = std::fs::read_dir(self.dir.join("per_cpu")) else {
            return 0;
        };
        cpus.flatten()
            .filter_map(|c| std::fs::read_to_string(c.path().join("stats")).ok())
            .flat_map(|stats| {
                stats
                    .lines()
                    .filter_map(|l| {
                        let (key, value) = l.split_once(':')?;
                        matches!(key.trim(), "overrun" | "dropped events")
                            .then(|| value.trim().parse::<u64>().ok())?
                    })
                    .collect::<Vec<_>>()
            })
            .sum()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Stop tracing first: an instance with a live tracer cannot go.
        let _ = std::fs::write(self.dir.join("tracing_on"), "0");
        let _ = std::fs::write(self.dir.join("current_tracer"), "nop");
        let _ = std::fs::write(self.dir.join("set_ftrace_pid"), "");
        for _ in 0..50 {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == ErrorKind::NotFound => return,
                // EBUSY while the kernel still holds a reference.
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        eprintln!(
            "kgate: warning: could not remove the tracefs instance {}; remove it with `rmdir {}`",
            self.dir.display(),
            self.dir.display()
        );
    }
}

/// Why the kernel may have refused ftrace, from what can be read: the
/// lockdown mode and the active LSMs.
fn refusal_context() -> String {
    let host = kgate_kernel::host::read_host(Path::new("/"));
    let lockdown = host.lockdown.clone();
    let lsms = host
        .lsm
        .active
        .clone()
        .or_else(|| host.lsm.derived.clone())
        .map(|l| l.join(","));
    let mut why = String::from("; ");
    match lockdown.as_deref() {
        Some(l) if l.starts_with("confidentiality") => why.push_str(
            "kernel lockdown is in confidentiality mode, which forbids tracefs (boot with lockdown=integrity or none)",
        ),
        other => {
            why.push_str(&format!(
                "the kernel has the function tracer, so a security policy denied it: kernel lockdown is {} (only `confidentiality` restricts tracefs), so another security module or the hypervisor refused it",
                other.unwrap_or("unknown")
            ));
            if let Some(lsms) = lsms {
                why.push_str(&format!(
                    " (active LSMs: {lsms}{})",
                    if lsms.split(',').any(|l| l == "bpf") {
                        "; a BPF-LSM program on the locked_down or file hooks can deny ftrace"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    why.push_str(". kgate hap cannot measure a HAP on this host; run it on a host or VM that allows the function tracer");
    why
}

/// Read everything `pipe` has now into `buf`, feeding complete lines to
/// `line`. Returns the bytes read (0: nothing available).
pub fn drain(
    pipe: &mut std::fs::File,
    buf: &mut Vec<u8>,
    line: &mut dyn FnMut(&str),
) -> Result<usize> {
    let mut chunk = vec![0u8; 1 << 16];
    let mut total = 0;
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                buf.extend_from_slice(&chunk[..n]);
                let mut start = 0;
                while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
                    line(&String::from_utf8_lossy(&buf[start..start + pos]));
                    start += pos + 1;
                }
                buf.drain(..start);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("failed to read trace_pipe"),
        }
    }
    Ok(total)
}

/// The workload: forked and held before `exec` until the tracer is set up
/// for its pid, so the trace starts exactly at its `execve`.
#[derive(Debug)]
pub struct HeldChild {
    pid: libc::pid_t,
    go: Option<std::os::fd::OwnedFd>,
    exec_error: Option<std::os::fd::OwnedFd>,
    reaped: bool,
}

/// How the workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal.
    Signalled(i32),
}

impl HeldChild {
    /// Fork the workload `argv` (program looked up in PATH) and hold it.
    pub fn spawn(argv: &[String]) -> Result<HeldChild> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let program = resolve_program(&argv[0])?;
        let path = CString::new(program.as_os_str().as_bytes())?;
        let args: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .context("a command argument contains a NUL byte")?;
        let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        arg_ptrs.push(std::ptr::null());
        let pipe = || -> Result<(OwnedFd, OwnedFd)> {
            let mut fds = [0; 2];
            // SAFETY: fds is a valid array of two ints.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                return Err(std::io::Error::last_os_error()).context("pipe2 failed");
            }
            // SAFETY: pipe2 returned two new descriptors that we own.
            Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
        };
        let (go_r, go_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // SAFETY: the child only calls async-signal-safe functions (close,
        // read, execv, write, _exit) on data prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error()).context("fork failed");
        }
        if pid == 0 {
            // SAFETY: in the child; see above.
            unsafe {
                libc::close(go_w.as_raw_fd());
                libc::close(err_r.as_raw_fd());
                let mut byte = 0u8;
                loop {
                    let n = libc::read(go_r.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                    if n == 1 {
                        break;
                    }
                    if n == 0 || *libc::__errno_location() != libc::EINTR {
                        // kgate went away before starting the trace.
                        libc::_exit(126);
                    }
                }
                libc::execv(path.as_ptr(), arg_ptrs.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(
                    err_w.as_raw_fd(),
                    (&errno as *const i32).cast(),
                    std::mem::size_of::<i32>(),
                );
                libc::_exit(127);
            }
        }
        drop(go_r);
        drop(err_w);
        Ok(HeldChild {
            pid,
            go: Some(go_w),
            exec_error: Some(err_r),
            reaped: false,
        })
    }

    /// The workload's pid.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Let the workload exec; fails when exec failed.
    pub fn release(&mut self, program: &str) -> Result<()> {
        use std::os::fd::AsRawFd;
        let go = self.go.take().context("workload already released")?;
        let byte = 1u8;
        // SAFETY: go is an open pipe; byte is valid for one byte.
        if unsafe { libc::write(go.as_raw_fd(), (&byte as *const u8).cast(), 1) } != 1 {
            return Err(std::io::Error::last_os_error()).context("cannot start the workload");
        }
        drop(go);
        let err = self
            .exec_error
            .take()
            .context("workload already released")?;
        let mut errno = [0u8; 4];
        let mut file = std::fs::File::from(err);
        match file.read(&mut errno) {
            Ok(4) => bail!(
                "cannot run {program}: {}",
                std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno))
            ),
            _ => Ok(()),
        }
    }

    /// Has the workload ended?
    pub fn try_wait(&mut self) -> Result<Option<Ended>> {
        if self.reaped {
            return Ok(None);
        }
        let mut status = 0;
        // SAFETY: status is a valid int; pid is our child.
        let rc = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(e).context("waitpid failed");
        }
        if rc == 0 {
            return Ok(None);
        }
        self.reaped = true;
        Ok(Some(if libc::WIFEXITED(status) {
            Ended::Exited(libc::WEXITSTATUS(status))
        } else {
            Ended::Signalled(libc::WTERMSIG(status))
        }))
    }

    /// Send `signal` to the workload.
    pub fn signal(&self, signal: i32) {
        if !self.reaped {
            // SAFETY: kill has no memory preconditions; pid is our child.
            unsafe { libc::kill(self.pid, signal) };
        }
    }
}

impl Drop for HeldChild {
    fn drop(&mut self) {
        if !self.reaped {
            self.signal(libc::SIGKILL);
            let mut status = 0;
            // SAFETY: status is a valid int; pid is our child.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
        }
    }
}

/// `program` itself when it has a slash, else the first executable of that
/// name in PATH.
pub fn resolve_program(program: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        if !executable(&p) {
            bail!("{program}: no such executable file");
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| executable(p))
        .with_context(|| format!("{program}: command not found in PATH"))
}

/// The signal that interrupted kgate (SIGINT, SIGTERM or SIGHUP), or 0.
static INTERRUPTED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    INTERRUPTED.store(signal, std::sync::atomic::Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP so the tracer is always cleaned up:
/// the handler only records the signal; `kgate hap` passes it on to the
/// workload and finishes normally.
pub fn catch_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an
        // atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Take the pending interrupt signal, if any.
pub fn take_interrupt() -> Option<i32> {
    match INTERRUPTED.swap(0, std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// A process whose comm is `kgate` (a copy of sleep named so), as any
    /// user can start on a recycled pid.
    fn impostor(dir: &Path) -> Child {
        let exe = dir.join("kgate");
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let mut child = Command::new(&exe).arg("60").spawn().unwrap();
        let comm = format!("/proc/{}/comm", child.id());
        for _ in 0..500 {
            if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "kgate") {
                return child;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("{comm} never said kgate");
    }

    #[test]
    fn names_round_trip() {
        let name = InstanceName::format(42, 1234, Some("1408"));
        assert_eq!(name, "kgate-hap-42-s1234-e1408");
        assert_eq!(
            InstanceName::parse(&name),
            Some(InstanceName {
                pid: 42,
                start: Some(1234),
                unexpanded_global: Some("1408".into())
            })
        );
        assert_eq!(
            InstanceName::parse("kgate-hap-42-e1408"),
            Some(InstanceName {
                pid: 42,
                start: None,
                unexpanded_global: Some("1408".into())
            })
        );
        for bad in [
            "kgate-hap-",
            "kgate-hap-x",
            "kgate-hap-42-s",
            "kgate-hap-42-s1-s2",
            "kgate-hap-42-e1;rm",
            "kgate-hap-42-q1",
            "other-42",
        ] {
            assert_eq!(InstanceName::parse(bad), None, "{bad}");
        }
    }

    /// Issue 19 (suspected): a process called `kgate` on the killed kgate's
    /// pid kept its tracefs instance alive. Only the pid with its start
    /// time is the owner.
    #[test]
    fn a_process_called_kgate_on_the_pid_is_not_the_owner() {
        let dir = std::env::temp_dir().join(format!("kgate-ftrace-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = impostor(&dir);
        let pid = child.id();
        let proc = Path::new("/proc");
        let start = process_start(&proc.join(pid.to_string())).unwrap();
        let owner = |start| InstanceName {
            pid,
            start,
            unexpanded_global: None,
        };
        assert!(owner(Some(start)).alive(proc), "the real owner");
        assert!(
            !owner(Some(start + 1)).alive(proc),
            "same pid and comm, other start time"
        );
        assert!(owner(None).alive(proc), "old names: comm only");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!owner(Some(start)).alive(proc), "owner gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn start_time_is_counted_after_the_last_parenthesis() {
        let dir = std::env::temp_dir().join(format!("kgate-ftrace-stat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // comm "a) b (c" with spaces and parentheses; starttime is 777.
        let fields: Vec<String> = (3..=52)
            .map(|i| if i == 22 { "777".into() } else { i.to_string() })
            .collect();
        std::fs::write(
            dir.join("stat"),
            format!("9 (a) b (c) {}\n", fields.join(" ")),
        )
        .unwrap();
        assert_eq!(process_start(&dir), Some(777));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
