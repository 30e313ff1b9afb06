//! The CVE database as an input of several subcommands: where it lives
//! (`--data-dir`), loading it, naming it in reports, and reading a
//! target's module binaries to attribute it (`kgate score`, `explain`,
//! `hap`, `report`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use kgate_score::db::{self, CveDb, DbError, DbMeta};
use kgate_score::Analysis;

use crate::output;
use crate::target::{Target, TargetArgs};

/// Where the database lives.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DataArgs {
    /// Database directory [default: $XDG_DATA_HOME/kgate, or
    /// ~/.local/share/kgate].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataArgs {
    /// The database directory.
    pub fn dir(&self) -> Result<PathBuf> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => db::default_dir()
                .context("neither XDG_DATA_HOME nor HOME is set; pass --data-dir DIR"),
        }
    }

    /// Load the database.
    pub fn load(&self) -> Result<CveDb> {
        Ok(CveDb::load_from_dir(&self.dir()?)?)
    }
}

/// The CVE database when one has been imported; `None` when there is none
/// (CVE columns are then left out), an error when it is unreadable.
pub fn optional_db(data: &DataArgs) -> Result<Option<CveDb>> {
    let Ok(dir) = data.dir() else {
        return Ok(None);
    };
    match CveDb::load_from_dir(&dir) {
        Ok(db) => Ok(Some(db)),
        Err(DbError::Missing { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One line naming the database and its notice, for reports.
pub fn provenance(meta: &DbMeta) -> String {
    format!(
        "CVE data: {} records from {} (imported {}); CVE(R) records are used under the CVE Terms \
         of Use, kept in the database: see `kgate cve info`",
        meta.records, meta.source, meta.imported_at
    )
}

/// The database in a report.
#[derive(Debug, Serialize)]
pub struct DatabaseRef<'a> {
    /// Source path or URL.
    pub source: &'a str,
    /// Source kind.
    pub source_kind: &'static str,
    /// Import time.
    pub imported_at: &'a str,
    /// Records.
    pub records: usize,
    /// Newest publication date.
    pub newest_published: Option<&'a str>,
    /// Where the kept terms of use came from (`null`: a pointer to them).
    pub terms_of_use_from: Option<&'a str>,
    /// One line naming the notice.
    pub notice: String,
}

impl<'a> DatabaseRef<'a> {
    /// Describe `meta`.
    pub fn new(meta: &'a DbMeta) -> Self {
        DatabaseRef {
            source: &meta.source,
            source_kind: meta.source_kind.as_str(),
            imported_at: &meta.imported_at,
            records: meta.records,
            newest_published: meta.newest_published.as_deref(),
            terms_of_use_from: meta.terms_of_use.from.as_deref(),
            notice: provenance(meta),
        }
    }
}

/// Read the module binaries and attribute the database, with a progress
/// bar on a terminal.
pub fn analyse(t: &Target, db: &CveDb, target: &TargetArgs) -> Analysis {
    let cache_dir = if target.no_cache {
        None
    } else {
        target
            .cache_dir
            .clone()
            .or_else(kgate_kernel::cache::default_cache_dir)
    };
    let bar = std::sync::OnceLock::<Option<indicatif::ProgressBar>>::new();
    let progress = |done: usize, total: usize| {
        if let Some(b) =
            bar.get_or_init(|| output::progress_bar(total as u64, "reading module sources"))
        {
            b.set_position(done as u64);
        }
    };
    let a = Analysis::new(&t.tree, db, cache_dir.as_deref(), Some(&progress));
    if let Some(Some(b)) = bar.get() {
        b.finish_and_clear();
    }
    a
}
