//! Building a [`CveDb`] from a source: the kernel CNA's vulns repository
//! (a working tree, or a bare git directory read through the `git` CLI), a
//! cvelistV5 working tree (kernel CNA records only), or a CSV (gzip or
//! plain) in the layout documented in docs/cve.md.
//!
//! [`import`] detects the kind of source. Nothing is written here: the
//! caller saves the result ([`CveDb::save`]).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use kgate_kernel::bounded::{self, Limit, ReadError};

use crate::db::{CveDb, CveRecord, Severity, SourceKind, TermsOfUse};

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

// ---------------------------------------------------------------- CSV

/// The CSV columns kgate reads, by header name.
pub const CSV_COLUMNS: &[&str] = &[
    "cve_id",
    "published_date",
    "cvss_score",
    "cvss_severity",
    "cvss_vector",
    "fix_commit",
    "files",
    "title",
];

fn read_csv(path: &Path, opts: &ImportOptions<'_>) -> Result<Vec<CveRecord>, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_owned(),
        source,
    };
    // The file and its content (a .csv.gz decompressed) are both capped.
    let raw = bounded::read_maybe_gz(Path::new("/"), path, Limit::CVE_CSV)?;
    let text = String::from_utf8(raw).map_err(|e| io(std::io::Error::other(e)))?;
    parse_csv(&text, path, opts)
}

/// Parse CSV text in kgate's layout (header row naming at least
/// [`CSV_COLUMNS`]; RFC 4180 quoting).
pub fn parse_csv(
    text: &str,
    path: &Path,
    opts: &ImportOptions<'_>,
) -> Result<Vec<CveRecord>, ImportError> {
    let err = |line: usize, reason: String| ImportError::Csv {
        path: path.to_owned(),
        line,
        reason,
    };
    let rows = csv_rows(text).map_err(|(line, reason)| err(line, reason))?;
    let Some((_, header)) = rows.first() else {
        return Err(err(1, "empty file".to_owned()));
    };
    let col: HashMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim(), i))
        .collect();
    let missing: Vec<&str> = CSV_COLUMNS
        .iter()
        .filter(|c| !col.contains_key(**c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(err(
            1,
            format!(
                "header lacks column(s) {}; expected {}",
                missing.join(", "),
                CSV_COLUMNS.join(",")
            ),
        ));
    }
    let total = rows.len() - 1;
    let mut out = Vec::with_capacity(total);
    for (n, (line, row)) in rows.iter().enumerate().skip(1) {
        let get = |name: &str| row.get(col[name]).map(|s| s.trim()).unwrap_or("");
        let id = get("cve_id");
        if !id.starts_with("CVE-") {
            return Err(err(*line, format!("cve_id {id:?} is not a CVE id")));
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let score = match get("cvss_score") {
            "" => None,
            s => Some(
                s.parse::<f32>()
                    .map_err(|_| err(*line, format!("cvss_score {s:?} is not a number")))?,
            ),
        };
        let published = opt(get("published_date"));
        if let Some(p) = &published {
            if crate::db::days_from_date(p).is_none() {
                return Err(err(
                    *line,
                    format!("published_date {p:?} is not YYYY-MM-DD"),
                ));
            }
        }
        out.push(CveRecord {
            id: id.to_owned(),
            published,
            severity: Severity::parse(get("cvss_severity")),
            score,
            vector: opt(get("cvss_vector")),
            files: clean_files(get("files").split(';')),
            title: get("title").to_owned(),
            fix_commit: opt(get("fix_commit")),
        });
        if let Some(p) = opts.progress {
            if n % 512 == 0 || n == total {
                p(ImportProgress { done: n, total });
            }
        }
    }
    Ok(out)
}

/// RFC 4180 rows with the 1-based line each starts on.
/// A CSV row: the line it starts on and its fields.
type Row = (usize, Vec<String>);

fn csv_rows(text: &str) -> Result<Vec<Row>, (usize, String)> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                if !(row.len() == 1 && row[0].is_empty()) {
                    rows.push((start, std::mem::take(&mut row)));
                }
                row.clear();
                line += 1;
                start = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err((start, "a quoted field is not closed".to_owned()));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((start, row));
    }
    Ok(rows)
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

// ---------------------------------------------------------------- CVE JSON 5

/// Why a JSON record is not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotImported {
    /// Not valid JSON or not a CVE record.
    Malformed,
    /// `state` is not PUBLISHED.
    NotPublished,
    /// Assigned by another CNA.
    OtherCna,
    /// A git blob larger than [`MAX_RECORD_BYTES`].
    TooLarge,
}

impl NotImported {
    fn as_str(self) -> &'static str {
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

fn read_vulns_checkout(
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

fn read_cvelist(
    path: &Path,
    opts: &ImportOptions<'_>,
    skipped: &mut Skipped,
) -> Result<Vec<CveRecord>, ImportError> {
    read_json_tree(&path.join("cves"), true, &HashMap::new(), opts, skipped)
}

// ---------------------------------------------------------------- git

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, ImportError> {
    let out = crate::git::command(Some(dir))
        .args(args)
        .output()
        .map_err(|e| ImportError::Git {
            args: args.join(" "),
            reason: format!("cannot run git: {e} (install git)"),
        })?;
    if !out.status.success() {
        return Err(ImportError::Git {
            args: args.join(" "),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

fn git_head(dir: &Path) -> Option<String> {
    let out = git(
        dir,
        &["rev-parse", "--verify", "-q", "--end-of-options", "HEAD"],
    )
    .ok()?;
    let s = String::from_utf8(out).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// CVE id → the day (`YYYY-MM-DD`) its published record first appeared in
/// the history of HEAD, from one `git log` over `cve/published`.
pub fn first_added_dates(repo: &Path) -> Result<HashMap<String, String>, ImportError> {
    let out = git(
        repo,
        &[
            "log",
            "--no-show-signature",
            "--no-ext-diff",
            "--no-textconv",
            "--no-mailmap",
            "--diff-filter=A",
            "--no-renames",
            "--format=%x01%as",
            "--name-only",
            "HEAD",
            "--",
            "cve/published",
        ],
    )?;
    let text = String::from_utf8_lossy(&out);
    let mut dates = HashMap::new();
    let mut current = "";
    for line in text.lines() {
        if let Some(d) = line.strip_prefix('\u{1}') {
            current = d;
        } else if let Some(id) = line
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(".json"))
        {
            // git log runs newest first: the last date seen is the oldest.
            dates.insert(id.to_owned(), current.to_owned());
        }
    }
    Ok(dates)
}

/// One answer of `git cat-file --batch`, as [`read_cat_file_batch`] hands
/// it on.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchBlob<'a> {
    /// The blob's contents (at most [`MAX_RECORD_BYTES`]).
    Contents(&'a [u8]),
    /// A blob larger than [`MAX_RECORD_BYTES`]: skipped without being kept.
    TooLarge,
}

/// Reads the answers of `git cat-file --batch` to the object names
/// `names`, in order, from `reader` and calls `each(index, name, blob)` for
/// every one. An answer is `"<oid> blob <size>\n"`, the contents and a
/// newline; the size is checked against [`MAX_RECORD_BYTES`] before
/// anything is allocated. Anything else (`"<name> missing"`, a bad header,
/// an early end) is an error naming the reason.
pub fn read_cat_file_batch(
    reader: &mut impl BufRead,
    names: &[String],
    mut each: impl FnMut(usize, &str, BatchBlob<'_>),
) -> Result<(), String> {
    let mut header = String::new();
    let mut buf = Vec::new();
    for (n, name) in names.iter().enumerate() {
        header.clear();
        reader.read_line(&mut header).map_err(|e| e.to_string())?;
        // "<oid> blob <size>\n", or "<name> missing\n".
        let size: usize = match header.trim_end().rsplit_once(' ') {
            Some((lhs, size)) if lhs.ends_with(" blob") => size
                .parse()
                .map_err(|_| format!("unexpected header {header:?}"))?,
            _ => return Err(format!("{name}: unexpected answer {header:?}")),
        };
        // The size is the repository's word: check it before allocating,
        // and skip the blob (and its newline) without keeping it.
        if size > MAX_RECORD_BYTES {
            // `size` can be usize::MAX: the `+ 1` must not overflow.
            // `size` can be usize::MAX: the `+ 1` must not overflow.
            let skip = (size as u64).saturating_add(1);
            let got = std::io::copy(&mut (&mut *reader).take(skip), &mut std::io::sink())
                .map_err(|e| e.to_string())?;
            if got != skip {
                return Err(format!("{name}: the blob ended early"));
            }
            each(n, name, BatchBlob::TooLarge);
            continue;
        }
        buf.resize(size + 1, 0);
        reader.read_exact(&mut buf).map_err(|e| e.to_string())?;
        buf.truncate(size);
        each(n, name, BatchBlob::Contents(&buf));
    }
    Ok(())
}

fn read_vulns_bare(
    path: &Path,
    opts: &ImportOptions<'_>,
    skipped: &mut Skipped,
) -> Result<Vec<CveRecord>, ImportError> {
    let listing = git(
        path,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "-z",
            "--end-of-options",
            "HEAD",
            "--",
            "cve/published",
        ],
    )?;
    // NUL-separated, unquoted; a name with a newline could not be asked of
    // `cat-file --batch`, and no record is named so.
    let names: Vec<String> = String::from_utf8_lossy(&listing)
        .split('\0')
        .filter(|l| !l.contains('\n'))
        .filter(|l| {
            l.ends_with(".json") && l.rsplit('/').next().is_some_and(|n| n.starts_with("CVE-"))
        })
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err(ImportError::UnknownKind {
            path: path.to_owned(),
        });
    }
    let dates = first_added_dates(path)?;
    let mut child = crate::git::command(Some(path))
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ImportError::Git {
            args: "cat-file --batch".to_owned(),
            reason: format!("cannot run git: {e} (install git)"),
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let feed_names = names.clone();
    // Feed the object names from another thread so neither pipe can fill
    // up while the other side waits.
    let feeder = std::thread::spawn(move || -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(&mut stdin);
        for n in &feed_names {
            writeln!(w, "HEAD:{n}")?;
        }
        w.flush()
    });
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
    let bad = |reason: String| ImportError::Git {
        args: "cat-file --batch".to_owned(),
        reason,
    };
    let mut out = Vec::new();
    let total = names.len();
    read_cat_file_batch(&mut reader, &names, |n, name, blob| {
        let buf = match blob {
            BatchBlob::Contents(buf) => buf,
            BatchBlob::TooLarge => {
                skipped.add(NotImported::TooLarge.as_str());
                return;
            }
        };
        let id = name
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".json"))
            .unwrap_or_default();
        match parse_cve_json(buf, true, dates.get(id).map(String::as_str)) {
            Ok(r) => out.push(r),
            Err(why) => skipped.add(why.as_str()),
        }
        if let Some(p) = opts.progress {
            if n % 256 == 0 || n + 1 == total {
                p(ImportProgress { done: n + 1, total });
            }
        }
    })
    .map_err(bad)?;
    let fed = feeder.join();
    let status = child.wait().map_err(|e| bad(e.to_string()))?;
    if !status.success() || !matches!(fed, Ok(Ok(()))) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        return Err(bad(format!("git cat-file failed: {}", err.trim())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
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
