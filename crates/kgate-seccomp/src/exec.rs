//! Install a filter on the calling process and exec a command.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::filter::{SockFilter, MAX_INSNS};

/// Why [`exec`] failed (nothing was exec'd).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The command is not an executable file on `PATH`.
    #[error("command not found: {0}")]
    NotFound(String),
    /// An argument holds a NUL byte.
    #[error("argument {0:?} contains a NUL byte")]
    Nul(String),
    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(io::Error),
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
    #[error("cannot install the seccomp filter ({len} instructions): {source} (is CONFIG_SECCOMP_FILTER enabled?)")]
    Install {
        /// Program length.
        len: usize,
        /// The error.
        source: io::Error,
    },
    /// `execve` failed after the filter was installed.
    #[error("cannot execute {}: {source}", path.display())]
    Exec {
        /// The program.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Find `cmd` like `execvp`: as given if it holds a `/`, else on `PATH`.
pub fn which(cmd: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exe = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if cmd.as_bytes().contains(&b'/') {
        let p = PathBuf::from(cmd);
        return exe(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| exe(p))
}

/// Set `no_new_privs` and install `prog` on the calling thread.
///
/// Irreversible for this process: call it in a process that is about to
/// exec (or in a forked child in tests).
pub fn install(prog: &[SockFilter]) -> Result<(), ExecError> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(ExecError::Install {
            len: prog.len(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(ExecError::NoNewPrivs(io::Error::last_os_error()));
    }
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        // SockFilter is repr(C) with the layout of struct sock_filter.
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(ExecError::Install {
            len: prog.len(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Resolve `argv[0]`, install `prog` with `no_new_privs`, and `execve`.
/// Returns only on failure. Everything that could fail for a reason other
/// than the filter (lookup, NUL bytes) is checked before the filter goes
/// on, and after it only `execve` runs.
pub fn exec(prog: &[SockFilter], argv: &[std::ffi::OsString]) -> ExecError {
    let Some(cmd) = argv.first() else {
        return ExecError::NotFound(String::new());
    };
    let Some(path) = which(cmd) else {
        return ExecError::NotFound(cmd.to_string_lossy().into_owned());
    };
    let cstr = |s: &OsStr| {
        CString::new(s.as_bytes()).map_err(|_| ExecError::Nul(s.to_string_lossy().into_owned()))
    };
    let prepared = (|| {
        let p = cstr(path.as_os_str())?;
        let args = argv
            .iter()
            .map(|a| cstr(a))
            .collect::<Result<Vec<_>, _>>()?;
        let env = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k;
                kv.push("=");
                kv.push(v);
                cstr(&kv)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ExecError>((p, args, env))
    })();
    let (p, args, env) = match prepared {
        Ok(x) => x,
        Err(e) => return e,
    };
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    if let Err(e) = install(prog) {
        return e;
    }
    // SAFETY: NUL-terminated strings and NULL-terminated arrays that
    // outlive the call.
    unsafe { libc::execve(p.as_ptr(), argp.as_ptr(), envp.as_ptr()) };
    ExecError::Exec {
        path,
        source: io::Error::last_os_error(),
    }
}
