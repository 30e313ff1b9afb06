//! `kgate explain MODULE`: a module's known CVEs, its triggers and whether
//! an unprivileged user can get it loaded.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use serde::Serialize;

use kgate_kernel::reach::{self, Reach};
use kgate_kernel::trigger::Trigger;
use kgate_score::attr::{Evidence, FileOwner};
use kgate_score::db::{CveRecord, Severity};

use crate::cvedata::{analyse, DataArgs, DatabaseRef};
use crate::output::{escape_text, human_bytes, Format, TextOut};
use crate::target::{Target, TargetArgs};

/// JSON schema identifier of `kgate explain --format json`.
pub const SCHEMA: &str = "kgate.explain/1";

/// A module's risk: its known CVEs, its triggers, and who can get it loaded.
///
/// Needs no policy: this is about the module on this kernel, with the CVE
/// database. To ask whether a policy allows or blocks a module (and by
/// which rule), use `kgate policy explain POLICY MODULE`.
///
/// The CVEs come from the local database (see `kgate cve`); for each, the
/// source files that tie it to the module and the rule that placed them.
///
/// "only" CVEs have every code file of their fix in this module (blocking
/// the module removes the vulnerable code); "any" CVEs also touch code
/// elsewhere. The attribution rules and their limits are in docs/cve.md.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    kgate explain sctp
        sctp's CVEs on this host's kernel, and who can load it.
    kgate explain nf_tables --root pkg --format json
        The same for an unpacked kernel package, for machines (kgate.explain/1).

EXIT STATUS:
    0 success; 1 error (no such module, no CVE database, unreadable kernel); 2 usage error.")]
pub struct Args {
    /// Module name (`-` and `_` are the same).
    pub module: String,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// One CVE of the module.
#[derive(Debug, Serialize)]
pub struct ExplainedCve<'a> {
    /// The record.
    #[serde(flatten)]
    pub record: &'a CveRecord,
    /// "only" or "any".
    pub attribution: &'static str,
    /// The record's files in this module, with the rule that placed each.
    pub files_here: Vec<(String, Evidence)>,
    /// The record's other files and where they are ("header", "not_code",
    /// "ambiguous", "unattributed", or a module name).
    pub files_elsewhere: Vec<(String, String)>,
}

/// `kgate explain --format json`.
#[derive(Debug, Serialize)]
pub struct ExplainJson<'a> {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The kernel release.
    pub release: &'a str,
    /// The module.
    pub module: &'a str,
    /// Builtin (always present).
    pub builtin: bool,
    /// Path below the modules directory (null when builtin).
    pub path: Option<&'a str>,
    /// Source directory used for attribution.
    pub source_dir: Option<&'a str>,
    /// Code bytes.
    pub text_bytes: u64,
    /// Functions.
    pub functions: u32,
    /// Its triggers.
    pub triggers: &'a [Trigger],
    /// Reachability by unprivileged users.
    pub reach: &'a Reach,
    /// Source files its binary names (object evidence).
    pub object_files: Vec<&'a str>,
    /// CVEs with every code file here.
    pub cves_only: usize,
    /// CVEs with some code file here.
    pub cves_any: usize,
    /// Of `cves_any`: HIGH or CRITICAL by the CNA.
    pub cves_high_critical: usize,
    /// The CVEs, newest first.
    pub cves: Vec<ExplainedCve<'a>>,
    /// CVEs touching the module's source directory that no rule placed in
    /// it (ambiguous between modules, or core code next to it).
    pub unplaced_in_directory: Vec<&'a str>,
    /// The database.
    pub database: DatabaseRef<'a>,
}

/// Run `kgate explain`.
pub fn run(args: &Args) -> Result<ExitCode> {
    let db = args.data.load()?;
    let t = Target::load(&args.target)?;
    let name = kgate_kernel::canonical_name(&args.module);
    let Some(ti) = t.tree.position(&name) else {
        let hint =
            kgate_policy::diag::closest(&name, t.tree.modules.iter().map(|m| m.name.as_str()))
                .map(|n| format!("; did you mean {n}?"))
                .unwrap_or_default();
        bail!("kernel {} has no module {name}{hint}", t.release);
    };
    let a = analyse(&t, &db, &args.target);
    let reach_all = reach::compute(&t.tree, &t.ctx);
    let m = &t.tree.modules[ti];
    let mi = a.map.position(&name).unwrap_or(ti);
    let mc = &a.attribution.modules[mi];
    let mut cves: Vec<ExplainedCve> = mc
        .any
        .iter()
        .map(|&ci| {
            let ca = &a.attribution.cves[ci];
            let mut here = Vec::new();
            let mut elsewhere = Vec::new();
            for f in &ca.files {
                match &f.owner {
                    FileOwner::Modules { modules, evidence } if modules.contains(&mi) => {
                        here.push((f.file.clone(), *evidence))
                    }
                    FileOwner::Modules { modules, .. } => elsewhere.push((
                        f.file.clone(),
                        modules
                            .iter()
                            .map(|&i| a.map.modules[i].name.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    )),
                    other => elsewhere.push((f.file.clone(), other.kind().into())),
                }
            }
            ExplainedCve {
                record: &db.cves[ci],
                attribution: if ca.only == Some(mi) { "only" } else { "any" },
                files_here: here,
                files_elsewhere: elsewhere,
            }
        })
        .collect();
    cves.sort_by(|x, y| {
        y.record.published.cmp(&x.record.published).then_with(|| {
            kgate_score::db::id_key(&y.record.id).cmp(&kgate_score::db::id_key(&x.record.id))
        })
    });
    let source_dir = a.map.modules.get(mi).and_then(|s| s.dir.as_deref());
    let unplaced: Vec<&str> = match source_dir {
        Some(d) if !d.is_empty() => db
            .cves
            .iter()
            .enumerate()
            .filter(|(ci, c)| {
                !mc.any.contains(ci)
                    && c.files.iter().any(|f| {
                        f.rsplit_once('/').map(|(fd, _)| fd) == Some(d)
                            && matches!(
                                a.map.owner(f),
                                FileOwner::Ambiguous { .. } | FileOwner::Unattributed
                            )
                    })
            })
            .map(|(_, c)| c.id.as_str())
            .collect(),
        _ => Vec::new(),
    };
    let high = cves
        .iter()
        .filter(|c| c.record.severity.is_some_and(Severity::is_high_or_critical))
        .count();
    let json = ExplainJson {
        schema: SCHEMA,
        release: &t.release,
        module: &m.name,
        builtin: m.builtin,
        path: m.path.as_deref(),
        source_dir,
        text_bytes: m.text_bytes,
        functions: m.functions,
        triggers: &m.triggers,
        reach: &reach_all[ti],
        object_files: a
            .objects
            .files(&m.name)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default(),
        cves_only: mc.only.len(),
        cves_any: mc.any.len(),
        cves_high_critical: high,
        cves,
        unplaced_in_directory: unplaced,
        database: DatabaseRef::new(&db.meta),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
        }
        Format::Text => print_text(&mut TextOut::new(&mut out), &json)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print_text(out: &mut dyn Write, e: &ExplainJson<'_>) -> Result<()> {
    writeln!(
        out,
        "{} (kernel {}): {}, {} of code, {} functions, source {}/",
        e.module,
        e.release,
        if e.builtin {
            "builtin (always present)".to_owned()
        } else {
            format!("loadable module {}", e.path.unwrap_or("?"))
        },
        human_bytes(e.text_bytes),
        e.functions,
        e.source_dir.unwrap_or("?")
    )?;
    match (&e.reach.via, e.builtin) {
        (_, true) => writeln!(out, "  in the kernel image: every user reaches it")?,
        (Some(via), false) => writeln!(
            out,
            "  an unprivileged user CAN get it loaded{}: {}",
            if e.reach.needs_userns {
                " (through a user namespace)"
            } else {
                ""
            },
            match via {
                reach::Via::Trigger { kind, alias } =>
                    format!("{kind} trigger {}", escape_text(alias)),
                reach::Via::Dependency { of, kind, alias } => format!(
                    "dependency of {of}, via {kind} trigger {}",
                    escape_text(alias)
                ),
            }
        )?,
        (None, false) => writeln!(
            out,
            "  an unprivileged user cannot get it loaded (on this kernel's settings)"
        )?,
    }
    for tr in e.triggers {
        writeln!(
            out,
            "  trigger {:<16} {:<40} reachable by {}",
            tr.kind,
            escape_text(&tr.alias),
            tr.access.as_str()
        )?;
    }
    writeln!(
        out,
        "\n  {} CVEs touch it ({} only in it, {} HIGH+ by the CNA):",
        e.cves_any, e.cves_only, e.cves_high_critical
    )?;
    for c in &e.cves {
        writeln!(
            out,
            "  {:<16} {:<10} {:<8} {:<4} {}",
            c.record.id,
            c.record.published.as_deref().unwrap_or("?"),
            c.record
                .severity
                .map(|s| format!("{s:?}").to_uppercase())
                .unwrap_or_else(|| "-".into()),
            c.attribution,
            c.record.title
        )?;
        for (f, ev) in &c.files_here {
            writeln!(out, "      {f} ({})", ev.as_str())?;
        }
        for (f, wh) in &c.files_elsewhere {
            writeln!(out, "      {f} -> {wh}")?;
        }
    }
    if !e.unplaced_in_directory.is_empty() {
        writeln!(
            out,
            "\n  {} more CVEs touch {}/ but could not be placed in a module there (shared or core code): {}",
            e.unplaced_in_directory.len(),
            e.source_dir.unwrap_or("?"),
            shorten(&e.unplaced_in_directory, 12)
        )?;
    }
    writeln!(out, "\n{}", e.database.notice)?;
    Ok(())
}

/// The first `n` ids, and how many more (the JSON has them all).
fn shorten(ids: &[&str], n: usize) -> String {
    let mut s = ids.iter().take(n).copied().collect::<Vec<_>>().join(" ");
    if ids.len() > n {
        s.push_str(&format!(
            " … and {} more (--format json lists them)",
            ids.len() - n
        ));
    }
    s
}
