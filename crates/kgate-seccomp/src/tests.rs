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
            s.allow.contains(&nr) && !(FAMILY_CHECKED.contains(&nr) && s.socket_families.is_some());
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

/// Issue 13, item 6: socketpair(2) creates the family's sockets (and
/// autoloads its module) before a family without pairs refuses, so it is
/// checked by family exactly like socket(2).
#[test]
fn regression_issue13_socketpair_is_family_checked() {
    let s = spec(&["socket", "socketpair", "read"], Some(&[1, 2]));
    let prog = s.build().unwrap();
    for nr in FAMILY_CHECKED {
        assert_eq!(call(&prog, nr, 1), RET_ALLOW, "nr {nr} unix");
        assert_eq!(call(&prog, nr, 2), RET_ALLOW, "nr {nr} inet");
        assert_eq!(
            call(&prog, nr, 40),
            RET_ERRNO | EAFNOSUPPORT,
            "nr {nr} vsock"
        );
        assert_eq!(
            call(&prog, nr, 10),
            RET_ERRNO | EAFNOSUPPORT,
            "nr {nr} inet6"
        );
        assert_eq!(
            call(&prog, nr, (7u64 << 32) | 1),
            RET_ALLOW,
            "nr {nr} high word"
        );
    }
    assert_eq!(NR_SOCKETPAIR, number("socketpair").unwrap());
    // socketpair alone (socket denied) is still family-checked.
    let only = spec(&["socketpair"], Some(&[1])).build().unwrap();
    assert_eq!(call(&only, NR_SOCKETPAIR, 1), RET_ALLOW);
    assert_eq!(call(&only, NR_SOCKETPAIR, 40), RET_ERRNO | EAFNOSUPPORT);
    assert_eq!(call(&only, NR_SOCKET, 1), RET_ERRNO | 1);
    // Any family (`*`): argument-free, cached.
    let any = spec(&["socketpair"], None).build().unwrap();
    assert_eq!(call(&any, NR_SOCKETPAIR, 40), RET_ALLOW);
    assert!(crate::emulate::const_allow(
        &any,
        NR_SOCKETPAIR,
        AUDIT_ARCH_X86_64
    ));
    assert!(!crate::emulate::const_allow(
        &prog,
        NR_SOCKETPAIR,
        AUDIT_ARCH_X86_64
    ));
    assert_cache_exact(&s);
}

/// The other ABIs never reach a family check: i386 (socketcall, socket,
/// socketpair: numbers 102, 359, 360) is denied by `arch`, x32
/// (`0x40000000 | nr`, the x86_64 `arch`) by the default deny, for any
/// family, whatever the policy allows.
#[test]
fn other_abis_cannot_create_sockets() {
    let all: Vec<&str> = X86_64.iter().map(|(_, n)| *n).collect();
    for fams in [Some(&[1u32, 2][..]), None] {
        let prog = spec(&all, fams).build().unwrap();
        for fam in [1u64, 2, 40] {
            for nr in [102u32, 359, 360, NR_SOCKET, NR_SOCKETPAIR] {
                let d = SeccompData {
                    nr,
                    arch: AUDIT_ARCH_I386,
                    args: [fam, 1, 0, 0, 0, 0],
                    ..SeccompData::default()
                };
                assert_eq!(run(&prog, &d).unwrap().0, RET_ERRNO | 1, "i386 nr {nr}");
            }
            for nr in FAMILY_CHECKED {
                assert_eq!(
                    call(&prog, X32_SYSCALL_BIT | nr, fam),
                    RET_ERRNO | 1,
                    "x32 nr {nr} family {fam}"
                );
            }
        }
    }
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

/// Issue 13, item 6, on the running kernel: under a filter allowing the
/// families unix and inet, socketpair(AF_UNIX) works and socketpair of a
/// denied family fails with EAFNOSUPPORT, the error socket(2) gets, where
/// without the check the kernel would create the sockets first and answer
/// EOPNOTSUPP (inet has no pairs) or load the family's module.
#[test]
fn installed_filter_checks_socketpair_family() {
    let s = spec(
        &["exit_group", "exit", "socket", "socketpair", "close"],
        Some(&[libc::AF_UNIX as u32, libc::AF_INET as u32]),
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
            let mut sv = [-1i32; 2];
            // SAFETY: raw syscalls; sv is a valid int[2] for the call.
            unsafe {
                let pair = |fam: i32, sv: &mut [i32; 2]| {
                    libc::syscall(
                        libc::SYS_socketpair,
                        fam,
                        libc::SOCK_STREAM,
                        0,
                        sv.as_mut_ptr(),
                    )
                };
                if pair(libc::AF_UNIX, &mut sv) != 0 {
                    return 11;
                }
                libc::syscall(libc::SYS_close, sv[0]);
                libc::syscall(libc::SYS_close, sv[1]);
                // Allowed family, no pairs: the kernel's own answer.
                if pair(libc::AF_INET, &mut sv) != -1
                    || *libc::__errno_location() != libc::EOPNOTSUPP
                {
                    return 12;
                }
                for fam in [libc::AF_VSOCK, libc::AF_INET6, libc::AF_NETLINK, 0xffff] {
                    if pair(fam, &mut sv) != -1 || *libc::__errno_location() != libc::EAFNOSUPPORT {
                        return 13;
                    }
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

/// Compile an exported OCI/Docker profile with libseccomp, as runc, crun
/// and Docker do, and return the program.
fn compile_profile(profile: &serde_json::Value) -> Vec<SockFilter> {
    use libseccomp::{
        ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    };
    let action = |r: &serde_json::Value, errno_key: &str| match r["action"].as_str().unwrap() {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(r[errno_key].as_i64().unwrap() as i32),
        a => panic!("unexpected action {a}"),
    };
    let default = match profile["defaultAction"].as_str().unwrap() {
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(profile["defaultErrnoRet"].as_i64().unwrap() as i32),
        a => panic!("unexpected default {a}"),
    };
    let mut ctx = ScmpFilterContext::new_filter(default).unwrap();
    ctx.remove_arch(ScmpArch::Native).ok();
    ctx.add_arch(ScmpArch::X8664).unwrap();
    for rule in profile["syscalls"].as_array().unwrap() {
        let act = action(rule, "errnoRet");
        let cmps: Vec<ScmpArgCompare> = rule["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        let v = c["value"].as_u64().unwrap();
                        let v2 = c["valueTwo"].as_u64().unwrap_or(0);
                        let i = c["index"].as_u64().unwrap() as u32;
                        match c["op"].as_str().unwrap() {
                            "SCMP_CMP_EQ" => ScmpArgCompare::new(i, ScmpCompareOp::Equal, v),
                            "SCMP_CMP_GE" => ScmpArgCompare::new(i, ScmpCompareOp::GreaterEqual, v),
                            "SCMP_CMP_MASKED_EQ" => {
                                ScmpArgCompare::new(i, ScmpCompareOp::MaskedEqual(v), v2)
                            }
                            o => panic!("unexpected op {o}"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        for n in rule["names"].as_array().unwrap() {
            let sc = ScmpSyscall::from_name_by_arch(n.as_str().unwrap(), ScmpArch::X8664).unwrap();
            if cmps.is_empty() {
                ctx.add_rule(act, sc).unwrap();
            } else {
                ctx.add_rule_conditional(act, sc, &cmps).unwrap();
            }
        }
    }
    from_bytes(&export(&ctx))
}

fn policy(text: &str) -> kgate_policy::Policy {
    kgate_policy::Policy::parse(text, "p.toml").unwrap().policy
}

/// Issue 13, item 6, in the exports: the OCI/Docker profile, compiled by
/// libseccomp, checks socketpair's family exactly like socket's, with
/// EAFNOSUPPORT for the others; the SPO manifest carries the same rules.
#[test]
fn regression_issue13_exports_check_socketpair_family() {
    use crate::export::{export as render, Format};
    let p = policy(
        "version = 1\n[seccomp]\nmode = \"enforce\"\nallow = [\"read\", \"socket\", \"socketpair\"]\nsockets = [\"unix\", \"inet\"]\n",
    );
    let json: serde_json::Value =
        serde_json::from_str(&render(&p, Format::Docker, false, "x").unwrap()).unwrap();
    // Neither is in the unconditional rule.
    let first: Vec<&str> = json["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        !first.contains(&"socket") && !first.contains(&"socketpair"),
        "{first:?}"
    );
    let prog = compile_profile(&json);
    for nr in FAMILY_CHECKED {
        assert_eq!(call(&prog, nr, 1), RET_ALLOW, "nr {nr} unix");
        assert_eq!(call(&prog, nr, 2), RET_ALLOW, "nr {nr} inet");
        for fam in [0u64, 10, 16, 40, 45, 1 << 20, u64::from(u32::MAX)] {
            assert_eq!(
                call(&prog, nr, fam),
                RET_ERRNO | EAFNOSUPPORT,
                "nr {nr} family {fam}"
            );
        }
    }
    assert_eq!(call(&prog, 0, 0), RET_ALLOW);
    assert_eq!(call(&prog, 39, 0), RET_ERRNO | 1);

    // socketpair alone: checked too, socket stays denied.
    let p = policy(
        "version = 1\n[seccomp]\nmode = \"enforce\"\nallow = [\"socketpair\"]\nsockets = [\"unix\"]\n",
    );
    let json: serde_json::Value =
        serde_json::from_str(&render(&p, Format::Oci, false, "x").unwrap()).unwrap();
    let prog = compile_profile(&json);
    assert_eq!(call(&prog, NR_SOCKETPAIR, 1), RET_ALLOW);
    assert_eq!(call(&prog, NR_SOCKETPAIR, 40), RET_ERRNO | EAFNOSUPPORT);
    assert_eq!(call(&prog, NR_SOCKET, 1), RET_ERRNO | 1);

    let spo = render(&p, Format::Spo, false, "x").unwrap();
    assert!(
        spo.contains("    names:\n    - socketpair\n    args:"),
        "{spo}"
    );
    assert!(!spo.contains("- socket\n"), "{spo}");
}

/// The exports warn about what they cannot enforce: io_uring's bypass,
/// and socketpair outside systemd's RestrictAddressFamilies=.
#[test]
fn export_warnings() {
    use crate::export::{warnings, Format};
    let plain = policy(
        "version = 1\n[seccomp]\nmode = \"enforce\"\nallow = [\"socket\", \"socketpair\"]\nsockets = [\"unix\"]\n",
    );
    assert!(warnings(&plain, Format::Oci).is_empty());
    let w = warnings(&plain, Format::Systemd);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("RestrictAddressFamilies= checks socket(2) only"),
        "{w:?}"
    );
    let uring = policy(
        "version = 1\n[seccomp]\nmode = \"enforce\"\nallow = [\"socket\", \"io_uring_setup\", \"io_uring_enter\"]\nsockets = [\"unix\"]\n",
    );
    for f in [
        Format::Oci,
        Format::Docker,
        Format::Podman,
        Format::Systemd,
        Format::Spo,
    ] {
        let w = warnings(&uring, f);
        assert!(
            w.iter()
                .any(|w| w.contains("IORING_OP_SOCKET, IORING_OP_SPLICE, IORING_OP_TEE")),
            "{f:?}: {w:?}"
        );
    }
}
