//! The local CVE database: the kernel CNA's records reduced to what
//! attribution needs (id, dates, CNA severity, source files, title, fix
//! commit), with where they came from and the CVE terms of use.
//!
//! Stored as one JSON file (`cve-db.json`, schema `kgate.cve-db/1`) under
//! [`default_dir`], written atomically (temp file, fsync, rename). Building
//! a database from a source is [`crate::import`]'s job.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use kgate_kernel::bounded::{self, Limit};
use serde::{Deserialize, Serialize};

/// File name of the database below its directory.
pub const DB_FILE: &str = "cve-db.json";

/// Schema tag written into the database file.
pub const DB_SCHEMA: &str = "kgate.cve-db/1";

/// The notice kept when a source carries no terms-of-use file of its own.
/// It points at the terms; it does not reproduce them.
pub const TERMS_POINTER: &str = "CVE(R) records are published by the CVE Program; MITRE holds \
the copyright of the CVE List. Use, copies and derivative works are subject to the CVE Terms \
of Use: https://www.cve.org/Legal/TermsOfUse";

/// Errors of loading or saving a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// No database has been imported yet.
    #[error("{path}: no CVE database; run `kgate cve import PATH` (a vulns checkout, a cvelistV5 checkout or a CSV) or `kgate cve update`")]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file could not be written ([`kgate_kernel::atomic`]: also a
    /// symlink where the database or its directory should be).
    #[error(transparent)]
    Write(#[from] kgate_kernel::atomic::AtomicError),
    /// The file is not a kgate CVE database of a known version.
    #[error("{path}: not a kgate CVE database ({reason}); re-run `kgate cve import`")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The CNA's CVSS severity rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// CVSS 0.0.
    None,
    /// CVSS 0.1-3.9.
    Low,
    /// CVSS 4.0-6.9.
    Medium,
    /// CVSS 7.0-8.9.
    High,
    /// CVSS 9.0-10.0.
    Critical,
}

impl Severity {
    /// Parse `HIGH`, `high`, ...; `None` for anything else (blank).
    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_uppercase().as_str() {
            "NONE" => Some(Severity::None),
            "LOW" => Some(Severity::Low),
            "MEDIUM" => Some(Severity::Medium),
            "HIGH" => Some(Severity::High),
            "CRITICAL" => Some(Severity::Critical),
            _ => None,
        }
    }

    /// HIGH or CRITICAL.
    pub fn is_high_or_critical(self) -> bool {
        matches!(self, Severity::High | Severity::Critical)
    }
}

/// One CVE of the kernel CNA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CveRecord {
    /// `CVE-2024-26581`.
    pub id: String,
    /// The day the record was published (`YYYY-MM-DD`): `datePublished` in
    /// cvelistV5, the day the record's file first appeared in the vulns
    /// repository's history, or the CSV's `published_date`. `None` when the
    /// source does not say (a vulns checkout without its git history).
    pub published: Option<String>,
    /// The CNA's CVSS severity. The kernel CNA scores only since 2026-04:
    /// `None` does not mean low.
    pub severity: Option<Severity>,
    /// The CNA's CVSS base score.
    pub score: Option<f32>,
    /// The CNA's CVSS vector string.
    pub vector: Option<String>,
    /// Source files the fix touches (`affected[].programFiles`), relative to
    /// the kernel source root, sorted, without duplicates.
    pub files: Vec<String>,
    /// One-line title (the fix's subject).
    pub title: String,
    /// The mainline fix commit, when the record names one.
    pub fix_commit: Option<String>,
}

/// What kind of source a database was imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SourceKind {
    /// A working tree of the kernel CNA's vulns repository.
    VulnsCheckout,
    /// A bare git directory of the vulns repository (read with `git`).
    VulnsBare,
    /// A cvelistV5 working tree (kernel CNA records only).
    Cvelist,
    /// A CSV file (gzip or plain) in kgate's documented layout.
    Csv,
}

impl SourceKind {
    /// Short name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::VulnsCheckout => "vulns_checkout",
            SourceKind::VulnsBare => "vulns_bare",
            SourceKind::Cvelist => "cvelist",
            SourceKind::Csv => "csv",
        }
    }
}

/// The CVE terms of use as kept with the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsOfUse {
    /// The notice's text.
    pub text: String,
    /// The file it was imported from; `None` when the source had none and
    /// [`TERMS_POINTER`] is kept instead.
    pub from: Option<String>,
}

impl Default for TermsOfUse {
    fn default() -> Self {
        TermsOfUse {
            text: TERMS_POINTER.to_owned(),
            from: None,
        }
    }
}

/// Where a database came from and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbMeta {
    /// Always [`DB_SCHEMA`].
    pub schema: String,
    /// The kind of source.
    pub source_kind: SourceKind,
    /// The path or URL imported.
    pub source: String,
    /// The source's commit (git sources), if known.
    pub source_commit: Option<String>,
    /// When the import ran, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub imported_at: String,
    /// Number of records.
    pub records: usize,
    /// Newest `published` date among the records.
    pub newest_published: Option<String>,
    /// Oldest `published` date among the records.
    pub oldest_published: Option<String>,
    /// Records skipped while importing (rejected, other CNAs, unreadable),
    /// with the reason counts: `[("other CNA", 250000), ...]`.
    pub skipped: Vec<(String, usize)>,
    /// The CVE terms of use, kept with the data.
    pub terms_of_use: TermsOfUse,
}

/// A CVE database: metadata plus records sorted by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CveDb {
    /// Where it came from.
    pub meta: DbMeta,
    /// The records, sorted by CVE id (year, then number).
    pub cves: Vec<CveRecord>,
}

impl CveDb {
    /// A database of `cves` from a source; fills the counts and dates and
    /// sorts the records.
    pub fn new(
        source_kind: SourceKind,
        source: String,
        mut cves: Vec<CveRecord>,
        terms_of_use: TermsOfUse,
    ) -> CveDb {
        cves.sort_by(|a, b| id_key(&a.id).cmp(&id_key(&b.id)));
        cves.dedup_by(|a, b| a.id == b.id);
        let dates = cves.iter().filter_map(|c| c.published.as_deref());
        let newest_published = dates.clone().max().map(str::to_owned);
        let oldest_published = dates.min().map(str::to_owned);
        CveDb {
            meta: DbMeta {
                schema: DB_SCHEMA.to_owned(),
                source_kind,
                source,
                source_commit: None,
                imported_at: now_utc(),
                records: cves.len(),
                newest_published,
                oldest_published,
                skipped: Vec::new(),
                terms_of_use,
            },
            cves,
        }
    }

    /// Read a database file.
    pub fn load(path: &Path) -> Result<CveDb, DbError> {
        let bytes = match bounded::read(Path::new("/"), path, Limit::CVE_DB) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(DbError::Missing {
                    path: path.to_owned(),
                })
            }
            Err(e) => {
                return Err(DbError::Io {
                    path: path.to_owned(),
                    source: std::io::Error::other(e),
                })
            }
        };
        CveDb::from_json(&bytes, path)
    }

    /// A database from the bytes of its file `path` (for messages).
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<CveDb, DbError> {
        let db: CveDb = serde_json::from_slice(bytes).map_err(|e| DbError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if db.meta.schema != DB_SCHEMA {
            return Err(DbError::Corrupt {
                path: path.to_owned(),
                reason: format!("schema {:?}, expected {DB_SCHEMA:?}", db.meta.schema),
            });
        }
        Ok(db)
    }

    /// Load [`DB_FILE`] from `dir`.
    pub fn load_from_dir(dir: &Path) -> Result<CveDb, DbError> {
        CveDb::load(&dir.join(DB_FILE))
    }

    /// Write the database to `dir/`[`DB_FILE`] with
    /// [`kgate_kernel::atomic`]: a temporary file created `O_EXCL |
    /// O_NOFOLLOW` in the same directory, fsync, rename, fsync of the
    /// directory. Readers see the old database or the new one, never a
    /// partial file. `dir` itself may be a symlink (the user's data
    /// directory may legitimately be one); a symlink at the database file is
    /// refused. Creates `dir` when missing. Returns the file written.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, DbError> {
        fs::create_dir_all(dir).map_err(|source| DbError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let mut f = kgate_kernel::atomic::create(dir, Path::new(DB_FILE), 0o644)?;
        let mut w = std::io::BufWriter::new(&mut f);
        serde_json::to_writer(&mut w, self)
            .map_err(std::io::Error::other)
            .and_then(|()| w.flush())
            .map_err(|source| DbError::Io {
                path: path.clone(),
                source,
            })?;
        drop(w);
        f.commit()?;
        Ok(path)
    }

    /// The record of `id`, if present.
    pub fn get(&self, id: &str) -> Option<&CveRecord> {
        self.cves
            .binary_search_by(|c| id_key(&c.id).cmp(&id_key(id)))
            .ok()
            .map(|i| &self.cves[i])
    }

    /// Records with at least one file under `prefix`: a directory
    /// (`net/sctp`, `net/sctp/`: files below it) or a file
    /// (`net/sctp/socket.c`).
    pub fn under_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a CveRecord> {
        self.cves
            .iter()
            .filter(move |c| c.files.iter().any(|f| path_under(f, prefix)))
    }
}

/// `file` is `prefix` or below the directory `prefix`.
pub fn path_under(file: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || file == prefix
        || (file.starts_with(prefix) && file.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Sort key of a CVE id: (year, number), so CVE-2024-9999 < CVE-2024-10000.
pub fn id_key(id: &str) -> (u32, u64, &str) {
    let mut parts = id.splitn(3, '-').skip(1);
    let year = parts.next().and_then(|y| y.parse().ok()).unwrap_or(0);
    let num = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    (year, num, id)
}

/// The default database directory: `$XDG_DATA_HOME/kgate`, else
/// `$HOME/.local/share/kgate`.
pub fn default_dir() -> Option<PathBuf> {
    let nonempty = |v: std::ffi::OsString| (!v.is_empty()).then(|| PathBuf::from(v));
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").and_then(nonempty) {
        return Some(d.join("kgate"));
    }
    std::env::var_os("HOME")
        .and_then(nonempty)
        .map(|h| h.join(".local/share/kgate"))
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Today, UTC, as `YYYY-MM-DD`.
pub fn today_utc() -> String {
    now_utc()[..10].to_owned()
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (anything after the tenth
/// character is ignored, so RFC 3339 timestamps work too).
pub fn days_from_date(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = date.get(0..4)?.parse().ok()?;
    let m: i64 = date.get(5..7)?.parse().ok()?;
    let d: i64 = date.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `YYYY-MM-DD` of a day count since 1970-01-01.
pub fn date_from_days(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kgate_kernel::testutil::TempDir;
    use std::os::unix::fs::symlink;

    /// Issue 19, item 3: the save used `File::create` on the predictable
    /// `.cve-db.json.tmp.PID`, so a symlink planted there made root
    /// overwrite its target. Nor may a symlink at the database itself, or
    /// a temp file left by a killed kgate, be written through.
    #[test]
    fn save_never_writes_through_a_planted_symlink() {
        let t = TempDir::new("db-symlink");
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let dir = t.path().join("kgate");
        std::fs::create_dir_all(&dir).unwrap();
        let db = CveDb::new(
            SourceKind::Csv,
            "test".into(),
            Vec::new(),
            TermsOfUse::default(),
        );
        for name in [
            format!(".{DB_FILE}.tmp.{}", std::process::id()),
            format!(".{DB_FILE}.kgate-tmp.{}.0", std::process::id()),
            format!(".{DB_FILE}.kgate-tmp.999999999.0"),
        ] {
            symlink(&victim, dir.join(name)).unwrap();
        }
        db.save(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        CveDb::load_from_dir(&dir).unwrap();
        std::fs::remove_file(dir.join(DB_FILE)).unwrap();
        symlink(&victim, dir.join(DB_FILE)).unwrap();
        let e = db.save(&dir).unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn dates_round_trip() {
        for date in ["1970-01-01", "2024-02-29", "2026-08-31", "2000-03-01"] {
            let days = days_from_date(date).unwrap();
            assert_eq!(date_from_days(days), date);
        }
        assert_eq!(days_from_date("1970-01-02"), Some(1));
        assert_eq!(days_from_date("2024-13-01"), None);
        assert_eq!(days_from_date("junk"), None);
        assert_eq!(now_utc().len(), 20);
    }

    #[test]
    fn id_order_is_numeric() {
        let mut ids = ["CVE-2024-10000", "CVE-2024-9999", "CVE-2023-52433"];
        ids.sort_by_key(|i| id_key(i));
        assert_eq!(ids, ["CVE-2023-52433", "CVE-2024-9999", "CVE-2024-10000"]);
    }

    #[test]
    fn prefix_matches_directories_not_name_prefixes() {
        assert!(path_under("net/sctp/socket.c", "net/sctp"));
        assert!(path_under("net/sctp/socket.c", "net/sctp/"));
        assert!(path_under("net/sctp/socket.c", "net/sctp/socket.c"));
        assert!(!path_under("net/sctp2/x.c", "net/sctp"));
        assert!(path_under("net/sctp/socket.c", ""));
    }
}
