//! Attack-surface metrics for kgate: the kernel CNA's CVE database (import
//! and local storage), attribution of CVEs to modules (CVE source files →
//! module → trigger), and the score of what unprivileged users can reach
//! before and after a policy.
//!
//! # Use
//!
//! ```no_run
//! use kgate_score::{db::CveDb, objects::ObjectIndex, attr::{SourceMap, Attribution}};
//! # fn f(tree: &kgate_kernel::tree::KernelTree) -> Result<(), Box<dyn std::error::Error>> {
//! let db = CveDb::load_from_dir(&kgate_score::db::default_dir().unwrap())?;
//! // CVEs whose fix touches net/sctp/
//! let sctp: Vec<_> = db.under_prefix("net/sctp").collect();
//! // Per-module attribution on one kernel.
//! let objects = ObjectIndex::scan(tree, None, None);
//! let map = SourceMap::new(tree, &objects);
//! let attr = Attribution::compute(&db, &map);
//! let i = map.position("sctp").unwrap();
//! println!("sctp: {} CVEs only in it, {} touching it",
//!          attr.modules[i].only.len(), attr.modules[i].any.len());
//! # Ok(()) }
//! ```
//!
//! [`Analysis`] bundles those steps. [`score::Score::compute`] turns an
//! attribution and two reachability vectors (from
//! `kgate_kernel::reach::compute` and `compute_filtered` with a policy's
//! effective allowlist) into before/after figures by trigger kind.
//!
//! # Data
//!
//! The importer reads the kernel CNA's vulns repository (a checkout, or a
//! bare git directory through the `git` CLI), a cvelistV5 checkout (kernel
//! CNA records only), or a CSV. The database keeps its source, the import
//! date and the CVE terms of use ([`db::TermsOfUse`]).
//!
//! # Compatibility and limits
//!
//! Attribution is a heuristic over file paths and the source-file strings
//! left in module binaries; docs/cve.md says where it is wrong. It needs
//! module paths below `kernel/` (Debian, Ubuntu, Fedora layout).
//!
//! # Tests
//!
//! Unit tests here cover parsing, dates and each attribution rule on small
//! maps; the `kgate` crate's `cve` and `score` tests import the real data
//! set (`../shared/data`) and score the real Debian kernel packages.
//! This crate writes only its database file and its object cache.

pub mod attr;
pub mod db;
pub mod git;
pub mod import;
pub mod objects;
pub mod score;

use std::path::Path;

use kgate_kernel::tree::KernelTree;

/// A database attributed on one kernel: the usual starting point.
pub struct Analysis {
    /// Object evidence of the kernel's modules.
    pub objects: objects::ObjectIndex,
    /// The kernel's modules by source directory.
    pub map: attr::SourceMap,
    /// Every CVE placed.
    pub attribution: attr::Attribution,
}

impl Analysis {
    /// Scan `tree`'s module binaries (cached in `cache_dir`), build the
    /// source map and attribute every CVE of `db`. `progress(done, total)`
    /// reports module files read.
    pub fn new(
        tree: &KernelTree,
        db: &db::CveDb,
        cache_dir: Option<&Path>,
        progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    ) -> Analysis {
        let objects = objects::ObjectIndex::scan(tree, cache_dir, progress);
        let map = attr::SourceMap::new(tree, &objects);
        let attribution = attr::Attribution::compute(db, &map);
        Analysis {
            objects,
            map,
            attribution,
        }
    }

    /// The CVEs of one module (`None` when the kernel has no such module).
    pub fn module(&self, name: &str) -> Option<&attr::ModuleCves> {
        self.map
            .position(name)
            .and_then(|i| self.attribution.modules.get(i))
    }
}
