//! The post-attach self-test: does each attached program really run, and
//! does the kernel honour its denial?
//!
//! An attached BPF-LSM program runs only when the kernel's `bpf` LSM is
//! active; a program can attach and still never run. So after attaching,
//! kgate makes one request per hook from a child process it names in the
//! `kg_selftest` map: that hook (and only that one) denies the child's
//! request and counts it in `kg_selftest_hits`. A hook passes when its
//! counter moved *and* the request failed. The requests change nothing
//! even where a hook does not work: a mount of a filesystem type that does
//! not exist, a socket, a user namespace and a UTS `setns` of the child's
//! own, a 64-byte module image of zeros, a splice and a `tee` between
//! pipes and a memfd, an executable mapping of a memfd, opening the
//! parent's `/proc/PID/mem`.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use libbpf_rs::{MapCore, MapFlags, MapHandle};
use serde::Serialize;

use crate::hook::Hook;
use crate::pins::{map, open_pinned};
use crate::BpfError;

/// The result for one hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookCheck {
    /// The hook.
    pub hook: Hook,
    /// What the self-test found.
    pub state: CheckState,
}

/// What the self-test found for a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum CheckState {
    /// The program ran on the test request and the request failed.
    Works,
    /// Attached, but the program did not run (or its denial had no
    /// effect): the hook enforces nothing.
    Broken(String),
    /// Not tested here, and why.
    NotTested(String),
}

impl CheckState {
    /// Broken?
    pub fn is_broken(&self) -> bool {
        matches!(self, CheckState::Broken(_))
    }
}

/// The test request for `hook`, run in the child with the parent's pid:
/// `true` when the request failed (as the hook's denial makes it fail).
/// `None`: the hook has no test.
fn trigger(hook: Hook) -> Option<fn(libc::pid_t) -> bool> {
    fn module_request(_: libc::pid_t) -> bool {
        // get_fs_type() asks for "fs-kgate-selftest" before anything else.
        // SAFETY: valid NUL-terminated strings; a failing mount changes
        // nothing.
        unsafe {
            libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                c"kgate-selftest".as_ptr(),
                libc::MS_RDONLY,
                std::ptr::null(),
            ) != 0
        }
    }
    fn socket(_: libc::pid_t) -> bool {
        // SAFETY: plain syscall; the fd is leaked into a process that exits.
        unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0) < 0 }
    }
    fn userns(_: libc::pid_t) -> bool {
        // SAFETY: plain syscall, on the child only.
        unsafe { libc::unshare(libc::CLONE_NEWUSER) != 0 }
    }
    fn memfd(len: usize) -> libc::c_int {
        // SAFETY: valid name; the fd belongs to the child.
        let fd = unsafe { libc::memfd_create(c"kgate-selftest".as_ptr(), 0) };
        if fd >= 0 {
            let zero = vec![0u8; len];
            // SAFETY: fd is ours, the buffer has len bytes.
            unsafe { libc::write(fd, zero.as_ptr().cast(), len) };
            // SAFETY: as above.
            unsafe { libc::lseek(fd, 0, libc::SEEK_SET) };
        }
        fd
    }
    fn module_file(_: libc::pid_t) -> bool {
        let fd = memfd(64);
        // SAFETY: plain syscall with a valid fd and an empty parameter string.
        unsafe { libc::syscall(libc::SYS_finit_module, fd, c"".as_ptr(), 0) != 0 }
    }
    fn module_data(_: libc::pid_t) -> bool {
        let image = [0u8; 64];
        // SAFETY: image has 64 bytes; the parameter string is valid.
        unsafe {
            libc::syscall(
                libc::SYS_init_module,
                image.as_ptr(),
                image.len(),
                c"".as_ptr(),
            ) != 0
        }
    }
    fn pipe() -> [libc::c_int; 2] {
        let mut p = [-1; 2];
        // SAFETY: p has room for two fds.
        unsafe { libc::pipe(p.as_mut_ptr()) };
        p
    }
    fn splice(_: libc::pid_t) -> bool {
        let fd = memfd(64);
        let p = pipe();
        // SAFETY: plain syscall on the child's own fds.
        unsafe { libc::splice(fd, std::ptr::null_mut(), p[1], std::ptr::null_mut(), 64, 0) < 0 }
    }
    fn tee(_: libc::pid_t) -> bool {
        let a = pipe();
        let b = pipe();
        // SAFETY: as above; a holds a byte so that tee has work.
        unsafe {
            libc::write(a[1], b"x".as_ptr().cast(), 1);
            libc::tee(a[0], b[1], 1, libc::SPLICE_F_NONBLOCK) < 0
        }
    }
    fn vmsplice(_: libc::pid_t) -> bool {
        let p = pipe();
        let byte = [0u8; 1];
        let iov = libc::iovec {
            iov_base: byte.as_ptr() as *mut libc::c_void,
            iov_len: 1,
        };
        // SAFETY: one valid iovec into the child's own pipe.
        unsafe { libc::vmsplice(p[1], &iov, 1, 0) < 0 }
    }
    fn setns(_: libc::pid_t) -> bool {
        // SAFETY: valid path; setns into the UTS namespace the child is in.
        unsafe {
            let fd = libc::open(c"/proc/self/ns/uts".as_ptr(), libc::O_RDONLY);
            libc::setns(fd, libc::CLONE_NEWUTS) != 0
        }
    }
    fn ptrace(parent: libc::pid_t) -> bool {
        let path = std::ffi::CString::new(format!("/proc/{parent}/mem")).unwrap_or_default();
        // SAFETY: valid path; opening for reading changes nothing.
        unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) < 0 }
    }
    fn mmap_exec(_: libc::pid_t) -> bool {
        let fd = memfd(4096);
        // SAFETY: a new private mapping of the child's own memfd.
        unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE,
                fd,
                0,
            ) == libc::MAP_FAILED
        }
    }
    Some(match hook {
        Hook::ModuleRequest => module_request,
        Hook::SocketCreate => socket,
        Hook::UsernsCreate => userns,
        Hook::ModuleLoadFile => module_file,
        Hook::ModuleLoadData => module_data,
        Hook::SpliceFile => splice,
        Hook::TeeSyscall => tee,
        Hook::VmspliceSyscall => vmsplice,
        Hook::SetnsEnter => setns,
        Hook::PtraceAttach => ptrace,
        Hook::MmapExec => mmap_exec,
        _ => return None,
    })
}

/// Why a hook cannot be tested on this host now, if it cannot.
fn untestable(hook: Hook) -> Option<String> {
    let sysctl = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/{name}"))
            .map(|s| s.trim().to_owned())
            .ok()
    };
    match hook {
        Hook::ModuleRequest if sysctl("kernel/modprobe").as_deref() == Some("") => Some(
            "kernel.modprobe is empty: the kernel requests no modules at all, so the hook has nothing to decide".into(),
        ),
        Hook::ModuleLoadFile | Hook::ModuleLoadData
            if sysctl("kernel/modules_disabled").as_deref() == Some("1") =>
        {
            Some("kernel.modules_disabled=1: the kernel loads no module at all".into())
        }
        Hook::VmspliceSyscall32 | Hook::TeeSyscall32 => {
            Some("a 32-bit entry point: kgate does not issue ia32 syscalls".into())
        }
        h if h.is_fentry() => Some("marks state for other hooks, decides nothing".into()),
        _ => None,
    }
}

/// Run the self-test for `hooks` against the maps pinned in `pin_dir`.
///
/// Errors only when the test cannot run (the maps are missing, fork
/// fails); a hook that does not work is a [`CheckState::Broken`] result.
pub fn run(pin_dir: &Path, hooks: &[Hook]) -> Result<Vec<HookCheck>, BpfError> {
    let target = open_pinned(pin_dir, map::SELFTEST)?;
    let hits = open_pinned(pin_dir, map::SELFTEST_HITS)?;
    let mut out = Vec::new();
    for &hook in hooks {
        if let Some(why) = untestable(hook) {
            out.push(HookCheck {
                hook,
                state: CheckState::NotTested(why),
            });
            continue;
        }
        let Some(f) = trigger(hook) else {
            out.push(HookCheck {
                hook,
                state: CheckState::NotTested("no self-test request for this hook".into()),
            });
            continue;
        };
        let state = test_one(&target, &hits, hook, f)?;
        out.push(HookCheck { hook, state });
    }
    Ok(out)
}

fn test_one(
    target: &MapHandle,
    hits: &MapHandle,
    hook: Hook,
    f: fn(libc::pid_t) -> bool,
) -> Result<CheckState, BpfError> {
    let idx = hook.index().to_ne_bytes();
    let bpf = |what: &'static str| {
        move |source| BpfError::Bpf {
            what: what.into(),
            source,
            hint: None,
        }
    };
    hits.update(&idx, &0u64.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf("resetting kg_selftest_hits"))?;
    let mut fds = [-1; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(BpfError::Io {
            what: "cannot create a pipe for the self-test",
            path: "pipe".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child only makes raw syscalls (async-signal-safe) and
    // leaves with _exit, so forking a multi-threaded process is sound.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(BpfError::Io {
            what: "cannot fork the self-test child",
            path: "fork".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    if child == 0 {
        let mut b = [0u8; 1];
        // SAFETY: reading one byte from our pipe; then the request; _exit
        // never returns.
        unsafe {
            libc::close(wr.as_raw_fd());
            if libc::read(rd.as_raw_fd(), b.as_mut_ptr().cast(), 1) != 1 {
                libc::_exit(3);
            }
            libc::_exit(if f(parent) { 0 } else { 1 });
        }
    }
    drop(rd);
    let mut key = Vec::with_capacity(8);
    key.extend_from_slice(&(child as u32).to_ne_bytes());
    key.extend_from_slice(&hook.index().to_ne_bytes());
    let set = target.update(&0u32.to_ne_bytes(), &key, MapFlags::ANY);
    let mut wr = std::fs::File::from(wr);
    let _ = wr.write_all(if set.is_ok() { b"g" } else { b"" });
    drop(wr);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let _ = target.update(&0u32.to_ne_bytes(), &[0u8; 8], MapFlags::ANY);
    set.map_err(bpf("writing kg_selftest"))?;
    let n = hits
        .lookup(&idx, MapFlags::ANY)
        .map_err(bpf("reading kg_selftest_hits"))?
        .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8])))
        .unwrap_or(0);
    let failed = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok(match (n, failed) {
        (0, _) => CheckState::Broken(format!(
            "{} is attached but did not run on a test request: the kernel's bpf LSM is not active (add `bpf` to the `lsm=` boot parameter) or the hook is not called here",
            hook.attach_point()
        )),
        (_, false) => CheckState::Broken(format!(
            "{} ran but the kernel did not honour its denial",
            hook.attach_point()
        )),
        _ => CheckState::Works,
    })
}
