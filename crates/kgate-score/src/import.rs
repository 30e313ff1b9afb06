//! Building a [`CveDb`] from a source: the kernel CNA's vulns repository
//! (a working tree, or a bare git directory read through the `git` CLI), a
//! cvelistV5 working tree (kernel CNA records only), or a CSV (gzip or
//! plain) in the layout documented in docs/cve.md.
//!
//! [`import`] detects the kind of source. Nothing is written here: the
//! caller saves the result ([`CveDb::save`]). This file detects the source
//! and keeps what every reader shares; each kind of source has a submodule
//! (`csv`, `json` for CVE JSON 5 trees, `git_repo` for a bare repository).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kgate_kernel::bounded::{self, Limit, ReadError};

use crate::db::{CveDb, SourceKind, TermsOfUse};

mod csv;
mod git_repo;
mod json;

use csv::read_csv;
pub use csv::{parse_csv, CSV_COLUMNS};
pub use git_repo::{first_added_dates, read_cat_file_batch, BatchBlob};
use git_repo::{git_head, read_vulns_bare};
pub use json::{parse_cve_json, NotImported};
use json::{read_cvelist, read_vulns_checkout};

/// The kernel CNA's organisation ids: the one its own vulns repository
/// writes into `cveMetadata.assignerOrgId`, and the one cvelistV5 carries.
pub const KERNEL_CNA_ORG_IDS: &[&str] = &[
    "f4215fc3-5b6b-47ff-a258-f7189bd81038",
    "416baaa9-dc9f-4396-8d5f-8c081fb06d67",
];

/// The kernel CNA's `assignerShortName` in cvelistV5.
pub const KERNEL_CNA_SHORT_NAME: &str = "Linux";

/// The largest CVE record read from a bare repository: the same cap as a
/// record read from a directory ([`Limit::CVE_JSON`], 1 MiB). The kernel
/// CNA's records are a few KB (the sample set's largest is 13 KB), so this
/// leaves a factor of 75 and bounds what a blob header can make kgate
/// allocate. A larger blob is skipped and counted, never read.
pub const MAX_RECORD_BYTES: usize = Limit::CVE_JSON.max as usize;

/// Names of terms-of-use files looked for next to a source.
pub const TERMS_FILE_NAMES: &[&str] = &[
    "CVE-TERMS-OF-USE.txt",
    "CVE_TERMS_OF_USE.txt",
    "TERMS-OF-USE.txt",
    "TERMS_OF_USE.txt",
];

/// Errors of an import. Nothing has been written when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A file was refused or could not be read by the bounded reader (not
    /// a regular file, over its cap; the message names the file and cap).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The path does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The path is none of the known kinds of source.
    #[error("{path}: not a CVE source kgate knows; expected a vulns checkout (cve/published/), a bare vulns git directory, a cvelistV5 checkout (cves/) or a CSV file (.csv or .csv.gz)")]
    UnknownKind {
        /// The path.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The CSV is malformed.
    #[error("{path}:{line}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line of the record.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A git command failed.
    #[error("git {args}: {reason}")]
    Git {
        /// The arguments.
        args: String,
        /// stderr or the spawn error.
        reason: String,
    },
    /// The source held no kernel CNA record at all.
    #[error("{path}: no kernel CNA CVE record found ({skipped}); nothing was imported")]
    Empty {
        /// The source.
        path: PathBuf,
        /// What was skipped, in words.
        skipped: String,
    },
}

/// Progress while importing: records read so far of `total` (0 when not
/// known in advance).
#[derive(Debug, Clone, Copy)]
pub struct ImportProgress {
    /// Records read.
    pub done: usize,
    /// Records expected, 0 if unknown.
    pub total: usize,
}

/// Import options.
#[derive(Default)]
pub struct ImportOptions<'a> {
    /// A terms-of-use file to keep with the data; else one is looked for
    /// in the source ([`TERMS_FILE_NAMES`], next to a CSV or at the top of
    /// a repository), else [`crate::db::TERMS_POINTER`] is kept.
    pub terms: Option<PathBuf>,
    /// Called as records are read.
    pub progress: Option<&'a (dyn Fn(ImportProgress) + Sync)>,
}

/// What kind of source `path` is.
pub fn detect(path: &Path) -> Result<SourceKind, ImportError> {
    let meta = fs::metadata(path).map_err(|_| ImportError::NotFound {
        path: path.to_owned(),
    })?;
    if meta.is_file() {
        return Ok(SourceKind::Csv);
    }
    if path.join("cve/published").is_dir() {
        return Ok(SourceKind::VulnsCheckout);
    }
    if path.join("cves").is_dir() {
        return Ok(SourceKind::Cvelist);
    }
    if path.join("HEAD").is_file() && path.join("objects").is_dir() {
        return Ok(SourceKind::VulnsBare);
    }
    Err(ImportError::UnknownKind {
        path: path.to_owned(),
    })
}

/// Import any supported source (see [`detect`]).
pub fn import(path: &Path, opts: &ImportOptions<'_>) -> Result<CveDb, ImportError> {
    let kind = detect(path)?;
    let mut skipped = Skipped::default();
    let (cves, commit) = match kind {
        SourceKind::Csv => (read_csv(path, opts)?, None),
        SourceKind::VulnsCheckout => (
            read_vulns_checkout(path, opts, &mut skipped)?,
            git_head(path),
        ),
        SourceKind::VulnsBare => (read_vulns_bare(path, opts, &mut skipped)?, git_head(path)),
        SourceKind::Cvelist => (read_cvelist(path, opts, &mut skipped)?, git_head(path)),
    };
    if cves.is_empty() {
        return Err(ImportError::Empty {
            path: path.to_owned(),
            skipped: skipped.describe(),
        });
    }
    let terms = terms_of_use(path, kind, opts)?;
    let source = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut db = CveDb::new(kind, source.display().to_string(), cves, terms);
    db.meta.source_commit = commit;
    db.meta.skipped = skipped.0.into_iter().collect();
    Ok(db)
}

#[derive(Default)]
struct Skipped(BTreeMap<String, usize>);

impl Skipped {
    fn add(&mut self, why: &str) {
        *self.0.entry(why.to_owned()).or_default() += 1;
    }
    fn describe(&self) -> String {
        if self.0.is_empty() {
            return "the source is empty".to_owned();
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{v} {k}")).collect();
        format!("skipped: {}", parts.join(", "))
    }
}

fn terms_of_use(
    path: &Path,
    kind: SourceKind,
    opts: &ImportOptions<'_>,
) -> Result<TermsOfUse, ImportError> {
    let candidates: Vec<PathBuf> = match &opts.terms {
        Some(p) => vec![p.clone()],
        None => {
            let dir = if kind == SourceKind::Csv {
                path.parent().map(Path::to_owned).unwrap_or_default()
            } else {
                path.to_owned()
            };
            TERMS_FILE_NAMES.iter().map(|n| dir.join(n)).collect()
        }
    };
    for c in candidates {
        match bounded::read_text(Path::new("/"), &c, Limit::TERMS) {
            Ok(text) if !text.trim().is_empty() => {
                return Ok(TermsOfUse {
                    text,
                    from: Some(
                        fs::canonicalize(&c)
                            .unwrap_or(c.clone())
                            .display()
                            .to_string(),
                    ),
                })
            }
            Ok(_) | Err(_) if opts.terms.is_none() => continue,
            Ok(_) => {
                return Err(ImportError::Io {
                    path: c,
                    source: std::io::Error::other("the terms-of-use file is empty"),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(TermsOfUse::default())
}

fn clean_files<'a>(files: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = files
        .map(|f| f.trim().trim_start_matches("./").to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::csv::csv_rows;
    use super::*;

    #[test]
    fn cat_file_batch_sizes_are_checked_before_reading() {
        let names = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let big = MAX_RECORD_BYTES + 1;
        let mut input = format!("o1 blob 2\nhi\no2 blob {big}\n").into_bytes();
        input.resize(input.len() + big + 1, b'x');
        input.extend_from_slice(b"o3 blob 0\n\n");
        let mut seen = Vec::new();
        read_cat_file_batch(&mut &input[..], &names, |n, name, blob| {
            seen.push((n, name.to_owned(), format!("{blob:?}")));
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (0, "a".to_owned(), "Contents([104, 105])".to_owned()),
                (1, "b".to_owned(), "TooLarge".to_owned()),
                (2, "c".to_owned(), "Contents([])".to_owned()),
            ]
        );
        let e = read_cat_file_batch(&mut &b"a missing\n"[..], &names, |_, _, _| {}).unwrap_err();
        assert!(e.contains("unexpected answer"), "{e}");
        let e = read_cat_file_batch(&mut &b"o blob 5\nab"[..], &names, |_, _, _| {}).unwrap_err();
        assert!(!e.is_empty());
    }

    #[test]
    fn cat_file_batch_header_with_the_largest_size_is_an_error_not_an_overflow() {
        // A header claiming usize::MAX bytes overflowed `size + 1` (a panic
        // in debug builds) before the skip.
        let header = format!("o blob {}\nshort", usize::MAX);
        let e = read_cat_file_batch(&mut header.as_bytes(), &["a".to_owned()], |_, _, _| {})
            .unwrap_err();
        assert!(e.contains("ended early"), "{e}");
    }

    #[test]
    fn csv_quoting() {
        let rows = csv_rows("a,b\n\"x, y\",\"say \"\"hi\"\"\"\r\nlast,\"multi\nline\"").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].1, vec!["x, y", "say \"hi\""]);
        assert_eq!(
            rows[2],
            (3, vec!["last".to_owned(), "multi\nline".to_owned()])
        );
        assert!(csv_rows("a,\"open").is_err());
    }

    #[test]
    fn csv_missing_column_is_an_error_naming_it() {
        let e = parse_csv(
            "cve_id,title\nCVE-1-1,x\n",
            Path::new("x.csv"),
            &ImportOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("files"), "{e}");
    }

    #[test]
    fn other_cna_and_rejected_are_skipped() {
        let other = br#"{"cveMetadata":{"cveId":"CVE-2024-1","state":"PUBLISHED","assignerOrgId":"x","assignerShortName":"Other"},"containers":{"cna":{}}}"#;
        assert_eq!(
            parse_cve_json(other, true, None),
            Err(NotImported::OtherCna)
        );
        let rejected = br#"{"cveMetadata":{"cveId":"CVE-2024-1","state":"REJECTED","assignerShortName":"Linux"},"containers":{"cna":{}}}"#;
        assert_eq!(
            parse_cve_json(rejected, true, None),
            Err(NotImported::NotPublished)
        );
        let ours = br#"{"cveMetadata":{"cveId":"CVE-2024-1","state":"PUBLISHED","assignerShortName":"Linux","datePublished":"2024-05-01T10:00:00.000Z"},"containers":{"cna":{"descriptions":[{"value":"In the Linux kernel, the following vulnerability has been resolved:\n\nsctp: fix it\n\nmore"}],"affected":[{"programFiles":["net/sctp/b.c","net/sctp/a.c"]},{"programFiles":["net/sctp/a.c"]}]}}}"#;
        let r = parse_cve_json(ours, true, None).unwrap();
        assert_eq!(r.files, ["net/sctp/a.c", "net/sctp/b.c"]);
        assert_eq!(r.published.as_deref(), Some("2024-05-01"));
        assert_eq!(r.title, "sctp: fix it");
    }
}
