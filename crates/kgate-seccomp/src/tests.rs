use std::collections::BTreeSet;

use kgate_policy::syscall::{number, table_len, X86_64};

use crate::emulate::{cache_bitmap, run, SeccompData};
use crate::filter::*;

fn spec(names: &[&str], families: Option<&[u32]>) -> FilterSpec {
    FilterSpec {
        allow: names.iter().map(|n| number(n).expect(n)).collect(),
        socket_families: families.map(|f| f.iter().copied().collect()),
        deny: Deny::Errno(1),
    }
}

fn call(prog: &[SockFilter], nr: u32, arg0: u64) -> u32 {
    let d = SeccompData {
        nr,
        arch: AUDIT_ARCH_X86_64,
        args: [arg0, 0, 0, 0, 0, 0],
        ..SeccompData::default()
    };
    run(prog, &d).expect("program runs").0
}

/// A realistic allowlist: what a podman container may call with default
/// capabilities, from the installed profile when present.
fn podman_like() -> Vec<&'static str> {
    if let Ok(p) = crate::baseline::DockerProfile::load(crate::baseline::PODMAN_DEFAULT) {
        return p
            .allowed(crate::baseline::PODMAN_DEFAULT_CAPS)
            .into_iter()
            .collect();
    }
    // Every third syscall: many intervals, far jumps.
    X86_64.iter().step_by(3).map(|(_, n)| *n).collect()
}

/// The kernel caches (skips the filter for) exactly the allowed syscalls
/// without an argument check: emulate `seccomp_cache_prepare` for every
/// x86_64 number.
#[track_caller]
fn assert_cache_exact(s: &FilterSpec) {
    let prog = s.build().unwrap();
    let n = table_len() + 64;
    let cached = cache_bitmap(&prog, n, AUDIT_ARCH_X86_64);
    for nr in 0..n {
        let argument_free =
            s.allow.contains(&nr) && !(nr == NR_SOCKET && s.socket_families.is_some());
        assert_eq!(
            cached[nr as usize],
            argument_free,
            "syscall {nr} ({:?}): cached={} allowed-without-argument-check={argument_free}",
            kgate_policy::syscall::name(nr),
            cached[nr as usize]
        );
    }
    // Other ABIs are never allowed, so never cached.
    assert!(cache_bitmap(&prog, 512, AUDIT_ARCH_I386).iter().all(|c| !c));
}

#[test]
fn every_argument_free_allow_stays_cacheable() {
    let names = podman_like();
    assert!(names.len() > 100, "{}", names.len());
    assert_cache_exact(&spec(&names, Some(&[1, 2, 10, 16])));
    assert_cache_exact(&spec(&names, None));
    assert_cache_exact(&spec(&["read", "write", "exit_group"], None));
    let all: Vec<&str> = X86_64.iter().map(|(_, n)| *n).collect();
    assert_cache_exact(&spec(&all, Some(&[1])));
}

#[test]
fn actions_match_the_spec_for_every_number() {
    for names in [
        podman_like(),
        X86_64.iter().step_by(2).map(|(_, n)| *n).collect(),
    ] {
        let s = spec(&names, Some(&[1, 2]));
        let prog = s.build().unwrap();
        for nr in (0..table_len() + 8).chain([0x4000_0000, 0x4000_0001, u32::MAX]) {
            let want = if s.allow.contains(&nr) {
                RET_ALLOW
            } else {
                RET_ERRNO | 1
            };
            let got = call(&prog, nr, 1);
            assert_eq!(got, want, "nr {nr}");
        }
    }
}

#[test]
fn far_jumps_are_correct() {
    // Alternate allow/deny: ~235 intervals, a left subtree longer than 255.
    let names: Vec<&str> = X86_64.iter().step_by(2).map(|(_, n)| *n).collect();
    let s = spec(&names, None);
    let prog = s.build().unwrap();
    assert!(
        prog.iter().any(|i| i.code == op::JA),
        "no far jump exercised"
    );
    assert_cache_exact(&s);
}

#[test]
fn socket_families_by_argument() {
    let s = spec(&["socket", "read"], Some(&[1, 10]));
    let prog = s.build().unwrap();
    assert_eq!(call(&prog, NR_SOCKET, 1), RET_ALLOW);
    assert_eq!(call(&prog, NR_SOCKET, 10), RET_ALLOW);
    assert_eq!(call(&prog, NR_SOCKET, 2), RET_ERRNO | EAFNOSUPPORT);
    assert_eq!(call(&prog, NR_SOCKET, 40), RET_ERRNO | EAFNOSUPPORT);
    // The high word of the int argument is ignored, as the kernel does.
    assert_eq!(call(&prog, NR_SOCKET, (7u64 << 32) | 1), RET_ALLOW);
    let none = spec(&["socket"], Some(&[]));
    assert_eq!(
        call(&none.build().unwrap(), NR_SOCKET, 1),
        RET_ERRNO | EAFNOSUPPORT
    );
    let any = spec(&["socket"], None);
    assert_eq!(call(&any.build().unwrap(), NR_SOCKET, 40), RET_ALLOW);
}

#[test]
fn audit_logs_instead_of_denying() {
    let mut s = spec(&["read", "socket"], Some(&[1]));
    s.deny = Deny::Log;
    let prog = s.build().unwrap();
    assert_eq!(call(&prog, 39, 0), RET_LOG);
    assert_eq!(call(&prog, NR_SOCKET, 2), RET_LOG);
    assert_eq!(call(&prog, 0, 0), RET_ALLOW);
}

#[test]
fn splice_family_denied_unless_allowed() {
    let prog = spec(&["read", "write", "pipe2"], None).build().unwrap();
    for n in ["splice", "vmsplice", "tee"] {
        assert_eq!(call(&prog, number(n).unwrap(), 0), RET_ERRNO | 1, "{n}");
    }
    let prog = spec(&["read", "splice"], None).build().unwrap();
    assert_eq!(call(&prog, number("splice").unwrap(), 0), RET_ALLOW);
    assert_eq!(call(&prog, number("vmsplice").unwrap(), 0), RET_ERRNO | 1);
}

/// libseccomp compiles the same allowlist to a program with the same
/// verdict for every syscall number (differential check of the builder).
#[test]
fn agrees_with_libseccomp() {
    use libseccomp::{ScmpAction, ScmpArch, ScmpFilterContext, ScmpSyscall};
    let names = podman_like();
    let ours = spec(&names, None).build().unwrap();
    let mut ctx = ScmpFilterContext::new_filter(ScmpAction::Errno(1)).unwrap();
    ctx.remove_arch(ScmpArch::Native).ok();
    ctx.add_arch(ScmpArch::X8664).unwrap();
    for n in &names {
        if let Ok(sc) = ScmpSyscall::from_name_by_arch(n, ScmpArch::X8664) {
            ctx.add_rule(ScmpAction::Allow, sc).unwrap();
        }
    }
    let theirs = from_bytes(&export(&ctx));
    let known: BTreeSet<u32> = names
        .iter()
        .filter(|n| ScmpSyscall::from_name_by_arch(n, ScmpArch::X8664).is_ok())
        .map(|n| number(n).unwrap())
        .collect();
    for nr in 0..table_len() {
        let a = call(&ours, nr, 0);
        let b = call(&theirs, nr, 0);
        if known.contains(&nr) || !s_allows(&names, nr) {
            assert_eq!(a, b, "nr {nr} {:?}", kgate_policy::syscall::name(nr));
        }
    }
    fn s_allows(names: &[&str], nr: u32) -> bool {
        names.iter().any(|n| number(n) == Some(nr))
    }
}

/// libseccomp's `seccomp_export_bpf` output (it writes to a file descriptor).
pub(crate) fn export(ctx: &libseccomp::ScmpFilterContext) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!(
        "kgate-seccomp-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut f = std::fs::File::create(&path).unwrap();
    ctx.export_bpf(&mut f).unwrap();
    drop(f);
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    bytes
}

/// Install a filter for real in a forked child: allowed calls work, others
/// fail with the errno, socket families are checked by argument.
#[test]
fn installed_filter_enforces() {
    let s = spec(
        &["getpid", "exit_group", "exit", "socket", "close", "write"],
        Some(&[libc::AF_UNIX as u32]),
    );
    let prog = s.build().unwrap();
    // SAFETY: the child only makes raw syscalls and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = (|| {
            if crate::exec::install(&prog).is_err() {
                return 10;
            }
            // SAFETY: raw syscalls without pointers.
            unsafe {
                if libc::syscall(libc::SYS_getpid) <= 0 {
                    return 11;
                }
                let fd = libc::syscall(libc::SYS_socket, libc::AF_UNIX, libc::SOCK_STREAM, 0);
                if fd < 0 {
                    return 12;
                }
                libc::syscall(libc::SYS_close, fd);
                if libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0) != -1
                    || *libc::__errno_location() != libc::EAFNOSUPPORT
                {
                    return 13;
                }
                if libc::syscall(libc::SYS_getppid) != -1
                    || *libc::__errno_location() != libc::EPERM
                {
                    return 14;
                }
                if libc::syscall(libc::SYS_vmsplice, 0, 0, 0, 0) != -1
                    || *libc::__errno_location() != libc::EPERM
                {
                    return 15;
                }
            }
            0
        })();
        // SAFETY: leave the forked child without running the harness.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child died: {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child check failed (see codes in the test)"
    );
}

/// The export's deny blocks match exactly the families not allowed, for
/// any 64-bit argument value.
#[test]
fn denied_family_blocks_cover_exactly_the_rest() {
    use crate::export::{denied_family_blocks, FamilyCmp};
    let sets: [&[u32]; 6] = [
        &[],
        &[0],
        &[1],
        &[1, 2, 10, 16],
        &[45],
        &[3, 4, 5, 6, 7, 40],
    ];
    let mut probes: Vec<u64> = (0..300).collect();
    probes.extend([
        1 << 31,
        u64::from(u32::MAX),
        1 << 32,
        1 << 40,
        u64::MAX - 1,
        u64::MAX,
    ]);
    for allowed in sets {
        let blocks = denied_family_blocks(allowed);
        for &f in &probes {
            let denied = blocks.iter().any(|c| c.matches(f));
            let listed = allowed.iter().any(|&a| u64::from(a) == f);
            assert_eq!(
                denied, !listed,
                "allowed {allowed:?}, family {f}: {blocks:?}"
            );
        }
        // Blocks do not overlap (libseccomp would keep one arbitrarily).
        for &f in &probes {
            assert!(blocks.iter().filter(|c| c.matches(f)).count() <= 1);
        }
        assert!(matches!(blocks.last(), Some(FamilyCmp::Ge(_))));
    }
    // unix, inet, inet6, netlink: a handful of rules, not one per family.
    assert!(denied_family_blocks(&[1, 2, 10, 16]).len() <= 8);
}
