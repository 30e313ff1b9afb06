//! CVE JSON 5 records: reducing one to a [`CveRecord`] and reading the
//! directory trees of a vulns checkout (`cve/published`) or cvelistV5
//! (`cves`).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use kgate_kernel::bounded::{self, Limit};

use super::{
    clean_files, first_added_dates, ImportError, ImportOptions, ImportProgress, Skipped,
    KERNEL_CNA_ORG_IDS, KERNEL_CNA_SHORT_NAME,
};
use crate::db::{CveRecord, Severity};

/// Why a JSON record is not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotImported {
    /// Not valid JSON or not a CVE record.
    Malformed,
    /// `state` is not PUBLISHED.
    NotPublished,
    /// Assigned by another CNA.
    OtherCna,
    /// A git blob larger than [`MAX_RECORD_BYTES`](super::MAX_RECORD_BYTES).
    TooLarge,
}

impl NotImported {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            NotImported::Malformed => "malformed records",
            NotImported::NotPublished => "rejected or reserved records",
            NotImported::OtherCna => "records of other CNAs",
            NotImported::TooLarge => "records larger than the 1 MiB cap",
        }
    }
}

/// Reduce one CVE JSON 5 record to a [`CveRecord`]. `require_kernel_cna`
/// skips records of other CNAs (cvelistV5). `published` overrides a
/// missing `cveMetadata.datePublished` (the vulns repository's records
/// carry none).
pub fn parse_cve_json(
    bytes: &[u8],
    require_kernel_cna: bool,
    published: Option<&str>,
) -> Result<CveRecord, NotImported> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| NotImported::Malformed)?;
    let meta = v.get("cveMetadata").ok_or(NotImported::Malformed)?;
    let id = meta
        .get("cveId")
        .and_then(Value::as_str)
        .filter(|s| s.starts_with("CVE-"))
        .ok_or(NotImported::Malformed)?;
    if meta.get("state").and_then(Value::as_str) != Some("PUBLISHED") {
        return Err(NotImported::NotPublished);
    }
    if require_kernel_cna {
        let org = meta.get("assignerOrgId").and_then(Value::as_str);
        let short = meta.get("assignerShortName").and_then(Value::as_str);
        let ours = org.is_some_and(|o| KERNEL_CNA_ORG_IDS.contains(&o))
            || short == Some(KERNEL_CNA_SHORT_NAME);
        if !ours {
            return Err(NotImported::OtherCna);
        }
    }
    let cna = v
        .get("containers")
        .and_then(|c| c.get("cna"))
        .ok_or(NotImported::Malformed)?;
    let affected = cna.get("affected").and_then(Value::as_array);
    let files = clean_files(
        affected
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("programFiles").and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str),
    );
    // The mainline fix: the last git range's `lessThan` (bippy writes the
    // stable branches first and mainline last).
    let fix_commit = affected
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("versions").and_then(Value::as_array))
        .flatten()
        .filter(|r| r.get("versionType").and_then(Value::as_str) == Some("git"))
        .filter_map(|r| r.get("lessThan").and_then(Value::as_str))
        .next_back()
        .map(str::to_owned);
    let cvss = cna
        .get("metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|m| {
            ["cvssV4_0", "cvssV3_1", "cvssV3_0"]
                .iter()
                .find_map(|k| m.get(*k))
        });
    let title = cna
        .get("title")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| description_subject(cna))
        .unwrap_or_default();
    let published = meta
        .get("datePublished")
        .and_then(Value::as_str)
        .map(|d| d.get(..10).unwrap_or(d).to_owned())
        .or_else(|| published.map(str::to_owned));
    Ok(CveRecord {
        id: id.to_owned(),
        published,
        severity: cvss
            .and_then(|c| c.get("baseSeverity"))
            .and_then(Value::as_str)
            .and_then(Severity::parse),
        score: cvss
            .and_then(|c| c.get("baseScore"))
            .and_then(Value::as_f64)
            .map(|s| s as f32),
        vector: cvss
            .and_then(|c| c.get("vectorString"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        files,
        title,
        fix_commit,
    })
}

/// The subject line of a kernel CNA description ("In the Linux kernel, the
/// following vulnerability has been resolved:\n\nSUBJECT\n\n...").
fn description_subject(cna: &Value) -> Option<String> {
    let d = cna.get("descriptions")?.as_array()?.first()?;
    let text = d.get("value")?.as_str()?;
    let body = text.split_once("resolved:").map(|(_, b)| b).unwrap_or(text);
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

fn cve_json_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let ty = e.file_type()?;
        let p = e.path();
        if ty.is_dir() {
            cve_json_files(&p, out)?;
        } else if ty.is_file()
            && p.extension().is_some_and(|x| x == "json")
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("CVE-"))
        {
            out.push(p);
        }
    }
    Ok(())
}

fn read_json_tree(
    top: &Path,
    require_kernel_cna: bool,
    dates: &HashMap<String, String>,
    opts: &ImportOptions<'_>,
    skipped: &mut Skipped,
) -> Result<Vec<CveRecord>, ImportError> {
    let mut files = Vec::new();
    cve_json_files(top, &mut files).map_err(|source| ImportError::Io {
        path: top.to_owned(),
        source,
    })?;
    files.sort();
    let total = files.len();
    let mut out = Vec::new();
    for (n, f) in files.iter().enumerate() {
        let bytes = bounded::read(Path::new("/"), f, Limit::CVE_JSON)?;
        let id = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        match parse_cve_json(
            &bytes,
            require_kernel_cna,
            dates.get(id).map(String::as_str),
        ) {
            Ok(r) => out.push(r),
            Err(why) => skipped.add(why.as_str()),
        }
        if let Some(p) = opts.progress {
            if n % 256 == 0 || n + 1 == total {
                p(ImportProgress { done: n + 1, total });
            }
        }
    }
    Ok(out)
}

pub(super) fn read_vulns_checkout(
    path: &Path,
    opts: &ImportOptions<'_>,
    skipped: &mut Skipped,
) -> Result<Vec<CveRecord>, ImportError> {
    // With its git history, a record's date is the day its file appeared.
    let dates = if path.join(".git").exists() {
        first_added_dates(path).unwrap_or_default()
    } else {
        HashMap::new()
    };
    read_json_tree(&path.join("cve/published"), true, &dates, opts, skipped)
}

pub(super) fn read_cvelist(
    path: &Path,
    opts: &ImportOptions<'_>,
    skipped: &mut Skipped,
) -> Result<Vec<CveRecord>, ImportError> {
    read_json_tree(&path.join("cves"), true, &HashMap::new(), opts, skipped)
}
