//! CLI tests of `kgate hap`: on this host (where ftrace may be refused: the
//! error must say why, and leave nothing behind), offline on trace text
//! captured from Debian 6.12 and 6.1 in the kernel lab, and bad input.
//! Tracing a real workload is tested in the lab
//! (lab/scenarios/70-hap.sh).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::*;

fn kgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
}

#[track_caller]
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out: Output = cmd.output().expect("failed to start kgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Decompress a lab capture of kgate-hap's test data into `dir`.
fn capture(dir: &TempDir, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kgate-hap/tests/data")
        .join(format!("{name}.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&src).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    dir.write(name, &text);
    dir.path().join(name)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn tracefs_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("tracefs"))
}

fn kgate_instances() -> Vec<String> {
    [
        "/sys/kernel/tracing/instances",
        "/sys/kernel/debug/tracing/instances",
    ]
    .iter()
    .filter_map(|d| std::fs::read_dir(d).ok())
    .flat_map(|d| d.flatten())
    .map(|e| e.file_name().to_string_lossy().into_owned())
    .filter(|n| n.starts_with("kgate-hap-"))
    .collect()
}

/// On this host: either ftrace works and the HAP of `true` comes out, or
/// the error says exactly which step the kernel refused and why, and kgate
/// leaves no instance and no mount behind. (The kgate dev VM refuses the
/// function tracer with EPERM under lockdown=integrity with BPF-LSM active.)
#[test]
fn on_this_host_works_or_says_why() {
    if !is_root() {
        let (code, _, err) = run(kgate().args(["hap", "--", "true"]));
        assert_eq!(code, 1);
        assert!(err.contains("needs root"), "{err}");
        return;
    }
    let mounted_before = tracefs_mounted();
    let dir = TempDir::new("hap-host");
    let out = dir.path().join("true.json");
    let (code, stdout, err) = run(kgate().args(["hap", "-o"]).arg(&out).args(["--", "true"]));
    assert_eq!(
        tracefs_mounted(),
        mounted_before,
        "tracefs mount left changed"
    );
    assert!(kgate_instances().is_empty(), "{:?}", kgate_instances());
    match code {
        0 => {
            let p: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
            assert_eq!(p["schema"], "kgate.hap/1");
            assert!(p["hap"].as_u64().unwrap() > 10, "{stdout}");
            assert_eq!(p["exit_status"], 0);
        }
        1 => {
            assert!(err.starts_with("kgate: error: "), "{err}");
            // One of the documented refusals, each naming its cause.
            let explained = [
                "the kernel refused to start the ftrace function tracer: writing `function` to ",
                "this kernel has no ftrace",
                "this kernel has no ftrace function tracer",
                "kernel.ftrace_enabled = 0",
                "cannot create the tracefs instance",
            ];
            assert!(explained.iter().any(|e| err.contains(e)), "{err}");
            if err.contains("refused") {
                // errno, lockdown mode and what to do.
                assert!(
                    err.contains("Operation not permitted")
                        || err.contains("Permission denied")
                        || err.contains("busy"),
                    "{err}"
                );
                assert!(err.contains("kernel lockdown is "), "{err}");
                assert!(
                    err.contains("run it on a host or VM that allows the function tracer"),
                    "{err}"
                );
            }
            assert!(!out.exists(), "no profile may be written on error");
            assert!(stdout.is_empty(), "{stdout}");
        }
        _ => panic!("exit {code}: {err}"),
    }
}

#[test]
fn needs_root() {
    let (code, out, err) =
        run(as_unprivileged(env!("CARGO_BIN_EXE_kgate")).args(["hap", "--", "true"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("kgate hap needs root"), "{err}");
}

#[test]
fn bad_input_is_rejected_before_tracing() {
    let dir = TempDir::new("hap-bad");
    dir.write("survey.json", r#"{"schema":"kgate.survey/1"}"#);
    let (code, _, err) = run(kgate()
        .args(["hap", "--baseline"])
        .arg(dir.path().join("survey.json"))
        .args(["--", "true"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("schema is kgate.survey/1, expected kgate.hap/1"),
        "{err}"
    );

    let (code, _, err) = run(kgate().args(["hap", "--", "/nonexistent/workload"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/workload: no such executable file"),
        "{err}"
    );

    let (code, _, err) = run(kgate().args(["hap", "--", "no-such-command-kgate"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("no-such-command-kgate: command not found in PATH"),
        "{err}"
    );

    let (code, _, err) = run(kgate().arg("hap"));
    assert_eq!(code, 1);
    assert!(err.contains("name the workload after `--`"), "{err}");

    let (code, _, err) = run(kgate().args(["hap", "--from-trace", "x", "--", "true"]));
    assert_eq!(code, 2, "{err}");
}

/// The offline path on real lab captures: module functions through
/// kallsyms and modules.dep, irq noise left out, JSON schema, baseline.
#[test]
fn from_trace_on_lab_captures() {
    let dir = TempDir::new("hap-offline");
    dir.write(
        "modules.dep",
        "kernel/net/sctp/sctp.ko.xz: kernel/lib/libcrc32c.ko.xz\n",
    );
    let mut haps = Vec::new();
    for kernel in ["cloud-6.12", "cloud-6.1"] {
        let trace = capture(&dir, &format!("{kernel}-sctp.trace"));
        let syms = capture(&dir, &format!("{kernel}-sctp.kallsyms"));
        let saved = dir.path().join(format!("{kernel}.json"));
        let (code, stdout, err) = run(kgate()
            .args(["hap", "--format", "json", "--from-trace"])
            .arg(&trace)
            .arg("--kallsyms")
            .arg(&syms)
            .arg("--modules-dep")
            .arg(dir.path().join("modules.dep"))
            .arg("-o")
            .arg(&saved));
        assert_eq!(code, 0, "{err}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["schema"], "kgate.hap-report/1");
        let p = &report["profile"];
        assert_eq!(p["schema"], "kgate.hap/1");
        assert_eq!(p["method"]["irq_filter"], "context_flags");
        assert!(p["events"]["irq_context"].as_u64().unwrap() > 100);
        assert_eq!(p["events"]["unparsed_lines"], 0);
        let hap = p["hap"].as_u64().unwrap();
        assert!(hap > 300, "{hap}");
        let sctp = p["subsystems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subsystem"] == "net/sctp")
            .expect("net/sctp subsystem");
        assert!(sctp["functions"].as_u64().unwrap() > 10);
        assert!(p["modules"][0]["module"] == "sctp", "{}", p["modules"]);
        assert!(p["functions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["name"] != "hrtimer_interrupt"));
        // The saved profile is the same profile.
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
        assert_eq!(&saved, p);
        haps.push((
            kernel,
            hap,
            dir.path().join(format!("{kernel}.json")),
            trace,
            syms,
        ));
    }
    // 6.12 against the 6.1 baseline, in text.
    let (_, hap12, _, trace, syms) = &haps[0];
    let (_, hap61, base, _, _) = &haps[1];
    let (code, stdout, err) = run(kgate()
        .args(["hap", "--from-trace"])
        .arg(trace)
        .arg("--kallsyms")
        .arg(syms)
        .arg("--baseline")
        .arg(base));
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.starts_with(&format!(
            "HAP of the trace {}: {hap12} kernel functions",
            trace.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("HAP {hap61} -> {hap12}")),
        "{stdout}"
    );
    assert!(stdout.contains("SUBSYSTEM"), "{stdout}");
}

#[test]
fn from_trace_rejects_text_without_events() {
    let dir = TempDir::new("hap-empty");
    dir.write("t.txt", "# tracer: nop\nhello world\n");
    let (code, _, err) = run(kgate()
        .args(["hap", "--from-trace"])
        .arg(dir.path().join("t.txt")));
    assert_eq!(code, 1);
    assert!(
        err.contains("no function trace events in it (first unreadable line: \"hello world\")"),
        "{err}"
    );
}

/// With a CVE database, each subsystem carries the CVEs whose fix touched
/// a file directly in its directory: checked against the CNA CSV itself.
#[test]
fn subsystem_cves_from_the_database() {
    let Some(shared) = shared_data() else {
        return;
    };
    let dir = TempDir::new("hap-cves");
    let xdg = dir.path().join("xdg");
    let csv = shared.join("kernel-cve-files.csv.gz");
    let (code, _, err) = run(kgate()
        .env("XDG_DATA_HOME", &xdg)
        .args(["cve", "import"])
        .arg(&csv));
    assert_eq!(code, 0, "{err}");
    dir.write("modules.dep", "kernel/net/sctp/sctp.ko.xz:\n");
    let trace = capture(&dir, "cloud-6.12-sctp.trace");
    let syms = capture(&dir, "cloud-6.12-sctp.kallsyms");
    let (code, stdout, err) = run(kgate()
        .env("XDG_DATA_HOME", &xdg)
        .args(["hap", "--format", "json", "--from-trace"])
        .arg(&trace)
        .arg("--kallsyms")
        .arg(&syms)
        .arg("--modules-dep")
        .arg(dir.path().join("modules.dep")));
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let subsystems = report["profile"]["subsystems"].as_array().unwrap();

    // The same counts straight from the CSV (cve_id,...,n_files,files,title).
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&csv).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let direct = |path: &str| {
        text.lines()
            .skip(1)
            .filter(|l| {
                l.split(',').nth(8).is_some_and(|files| {
                    files
                        .split(';')
                        .any(|f| f == path || f.rsplit_once('/').is_some_and(|(d, _)| d == path))
                })
            })
            .count() as u64
    };
    for name in ["net/sctp", "mm", "fs"] {
        let s = subsystems
            .iter()
            .find(|s| s["subsystem"] == name)
            .unwrap_or_else(|| panic!("no {name} subsystem"));
        let want = direct(name);
        assert!(want > 10, "{name}: {want}");
        assert_eq!(s["cves"]["all"].as_u64(), Some(want), "{name}: {s}");
    }
    let unknown = subsystems
        .iter()
        .find(|s| s["subsystem"] == "unknown")
        .unwrap();
    assert!(unknown["cves"].is_null());
}

/// Issue 19, item 3: `--save-trace FILE` opened FILE with `File::create`,
/// following a symlink planted there (and truncating its target) before
/// tracing even started. The trace is now written to a temp file opened
/// `O_EXCL|O_NOFOLLOW` and renamed over FILE; a symlink at FILE is refused.
#[test]
fn save_trace_never_follows_a_planted_symlink() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("hap-save-trace");
    dir.write("victim", "precious");
    let trace = dir.path().join("trace.txt");
    std::os::unix::fs::symlink(dir.path().join("victim"), &trace).unwrap();
    let (code, _, err) = run(kgate()
        .args(["hap", "--save-trace"])
        .arg(&trace)
        .args(["--", "true"]));
    assert_eq!(dir.read("victim"), "precious", "exit {code}: {err}");
    assert_eq!(code, 1, "{err}");
    // Refused before tracing starts.
    assert!(err.contains("is a symlink"), "{err}");
}
