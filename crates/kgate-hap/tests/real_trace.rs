//! The HAP pipeline on trace text and kallsyms captured from real Debian
//! kernels in the kgate lab: `probe socket 2 1 132` (which autoloads sctp
//! and creates an SCTP socket) traced with the `function` tracer in a
//! tracefs instance, `set_ftrace_pid`, `function-fork` and `sym-addr`
//! (CPU 1 offline, see lab/scenarios/70-hap.sh). The traces are cut to the
//! 3,000 lines around the SCTP socket creation; the kallsyms files hold the
//! symbol containing every address the traces print plus three neighbours
//! on each side.

use std::collections::BTreeMap;
use std::io::Read;

use kgate_hap::hap::{CveCounts, CveLookup, Method};
use kgate_hap::{Collector, Hap, How, Kallsyms, Mapper, RunInfo};

fn gunzip(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    text
}

struct FakeCves;
impl CveLookup for FakeCves {
    fn under_path(&self, path: &str) -> Option<CveCounts> {
        (path == "net/sctp").then_some(CveCounts {
            all: 7,
            high_or_critical: 2,
            last_12_months: 1,
        })
    }
}

fn profile(kernel: &str) -> (Hap, Collector) {
    let mut trace = Collector::new();
    trace.text(&gunzip(&format!("{kernel}-sctp.trace.gz")));
    let syms = Kallsyms::parse(&gunzip(&format!("{kernel}-sctp.kallsyms.gz")));
    let dirs = BTreeMap::from([("sctp".to_owned(), "net/sctp".to_owned())]);
    let run = RunInfo {
        kernel: kernel.to_owned(),
        command: vec!["probe".into(), "socket".into()],
        method: Method {
            tracer: "function".into(),
            ..Method::default()
        },
        ..RunInfo::default()
    };
    let p = Hap::build(run, &trace, &Mapper::new(&syms, &dirs), Some(&FakeCves));
    (p, trace)
}

#[track_caller]
fn function<'a>(p: &'a Hap, name: &str) -> &'a kgate_hap::hap::FunctionEntry {
    p.functions
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the profile"))
}

fn check(kernel: &str) {
    let (p, trace) = profile(kernel);
    let t = trace.totals();
    assert_eq!(t.unparsed_lines, 0, "{:?}", trace.unparsed_examples());
    assert!(t.events > 2000, "{t:?}");
    assert!(
        t.irq_events > 100,
        "the capture holds timer interrupts: {t:?}"
    );
    // Interrupt handlers ran on the workload's stack but are not its HAP.
    assert!(p.functions.iter().all(|f| f.name != "hrtimer_interrupt"));
    assert!(p.functions.iter().all(|f| f.name != "irq_enter_rcu"));
    assert!(p.irq_only_functions > 10, "{}", p.irq_only_functions);
    // The SCTP socket creation: module functions resolved to their module.
    let f = function(&p, "sctp_init_sock");
    assert_eq!(f.module.as_deref(), Some("sctp"));
    assert_eq!(
        (f.subsystem.as_deref(), f.how),
        (Some("net/sctp"), How::Module)
    );
    assert!(p
        .modules
        .iter()
        .any(|m| m.module == "sctp" && m.functions > 10));
    let sctp = p
        .subsystems
        .iter()
        .find(|s| s.subsystem == "net/sctp")
        .unwrap();
    assert_eq!(sctp.cves.map(|c| c.all), Some(7));
    // Builtin functions by prefix and by neighbours.
    assert_eq!(
        function(&p, "inet_create").subsystem.as_deref(),
        Some("net/ipv4")
    );
    assert!(p.mapping.neighbour > 0, "{:?}", p.mapping);
    // Every traced function is in the captured kallsyms; most are mapped.
    let mapped = p.mapping.module + p.mapping.prefix + p.mapping.neighbour;
    eprintln!("{kernel}: HAP {} functions, mapping {:?}", p.hap, p.mapping);
    assert!(
        mapped * 100 >= p.hap * 80,
        "under 80% mapped: {:?}",
        p.mapping
    );
    assert_eq!(p.hap, p.functions.len());
    // The profile survives a JSON round trip and compares equal to itself.
    let json = serde_json::to_string(&p).unwrap();
    let back = Hap::from_json(&json).unwrap();
    assert_eq!(back, p);
    let same = p.compare(&back);
    assert!(same.added.is_empty() && same.removed.is_empty());
    assert_eq!(same.common, p.hap);
}

#[test]
fn cloud_6_12_sctp_trace() {
    check("cloud-6.12");
}

#[test]
fn cloud_6_1_sctp_trace() {
    check("cloud-6.1");
}

#[test]
fn baseline_comparison_between_kernels() {
    let (a, _) = profile("cloud-6.1");
    let (b, _) = profile("cloud-6.12");
    let c = b.compare(&a);
    assert_eq!(c.baseline_hap, a.hap);
    assert_eq!(c.common + c.added.len(), b.hap);
    assert_eq!(c.common + c.removed.len(), a.hap);
    assert!(c.added.iter().any(|f| f.starts_with("sctp:")) || c.common > 0);
    assert!(!c.subsystems.is_empty());
}

#[test]
fn wrong_schema_is_rejected() {
    let err = Hap::from_json(r#"{"schema":"kgate.survey/1"}"#).unwrap_err();
    assert!(err.to_string().contains("expected kgate.hap/1"), "{err}");
    assert!(Hap::from_json("not json").is_err());
}
