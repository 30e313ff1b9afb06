//! `kgate score`: what unprivileged users can get loaded, in modules, code
//! bytes, functions and CVEs, by trigger kind, before and after a policy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use kgate_kernel::reach::{self, Reach};
use kgate_score::attr::AttributionSummary;
use kgate_score::db::CveDb;
use kgate_score::score::{CveCounts, ModuleScore, NotRemovable, Score, Side, Surface, Window};
use kgate_score::Analysis;

use crate::cvedata::{analyse, provenance, DataArgs, DatabaseRef};
use crate::inputs::load_policy;
use crate::output::{human_bytes, Format, TextOut};
use crate::target::{Target, TargetArgs};

/// JSON schema identifier of `kgate score --format json`.
pub const SCHEMA: &str = "kgate.score/1";

/// Score what unprivileged users can reach, with its CVEs, before and after a policy.
///
/// Modules, code bytes, functions and known CVEs an unprivileged user can
/// get loaded, by trigger kind; with --policy, before and after it.
///
/// CVEs come from the local database (`kgate cve import` or `kgate cve
/// update`) and are attributed to modules by the source files their fixes
/// touch (docs/cve.md: the rules and their limits). Two counts are kept:
/// "only" (every code file of the fix is in one reachable module: blocking
/// it removes the vulnerable code) and "any" (some file is). "HIGH+" is the
/// kernel CNA's own CVSS rating, HIGH or CRITICAL; the CNA rates CVEs only
/// since 2026-04, so unrated does not mean low. "12 months" counts CVEs
/// published in the 365 days up to --as-of, by default up to the
/// database's newest record (the output says which).
///
/// "after" applies the policy's effective module allowlist (listed modules,
/// their dependencies, builtin modules); "after + settings" also applies
/// its sysctls and `[userns]` section. Module binaries are read once more to find
/// the source files they name; the result is cached like survey facts.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    kgate score
        This host, without a policy.
    kgate freeze -o policy.toml && kgate score --policy policy.toml
        What a freeze of this host removes.
    kgate score --root pkg --policy policy.toml --format json
        An unpacked kernel package, for machines (schema kgate.score/1, docs/json.md).

EXIT STATUS:
    0 success; 1 error (no CVE database, invalid policy, unreadable kernel); 2 usage error.")]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Score before and after this policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// End of the "last 12 months" window (YYYY-MM-DD) [default: the
    /// database's newest record].
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub as_of: Option<String>,
    /// Rows of the top CVE-bearing modules table (text output; JSON lists
    /// every reachable module with a CVE).
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub top: usize,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn parse_date(s: &str) -> Result<String, String> {
    kgate_score::db::days_from_date(s)
        .filter(|_| s.len() == 10)
        .map(|_| s.to_owned())
        .ok_or_else(|| format!("{s:?} is not a date YYYY-MM-DD"))
}

/// `kgate score --format json`.
#[derive(Debug, Serialize)]
pub struct ScoreJson<'a> {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The kernel scored.
    pub kernel: KernelRef<'a>,
    /// The CVE database used (its terms-of-use text stays in `kgate cve info`).
    pub database: DatabaseRef<'a>,
    /// The policy file, if any.
    pub policy: Option<&'a Path>,
    /// How the database's CVEs were placed on this kernel.
    pub attribution: AttributionSummary,
    /// The "last 12 months" window.
    pub window: &'a Window,
    /// Without the policy.
    pub before: &'a Side,
    /// With the policy's allowlist.
    pub after: Option<&'a Side>,
    /// With the allowlist and the policy's sysctls and `[userns]`.
    pub after_with_settings: Option<&'a Side>,
    /// `before.total - after.total`.
    pub removed: Option<&'a Surface>,
    /// `before.total - after_with_settings.total`.
    pub removed_with_settings: Option<Surface>,
    /// CVEs no module policy can remove.
    pub not_removable: &'a NotRemovable,
    /// Reachable modules with CVEs, most first.
    pub modules: &'a [ModuleScore],
}

/// The kernel in a report.
#[derive(Debug, Serialize)]
pub struct KernelRef<'a> {
    /// Release.
    pub release: &'a str,
    /// `--root`, if any.
    pub root: Option<&'a Path>,
    /// `live` or `offline`.
    pub source: &'static str,
    /// The reachability context.
    pub reach_context: &'a reach::ReachContext,
}

/// A computed score: everything `kgate score` prints, for reuse by other
/// reports (`kgate report`).
pub struct ScoreRun {
    /// The kernel.
    pub target: Target,
    /// The CVE database.
    pub db: CveDb,
    /// Object evidence, source map and attribution on this kernel.
    pub analysis: Analysis,
    /// Before, after the allowlist, removed, top modules.
    pub score: Score,
    /// After the allowlist and the policy's settings.
    pub with_settings: Option<Side>,
    /// The policy file, if any.
    pub policy: Option<PathBuf>,
}

impl ScoreRun {
    /// Load the database, the kernel and the policy (all checked before
    /// any long work), attribute, and score before and after the policy.
    pub fn compute(
        target: &TargetArgs,
        data: &DataArgs,
        policy: Option<&Path>,
        as_of: Option<&str>,
    ) -> Result<ScoreRun> {
        let loaded = policy.map(load_policy).transpose()?.map(|l| l.policy);
        let db = data.load()?;
        let t = Target::load(target)?;
        let analysis = analyse(&t, &db, target);
        let before = reach::compute(&t.tree, &t.ctx);
        let (after, after_settings): (Option<Vec<Reach>>, Option<Vec<Reach>>) = match &loaded {
            Some(p) => {
                let eff = p.effective_modules(&t.tree);
                let allowed = |m: &kgate_kernel::tree::Module| eff.contains_key(&m.name);
                let ctx2 = p.apply_settings(&t.ctx);
                (
                    Some(reach::compute_filtered(&t.tree, &t.ctx, allowed)),
                    Some(reach::compute_filtered(&t.tree, &ctx2, allowed)),
                )
            }
            None => (None, None),
        };
        let window = Window::new(&db, as_of);
        let score = Score::compute(
            &t.tree,
            &analysis.attribution,
            &db,
            window.clone(),
            &before,
            after.as_deref(),
        );
        let with_settings = after_settings
            .as_deref()
            .map(|r| kgate_score::score::side(&t.tree, r, &analysis.attribution, &db, &window));
        Ok(ScoreRun {
            target: t,
            db,
            analysis,
            score,
            with_settings,
            policy: policy.map(Path::to_owned),
        })
    }

    /// The `kgate.score/1` report.
    pub fn json(&self) -> ScoreJson<'_> {
        let (t, score) = (&self.target, &self.score);
        ScoreJson {
            schema: SCHEMA,
            kernel: KernelRef {
                release: &t.release,
                root: t.root.as_deref(),
                source: if t.live { "live" } else { "offline" },
                reach_context: &t.ctx,
            },
            database: DatabaseRef::new(&self.db.meta),
            policy: self.policy.as_deref(),
            attribution: self.analysis.attribution.summary,
            window: &score.window,
            before: &score.before,
            after: score.after.as_ref(),
            after_with_settings: self.with_settings.as_ref(),
            removed: score.removed.as_ref(),
            removed_with_settings: self
                .with_settings
                .as_ref()
                .map(|s| score.before.total.minus(s.total)),
            not_removable: &score.not_removable,
            modules: &score.modules,
        }
    }
}

/// Run `kgate score`.
pub fn run(args: &Args) -> Result<ExitCode> {
    let r = ScoreRun::compute(
        &args.target,
        &args.data,
        args.policy.as_deref(),
        args.as_of.as_deref(),
    )?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &r.json())?;
            writeln!(out)?;
        }
        Format::Text => print_text(
            &mut TextOut::new(&mut out),
            args,
            &r.target,
            &r.db,
            &r.analysis,
            &r.score,
            r.with_settings.as_ref(),
        )?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn cves(c: &CveCounts) -> String {
    format!("{}/{}/{}", c.all, c.high_critical, c.last_12_months)
}

fn print_text(
    out: &mut dyn Write,
    args: &Args,
    t: &Target,
    db: &CveDb,
    a: &Analysis,
    s: &Score,
    with_settings: Option<&Side>,
) -> Result<()> {
    writeln!(
        out,
        "kernel {} ({}){}",
        t.release,
        if t.live { "live" } else { "offline" },
        args.policy
            .as_deref()
            .map(|p| format!(", policy {}", p.display()))
            .unwrap_or_default()
    )?;
    let sum = &a.attribution.summary;
    writeln!(
        out,
        "CVEs placed in modules: {} of {} only in one module, {} touching a module; {} outside every module; {} without a code file",
        sum.only_one_module, sum.cves, sum.any_module, sum.no_module, sum.no_code_file
    )?;
    let w = &s.window;
    writeln!(
        out,
        "CVEs: all/HIGH+/12 months; HIGH+ = rated HIGH or CRITICAL by the kernel CNA; 12 months = published after {} up to {} ({})",
        w.start,
        w.end,
        w.basis.describe()
    )?;
    writeln!(out)?;
    let row = |out: &mut dyn Write, label: &str, b: &Surface, x: Option<&Surface>| -> Result<()> {
        match x {
            None => writeln!(
                out,
                "  {label:<17} {:>5} {:>9} {:>7}  {:>15}",
                b.modules,
                human_bytes(b.text_bytes),
                b.functions,
                cves(&b.cves_only),
            )?,
            Some(x) => writeln!(
                out,
                "  {label:<17} {:>4} → {:<4} {:>8} → {:<8} {:>6} → {:<6} {:>14} → {}",
                b.modules,
                x.modules,
                human_bytes(b.text_bytes),
                human_bytes(x.text_bytes),
                b.functions,
                x.functions,
                cves(&b.cves_only),
                cves(&x.cves_only),
            )?,
        }
        Ok(())
    };
    let after = s.after.as_ref();
    if after.is_some() {
        writeln!(
            out,
            "  {:<17} {:>11} {:>19} {:>15} {:>31}",
            "reachable via", "modules", "code", "functions", "CVEs (before → after)"
        )?;
    } else {
        writeln!(
            out,
            "  {:<17} {:>5} {:>9} {:>7}  {:>15}",
            "reachable via", "mods", "code", "funcs", "CVEs"
        )?;
    }
    for (kind, b) in &s.before.by_trigger_kind {
        let x = after.map(|a| a.by_trigger_kind.get(kind).copied().unwrap_or_default());
        row(out, kind.as_str(), b, x.as_ref())?;
    }
    row(out, "TOTAL", &s.before.total, after.map(|a| &a.total))?;
    row(
        out,
        "(needs userns)",
        &s.before.needs_userns,
        after.map(|a| &a.needs_userns),
    )?;
    if let Some(ws) = with_settings {
        row(out, "TOTAL + settings", &s.before.total, Some(&ws.total))?;
    }
    writeln!(
        out,
        "  CVEs above count \"only\" attribution (every code file of the fix in a reachable module); \"any\" (some file): {}{}",
        cves(&s.before.total.cves_any),
        after
            .map(|a| format!(" → {}", cves(&a.total.cves_any)))
            .unwrap_or_default()
    )?;
    if let Some(r) = &s.removed {
        let pct = |x: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                x as f64 * 100.0 / of as f64
            }
        };
        writeln!(
            out,
            "\nThe allowlist makes unreachable: {} modules, {} of code ({:.0}%), {} functions, {} CVEs only in them ({} HIGH+, {} in 12 months), {} CVEs touching them.",
            r.modules,
            human_bytes(r.text_bytes),
            pct(r.text_bytes, s.before.total.text_bytes),
            r.functions,
            r.cves_only.all,
            r.cves_only.high_critical,
            r.cves_only.last_12_months,
            r.cves_any.all
        )?;
    }
    writeln!(
        out,
        "Not removable by a module policy: {} CVEs only in builtin modules, {} CVEs outside every module.",
        s.not_removable.builtin_only.all, s.not_removable.no_module.all
    )?;
    if args.top > 0 && !s.modules.is_empty() {
        writeln!(
            out,
            "\nReachable modules with the most CVEs (any; all/HIGH+/12 months):"
        )?;
        for m in s.modules.iter().take(args.top) {
            writeln!(
                out,
                "  {:<24} {:>15} {:>9}  via {:<16}{}",
                m.name,
                cves(&m.cves_any),
                human_bytes(m.text_bytes),
                m.kind.map(|k| k.as_str()).unwrap_or("?"),
                if s.after.is_some() && !m.reachable_after {
                    "  blocked by the policy"
                } else {
                    ""
                }
            )?;
        }
    }
    writeln!(out, "\n{}", provenance(&db.meta))?;
    Ok(())
}
