//! `kgate hap`: the horizontal attack profile of a workload, the distinct
//! kernel functions it makes the kernel run (James Bottomley's HAP method:
//! the ftrace function tracer with a pid filter that follows forks, minus
//! interrupt noise), mapped to subsystems and compared with a baseline.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use kgate_kernel::bounded::{self, Limit};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use kgate_hap::hap::{Comparison, CveCounts, CveLookup, Method};
use kgate_hap::subsys::module_dir;
use kgate_hap::{Collector, Hap, Kallsyms, Mapper, RunInfo};
use kgate_score::db::CveDb;
use kgate_score::score::Window;

use crate::cvedata::{optional_db, DataArgs};
use crate::ftrace::{self, Ended, HeldChild, Instance, Tracefs};
use crate::output::{Format, TextOut};

/// JSON schema of `kgate hap --format json` (the HAP profile plus the baseline
/// comparison).
pub const REPORT_SCHEMA: &str = "kgate.hap-report/1";

/// Measure the horizontal attack profile (HAP) of a workload: how many
/// distinct kernel functions it makes the kernel run.
///
/// Runs CMD under the ftrace `function` tracer, in a tracefs instance of its
/// own, with a pid filter on CMD that follows every fork (set_ftrace_pid and
/// options/function-fork), from its execve until it exits. Functions that
/// ran in interrupt, softirq or NMI context on the workload's stack are
/// interrupt noise and are not counted (their context is in each event's
/// latency flags; the entry and exit edges of interrupts are recognised by
/// their callers). Each function is mapped to its module (/proc/kallsyms)
/// and to a kernel subsystem (the module's source directory, or a symbol
/// prefix table, or its neighbours in the kernel image; docs/hap.md says
/// how and where that errs) and, when a CVE database has been imported
/// (`kgate cve import`), to the CVEs whose fixes touched that subsystem.
///
/// Needs root and a kernel that allows the function tracer. The global
/// tracer, filters and options are never touched; the instance is removed
/// when kgate ends, also on error and on Ctrl-C (which ends the workload
/// and still prints the HAP profile). A HAP profile saved with -o is a baseline for
/// a later run (--baseline) on the same or another kernel.
///
/// With --from-trace, analyses a saved function trace (the text of
/// tracefs's `trace` file, ideally with options sym-addr and irq-info) instead
/// of running anything; no root needed.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    sudo kgate hap -- curl -s http://localhost/
        The HAP of one request, by subsystem.
    sudo kgate hap -o web.json -- sh -c 'httpd -p 8080 -h /srv & sleep 1; wget -qO- localhost:8080; kill $!'
        Save the HAP profile of a small web workload as JSON (kgate.hap/1).
    sudo kgate apply policy.toml && sudo kgate hap --baseline web.json -- sh -c '...'
        The same workload under a kgate policy, compared with the saved run.
    kgate hap --from-trace trace.txt --kallsyms kallsyms.txt
        Analyse a function trace captured elsewhere.

EXIT STATUS:
    0 the HAP profile is complete; 1 error (ftrace unusable or refused, with the
    reason; bad input; nothing was traced); 2 usage error; 3 the ring buffer
    lost events, so the HAP is a lower bound (raise --buffer-kb); 4 the
    workload failed (non-zero exit status, or killed by a signal other than
    the Ctrl-C/SIGTERM that ended it), the HAP profile is still printed.

The JSON schemas (kgate.hap/1 for -o, kgate.hap-report/1 for --format json) are
documented in docs/json.md.")]
pub struct Args {
    /// Compare with a HAP profile saved earlier with -o (kgate.hap/1).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Save the HAP profile as JSON (kgate.hap/1) to FILE, atomically.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format on standard output.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Ring buffer size per CPU, in KiB. kgate reads the buffer while the
    /// workload runs; a busy workload on a slow machine can still fill it,
    /// which is reported (exit status 3).
    #[arg(long, default_value_t = 4096, value_name = "KIB")]
    pub buffer_kb: u64,

    /// Rows in the subsystem and module tables (text output).
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub top: usize,

    /// Also write the raw trace lines to FILE (atomically, when the trace
    /// ends; never through a symlink).
    #[arg(long, value_name = "FILE")]
    pub save_trace: Option<PathBuf>,

    /// Analyse this saved function trace instead of running a workload.
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    pub from_trace: Option<PathBuf>,

    /// With --from-trace: the /proc/kallsyms text of the traced boot
    /// (module functions and neighbours need it).
    #[arg(long, value_name = "FILE", requires = "from_trace")]
    pub kallsyms: Option<PathBuf>,

    /// modules.dep that gives each module's source directory [default:
    /// /lib/modules/$(uname -r)/modules.dep when tracing].
    #[arg(long, value_name = "FILE")]
    pub modules_dep: Option<PathBuf>,

    #[command(flatten)]
    pub data: DataArgs,

    /// The workload: a command and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `kgate hap --format json`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    schema: &'static str,
    profile: &'a Hap,
    baseline: Option<BaselineReport<'a>>,
}

#[derive(Debug, Serialize)]
struct BaselineReport<'a> {
    file: &'a Path,
    #[serde(flatten)]
    comparison: &'a Comparison,
}

/// Run `kgate hap`.
pub fn run(args: &Args) -> Result<ExitCode> {
    if args.command.is_empty() && args.from_trace.is_none() {
        bail!("name the workload after `--` (kgate hap -- CMD ARGS...), or analyse a saved trace with --from-trace FILE");
    }
    if args.buffer_kb == 0 {
        bail!("--buffer-kb must be at least 1");
    }
    // Bad input is rejected before anything is traced.
    let baseline = match &args.baseline {
        Some(path) => Some(load_hap(path)?),
        None => None,
    };
    if let Some(program) = args.command.first() {
        ftrace::resolve_program(program)?;
    }
    let modules_dep = args.modules_dep.clone();
    // CVE counts are an extra: an unreadable database does not stop a trace.
    let db = optional_db(&args.data).unwrap_or_else(|e| {
        eprintln!("kgate: warning: {e:#}; the HAP profile has no CVE counts");
        None
    });
    let lookup = db.as_ref().map(DbCves::new);
    let cves: Option<&dyn CveLookup> = lookup.as_ref().map(|l| l as &dyn CveLookup);
    let profile = match &args.from_trace {
        Some(path) => offline(args, path, modules_dep.as_deref(), cves)?,
        None => traced(args, modules_dep.as_deref(), cves)?,
    };
    let comparison = baseline.as_ref().map(|b| profile.compare(b));
    if let Some(path) = &args.output {
        let json = serde_json::to_vec_pretty(&profile).context("failed to encode the profile")?;
        crate::output::write_file(path, &json)?;
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            let report = Report {
                schema: REPORT_SCHEMA,
                profile: &profile,
                baseline: comparison.as_ref().map(|c| BaselineReport {
                    file: args.baseline.as_deref().unwrap_or(Path::new("")),
                    comparison: c,
                }),
            };
            serde_json::to_writer_pretty(&mut out, &report).context("failed to write JSON")?;
            writeln!(out)?;
        }
        Format::Text => print_text(
            &mut TextOut::new(&mut out),
            &profile,
            comparison.as_ref(),
            args,
        )?,
    }
    out.flush()?;

    if profile.events.lost > 0 {
        eprintln!(
            "kgate: warning: the ring buffer lost {} events, so the HAP is a lower bound; raise --buffer-kb (now {} KiB per CPU)",
            profile.events.lost, args.buffer_kb
        );
        return Ok(ExitCode::from(3));
    }
    let interrupted = matches!(profile.exit_signal, Some(s) if s == libc::SIGINT || s == libc::SIGTERM || s == libc::SIGHUP);
    if profile.exit_status.is_some_and(|s| s != 0)
        || (profile.exit_signal.is_some() && !interrupted)
    {
        return Ok(ExitCode::from(4));
    }
    Ok(ExitCode::SUCCESS)
}

/// CVE counts of a subsystem path from the database: CVEs whose fix
/// touched a file directly in that directory (or that file), so `fs`
/// counts the VFS core (`fs/*.c`) and not every filesystem, which have
/// their own subsystems.
pub struct DbCves<'a> {
    db: &'a CveDb,
    window: Window,
}

impl<'a> DbCves<'a> {
    /// Counts from `db`, "last 12 months" up to its newest record.
    pub fn new(db: &'a CveDb) -> DbCves<'a> {
        DbCves {
            window: Window::new(db, None),
            db,
        }
    }
}

impl CveLookup for DbCves<'_> {
    fn under_path(&self, path: &str) -> Option<CveCounts> {
        let path = path.trim_end_matches('/');
        let mut c = CveCounts::default();
        for r in &self.db.cves {
            let hit = r
                .files
                .iter()
                .any(|f| f == path || f.rsplit_once('/').is_some_and(|(dir, _)| dir == path));
            if !hit {
                continue;
            }
            c.all += 1;
            if r.severity.is_some_and(|s| s.is_high_or_critical()) {
                c.high_or_critical += 1;
            }
            if self.window.contains(r.published.as_deref()) {
                c.last_12_months += 1;
            }
        }
        Some(c)
    }
}

fn load_hap(path: &Path) -> Result<Hap> {
    let text = bounded::read_text(Path::new("/"), path, Limit::POLICY)
        .with_context(|| format!("cannot read the baseline {}", path.display()))?;
    Hap::from_json(&text).with_context(|| format!("{}", path.display()))
}

/// Module name → source directory, from modules.dep.
fn module_dirs(modules_dep: Option<&Path>, release: &str) -> BTreeMap<String, String> {
    let path = modules_dep
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("/lib/modules/{release}/modules.dep")));
    let Ok(text) = bounded::read_text(Path::new("/"), &path, Limit::DEPMOD) else {
        return BTreeMap::new();
    };
    kgate_kernel::depmod::parse_modules_dep(&text)
        .paths
        .into_iter()
        .filter_map(|(name, p)| Some((name, module_dir(&p)?)))
        .collect()
}

fn offline(
    args: &Args,
    path: &Path,
    modules_dep: Option<&Path>,
    cves: Option<&dyn CveLookup>,
) -> Result<Hap> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the trace {}", path.display()))?;
    let mut trace = Collector::new();
    trace.text(&text);
    if trace.totals().events == 0 {
        bail!(
            "{}: no function trace events in it{}",
            path.display(),
            match trace.unparsed_examples().first() {
                Some(l) => format!(" (first unreadable line: {l:?})"),
                None => String::new(),
            }
        );
    }
    let syms = match &args.kallsyms {
        Some(p) => Kallsyms::parse(
            &bounded::read_text(Path::new("/"), p, Limit::KALLSYMS)
                .with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => Kallsyms::default(),
    };
    let dirs = match modules_dep {
        Some(p) => module_dirs(Some(p), ""),
        None => BTreeMap::new(),
    };
    let flags = trace.totals().unknown_context_events < trace.totals().events;
    let run = RunInfo {
        kernel: String::new(),
        command: Vec::new(),
        exit_status: None,
        exit_signal: None,
        duration_seconds: 0.0,
        method: Method {
            tracer: "offline".into(),
            follow_fork: false,
            irq_filter: if flags { "context_flags" } else { "none" }.into(),
            buffer_kb_per_cpu: 0,
        },
    };
    Ok(Hap::build(run, &trace, &Mapper::new(&syms, &dirs), cves))
}

fn traced(args: &Args, modules_dep: Option<&Path>, cves: Option<&dyn CveLookup>) -> Result<Hap> {
    let release = kgate_kernel::inventory::running_release(Path::new("/")).unwrap_or_default();
    // Replaced atomically once the trace is complete; never through a
    // symlink planted at FILE (issue 19, item 3).
    let mut save = match &args.save_trace {
        Some(p) => Some(std::io::BufWriter::new(crate::output::create_file(p)?)),
        None => None,
    };

    let tracefs = Tracefs::open()?;
    tracefs.check_function_tracer()?;
    for stale in ftrace::remove_stale_instances(&tracefs) {
        eprintln!("kgate: removed the tracefs instance {stale} left by a kgate that was killed");
    }
    ftrace::catch_signals();
    let instance = Instance::create(&tracefs)?;
    setup(&instance, args.buffer_kb)?;
    // The tracer starts with the buffer off (tracing_on = 0), so nothing is
    // recorded before the pid filter is in place.
    instance.start_function_tracer()?;
    let mut child = HeldChild::spawn(&args.command)?;
    instance.write_checked("set_ftrace_pid", &child.pid().to_string())?;
    let mut pipe = instance.open_pipe()?;
    instance
        .write("tracing_on", "1")
        .context("cannot switch tracing on")?;

    let mut trace = Collector::new();
    let mut buf = Vec::new();
    let mut feed = |line: &str| {
        trace.line(line);
        if let Some(w) = save.as_mut() {
            let _ = writeln!(w, "{line}");
        }
    };
    let started = Instant::now();
    child.release(&args.command[0])?;
    let ended = loop {
        if let Some(signal) = ftrace::take_interrupt() {
            child.signal(signal);
        }
        let read = ftrace::drain(&mut pipe, &mut buf, &mut feed)?;
        if let Some(ended) = child.try_wait()? {
            break ended;
        }
        if read == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let duration = started.elapsed();
    instance
        .write("tracing_on", "0")
        .context("cannot switch tracing off")?;
    // What is left in the buffer, until two empty reads in a row.
    let mut empty = 0;
    while empty < 2 {
        if ftrace::drain(&mut pipe, &mut buf, &mut feed)? == 0 {
            empty += 1;
            std::thread::sleep(Duration::from_millis(10));
        } else {
            empty = 0;
        }
    }
    if !buf.is_empty() {
        feed(&String::from_utf8_lossy(&buf));
    }
    let stats_lost = instance.lost_events();
    if stats_lost > trace.totals().lost_events {
        let more = stats_lost - trace.totals().lost_events;
        trace.add_lost(more);
    }
    if let Some(w) = save {
        w.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.commit().map_err(std::io::Error::other))
            .context("cannot write the saved trace")?;
    }
    // Module symbols must be read while the modules are still loaded.
    let kallsyms =
        kgate_kernel::inventory::kallsyms(Path::new("/")).context("cannot read /proc/kallsyms")?;
    drop(pipe);
    drop(instance);
    drop(tracefs);

    let syms = Kallsyms::parse(&kallsyms);
    if syms.addresses_hidden() {
        eprintln!("kgate: warning: /proc/kallsyms shows no addresses (kernel.kptr_restrict); functions are matched by name and not by neighbours");
    }
    let dirs = module_dirs(modules_dep, &release);
    let (exit_status, exit_signal) = match ended {
        Ended::Exited(code) => (Some(code), None),
        Ended::Signalled(signal) => (None, Some(signal)),
    };
    let run = RunInfo {
        kernel: release,
        command: args.command.clone(),
        exit_status,
        exit_signal,
        duration_seconds: duration.as_secs_f64(),
        method: Method {
            tracer: "function".into(),
            follow_fork: true,
            irq_filter: "context_flags".into(),
            buffer_kb_per_cpu: args.buffer_kb,
        },
    };
    Ok(Hap::build(run, &trace, &Mapper::new(&syms, &dirs), cves))
}

/// Buffer size and the options the HAP method needs.
fn setup(instance: &Instance, buffer_kb: u64) -> Result<()> {
    instance
        .write("tracing_on", "0")
        .context("cannot write tracing_on")?;
    instance
        .write("buffer_size_kb", &buffer_kb.to_string())
        .with_context(|| format!("cannot set the ring buffer to {buffer_kb} KiB per CPU"))?;
    instance.option("function-fork", true, "to follow the workload's children")?;
    instance.option("irq-info", true, "to tell interrupt noise apart")?;
    instance.option("sym-addr", true, "to tell same-named functions apart")?;
    // Not needed, and they would change the line format.
    for (option, on) in [
        ("sym-offset", false),
        ("record-tgid", false),
        ("print-parent", true),
    ] {
        let _ = instance.write(&format!("options/{option}"), if on { "1" } else { "0" });
    }
    Ok(())
}

fn print_text(
    out: &mut impl Write,
    p: &Hap,
    comparison: Option<&Comparison>,
    args: &Args,
) -> Result<()> {
    let what = if p.command.is_empty() {
        args.from_trace
            .as_deref()
            .map(|t| format!("the trace {}", t.display()))
            .unwrap_or_default()
    } else {
        format!("`{}`", p.command.join(" "))
    };
    let on = if p.kernel.is_empty() {
        String::new()
    } else {
        format!(" on {}", p.kernel)
    };
    writeln!(out, "HAP of {what}{on}: {} kernel functions", p.hap)?;
    writeln!(
        out,
        "  {} events ({} in process context, {} interrupt noise), {} lost; {} functions ran only in interrupt context and are not counted",
        p.events.total, p.events.process_context, p.events.irq_context, p.events.lost, p.irq_only_functions
    )?;
    if p.method.tracer == "function" {
        let status = match (p.exit_status, p.exit_signal) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "no exit status".into(),
        };
        writeln!(
            out,
            "  {} task(s) traced; workload {status} after {:.2} s",
            p.tasks.len(),
            p.duration_seconds
        )?;
    }
    let m = &p.mapping;
    writeln!(
        out,
        "  subsystems: {} functions mapped by module, {} by name prefix, {} by neighbours, {} unknown",
        m.module, m.prefix, m.neighbour, m.unknown
    )?;
    writeln!(out)?;
    let with_cves = p.subsystems.iter().any(|s| s.cves.is_some());
    if with_cves {
        writeln!(
            out,
            "  {:<28} {:>9} {:>6} {:>9}",
            "SUBSYSTEM", "FUNCTIONS", "CVES", "HIGH+CRIT"
        )?;
    } else {
        writeln!(out, "  {:<28} {:>9}", "SUBSYSTEM", "FUNCTIONS")?;
    }
    for s in p.subsystems.iter().take(args.top) {
        match (&s.cves, with_cves) {
            (Some(c), _) => writeln!(
                out,
                "  {:<28} {:>9} {:>6} {:>9}",
                s.subsystem, s.functions, c.all, c.high_or_critical
            )?,
            (None, true) => writeln!(
                out,
                "  {:<28} {:>9} {:>6} {:>9}",
                s.subsystem, s.functions, "-", "-"
            )?,
            (None, false) => writeln!(out, "  {:<28} {:>9}", s.subsystem, s.functions)?,
        }
    }
    if p.subsystems.len() > args.top {
        writeln!(
            out,
            "  ... {} more (--top N)",
            p.subsystems.len() - args.top
        )?;
    }
    if !p.modules.is_empty() {
        writeln!(out)?;
        writeln!(out, "  {:<28} {:>9}", "MODULE", "FUNCTIONS")?;
        for m in p.modules.iter().take(args.top) {
            writeln!(out, "  {:<28} {:>9}", m.module, m.functions)?;
        }
    }
    if let Some(c) = comparison {
        writeln!(out)?;
        let base = args.baseline.as_deref().map(Path::display);
        writeln!(
            out,
            "Compared with the baseline {} (HAP {}{}):",
            base.map(|b| b.to_string()).unwrap_or_default(),
            c.baseline_hap,
            if c.baseline_command.is_empty() {
                String::new()
            } else {
                format!(", `{}`", c.baseline_command.join(" "))
            }
        )?;
        let delta = c.hap as i64 - c.baseline_hap as i64;
        writeln!(
            out,
            "  HAP {} -> {} ({delta:+}): {} functions in both, {} only now, {} only in the baseline",
            c.baseline_hap,
            c.hap,
            c.common,
            c.added.len(),
            c.removed.len()
        )?;
        if !c.subsystems.is_empty() {
            writeln!(out, "  {:<28} {:>7} {:>7}", "SUBSYSTEM", "BEFORE", "NOW")?;
            for d in c.subsystems.iter().take(args.top) {
                writeln!(out, "  {:<28} {:>7} {:>7}", d.subsystem, d.before, d.after)?;
            }
        }
        for (label, list) in [("only now", &c.added), ("only in the baseline", &c.removed)] {
            if !list.is_empty() {
                let shown: Vec<&str> = list.iter().take(12).map(String::as_str).collect();
                writeln!(
                    out,
                    "  {label}: {}{}",
                    shown.join(" "),
                    if list.len() > shown.len() { " ..." } else { "" }
                )?;
            }
        }
    }
    Ok(())
}
