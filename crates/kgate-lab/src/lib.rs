//! The kernel lab: boots real Debian kernels under qemu (TCG) with kgate
//! inside and runs scenario scripts that test kgate's kernel-facing claims.
//!
//! ```no_run
//! use kgate_lab::{Flavour, Kernel, RunOptions, Scenario};
//! let kernel = Kernel::find(Flavour::Cloud612)?;
//! let scenarios = Scenario::load_dir(&kgate_lab::guest_src().join("scenarios"))?;
//! let run = kgate_lab::run(&kernel, &scenarios, &RunOptions::new("target/debug/kgate"))?;
//! for (name, (outcome, detail)) in &run.results {
//!     println!("{name} {outcome} {detail}");
//! }
//! # anyhow::Ok(())
//! ```
//!
//! One boot runs every scenario. The guest prints
//! `KGATE-LAB-RESULT <name> <PASS|FAIL|SKIP> <detail>` lines on the serial
//! console and `KGATE-LAB-DONE` at the end; a result that a scenario
//! declared but never printed (crash, panic, hang, timeout) is a failure
//! whose detail says why. A SKIP passes only when the kernel's
//! [manifest] declares missing the feature the SKIP names
//! (`needs:FEATURE`); any other SKIP fails. See `lab/README.md` for writing
//! scenarios.

pub mod cpio;
pub mod initramfs;
mod kernel;
pub mod manifest;
mod scenario;
pub mod system;
pub mod system_run;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use kernel::{
    lab_dir, parse_stamp, sha256_hex, BuildLock, FileLock, Flavour, Kernel, KernelBuild,
    BUILD_STAMP,
};
pub use manifest::{Missing, Why};
pub use scenario::Scenario;

/// Marker of a result line on the guest console.
pub const RESULT_MARKER: &str = "KGATE-LAB-RESULT";
/// Marker the guest prints when `/init` starts.
pub const BOOTED_MARKER: &str = "KGATE-LAB-BOOTED";
/// Marker the guest prints after the last scenario.
pub const DONE_MARKER: &str = "KGATE-LAB-DONE";

/// The repository's guest-side directory (`lab/`).
pub fn guest_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab")
}

/// Every scenario in `lab/scenarios`.
pub fn default_scenarios() -> Result<Vec<Scenario>> {
    Scenario::load_dir(&guest_src().join("scenarios"))
}

/// The outcome of one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The check held.
    Pass,
    /// The check failed, or the result never came.
    Fail,
    /// Not run on this kernel: passes only when the kernel's manifest
    /// declares the feature it names missing ([`LabRun::check`]).
    Skip,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        })
    }
}

/// How to run the lab.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The kgate binary to put in the guest.
    pub kgate: PathBuf,
    /// Kill qemu after this long (default 35 min: generic-6.12 took 25 on
    /// a slow CI machine beside another guest; a hung scenario is killed
    /// after [`RunOptions::scenario_timeout`] and the guest goes on).
    pub timeout: Duration,
    /// Per-scenario timeout inside the guest.
    pub scenario_timeout: Duration,
    /// Keep the initrd and console log under `<lab>/runs/` after the run.
    pub keep: bool,
    /// Copy the console to stderr as it arrives.
    pub echo_console: bool,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// Guest CPUs.
    pub smp: u32,
    /// Appended to the kernel command line.
    pub extra_cmdline: String,
    /// Run qemu with `-icount shift=N`: the guest's clocks advance with
    /// the instructions it executes (2^N ns each), not with host time, so
    /// guest-side timings count instructions and do not depend on the
    /// host's load (the benchmarks use it; it is slower).
    pub icount: Option<u32>,
    /// The guest-side sources (init.sh, lib.sh, probe.c); default
    /// [`guest_src`].
    pub guest_src: PathBuf,
    /// The lab cache; default [`lab_dir`].
    pub lab_dir: PathBuf,
}

impl RunOptions {
    /// Defaults for the kgate binary at `kgate`.
    pub fn new(kgate: impl Into<PathBuf>) -> Self {
        RunOptions {
            kgate: kgate.into(),
            timeout: Duration::from_secs(2100),
            scenario_timeout: Duration::from_secs(600),
            keep: false,
            echo_console: false,
            memory_mb: 2048,
            smp: 2,
            extra_cmdline: String::new(),
            icount: None,
            guest_src: guest_src(),
            lab_dir: lab_dir(),
        }
    }
}

/// What one boot produced.
#[derive(Debug, Clone)]
pub struct LabRun {
    /// `cloud-6.12`, ...
    pub kernel: String,
    /// What the kernel lacks ([`Flavour::missing`]): the SKIPs that pass.
    pub missing: &'static [Missing],
    /// Every declared or reported result: outcome and detail.
    pub results: BTreeMap<String, (Outcome, String)>,
    /// The whole serial console (`\r` removed).
    pub console: String,
    /// Seconds from starting qemu to `/init` running.
    pub boot_seconds: f64,
    /// Seconds from starting qemu to its exit.
    pub total_seconds: f64,
    /// Size of the initrd.
    pub initrd_bytes: u64,
    /// The guest printed `KGATE-LAB-DONE`.
    pub completed: bool,
    /// Where the console log was kept (with [`RunOptions::keep`]).
    pub log: Option<PathBuf>,
}

impl LabRun {
    /// Where the guest's time went: each scenario's seconds (from its
    /// `KGATE-LAB-BEGIN`/`END` uptimes), longest first, and the `n`
    /// slowest kgate runs (`KGATE-TIME` lines, init.sh's `KGATE_TIMES_FD`).
    pub fn time_report(&self, n: usize) -> String {
        let mut scenarios: Vec<(f64, &str)> = Vec::new();
        let mut last_end = 0.0;
        let mut kgate: Vec<(f64, &str)> = Vec::new();
        let uptime = |line: &str| line.rsplit("uptime=").next()?.parse::<f64>().ok();
        for line in self.console.lines() {
            let mut w = line.split_whitespace();
            match w.next() {
                Some("KGATE-LAB-BOOTED") => {
                    if let Some(u) = uptime(line) {
                        last_end = u;
                    }
                }
                Some("KGATE-LAB-END") => {
                    let name = w.next().unwrap_or("?");
                    if let Some(u) = uptime(line) {
                        scenarios.push((u - last_end, name));
                        last_end = u;
                    }
                }
                Some("KGATE-TIME") => {
                    if let Some(t) = w.next().and_then(|t| t.parse().ok()) {
                        let rest = line.splitn(3, ' ').nth(2).unwrap_or("");
                        kgate.push((t, rest));
                    }
                }
                _ => {}
            }
        }
        scenarios.sort_by(|a, b| b.0.total_cmp(&a.0));
        kgate.sort_by(|a, b| b.0.total_cmp(&a.0));
        let total: f64 = kgate.iter().map(|k| k.0).sum();
        let mut out = format!(
            "scenarios: {}\n{} kgate runs, {total:.0}s in all; the slowest:",
            scenarios
                .iter()
                .map(|(t, n)| format!("{n} {t:.0}s"))
                .collect::<Vec<_>>()
                .join(", "),
            kgate.len()
        );
        for (t, what) in kgate.iter().take(n) {
            let what: String = what.chars().take(120).collect();
            out.push_str(&format!("\n  {t:7.2}s  {what}"));
        }
        out
    }

    /// The last `n` lines of the console.
    pub fn console_tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.console.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `Ok(detail)` if `name` passed, `Err(message)` with the detail and the
    /// console tail otherwise. A SKIP is `Ok` with the detail prefixed
    /// `SKIP: ` only when its detail starts with `needs:FEATURE` and the
    /// kernel's manifest ([`LabRun::missing`]) declares FEATURE missing;
    /// any other SKIP is an `Err` saying why it does not count.
    pub fn check(&self, name: &str) -> std::result::Result<String, String> {
        match self.results.get(name) {
            Some((Outcome::Pass, d)) => Ok(d.clone()),
            Some((Outcome::Skip, d)) => match self.declared_skip(d) {
                Ok(m) => Ok(format!(
                    "SKIP: {d} [{} lacks {}: {}]",
                    self.kernel, m.feature, m.why
                )),
                Err(why) => Err(self.failure(name, &why)),
            },
            Some((Outcome::Fail, d)) => Err(self.failure(name, d)),
            None => Err(self.failure(name, "no such result: no scenario declares it")),
        }
    }

    /// The outcome that counts: an undeclared SKIP is a [`Outcome::Fail`].
    pub fn verdict(&self, name: &str) -> Option<Outcome> {
        let (outcome, detail) = self.results.get(name)?;
        Some(match outcome {
            Outcome::Skip if self.declared_skip(detail).is_err() => Outcome::Fail,
            o => *o,
        })
    }

    /// The manifest entry that justifies a SKIP with `detail` on this
    /// kernel, or why none does.
    pub fn declared_skip(&self, detail: &str) -> std::result::Result<&'static Missing, String> {
        let Some(feature) = manifest::needs(detail) else {
            return Err(format!(
                "skipped without naming the feature it needs (a SKIP detail starts with `needs:FEATURE`): {detail:?}"
            ));
        };
        self.missing
            .iter()
            .find(|m| m.feature == feature)
            .ok_or_else(|| {
                format!(
                    "skipped because it needs {feature} ({detail:?}), but the {} manifest (crates/kgate-lab/src/manifest.rs) does not declare {feature} missing: the kernel should have it",
                    self.kernel
                )
            })
    }

    fn failure(&self, name: &str, detail: &str) -> String {
        format!(
            "lab result {name} on {} FAILED: {detail}\n--- last 150 lines of the guest console ---\n{}\n--- end of console ---",
            self.kernel,
            self.console_tail(150)
        )
    }

    /// Number of failures, undeclared SKIPs included ([`LabRun::verdict`]).
    pub fn failures(&self) -> usize {
        self.results
            .keys()
            .filter(|name| self.verdict(name) == Some(Outcome::Fail))
            .count()
    }
}

/// Boot `kernel` once with `scenarios` and collect their results.
///
/// Errors only when the lab cannot run at all (missing tools, unreadable
/// kernel); a guest crash or timeout is reported through failed results.
pub fn run(kernel: &Kernel, scenarios: &[Scenario], opts: &RunOptions) -> Result<LabRun> {
    let cache = opts.lab_dir.join("cache");
    let runs = opts.lab_dir.join("runs");
    std::fs::create_dir_all(&runs).with_context(|| format!("cannot create {}", runs.display()))?;
    let stem = format!("{}-{}", kernel.flavour, std::process::id());
    let initrd = runs.join(format!("{stem}.cpio"));
    let config = vec![
        (
            "KGATE_LAB_KERNEL".to_owned(),
            kernel.flavour.name().to_owned(),
        ),
        ("KGATE_LAB_RELEASE".to_owned(), kernel.release.clone()),
        (
            "KGATE_LAB_SCENARIO_TIMEOUT".to_owned(),
            opts.scenario_timeout.as_secs().max(1).to_string(),
        ),
    ];
    let user = initramfs::Userland {
        guest_src: &opts.guest_src,
        kgate: &opts.kgate,
        scenarios,
        config: &config,
    };
    // One initramfs build at a time in this process: boots may run in
    // parallel threads (tests/lab.rs, KGATE_LAB_JOBS), and the cache's
    // temporary names and stale-entry cleanup are per process.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let initrd_bytes = {
        let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
        initramfs::build(kernel, &user, &cache, &initrd)
            .with_context(|| format!("failed to build the initramfs for {}", kernel.flavour))?
    };

    let qemu = initramfs::find_tool("qemu-system-x86_64")?;
    // syscall.x32=y: Debian builds the x32 ABI into its generic kernels but
    // leaves it off unless booted with this; the lab turns it on so that
    // the x32 entry points are tested where they exist (a kernel without
    // x32 ignores the parameter).
    let mut cmdline = String::from("console=ttyS0 panic=-1 quiet syscall.x32=y");
    if !opts.extra_cmdline.is_empty() {
        cmdline.push(' ');
        cmdline.push_str(&opts.extra_cmdline);
    }
    let start = Instant::now();
    let mut qemu = Command::new(qemu);
    if let Some(shift) = opts.icount {
        qemu.arg("-icount")
            .arg(format!("shift={shift},align=off,sleep=off"));
    }
    let mut child = qemu
        .args(["-accel", "tcg", "-cpu", "max"])
        .arg("-smp")
        .arg(opts.smp.to_string())
        .arg("-m")
        .arg(opts.memory_mb.to_string())
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(&cmdline)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("failed to start qemu-system-x86_64")?;

    // Console reader: collects lines and notes when /init started.
    let console = Arc::new(Mutex::new(String::new()));
    let booted = Arc::new(Mutex::new(None::<f64>));
    let stdout = child.stdout.take().context("qemu stdout")?;
    let reader = {
        let (console, booted, echo) = (console.clone(), booted.clone(), opts.echo_console);
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            while r
                .read_until(b'\n', &mut buf)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                let line = strip_escapes(&String::from_utf8_lossy(&buf));
                if line.contains(BOOTED_MARKER) {
                    let mut b = booted.lock().unwrap_or_else(|e| e.into_inner());
                    b.get_or_insert(start.elapsed().as_secs_f64());
                }
                if echo {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
                console
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&line);
                buf.clear();
            }
        })
    };
    let stderr = child.stderr.take().context("qemu stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });

    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > opts.timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let total_seconds = start.elapsed().as_secs_f64();
    let _ = reader.join();
    let qemu_stderr = err_reader.join().unwrap_or_default();
    let mut console = std::mem::take(&mut *console.lock().unwrap_or_else(|e| e.into_inner()));
    if !qemu_stderr.trim().is_empty() {
        console.push_str("\n--- qemu stderr ---\n");
        console.push_str(&qemu_stderr);
    }
    let boot_seconds = booted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(f64::NAN);

    let (mut results, completed) = parse_console(&console);
    // Declared results that never came.
    let why = if timed_out {
        format!(
            "qemu timed out after {}s and was killed",
            opts.timeout.as_secs()
        )
    } else if !completed {
        format!(
            "the guest stopped before {DONE_MARKER} (crash, panic or early poweroff; qemu exit {})",
            status.map(|s| s.to_string()).unwrap_or_default()
        )
    } else {
        "the scenario finished without reporting it".to_owned()
    };
    for s in scenarios {
        for r in &s.results {
            results.entry(r.clone()).or_insert_with(|| {
                (
                    Outcome::Fail,
                    format!("no result from scenario {}: {why}", s.name),
                )
            });
        }
    }

    let log = if opts.keep {
        let log = runs.join(format!("{stem}.console.log"));
        std::fs::write(&log, &console)?;
        Some(log)
    } else {
        let _ = std::fs::remove_file(&initrd);
        None
    };
    Ok(LabRun {
        kernel: kernel.flavour.name().to_owned(),
        missing: kernel.flavour.missing(),
        results,
        console,
        boot_seconds,
        total_seconds,
        initrd_bytes,
        completed,
        log,
    })
}

/// `line` without `\r` and terminal escape sequences (SeaBIOS clears the
/// screen).
fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // CSI: parameters, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Result lines and whether the DONE marker came. Markers may follow other
/// console output on the same line (kernel messages interleave).
pub fn parse_console(console: &str) -> (BTreeMap<String, (Outcome, String)>, bool) {
    let mut results = BTreeMap::new();
    let mut done = false;
    for line in console.lines() {
        if let Some(pos) = line.find(RESULT_MARKER) {
            let rest = line[pos + RESULT_MARKER.len()..].trim_start();
            let mut parts = rest.splitn(3, ' ');
            let name = parts.next().unwrap_or_default();
            let outcome = match parts.next() {
                Some("PASS") => Outcome::Pass,
                Some("SKIP") => Outcome::Skip,
                _ => Outcome::Fail,
            };
            let detail = parts.next().unwrap_or_default().trim().to_owned();
            if !name.is_empty() {
                // A name reported twice keeps the worst outcome.
                let entry = results
                    .entry(name.to_owned())
                    .or_insert((outcome, detail.clone()));
                if outcome == Outcome::Fail && entry.0 != Outcome::Fail {
                    *entry = (outcome, detail);
                }
            }
        } else if line.trim_end().ends_with(DONE_MARKER) {
            done = true;
        }
    }
    (results, done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results_and_done() {
        let console = "boot\nKGATE-LAB-RESULT a PASS all good\n[ 1.0] noise KGATE-LAB-RESULT b FAIL bad thing\nKGATE-LAB-RESULT c SKIP\nKGATE-LAB-DONE\n";
        let (r, done) = parse_console(console);
        assert!(done);
        assert_eq!(r["a"], (Outcome::Pass, "all good".to_owned()));
        assert_eq!(r["b"].0, Outcome::Fail);
        assert_eq!(r["c"], (Outcome::Skip, String::new()));
    }

    fn run_of(kernel: Flavour, console: &str) -> LabRun {
        LabRun {
            kernel: kernel.name().to_owned(),
            missing: kernel.missing(),
            results: parse_console(console).0,
            console: console.to_owned(),
            boot_seconds: 1.0,
            total_seconds: 2.0,
            initrd_bytes: 0,
            completed: true,
            log: None,
        }
    }

    #[test]
    fn time_report_orders_scenarios_and_kgate_runs() {
        let run = run_of(
            Flavour::Cloud612,
            "KGATE-LAB-BOOTED kernel=x release=y uptime=10.0\nKGATE-LAB-BEGIN 05-a\n\
             KGATE-TIME 0.50 kgate status\nKGATE-LAB-END 05-a rc=0 uptime=12.5\n\
             KGATE-LAB-BEGIN 10-b\nKGATE-TIME 30.25 kgate survey --format json\n\
             KGATE-LAB-END 10-b rc=0 uptime=52.5\n",
        );
        let r = run.time_report(1);
        assert!(r.starts_with("scenarios: 10-b 40s, 05-a 2s\n"), "{r}");
        assert!(r.contains("2 kgate runs, 31s in all"), "{r}");
        assert!(r.ends_with("30.25s  kgate survey --format json"), "{r}");
        assert!(!r.contains("status"), "{r}");
    }

    #[test]
    fn skip_of_a_declared_missing_feature_passes() {
        let run = run_of(
            Flavour::Cloud612,
            "KGATE-LAB-RESULT tee_denied SKIP needs:function_error_injection no fmod_ret here\n",
        );
        let detail = run.check("tee_denied").unwrap();
        assert!(detail.starts_with("SKIP: "), "{detail}");
        assert!(
            detail.contains("needs:function_error_injection"),
            "{detail}"
        );
        assert!(
            detail.contains("CONFIG_FUNCTION_ERROR_INJECTION"),
            "{detail}"
        );
        assert_eq!(run.verdict("tee_denied"), Some(Outcome::Skip));
        assert_eq!(run.failures(), 0);
    }

    #[test]
    fn skip_covered_by_another_kernel_passes_and_says_which() {
        let run = run_of(
            Flavour::Generic612,
            "KGATE-LAB-RESULT splice_revert SKIP needs:run:splice tested on cloud-6.12\n",
        );
        let detail = run.check("splice_revert").unwrap();
        assert!(detail.starts_with("SKIP: "), "{detail}");
        assert!(detail.contains("covered by cloud-6.12"), "{detail}");
    }

    #[test]
    fn skip_of_an_undeclared_feature_fails() {
        // cloud-6.12 ships modules: a SKIP for their absence is a failure.
        let run = run_of(
            Flavour::Cloud612,
            "KGATE-LAB-RESULT bpf_apply SKIP needs:modules no modules\nKGATE-LAB-DONE\n",
        );
        let msg = run.check("bpf_apply").unwrap_err();
        assert!(msg.contains("bpf_apply on cloud-6.12 FAILED"), "{msg}");
        assert!(msg.contains("skipped because it needs modules"), "{msg}");
        assert!(msg.contains("\"needs:modules no modules\""), "{msg}");
        assert!(msg.contains("does not declare modules missing"), "{msg}");
        assert_eq!(run.verdict("bpf_apply"), Some(Outcome::Fail));
        assert_eq!(run.failures(), 1);
        // The same SKIP on the kernel that declares it passes.
        let fei = run_of(Flavour::Fei612, &run.console);
        assert!(fei.check("bpf_apply").unwrap().starts_with("SKIP: "));
    }

    #[test]
    fn skip_without_needs_fails() {
        let run = run_of(
            Flavour::Cloud612,
            "KGATE-LAB-RESULT a SKIP not on this kernel\nKGATE-LAB-RESULT b SKIP\nKGATE-LAB-RESULT c SKIP needs:\n",
        );
        for name in ["a", "b", "c"] {
            let msg = run.check(name).unwrap_err();
            assert!(
                msg.contains("skipped without naming the feature it needs"),
                "{msg}"
            );
        }
        assert!(run.check("a").unwrap_err().contains("not on this kernel"));
        assert_eq!(run.failures(), 3);
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(
            strip_escapes("\x1bc\x1b[?7l\x1b[2JKGATE-LAB-BOOTED x\r\n"),
            "KGATE-LAB-BOOTED x\n"
        );
    }

    /// Every SKIP a scenario (or lib.sh) can print names the feature it
    /// needs; caught here rather than by a boot on the kernel that skips.
    #[test]
    fn every_scenario_skip_names_what_it_needs() {
        let dir = guest_src();
        let mut files = vec![dir.join("lib.sh")];
        files.extend(default_scenarios().unwrap().into_iter().map(|s| s.path));
        let mut bad = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            for (i, line) in text.lines().enumerate() {
                for marker in [" SKIP \"", "skip_scenario \""] {
                    let Some((_, rest)) = line.split_once(marker) else {
                        continue;
                    };
                    // $NO_MODULES starts with needs:modules; "$*" is
                    // skip_scenario passing its argument on.
                    if !["needs:", "$NO_MODULES", "$*\""]
                        .iter()
                        .any(|ok| rest.starts_with(ok))
                    {
                        bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            bad.is_empty(),
            "SKIP details must start with needs:FEATURE:\n{}",
            bad.join("\n")
        );
        let lib = std::fs::read_to_string(dir.join("lib.sh")).unwrap();
        assert!(
            lib.contains("NO_MODULES=\"needs:modules "),
            "lib.sh NO_MODULES"
        );
    }

    #[test]
    fn repo_scenarios_load() {
        let s = default_scenarios().unwrap();
        assert!(s
            .iter()
            .any(|s| s.results.contains(&"stock_userns".to_owned())));
    }
}
