//! A bare git directory of the kernel CNA's vulns repository, read through
//! the `git` CLI: `git log` for each record's first date, `git cat-file
//! --batch` for the records themselves, every blob size checked before it
//! is read.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;

use super::{
    parse_cve_json, ImportError, ImportOptions, ImportProgress, NotImported, Skipped,
    MAX_RECORD_BYTES,
};
use crate::db::CveRecord;

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

pub(super) fn git_head(dir: &Path) -> Option<String> {
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

pub(super) fn read_vulns_bare(
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
