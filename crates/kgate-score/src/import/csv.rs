//! kgate's CSV layout (docs/cve.md), gzip or plain: RFC 4180 rows with a
//! header naming at least [`CSV_COLUMNS`].

use std::collections::HashMap;
use std::path::Path;

use kgate_kernel::bounded::{self, Limit};

use super::{clean_files, ImportError, ImportOptions, ImportProgress};
use crate::db::{CveRecord, Severity};

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

pub(super) fn read_csv(
    path: &Path,
    opts: &ImportOptions<'_>,
) -> Result<Vec<CveRecord>, ImportError> {
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

pub(super) fn csv_rows(text: &str) -> Result<Vec<Row>, (usize, String)> {
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
