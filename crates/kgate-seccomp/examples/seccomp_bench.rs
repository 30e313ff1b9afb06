//! Per-syscall cost of seccomp filters (issue 6 benchmark): no filter,
//! podman's default profile compiled by libseccomp (its default output and
//! its binary tree), and kgate's filter allowing the same syscalls.
//!
//! Each measurement runs in a forked child (a filter cannot be removed),
//! rounds interleave the variants A/B/C/D (order rotated each round), the
//! time is the thread's CPU time (waiting for a core on a shared machine
//! is not counted), and the medians are printed.
//!
//! Usage: cargo run --release -p kgate-seccomp --example seccomp_bench -- [ROUNDS] [CALLS]

use std::collections::BTreeMap;

use kgate_seccomp::baseline::{DockerProfile, PODMAN_DEFAULT, PODMAN_DEFAULT_CAPS};
use kgate_seccomp::emulate::{cache_bitmap, run, SeccompData};
use kgate_seccomp::filter::{from_bytes, Deny, FilterSpec, SockFilter, AUDIT_ARCH_X86_64};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterAttr, ScmpFilterContext,
    ScmpSyscall,
};

fn libseccomp_podman(p: &DockerProfile, optimize: u32) -> Vec<SockFilter> {
    let default = match p.default_action.as_str() {
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(p.default_errno_ret.unwrap_or(1) as i32),
        _ => ScmpAction::Allow,
    };
    let mut ctx = ScmpFilterContext::new_filter(default).unwrap();
    ctx.remove_arch(ScmpArch::Native).ok();
    ctx.add_arch(ScmpArch::X8664).unwrap();
    if optimize > 1 {
        ctx.set_filter_attr(ScmpFilterAttr::CtlOptimize, optimize)
            .unwrap();
    }
    for r in p.applicable(PODMAN_DEFAULT_CAPS) {
        let action = match r.action.as_str() {
            "SCMP_ACT_ALLOW" => ScmpAction::Allow,
            "SCMP_ACT_ERRNO" => ScmpAction::Errno(r.errno_ret.unwrap_or(1) as i32),
            _ => continue,
        };
        if action == default {
            continue;
        }
        for n in &r.names {
            let Ok(sc) = ScmpSyscall::from_name_by_arch(n, ScmpArch::X8664) else {
                continue;
            };
            let args: Vec<ScmpArgCompare> = r
                .args
                .iter()
                .flatten()
                .map(|a| {
                    let op = match a.op.as_str() {
                        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
                        "SCMP_CMP_LT" => ScmpCompareOp::Less,
                        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
                        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
                        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
                        "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(a.value),
                        _ => ScmpCompareOp::Equal,
                    };
                    let datum = if a.op == "SCMP_CMP_MASKED_EQ" {
                        a.value_two
                    } else {
                        a.value
                    };
                    ScmpArgCompare::new(a.index, op, datum)
                })
                .collect();
            // Conflicting rules (same syscall, other action) are skipped, as
            // container engines ignore them too.
            let _ = if args.is_empty() {
                ctx.add_rule(action, sc)
            } else {
                ctx.add_rule_conditional(action, sc, &args)
            };
        }
    }
    let path = std::env::temp_dir().join(format!("kgate-bench-{}-{optimize}", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    ctx.export_bpf(&mut f).unwrap();
    drop(f);
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    from_bytes(&bytes)
}

/// This thread's CPU time in nanoseconds: time spent waiting for a core
/// (other sessions share the machine) is not counted.
fn cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// Nanoseconds (thread CPU time) per call of getpid, read(/dev/zero, 1) and a denied call,
/// in a child with `prog` installed (or none).
fn measure(prog: Option<&[SockFilter]>, calls: u64) -> [f64; 3] {
    let mut fds = [0; 2];
    // SAFETY: pipe fills the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes syscalls, writes the pipe and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        if let Some(p) = prog {
            kgate_seccomp::exec::install(p).unwrap();
        }
        // SAFETY: raw syscalls on our own fds and buffers.
        let out = unsafe {
            let zero = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY);
            let mut b = [0u8; 1];
            let t = cpu_ns();
            for _ in 0..calls {
                libc::syscall(libc::SYS_getpid);
            }
            let getpid = (cpu_ns() - t) / calls as f64;
            let t = cpu_ns();
            for _ in 0..calls {
                libc::read(zero, b.as_mut_ptr().cast(), 1);
            }
            let read = (cpu_ns() - t) / calls as f64;
            // kexec_load: denied by podman's profile and kgate's (and
            // without CAP_SYS_BOOT otherwise): the whole filter runs.
            let t = cpu_ns();
            for _ in 0..calls / 4 {
                libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0);
            }
            let denied = (cpu_ns() - t) / (calls / 4) as f64;
            [getpid, read, denied]
        };
        let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_ne_bytes()).collect();
        // SAFETY: writing our buffer to our pipe, then leaving.
        unsafe {
            libc::write(fds[1], bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0);
        }
    }
    // SAFETY: our own fds and child.
    unsafe {
        libc::close(fds[1]);
        let mut buf = [0u8; 24];
        let n = libc::read(fds[0], buf.as_mut_ptr().cast(), 24);
        assert_eq!(n, 24, "child failed");
        libc::close(fds[0]);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        let f = |i: usize| f64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
        [f(0), f(1), f(2)]
    }
}

/// Program length, cached syscall numbers, mean/max instructions run for
/// the allowed numbers (an uncached path), from the emulator.
fn shape(prog: &[SockFilter], allowed: &[u32]) -> (usize, usize, f64, usize) {
    let cached = cache_bitmap(prog, kgate_policy::syscall::table_len(), AUDIT_ARCH_X86_64)
        .iter()
        .filter(|c| **c)
        .count();
    let steps: Vec<usize> = allowed
        .iter()
        .map(|&nr| {
            run(
                prog,
                &SeccompData {
                    nr,
                    arch: AUDIT_ARCH_X86_64,
                    ..SeccompData::default()
                },
            )
            .unwrap()
            .1
        })
        .collect();
    let mean = steps.iter().sum::<usize>() as f64 / steps.len().max(1) as f64;
    (
        prog.len(),
        cached,
        mean,
        steps.into_iter().max().unwrap_or(0),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let calls: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let podman = DockerProfile::load(PODMAN_DEFAULT)
        .expect("podman's profile (apt-get install golang-github-containers-common)");
    let names = podman.allowed(PODMAN_DEFAULT_CAPS);
    let spec = FilterSpec {
        allow: names
            .iter()
            .filter_map(|n| kgate_policy::syscall::number(n))
            .collect(),
        socket_families: None,
        deny: Deny::Errno(1),
    };
    let kgate = spec.build().unwrap();
    let lib1 = libseccomp_podman(&podman, 1);
    let lib2 = libseccomp_podman(&podman, 2);
    let allowed: Vec<u32> = spec.allow.iter().copied().collect();
    let variants: Vec<(&str, Option<&[SockFilter]>)> = vec![
        ("no filter", None),
        ("podman, libseccomp default", Some(&lib1)),
        ("podman, libseccomp binary tree", Some(&lib2)),
        ("kgate, same syscalls", Some(&kgate)),
    ];
    println!(
        "podman default profile: {} x86_64 syscalls allowed (some by argument)",
        names.len()
    );
    println!(
        "| filter | instructions | cached syscall numbers | insns run, allowed nr (mean/max) |"
    );
    println!("|---|---|---|---|");
    for (n, p) in &variants {
        if let Some(p) = p {
            let (len, cached, mean, max) = shape(p, &allowed);
            println!("| {n} | {len} | {cached} | {mean:.1} / {max} |");
        }
    }
    let mut res: BTreeMap<&str, Vec<[f64; 3]>> = BTreeMap::new();
    // Rotate the order every round: no variant always runs first or last.
    for r in 0..rounds {
        for i in 0..variants.len() {
            let (n, p) = &variants[(r + i) % variants.len()];
            res.entry(n).or_default().push(measure(*p, calls));
        }
    }
    let med = |n: &str, i: usize| median(res[n].iter().map(|r| r[i]).collect());
    let base = [
        med("no filter", 0),
        med("no filter", 1),
        med("no filter", 2),
    ];
    println!();
    println!(
        "{rounds} interleaved rounds (order rotated) of {calls} calls; medians of thread CPU time, ns per call (ratio to no filter)"
    );
    println!("| filter | getpid | read 1 B /dev/zero | denied kexec_load |");
    println!("|---|---|---|---|");
    for (n, _) in &variants {
        let c = |i: usize| format!("{:.1} ({:.3}×)", med(n, i), med(n, i) / base[i]);
        println!("| {n} | {} | {} | {} |", c(0), c(1), c(2));
    }
    let extra = |n: &str, i: usize| med(n, i) - base[i];
    println!();
    println!(
        "extra cost over no filter, ns: getpid kgate {:.1} vs libseccomp {:.1} (tree {:.1}); read kgate {:.1} vs libseccomp {:.1} (tree {:.1})",
        extra("kgate, same syscalls", 0),
        extra("podman, libseccomp default", 0),
        extra("podman, libseccomp binary tree", 0),
        extra("kgate, same syscalls", 1),
        extra("podman, libseccomp default", 1),
        extra("podman, libseccomp binary tree", 1),
    );
}
