//! `kgate record`, natively: the recorder is a raw-tracepoint BPF program,
//! which loads here (root needed). A C workload makes a known set of
//! syscalls, rare ones included, from threads, forked children, a thread
//! of a child, a grandchild and an exec'd program: the profile must hold
//! every one, and exact counts where the workload makes a known number.

mod common;
mod workload;

use std::path::Path;
use std::process::Command;

use common::TempDir;
use serde_json::Value;
use workload::{compile, host_lacks, kgate, need_root};

fn record(args: &[&str], dir: &Path) -> (Value, std::process::Output) {
    let out_file = dir.join("profile.json");
    let out = kgate()
        .arg("record")
        .arg("-o")
        .arg(&out_file)
        .args(args)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&out_file).unwrap_or_else(|e| {
        panic!(
            "no profile ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (serde_json::from_str(&text).unwrap(), out)
}

fn count(profile: &Value, name: &str) -> u64 {
    profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .map_or(0, |s| s["count"].as_u64().unwrap())
}

#[test]
fn records_every_syscall_of_threads_children_and_execs() {
    if !need_root() {
        return;
    }
    let dir = TempDir::new("record");
    let prog = compile(dir.path(), "syscall_mix");
    let (p, out) = record(&["--", prog.to_str().unwrap()], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p["schema"], "kgate.profile/1");
    assert_eq!(p["exit_code"], 0);
    let lost = &p["lost"];
    for k in ["tasks", "sockets", "execs", "module_requests"] {
        assert_eq!(lost[k], 0, "lost {k}: {p}");
    }
    // Where each is made: main thread, worker threads, child, child's
    // thread, grandchild, exec'd /bin/true (arch_prctl, set_tid_address
    // from its libc start).
    for name in [
        "sched_get_priority_max",
        "tee",
        "vmsplice",
        "socket",
        "getcpu",
        "personality",
        "syslog",
        "getpgid",
        "times",
        "execve",
        "clone",
        "wait4",
        "exit_group",
    ] {
        assert!(count(&p, name) > 0, "{name} missing from the profile: {p}");
    }
    // 4 threads x 20000: none lost, none counted twice.
    assert_eq!(count(&p, "getppid"), 4 * 20000);
    // Exactly these socket() shapes, flags masked off the type.
    let sockets: Vec<(u64, u64, u64)> = p["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["family_nr"].as_u64().unwrap(),
                s["sock_type"].as_u64().unwrap(),
                s["protocol"].as_u64().unwrap(),
            )
        })
        .collect();
    // The three x86_64 socket() shapes, and the ia32 child's socket()
    // (inet6 dgram) and socketcall(SYS_SOCKET) (inet stream).
    assert_eq!(
        sockets,
        vec![(1, 2, 0), (2, 1, 0), (10, 2, 0), (16, 3, 0), (40, 1, 0)],
        "{p}"
    );
    assert_eq!(p["sockets"][4]["family"], "vsock");
    let execs: Vec<&str> = p["execs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(execs.contains(&"/bin/true"), "{execs:?}");
    assert!(execs.contains(&prog.to_str().unwrap()), "{execs:?}");
    // ia32 getpid (20) via int 0x80, 7 times: by its ia32 number, not
    // counted as x86_64's 20 (writev), which nothing here calls.
    let ia32: Vec<(u64, u64)> = p["ia32_syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["nr"].as_u64().unwrap(), s["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(ia32, vec![(20, 7), (102, 1), (359, 1)], "{p}");
    assert_eq!(count(&p, "writev"), 0, "{p}");
    // Main process, two children, grandchild; main's 4 workers and the
    // child's thread.
    assert_eq!(p["processes"], 4, "{p}");
    assert_eq!(p["threads"], 5, "{p}");
}

/// The command's exit status is kgate's, and the profile is still written.
#[test]
fn exit_status_is_the_commands() {
    if !need_root() {
        return;
    }
    let dir = TempDir::new("record");
    let (p, out) = record(&["--", "sh", "-c", "exit 7"], dir.path());
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(p["exit_code"], 7);
    assert!(count(&p, "exit_group") > 0);
}

/// --pid follows a running process's threads and, with
/// --follow-children, its descendants: one that was already running when
/// recording started (it alone calls setpriority, through `nice`) and the
/// children forked afterwards.
#[test]
fn pid_mode_follows_children() {
    if !need_root() {
        return;
    }
    let dir = TempDir::new("record");
    // Waits for a go file, then forks a child that calls `times` via `sh`.
    let go = dir.path().join("go");
    let script = format!(
        "(while [ ! -e {0} ]; do sleep 0.05; done; exec nice -n 1 true) & \
         while [ ! -e {0} ]; do sleep 0.05; done; /bin/sh -c 'cat /proc/self/stat >/dev/null'; wait",
        go.display()
    );
    let mut target = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    // The subshell exists before recording starts.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out_file = dir.path().join("p.json");
    let mut rec = kgate()
        .args(["record", "--follow-children", "--duration", "20", "-o"])
        .arg(&out_file)
        .arg("--pid")
        .arg(target.id().to_string())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::write(&go, "").unwrap();
    target.wait().unwrap();
    let st = rec.wait().unwrap();
    assert!(st.success());
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(p["target"]["kind"], "pid");
    assert!(p["processes"].as_u64().unwrap() >= 2, "{p}");
    let execs = p["execs"].to_string();
    assert!(
        execs.contains("/bin/sh") && execs.contains("cat") && execs.contains("nice"),
        "{execs}"
    );
    assert!(count(&p, "execve") >= 3, "{p}");
    assert!(count(&p, "setpriority") >= 1, "the pre-existing child: {p}");
}

/// --cgroup records what runs in a cgroup v2 directory.
#[test]
fn cgroup_mode_records_members() {
    if !need_root() {
        return;
    }
    // The cgroup v2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on
    // hybrid hosts (this VM).
    let Some(root) = std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| std::path::PathBuf::from(f[1]))
        })
    else {
        host_lacks("there is no cgroup v2 mount");
        return;
    };
    let cg = root.join(format!("kgate-record-test-{}", std::process::id()));
    std::fs::create_dir(&cg).unwrap();
    let dir = TempDir::new("record");
    let out_file = dir.path().join("p.json");
    let mut rec = kgate()
        .args(["record", "--duration", "3", "-o"])
        .arg(&out_file)
        .arg("--cgroup")
        .arg(&cg)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    // A shell that moves itself into the cgroup, then makes a rare call.
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec nice -n 1 true",
            cg.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let st = rec.wait().unwrap();
    let _ = std::fs::remove_dir(&cg);
    assert!(st.success());
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(p["target"]["kind"], "cgroup");
    // nice(1) calls setpriority; nothing else on this host is in the cgroup.
    assert!(count(&p, "setpriority") > 0, "{p}");
    assert!(p["execs"].to_string().contains("nice"), "{p}");
}

#[test]
fn nothing_to_record_is_an_error() {
    let out = kgate().args(["record"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to record"));
}
