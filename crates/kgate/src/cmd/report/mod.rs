//! `kgate report --html FILE`: one self-contained HTML page with the
//! survey, the surface before and after a policy, reachable code by
//! subsystem as an inline SVG chart, the CVE-bearing reachable modules and
//! HAP profiles. No scripts, fonts, images or styles are fetched: the page
//! renders offline and can be mailed or archived as one file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use kgate_hap::Hap;
use kgate_kernel::bounded::{self, Limit};
use kgate_kernel::reach::{self, Reach};
use kgate_kernel::sysctl::SysctlStatus;
use kgate_policy::{DiffReport, Policy};
use kgate_score::score::{CveCounts, Score, Window};

use crate::cvedata::{analyse, optional_db, provenance, DataArgs};
use crate::output::human_bytes;
use crate::target::{Target, TargetArgs};

/// Bottomley's published HAP anchors (unique kernel functions).
const ANCHORS: &[(&str, usize, usize)] = &[
    ("Docker: redis, node, tornado (Bottomley 2018)", 385, 535),
    ("Nabla containers (Bottomley 2018)", 155, 155),
];

/// Write an HTML report of the attack surface an unprivileged user can
/// reach: survey, before/after a policy, code by subsystem, CVE-bearing
/// modules, and the HAP of workloads.
///
/// CVE figures (before/after, top CVE-bearing modules) appear when a CVE
/// database has been imported (`kgate cve import` or `kgate cve update`).
///
/// The page is self-contained: inline CSS and SVG, no scripts, no fonts,
/// no images, no links that load anything; it renders offline in any
/// browser. Works on the running kernel or, with --root, on an unpacked
/// kernel package.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    kgate report --html report.html
        This host's reachable surface.
    kgate report --html report.html --policy /etc/kgate/policy.toml --hap web.json --hap web-policy.json
        Before and after a policy, with two HAP profiles (kgate hap -o FILE).
    kgate report --root pkg --html pkg.html
        An unpacked kernel package.

EXIT STATUS:
    0 the report was written; 1 error (unreadable kernel tree, invalid
    policy, a --hap file that is not a kgate.hap/1 profile; nothing written);
    2 usage error.")]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Write the HTML report to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,

    /// Show the surface before and after this policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// A HAP profile saved with `kgate hap -o FILE` (repeat for several).
    #[arg(long, value_name = "FILE")]
    pub hap: Vec<PathBuf>,

    #[command(flatten)]
    pub data: DataArgs,

    /// Rows in the module tables and bars in the subsystem chart.
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub top: usize,
}

/// Run `kgate report`.
pub fn run(args: &Args) -> Result<ExitCode> {
    // Every input is checked before the kernel is read.
    let policy = match &args.policy {
        Some(p) => Some(Policy::load(p).map_err(|e| anyhow::anyhow!("{e}"))?.policy),
        None => None,
    };
    let haps = args
        .hap
        .iter()
        .map(|p| {
            let text = bounded::read_text(Path::new("/"), p, Limit::POLICY)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let profile = Hap::from_json(&text).with_context(|| format!("{}", p.display()))?;
            Ok((p.clone(), profile))
        })
        .collect::<Result<Vec<_>>>()?;
    if args.top == 0 {
        bail!("--top must be at least 1");
    }

    let db = optional_db(&args.data)?;
    let t = Target::load(&args.target)?;
    let mut data = Data::collect(&t, policy.as_ref(), args.policy.as_deref());
    if let Some(db) = &db {
        let analysis = analyse(&t, db, &args.target);
        let before = reach::compute(&t.tree, &t.ctx);
        let after = policy.as_ref().map(|p| {
            let eff = p.effective_modules(&t.tree);
            let ctx = p.apply_settings(&t.ctx);
            reach::compute_filtered(&t.tree, &ctx, |m| eff.contains_key(&m.name))
        });
        data.score = Some(Score::compute(
            &t.tree,
            &analysis.attribution,
            db,
            Window::new(db, None),
            &before,
            after.as_deref(),
        ));
        data.cve_notice = Some(provenance(&db.meta));
    }
    let html = render(&t, &data, &haps, args.top);
    crate::output::write_file(&args.html, html.as_bytes())?;
    eprintln!(
        "wrote {} ({}): {} reachable modules{}{}",
        args.html.display(),
        human_bytes(html.len() as u64),
        data.before.modules,
        match &data.diff {
            Some(d) => format!(", {} after the policy", d.after_with_settings.modules),
            None => String::new(),
        },
        if haps.is_empty() {
            String::new()
        } else {
            format!(", {} HAP profile(s)", haps.len())
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Reachable modules, code and functions.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    modules: usize,
    userns_only: usize,
    text_bytes: u64,
    functions: u64,
}

/// One bar of the subsystem chart.
#[derive(Debug, Default, Clone)]
struct SubsystemBar {
    before: u64,
    after: u64,
    modules_before: usize,
}

/// One row of the module table.
#[derive(Debug, Clone)]
struct ModuleRow {
    name: String,
    text_bytes: u64,
    functions: u32,
    via: String,
    needs_userns: bool,
    blocked: bool,
}

/// What the page shows, computed once.
struct Data {
    loadable: usize,
    loadable_text: u64,
    before: Totals,
    diff: Option<DiffReport>,
    policy_name: Option<String>,
    subsystems: Vec<(String, SubsystemBar)>,
    modules: Vec<ModuleRow>,
    /// CVE figures, with a database.
    score: Option<Score>,
    /// Where the CVE data came from and its terms of use.
    cve_notice: Option<String>,
}

impl Data {
    fn collect(t: &Target, policy: Option<&Policy>, policy_path: Option<&Path>) -> Data {
        let before_reach = reach::compute(&t.tree, &t.ctx);
        let after_reach: Option<Vec<Reach>> = policy.map(|p| {
            let eff = p.effective_modules(&t.tree);
            let ctx = p.apply_settings(&t.ctx);
            reach::compute_filtered(&t.tree, &ctx, |m| eff.contains_key(&m.name))
        });
        let diff = policy.map(|p| p.diff(&t.tree, &t.ctx, &t.loaded));
        let mut before = Totals::default();
        let mut loadable = 0;
        let mut loadable_text = 0;
        let mut bars: BTreeMap<String, SubsystemBar> = BTreeMap::new();
        let mut modules = Vec::new();
        for (i, (m, r)) in t.tree.modules.iter().zip(&before_reach).enumerate() {
            if m.builtin {
                continue;
            }
            loadable += 1;
            loadable_text += m.text_bytes;
            let after = after_reach.as_ref().is_some_and(|a| a[i].unprivileged);
            if !r.unprivileged {
                continue;
            }
            before.modules += 1;
            before.userns_only += usize::from(r.needs_userns);
            before.text_bytes += m.text_bytes;
            before.functions += u64::from(m.functions);
            let bar = bars
                .entry(subsystem_of(m.path.as_deref().unwrap_or("")))
                .or_default();
            bar.before += m.text_bytes;
            bar.modules_before += 1;
            let blocked = after_reach.is_some() && !after;
            if !blocked {
                bar.after += m.text_bytes;
            }
            modules.push(ModuleRow {
                name: m.name.clone(),
                text_bytes: m.text_bytes,
                functions: m.functions,
                via: match &r.via {
                    Some(reach::Via::Trigger { kind, alias }) => format!("{kind} {alias}"),
                    Some(reach::Via::Dependency { of, alias, .. }) => {
                        format!("dependency of {of} ({alias})")
                    }
                    None => String::new(),
                },
                needs_userns: r.needs_userns,
                blocked,
            });
        }
        modules.sort_by(|a, b| b.text_bytes.cmp(&a.text_bytes).then(a.name.cmp(&b.name)));
        let mut subsystems: Vec<(String, SubsystemBar)> = bars.into_iter().collect();
        subsystems.sort_by(|a, b| b.1.before.cmp(&a.1.before).then(a.0.cmp(&b.0)));
        Data {
            loadable,
            loadable_text,
            before,
            diff,
            policy_name: policy_path.map(|p| p.display().to_string()),
            subsystems,
            modules,
            score: None,
            cve_notice: None,
        }
    }
}

/// The subsystem of a module, from its path below `lib/modules/VER`: two
/// levels for the big trees (`net/sctp`, `drivers/net`, `fs/xfs`), one for
/// the rest (`crypto`, `lib`).
fn subsystem_of(path: &str) -> String {
    let path = path.strip_prefix("kernel/").unwrap_or(path);
    let dirs: Vec<&str> = path.split('/').collect();
    let dirs = &dirs[..dirs.len().saturating_sub(1)];
    match dirs {
        [] => "(top level)".into(),
        [first, second, ..] if matches!(*first, "drivers" | "net" | "fs" | "sound" | "arch") => {
            format!("{first}/{second}")
        }
        [first, ..] => (*first).to_owned(),
    }
}

mod html;
use html::render;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsystems_of_module_paths() {
        assert_eq!(subsystem_of("kernel/net/sctp/sctp.ko.xz"), "net/sctp");
        assert_eq!(subsystem_of("kernel/drivers/net/tun.ko.xz"), "drivers/net");
        assert_eq!(
            subsystem_of("kernel/drivers/net/wireless/x/y.ko"),
            "drivers/net"
        );
        assert_eq!(subsystem_of("kernel/crypto/algif_aead.ko.xz"), "crypto");
        assert_eq!(subsystem_of("kernel/fs/xfs/xfs.ko.xz"), "fs/xfs");
        assert_eq!(subsystem_of("x.ko"), "(top level)");
    }
}
