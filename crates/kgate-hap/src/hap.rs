//! The HAP profile of one run (JSON schema `kgate.hap/1`) and its
//! comparison with a baseline run.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::subsys::{How, Mapper};
use crate::trace::{Collector, Totals};

/// JSON schema identifier of a HAP profile.
pub const SCHEMA: &str = "kgate.hap/1";

/// CVE counts under a source path or in a module (from the CVE database).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CveCounts {
    /// Every CVE.
    pub all: u64,
    /// CVEs the kernel CNA rated HIGH or CRITICAL.
    pub high_or_critical: u64,
    /// CVEs published in the last 12 months.
    pub last_12_months: u64,
}

/// Where CVE counts come from (implemented over the CVE database).
pub trait CveLookup {
    /// CVEs whose fixes touched files under `path` (a source directory or
    /// file, e.g. `net/ipv4` or `net/socket.c`).
    fn under_path(&self, path: &str) -> Option<CveCounts>;
}

/// How the trace was taken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Method {
    /// `function` (the ftrace tracer), or `offline` for a saved trace.
    pub tracer: String,
    /// The pid filter followed forks (`options/function-fork`).
    pub follow_fork: bool,
    /// How interrupt noise was removed: `context_flags` (events whose
    /// latency flags say hardirq, softirq or NMI are not counted) or
    /// `none` (the trace carried no flags).
    pub irq_filter: String,
    /// Per-CPU ring buffer size in KiB (0 when not known).
    pub buffer_kb_per_cpu: u64,
}

/// Event counters of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    /// Function events of the workload's tasks.
    pub total: u64,
    /// ... in process context (counted in the HAP).
    pub process_context: u64,
    /// ... in hardirq, softirq or NMI context (not counted).
    pub irq_context: u64,
    /// ... without context flags (counted).
    pub unknown_context: u64,
    /// Events the ring buffer lost: the HAP is then a lower bound.
    pub lost: u64,
    /// Trace lines that could not be parsed.
    pub unparsed_lines: u64,
}

/// Functions per mapping rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingCounts {
    /// Mapped through their module.
    pub module: usize,
    /// Mapped by the prefix table.
    pub prefix: usize,
    /// Mapped by their neighbours in vmlinux.
    pub neighbour: usize,
    /// Not mapped.
    pub unknown: usize,
}

/// One subsystem's share of the HAP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsystemCount {
    /// Source path, or `unknown`.
    pub subsystem: String,
    /// Distinct functions of the HAP in it.
    pub functions: usize,
    /// CVEs under the path (null without a CVE database).
    pub cves: Option<CveCounts>,
}

/// One module's share of the HAP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleCount {
    /// Module name.
    pub module: String,
    /// Distinct functions of the HAP in it.
    pub functions: usize,
}

/// One function of the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionEntry {
    /// Name as ftrace printed it.
    pub name: String,
    /// Module, or null for the kernel image.
    pub module: Option<String>,
    /// Source path, or null when unmapped.
    pub subsystem: Option<String>,
    /// Which rule mapped it.
    pub how: How,
    /// Calls in process context.
    pub calls: u64,
    /// Calls in irq context (not counted in the HAP).
    pub irq_calls: u64,
}

impl FunctionEntry {
    /// The identity used to compare runs: `module:name` or `name`.
    pub fn key(&self) -> String {
        match &self.module {
            Some(m) => format!("{m}:{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A workload's horizontal attack profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hap {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// `uname -r` of the traced kernel.
    pub kernel: String,
    /// The workload command line.
    pub command: Vec<String>,
    /// The workload's exit status (`null` when killed by a signal or not
    /// run by kgate).
    pub exit_status: Option<i32>,
    /// The signal that ended the workload, if any.
    pub exit_signal: Option<i32>,
    /// Seconds the workload ran under the tracer.
    pub duration_seconds: f64,
    /// How the trace was taken.
    pub method: Method,
    /// The HAP: distinct kernel functions run in process context.
    pub hap: usize,
    /// Distinct functions seen only in irq context (excluded).
    pub irq_only_functions: usize,
    /// Event counters.
    pub events: EventCounts,
    /// Tasks traced (pid → comm).
    pub tasks: BTreeMap<u32, String>,
    /// Functions per mapping rule.
    pub mapping: MappingCounts,
    /// Functions per subsystem, most first.
    pub subsystems: Vec<SubsystemCount>,
    /// Functions per module, most first.
    pub modules: Vec<ModuleCount>,
    /// Every function of the HAP, by name.
    pub functions: Vec<FunctionEntry>,
}

/// Inputs of [`Hap::build`] that do not come from the trace.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// `uname -r`.
    pub kernel: String,
    /// The workload command.
    pub command: Vec<String>,
    /// Exit status.
    pub exit_status: Option<i32>,
    /// Terminating signal.
    pub exit_signal: Option<i32>,
    /// Seconds.
    pub duration_seconds: f64,
    /// How the trace was taken.
    pub method: Method,
}

impl Hap {
    /// Build the profile from a collected trace.
    pub fn build(
        run: RunInfo,
        trace: &Collector,
        mapper: &Mapper<'_>,
        cves: Option<&dyn CveLookup>,
    ) -> Hap {
        let mut functions = Vec::new();
        let mut irq_only = 0;
        let mut mapping = MappingCounts::default();
        for (key, hits) in trace.functions() {
            if hits.process == 0 {
                irq_only += 1;
                continue;
            }
            let m = mapper.map(&key.name, key.address);
            match m.how {
                How::Module => mapping.module += 1,
                How::Prefix => mapping.prefix += 1,
                How::Neighbour => mapping.neighbour += 1,
                How::Unknown => mapping.unknown += 1,
            }
            functions.push(FunctionEntry {
                name: key.name.clone(),
                module: m.module,
                subsystem: m.subsystem,
                how: m.how,
                calls: hits.process,
                irq_calls: hits.irq,
            });
        }
        functions.sort_by(|a, b| a.name.cmp(&b.name).then(a.module.cmp(&b.module)));
        let subsystems = count_subsystems(&functions, cves);
        let mut modules: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &functions {
            if let Some(m) = &f.module {
                *modules.entry(m).or_default() += 1;
            }
        }
        let mut modules: Vec<ModuleCount> = modules
            .into_iter()
            .map(|(module, functions)| ModuleCount {
                module: module.to_owned(),
                functions,
            })
            .collect();
        modules.sort_by(|a, b| b.functions.cmp(&a.functions).then(a.module.cmp(&b.module)));
        let t: &Totals = trace.totals();
        Hap {
            schema: SCHEMA.to_owned(),
            kernel: run.kernel,
            command: run.command,
            exit_status: run.exit_status,
            exit_signal: run.exit_signal,
            duration_seconds: run.duration_seconds,
            method: run.method,
            hap: functions.len(),
            irq_only_functions: irq_only,
            events: EventCounts {
                total: t.events,
                process_context: t.process_events,
                irq_context: t.irq_events,
                unknown_context: t.unknown_context_events,
                lost: t.lost_events,
                unparsed_lines: t.unparsed_lines,
            },
            tasks: trace.tasks().clone(),
            mapping,
            subsystems,
            modules,
            functions,
        }
    }

    /// Parse a saved profile, checking its schema.
    pub fn from_json(text: &str) -> Result<Hap, HapError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| HapError::Json(e.to_string()))?;
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => return Err(HapError::Schema(other.to_owned())),
            None => return Err(HapError::Schema("(none)".to_owned())),
        }
        serde_json::from_value(value).map_err(|e| HapError::Json(e.to_string()))
    }

    /// Compare this run with a baseline run.
    pub fn compare(&self, baseline: &Hap) -> Comparison {
        let now: BTreeSet<String> = self.functions.iter().map(FunctionEntry::key).collect();
        let before: BTreeSet<String> = baseline.functions.iter().map(FunctionEntry::key).collect();
        let mut subsystems: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for s in &baseline.subsystems {
            subsystems.entry(s.subsystem.clone()).or_default().0 = s.functions;
        }
        for s in &self.subsystems {
            subsystems.entry(s.subsystem.clone()).or_default().1 = s.functions;
        }
        let mut subsystems: Vec<SubsystemDelta> = subsystems
            .into_iter()
            .filter(|(_, (b, a))| b != a)
            .map(|(subsystem, (before, after))| SubsystemDelta {
                subsystem,
                before,
                after,
            })
            .collect();
        subsystems.sort_by_key(|d| {
            (
                std::cmp::Reverse(d.after.abs_diff(d.before)),
                d.subsystem.clone(),
            )
        });
        Comparison {
            baseline_command: baseline.command.clone(),
            baseline_kernel: baseline.kernel.clone(),
            baseline_hap: baseline.hap,
            hap: self.hap,
            common: now.intersection(&before).count(),
            added: now.difference(&before).cloned().collect(),
            removed: before.difference(&now).cloned().collect(),
            subsystems,
        }
    }
}

fn count_subsystems(
    functions: &[FunctionEntry],
    cves: Option<&dyn CveLookup>,
) -> Vec<SubsystemCount> {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for f in functions {
        let s = f.subsystem.clone().unwrap_or_else(|| "unknown".to_owned());
        *by.entry(s).or_default() += 1;
    }
    let mut out: Vec<SubsystemCount> = by
        .into_iter()
        .map(|(subsystem, functions)| SubsystemCount {
            cves: (subsystem != "unknown")
                .then(|| cves.and_then(|c| c.under_path(&subsystem)))
                .flatten(),
            subsystem,
            functions,
        })
        .collect();
    out.sort_by(|a, b| {
        b.functions
            .cmp(&a.functions)
            .then(a.subsystem.cmp(&b.subsystem))
    });
    out
}

/// This run against a baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline's command.
    pub baseline_command: Vec<String>,
    /// The baseline's kernel.
    pub baseline_kernel: String,
    /// The baseline's HAP.
    pub baseline_hap: usize,
    /// This run's HAP.
    pub hap: usize,
    /// Functions in both.
    pub common: usize,
    /// Functions only this run ran (`module:name` or `name`).
    pub added: Vec<String>,
    /// Functions only the baseline ran.
    pub removed: Vec<String>,
    /// Subsystems whose function count changed, largest change first.
    pub subsystems: Vec<SubsystemDelta>,
}

/// A subsystem's function count in the baseline and now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsystemDelta {
    /// Source path.
    pub subsystem: String,
    /// Functions in the baseline.
    pub before: usize,
    /// Functions now.
    pub after: usize,
}

/// A saved profile that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HapError {
    /// Not JSON, or not the expected shape.
    #[error("not a kgate HAP profile: {0}")]
    Json(String),
    /// Another schema.
    #[error("schema is {0}, expected {SCHEMA} (save one with `kgate hap -o FILE -- CMD`)")]
    Schema(String),
}
