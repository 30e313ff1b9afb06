//! `kgate cve import|update|info|list`: the local CVE database.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde::Serialize;

use kgate_score::db::{self, CveDb, DbMeta};
use kgate_score::git;
use kgate_score::import::{self, ImportOptions, ImportProgress};

use crate::cvedata::{provenance, DataArgs};
use crate::output::{self, Format, TextOut};

/// The kernel CNA's CVE repository.
pub const VULNS_URL: &str = "https://git.kernel.org/pub/scm/linux/security/vulns.git";

/// Directory name of the clone `kgate cve update` keeps below the data
/// directory.
pub const CLONE_DIR: &str = "vulns.git";

/// Manage the local database of Linux kernel CVEs that `kgate score` and
/// `kgate explain` use.
///
/// The database holds the kernel CNA's published CVEs reduced to id,
/// publication date, the CNA's CVSS severity and score (the CNA scores only
/// since 2026-04: blank does not mean low), the source files each fix
/// touches, title and fix commit; with its source, the import date, the
/// record count and the CVE terms of use. It lives in
/// $XDG_DATA_HOME/kgate/cve-db.json (default ~/.local/share/kgate) and is
/// replaced atomically: a failed import leaves the old one untouched.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    kgate cve update
        Clone (first time) or fetch the kernel CNA's vulns repository and import it.
    git clone https://git.kernel.org/pub/scm/linux/security/vulns.git
    kgate cve import vulns
        Import a checkout made elsewhere (an offline host: copy it over).
    kgate cve import cvelistV5
        Import the kernel CNA's records of a cvelistV5 checkout.
    kgate cve import kernel-cve-files.csv.gz
        Import a CSV (layout in docs/cve.md).
    kgate cve list --path net/sctp
        CVEs whose fix touches net/sctp/.

EXIT STATUS:
    0 success; 1 error (nothing was changed); 2 usage error.")]
pub struct Args {
    #[command(subcommand)]
    pub command: CveCommand,
}

/// `kgate cve` subcommands.
#[derive(Debug, Subcommand)]
pub enum CveCommand {
    /// Import CVE records from PATH: a vulns repository checkout
    /// (cve/published/YEAR/CVE-*.json), a bare clone of it (read with git),
    /// a cvelistV5 checkout (cves/; only the kernel CNA's records), or a CSV
    /// file (.csv or .csv.gz). Replaces the database.
    Import(ImportArgs),
    /// Clone or fetch the kernel CNA's vulns repository
    /// (<https://git.kernel.org/pub/scm/linux/security/vulns.git>) into the
    /// data directory, then import it. Needs network access; says so when
    /// it cannot reach the repository, and changes nothing then.
    Update(UpdateArgs),
    /// Show the database: source, import date, record count, date range and
    /// the CVE terms of use.
    Info(InfoArgs),
    /// List CVEs, optionally only those whose fix touches a source path.
    List(ListArgs),
}

/// `kgate cve import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A vulns checkout or bare clone, a cvelistV5 checkout, or a CSV file.
    pub path: PathBuf,
    /// The CVE terms-of-use file to keep with the data [default: a
    /// CVE-TERMS-OF-USE.txt next to the CSV or at the top of the
    /// repository; else a notice pointing at <https://www.cve.org/Legal/TermsOfUse>].
    #[arg(long, value_name = "FILE")]
    pub terms: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `kgate cve update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Repository to clone or fetch.
    #[arg(long, value_name = "URL", default_value = VULNS_URL)]
    pub url: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `kgate cve info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `kgate cve list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only CVEs touching this source file or directory (net/sctp).
    #[arg(long, value_name = "PREFIX")]
    pub path: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Run `kgate cve …`.
pub fn run(args: &Args) -> Result<ExitCode> {
    match &args.command {
        CveCommand::Import(a) => import_cmd(a),
        CveCommand::Update(a) => update(a),
        CveCommand::Info(a) => info(a),
        CveCommand::List(a) => list(a),
    }
}

#[derive(Serialize)]
struct InfoJson<'a> {
    path: PathBuf,
    #[serde(flatten)]
    meta: &'a DbMeta,
}

fn import_with_progress(path: &Path, terms: Option<PathBuf>) -> Result<CveDb> {
    let bar = std::sync::OnceLock::<Option<indicatif::ProgressBar>>::new();
    let progress = |p: ImportProgress| {
        if let Some(b) = bar.get_or_init(|| output::progress_bar(p.total as u64, "importing CVEs"))
        {
            b.set_position(p.done as u64);
        }
    };
    let db = import::import(
        path,
        &ImportOptions {
            terms,
            progress: Some(&progress),
        },
    )
    .with_context(|| {
        format!(
            "failed to import {}; the database was not changed",
            path.display()
        )
    });
    if let Some(Some(b)) = bar.get() {
        b.finish_and_clear();
    }
    db
}

fn save_and_report(db: &CveDb, data: &DataArgs, format: Format, verb: &str) -> Result<ExitCode> {
    let dir = data.dir()?;
    let path = db
        .save(&dir)
        .context("failed to save the CVE database; the old one (if any) is unchanged")?;
    print_info(&path, &db.meta, format, Some(verb))?;
    Ok(ExitCode::SUCCESS)
}

fn import_cmd(args: &ImportArgs) -> Result<ExitCode> {
    let db = import_with_progress(&args.path, args.terms.clone())?;
    save_and_report(&db, &args.data, args.format, "imported")
}

fn update(args: &UpdateArgs) -> Result<ExitCode> {
    // Before git sees it: an option or a program-running transport.
    git::check_url(&args.url)?;
    let dir = args.data.dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let clone = dir.join(CLONE_DIR);
    let offline_hint = |what: &str, stderr: &str| {
        anyhow::anyhow!(
            "cannot {what} {}: {}\n\
             kgate cve update needs network access to that repository; this host seems to be offline \
             or unable to reach it. The database was not changed.\n\
             On an offline host, copy a vulns checkout, a cvelistV5 checkout or a CSV here and run \
             `kgate cve import PATH`.",
            args.url,
            last_line(stderr)
        )
    };
    // git's own check accepts, under sudo, a repository of SUDO_UID; kgate
    // fetches only into a clone that is its caller's alone.
    let owned = kgate_kernel::cache::check_owned(&clone).map_err(|why| {
        anyhow::anyhow!(
            "refusing to fetch into {why}; kgate cve update keeps its clone writable only by \
             the user running it: remove {} (the next update clones again) or pass --data-dir DIR",
            clone.display()
        )
    })?;
    if owned && clone.join("HEAD").is_file() {
        let out = git_network(Some(&clone))
            .args([
                "fetch",
                "--quiet",
                "--prune",
                "--no-write-fetch-head",
                "--upload-pack=git-upload-pack",
            ])
            .arg("--")
            .arg(&args.url)
            .arg("+refs/heads/*:refs/heads/*")
            .output()
            .context("cannot run git (install git)")?;
        if !out.status.success() {
            return Err(offline_hint("fetch", &String::from_utf8_lossy(&out.stderr)));
        }
    } else {
        // Clone next to the final place, rename on success: an interrupted
        // clone never looks like a repository.
        let tmp = dir.join(format!(".{CLONE_DIR}.tmp.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let out = git_network(None)
            .args(["clone", "--quiet", "--bare", "--no-local"])
            .arg("--")
            .arg(&args.url)
            .arg(&tmp)
            .output()
            .context("cannot run git (install git)")?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(offline_hint("clone", &String::from_utf8_lossy(&out.stderr)));
        }
        std::fs::rename(&tmp, &clone)
            .with_context(|| format!("failed to move the clone to {}", clone.display()))?;
    }
    let mut db = import_with_progress(&clone, None)?;
    db.meta.source = args.url.clone();
    save_and_report(&db, &args.data, args.format, "updated")
}

/// git for network operations ([`git::command`]: no repository config,
/// hook or transport can run a program): never prompt, give up on a
/// stalled transfer instead of hanging, and run the stock upload-pack
/// whatever a `remote.<url>.uploadpack` says.
fn git_network(dir: Option<&Path>) -> Command {
    let mut c = git::command(dir);
    c.args([
        "-c",
        "http.lowSpeedLimit=1000",
        "-c",
        "http.lowSpeedTime=60",
    ]);
    c
}

fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("git failed")
        .trim()
}

fn info(args: &InfoArgs) -> Result<ExitCode> {
    let dir = args.data.dir()?;
    let db = CveDb::load_from_dir(&dir)?;
    print_info(&dir.join(db::DB_FILE), &db.meta, args.format, None)?;
    Ok(ExitCode::SUCCESS)
}

fn print_info(path: &Path, meta: &DbMeta, format: Format, verb: Option<&str>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        Format::Json => {
            // The metadata carries the file's own schema tag; the report's
            // `schema` names the report, `db_schema` the file.
            let mut v = serde_json::to_value(InfoJson {
                path: path.to_owned(),
                meta,
            })?;
            v["db_schema"] = v["schema"].take();
            v["schema"] = "kgate.cve-info/1".into();
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        Format::Text => {
            let mut out = TextOut::new(&mut out);
            if let Some(v) = verb {
                writeln!(
                    out,
                    "{v} {} CVE records into {}",
                    meta.records,
                    path.display()
                )?;
            } else {
                writeln!(out, "{}: {} CVE records", path.display(), meta.records)?;
            }
            writeln!(
                out,
                "  source:    {} ({}){}",
                meta.source,
                meta.source_kind.as_str(),
                meta.source_commit
                    .as_deref()
                    .map(|c| format!(" at {c}"))
                    .unwrap_or_default()
            )?;
            writeln!(out, "  imported:  {}", meta.imported_at)?;
            writeln!(
                out,
                "  published: {} .. {}",
                meta.oldest_published.as_deref().unwrap_or("?"),
                meta.newest_published.as_deref().unwrap_or("?")
            )?;
            for (why, n) in &meta.skipped {
                writeln!(out, "  skipped:   {n} {why}")?;
            }
            writeln!(
                out,
                "\nCVE terms of use{}:",
                meta.terms_of_use
                    .from
                    .as_deref()
                    .map(|f| format!(" (from {f})"))
                    .unwrap_or_default()
            )?;
            print_notice(&mut out, &meta.terms_of_use.text)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The terms-of-use notice, indented; its first paragraph when it is long
/// (the whole text stays in the database and in `kgate cve info`).
pub fn print_notice(out: &mut dyn Write, text: &str) -> Result<()> {
    for line in text.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

#[derive(Serialize)]
struct ListJson<'a> {
    schema: &'static str,
    path: Option<&'a str>,
    count: usize,
    cves: Vec<&'a db::CveRecord>,
}

fn list(args: &ListArgs) -> Result<ExitCode> {
    let db = args.data.load()?;
    if let Some(p) = &args.path {
        if p.starts_with('/') {
            bail!("--path takes a path relative to the kernel source tree (net/sctp), not {p}");
        }
    }
    let cves: Vec<&db::CveRecord> = match &args.path {
        Some(p) => db.under_prefix(p).collect(),
        None => db.cves.iter().collect(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &ListJson {
                    schema: "kgate.cve-list/1",
                    path: args.path.as_deref(),
                    count: cves.len(),
                    cves,
                },
            )?;
            writeln!(out)?;
        }
        Format::Text => {
            let mut out = TextOut::new(&mut out);
            for c in &cves {
                writeln!(
                    out,
                    "{:<16} {:<10} {:<8} {}",
                    c.id,
                    c.published.as_deref().unwrap_or("?"),
                    c.severity
                        .map(|s| format!("{s:?}").to_uppercase())
                        .unwrap_or_else(|| "-".into()),
                    c.title
                )?;
            }
            writeln!(out, "{} CVE(s)", cves.len())?;
            writeln!(out, "{}", provenance(&db.meta))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
