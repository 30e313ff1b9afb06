//! `kgate record`: what a workload asks of the kernel, as a profile.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use kgate_bpf::record::{Follow, Recorder, Recording};
use kgate_policy::profile::{
    Lost, ModuleRequests, NameCount, Profile, SocketTuple, SyscallCount, Target, PROFILE_SCHEMA,
};

/// Record the syscalls, socket families, module requests and executables
/// of a command, a cgroup or a process tree, into a profile for `kgate
/// policy generate`.
///
/// The recorder is a BPF program on the raw_syscalls:sys_enter tracepoint
/// that counts in kernel maps (per-CPU counters per syscall number, hash
/// maps for socket shapes, exec'd paths and module requests): a busy
/// workload cannot overflow a buffer and lose observations. New threads
/// and child processes are followed from the sched_process_fork
/// tracepoint, before they first run. Needs root (or CAP_BPF and
/// CAP_PERFMON); no kernel headers, no BPF-LSM.
///
/// Record a workload's tests, a typical day of a service and its rare
/// paths (backups, reloads, error handling): only what was recorded will
/// be allowed. Merge several recordings with `kgate policy generate
/// --from A --from B`.
///
/// Examples:
///
///   kgate record -o nginx.json -- nginx -g 'daemon off;'
///
///   kgate record -o job.json --cgroup /sys/fs/cgroup/system.slice/job.service --duration 3600
///
///   kgate record -o app.json --pid 4242 --follow-children    (Ctrl-C to stop)
///
/// EXIT STATUS: with a command, the command's exit status (128+N when
/// killed by signal N), and the profile is written either way; otherwise 0
/// on success; 1 on error (nothing recorded, no file written); 2 usage
/// error.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Write the profile (JSON, schema kgate.profile/1) to FILE, atomically;
    /// `-` or no option: standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Record every task in this cgroup v2 directory and its descendants
    /// (e.g. /sys/fs/cgroup/system.slice/nginx.service) until --duration
    /// ends or Ctrl-C.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["pid", "command"])]
    pub cgroup: Option<PathBuf>,
    /// Record a running process (all its threads) until it exits,
    /// --duration ends or Ctrl-C.
    #[arg(long, value_name = "PID", conflicts_with = "command")]
    pub pid: Option<u32>,
    /// With --pid: also follow its descendant processes, those running
    /// now and those created while recording (threads are always
    /// followed).
    #[arg(long, requires = "pid")]
    pub follow_children: bool,
    /// Stop after SECONDS (with --cgroup or --pid).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// The command to run and record, after `--`. Its threads and all its
    /// descendants are followed; recording ends when it exits.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Ctrl-C (and SIGTERM) stop the recording instead of killing kgate.
fn catch_stop_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as usize) };
    }
}

/// Run `kgate record`.
pub fn run(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    let (target, rec, code) = if let Some(cg) = &args.cgroup {
        if !cg.join("cgroup.procs").exists() {
            bail!(
                "{} is not a cgroup v2 directory (no cgroup.procs); pass a directory under /sys/fs/cgroup",
                cg.display()
            );
        }
        let rec =
            Recorder::start(Follow::Cgroup(cg.clone())).context("failed to start the recorder")?;
        catch_stop_signals();
        wait(args.duration, || true);
        (Target::Cgroup { path: cg.clone() }, rec.finish()?, None)
    } else if let Some(pid) = args.pid {
        let rec = Recorder::start(Follow::Tasks {
            follow_children: args.follow_children,
        })
        .context("failed to start the recorder")?;
        if args.follow_children {
            rec.track_tree(pid)
        } else {
            rec.track_process(pid)
        }
        .with_context(|| format!("no process {pid} to record"))?;
        catch_stop_signals();
        wait(args.duration, || {
            Path::new("/proc").join(pid.to_string()).exists()
        });
        (
            Target::Pid {
                pid,
                follow_children: args.follow_children,
            },
            rec.finish()?,
            None,
        )
    } else if !args.command.is_empty() {
        let (rec, code) = record_command(&args.command)?;
        (
            Target::Command {
                argv: args
                    .command
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            },
            rec,
            Some(code),
        )
    } else {
        bail!("nothing to record: give a command after `--`, --cgroup PATH or --pid PID");
    };
    let profile = to_profile(target, &rec, started.elapsed(), code);
    let mut json = serde_json::to_vec_pretty(&profile)?;
    json.push(b'\n');
    match args.output.as_deref() {
        None => std::io::stdout().write_all(&json)?,
        Some(p) if p == Path::new("-") => std::io::stdout().write_all(&json)?,
        Some(p) => crate::output::write_file(p, &json)?,
    }
    let total: u64 = profile.syscalls.iter().map(|s| s.count).sum();
    eprintln!(
        "kgate: recorded {} distinct syscalls ({total} calls), {} socket shapes, {} execs, {} processes and {} threads in {:.1} s{}",
        profile.syscalls.len(),
        profile.sockets.len(),
        profile.execs.len(),
        profile.processes,
        profile.threads,
        started.elapsed().as_secs_f64(),
        args.output
            .as_deref()
            .filter(|p| *p != Path::new("-"))
            .map(|p| format!("; written to {}", p.display()))
            .unwrap_or_default()
    );
    if !profile.lost.is_zero() {
        eprintln!(
            "kgate: warning: the profile is incomplete: {:?} (record fewer concurrent tasks)",
            profile.lost
        );
    }
    Ok(match code {
        Some(c) => ExitCode::from(c),
        None => ExitCode::SUCCESS,
    })
}

/// Poll until `alive` is false, the duration ends or a stop signal.
fn wait(duration: Option<f64>, alive: impl Fn() -> bool) {
    let end = duration.map(|d| Instant::now() + Duration::from_secs_f64(d.max(0.0)));
    while !STOP.load(Ordering::SeqCst) && alive() && end.is_none_or(|e| Instant::now() < e) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start the recorder, then the command held at a pipe until its pid is
/// followed, so its first syscall after the release is recorded.
fn record_command(argv: &[OsString]) -> Result<(Recording, u8)> {
    let rec = Recorder::start(Follow::Tasks {
        follow_children: true,
    })
    .context("failed to start the recorder")?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("failed to create a pipe");
    }
    let (rd, wr) = (fds[0], fds[1]);
    // Everything the child needs is prepared before fork: after it, the
    // child only makes async-signal-safe calls.
    let cstr = |s: &std::ffi::OsStr| {
        std::ffi::CString::new(s.as_encoded_bytes())
            .with_context(|| format!("argument {s:?} contains a NUL byte"))
    };
    let cargs = argv.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
    let mut argp: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    // SAFETY: fork; the child below only calls close, read, execvp, _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("failed to fork");
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls on our own fds and the argv
        // prepared before fork.
        unsafe {
            libc::close(wr);
            let mut b = 0u8;
            if libc::read(rd, (&mut b as *mut u8).cast(), 1) == 1 {
                libc::execvp(argp[0], argp.as_ptr());
                let msg = b"kgate record: cannot execute the command\n";
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(127);
            }
            libc::_exit(126);
        }
    }
    // SAFETY: our own read end.
    unsafe { libc::close(rd) };
    let child = Child(pid);
    if let Err(e) = rec.track(pid as u32) {
        // SAFETY: closing our write end makes the child's read return 0:
        // it exits without running the command.
        unsafe { libc::close(wr) };
        let _ = child.wait();
        return Err(e).context("failed to follow the command");
    }
    // SAFETY: one byte from a live buffer to our own write end.
    unsafe {
        libc::write(wr, [1u8].as_ptr().cast(), 1);
        libc::close(wr);
    }
    // Ctrl-C reaches the command (same process group); kgate keeps going
    // to write the profile.
    catch_stop_signals();
    let code = child.wait().context("failed to wait for the command")?;
    Ok((rec.finish()?, code))
}

struct Child(libc::pid_t);

impl Child {
    /// Wait for the child; its exit status, or 128+N when killed by N.
    fn wait(&self) -> std::io::Result<u8> {
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(self.0, &mut status, 0) };
            if r == self.0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status) as u8
        } else if libc::WIFSIGNALED(status) {
            (128 + libc::WTERMSIG(status)).clamp(0, 255) as u8
        } else {
            1
        })
    }
}

fn to_profile(target: Target, r: &Recording, elapsed: Duration, code: Option<u8>) -> Profile {
    let kernel = kgate_kernel::inventory::running_release(Path::new("/"));
    let mut syscalls: Vec<SyscallCount> = r
        .syscalls
        .iter()
        .map(|&(nr, count)| SyscallCount {
            name: kgate_policy::syscall::name(nr).map(str::to_owned),
            nr,
            count,
        })
        .collect();
    let ia32_syscalls = r
        .ia32_syscalls
        .iter()
        .map(|&(nr, count)| SyscallCount {
            name: None,
            nr,
            count,
        })
        .collect();
    if r.other_syscalls > 0 {
        syscalls.push(SyscallCount {
            name: None,
            nr: u32::MAX,
            count: r.other_syscalls,
        });
    }
    Profile {
        schema: PROFILE_SCHEMA.into(),
        arch: "x86_64".into(),
        kernel,
        target,
        duration_ms: elapsed.as_millis() as u64,
        exit_code: code.map(i32::from),
        processes: r.processes + 1,
        threads: r.threads,
        syscalls,
        ia32_syscalls,
        sockets: r
            .sockets
            .iter()
            .map(|&((family_nr, sock_type, protocol), count)| SocketTuple {
                family: kgate_policy::family_name(family_nr)
                    .map_or_else(|| family_nr.to_string(), str::to_owned),
                family_nr,
                sock_type,
                protocol,
                count,
            })
            .collect(),
        module_requests: ModuleRequests {
            observable: r.module_requests_observable,
            requests: r
                .module_requests
                .iter()
                .map(|(name, count)| NameCount {
                    name: name.clone(),
                    count: *count,
                })
                .collect(),
        },
        execs: r
            .execs
            .iter()
            .map(|(name, count)| NameCount {
                name: name.clone(),
                count: *count,
            })
            .collect(),
        lost: Lost {
            tasks: r.lost.0,
            sockets: r.lost.1,
            execs: r.lost.2,
            module_requests: r.lost.3,
        },
    }
}
