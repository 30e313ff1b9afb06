//! Diagnostics: line-precise errors and warnings about a policy file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A position in a policy file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// Line, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub column: usize,
}

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Severity {
    /// The policy is rejected.
    Error,
    /// The policy is accepted, but something looks wrong.
    Warning,
}

/// One finding about a policy: where, which key, what, and what is allowed.
///
/// Displays as `PATH:LINE:COLUMN: KEY: MESSAGE; allowed: A, B; HINT`, with
/// `warning: ` before the key for warnings. `line`/`column` are 0 when the
/// finding has no position (a policy built in memory); they are then left
/// out of the display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The policy file (or a placeholder such as `<policy>`).
    pub path: PathBuf,
    /// Line, 1-based; 0 if unknown.
    pub line: usize,
    /// Column, 1-based; 0 if unknown.
    pub column: usize,
    /// Dotted key: `modules.mode`, `sockets.allow[3]`,
    /// `sysctl."kernel.io_uring_disabled"`. Empty when no key applies (a
    /// syntax error outside any key).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// The values or keys that would have been accepted (may be empty).
    pub allowed: Vec<String>,
    /// A suggestion, e.g. "did you mean `allow`?".
    pub hint: Option<String>,
}

impl Diagnostic {
    /// The position, if known.
    pub fn location(&self) -> Option<Location> {
        (self.line > 0).then_some(Location {
            line: self.line,
            column: self.column,
        })
    }

    /// Is this an error?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if !self.allowed.is_empty() {
            write!(f, "; allowed: {}", self.allowed.join(", "))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{}: cannot read the policy: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The policy has errors; every one found is listed (one per line in
    /// the display), followed by the warnings.
    #[error("{}", render_invalid(errors, warnings))]
    Invalid {
        /// Every error found, in file order.
        errors: Vec<Diagnostic>,
        /// Warnings found along the way.
        warnings: Vec<Diagnostic>,
    },
}

impl PolicyError {
    /// All diagnostics (errors, then warnings); empty for read errors.
    pub fn diagnostics(&self) -> Vec<&Diagnostic> {
        match self {
            PolicyError::Read { .. } => Vec::new(),
            PolicyError::Invalid { errors, warnings } => errors.iter().chain(warnings).collect(),
        }
    }
}

fn render_invalid(errors: &[Diagnostic], warnings: &[Diagnostic]) -> String {
    let mut lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    lines.extend(warnings.iter().map(|w| w.to_string()));
    let n = errors.len();
    lines.push(format!(
        "policy rejected: {n} error{}",
        if n == 1 { "" } else { "s" }
    ));
    lines.join("\n")
}

/// Converts byte offsets of a text to 1-based line/column pairs.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    pub(crate) fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Location {
            line: line + 1,
            column,
        }
    }

    /// The text of a 1-based line, without its newline.
    pub(crate) fn line_text(&self, line: usize) -> &'t str {
        let start = self
            .starts
            .get(line - 1)
            .copied()
            .unwrap_or(self.text.len());
        let end = self.starts.get(line).copied().unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }
}

/// Collects diagnostics while a policy is validated.
#[derive(Debug)]
pub(crate) struct Sink {
    pub(crate) path: PathBuf,
    pub(crate) items: Vec<Diagnostic>,
}

impl Sink {
    pub(crate) fn new(path: &Path) -> Self {
        Sink {
            path: path.to_owned(),
            items: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        at: Option<Location>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let at = at.unwrap_or(Location { line: 0, column: 0 });
        self.items.push(Diagnostic {
            severity,
            path: self.path.clone(),
            line: at.line,
            column: at.column,
            key: key.into(),
            message: message.into(),
            allowed: Vec::new(),
            hint: None,
        });
        self.items.last_mut().expect("just pushed")
    }

    pub(crate) fn error(
        &mut self,
        at: Option<Location>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Severity::Error, at, key, message)
    }

    pub(crate) fn warn(
        &mut self,
        at: Option<Location>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Severity::Warning, at, key, message)
    }
}

impl Diagnostic {
    /// Set the allowed values.
    pub(crate) fn allowing<S: ToString>(
        &mut self,
        allowed: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.allowed = allowed.into_iter().map(|s| s.to_string()).collect();
        self
    }

    /// Suggest the closest allowed value to `got`, if one is close.
    pub(crate) fn suggest<'a>(
        &mut self,
        got: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> &mut Self {
        if let Some(best) = closest(got, candidates) {
            self.hint = Some(format!("did you mean `{best}`?"));
        }
        self
    }
}

/// Edit distance in characters (optimal string alignment: insertions,
/// deletions, substitutions and transpositions of neighbours cost 1).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// The candidate closest to `got` by edit distance, if it is close enough
/// to be a plausible typo (at most a third of the length, at least 1).
pub fn closest<'a>(got: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (got.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(got, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index() {
        let idx = LineIndex::new("ab\ncdé\n\nx");
        assert_eq!(idx.locate(0), Location { line: 1, column: 1 });
        assert_eq!(idx.locate(3), Location { line: 2, column: 1 });
        assert_eq!(idx.locate(7), Location { line: 2, column: 4 });
        assert_eq!(idx.locate(8), Location { line: 3, column: 1 });
        assert_eq!(idx.locate(9), Location { line: 4, column: 1 });
        assert_eq!(idx.line_text(2), "cdé");
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("alow", "allow"), 1);
        assert_eq!(edit_distance("sctpp", "sctp"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("tpc", "tcp"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("alow", ["mode", "root", "allow"]), Some("allow"));
        assert_eq!(closest("zzzz", ["mode", "root", "allow"]), None);
    }

    #[test]
    fn display() {
        let d = Diagnostic {
            severity: Severity::Error,
            path: "web.toml".into(),
            line: 12,
            column: 8,
            key: "modules.mode".into(),
            message: "unknown value \"enforcing\"".into(),
            allowed: vec!["enforce".into(), "audit".into(), "off".into()],
            hint: None,
        };
        assert_eq!(
            d.to_string(),
            "web.toml:12:8: modules.mode: unknown value \"enforcing\"; allowed: enforce, audit, off"
        );
    }
}
