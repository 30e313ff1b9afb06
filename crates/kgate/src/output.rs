//! Shared output helpers: formats, sizes, progress bars, broken pipes.

use std::io::IsTerminal;

use anyhow::Context as _;
use clap::ValueEnum;

/// Output format of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people.
    #[default]
    Text,
    /// JSON with a versioned schema (see docs/json.md).
    Json,
}

/// True when the error chain ends in EPIPE: `kgate survey | head` is not an
/// error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind);
        // serde_json wraps the writer's error without exposing it as a source.
        let json = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// `1234567` → `1.2 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `s` made safe to print inside a line of prose: control characters
/// (`\n`, ESC, BEL, DEL, C1), backslash, the replacement character (where
/// the bytes were not UTF-8) and invisible format characters (bidi
/// overrides, zero-width) are written as escapes (`\n`, `\x1b`, `\\`,
/// `\u{fffd}`); spaces stay. A module name, alias or `.modinfo` string
/// chosen by whoever built a module can then neither end a line nor drive
/// the terminal (an OSC title, a screen clear; issue 19). JSON output needs
/// none of this: serde escapes exactly.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s, Escape::Text);
    out
}

/// [`escape_text`], and spaces too (`\x20`): for one `key=value` field of
/// an event line, where a space would start a field of its own.
pub fn escape_field(s: &str) -> String {
    // escape_text writes no space of its own, so this only touches the input's.
    escape_text(s).replace(' ', "\\x20")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Everything, backslash included: an untrusted string in a line.
    Text,
    /// Keep newlines, tabs and backslashes: a whole report ([`TextOut`]).
    Layout,
}

fn push_escaped(out: &mut String, s: &str, how: Escape) {
    use std::fmt::Write as _;
    for c in s.chars() {
        match c {
            '\n' | '\t' | '\\' if how == Escape::Layout => out.push(c),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Characters that change how a line displays without showing.
fn is_invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x00ad | 0x061c | 0x180e | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffd
    )
}

/// A writer for text reports that lets no terminal control through: every
/// control character except newline and tab, and every invisible format
/// character, is written escaped as in [`escape_text`]; bytes that are not
/// UTF-8 become `\xNN`. Printers still escape untrusted strings with
/// [`escape_text`] (which also escapes newlines); this catches any string a
/// printer forgot. Never wrap JSON in it: JSON stays exact.
pub struct TextOut<W: std::io::Write> {
    inner: W,
    /// The start of a UTF-8 sequence split across two writes.
    pending: Vec<u8>,
}

impl<W: std::io::Write> TextOut<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> TextOut<W> {
        TextOut {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<W: std::io::Write> std::io::Write for TextOut<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::fmt::Write as _;
        self.pending.extend_from_slice(buf);
        let mut out = String::with_capacity(self.pending.len());
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    push_escaped(&mut out, s, Escape::Layout);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // from_utf8 said this prefix is valid, so never the default.
                    push_escaped(
                        &mut out,
                        std::str::from_utf8(good).unwrap_or_default(),
                        Escape::Layout,
                    );
                    match e.error_len() {
                        Some(n) => {
                            for b in &bad[..n] {
                                let _ = write!(out, "\\x{b:02x}");
                            }
                            rest = &bad[n..];
                        }
                        // An incomplete sequence at the end: wait for the rest.
                        None => {
                            rest = bad;
                            break;
                        }
                    }
                }
            }
        }
        let rest = rest.to_vec();
        self.pending = rest;
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        use std::fmt::Write as _;
        if !self.pending.is_empty() {
            let mut out = String::new();
            for b in std::mem::take(&mut self.pending) {
                let _ = write!(out, "\\x{b:02x}");
            }
            self.inner.write_all(out.as_bytes())?;
        }
        self.inner.flush()
    }
}

impl<W: std::io::Write> Drop for TextOut<W> {
    fn drop(&mut self) {
        // An error here has nowhere to go; run's own flush reports it.
        let _ = std::io::Write::flush(self);
    }
}

/// A progress bar on stderr, only when stderr is a terminal.
pub fn progress_bar(total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || total == 0 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    let style =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta} left)")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    Some(bar)
}

/// Write the output file `path` (`-o FILE`) with
/// [`kgate_kernel::atomic`]: a temporary file next to it, never through a
/// symlink, fsynced and renamed over it (mode 0644).
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = create_file(path)?;
    f.write_all(bytes)
        .and_then(|()| f.commit().map_err(std::io::Error::other))
        .with_context(|| format!("failed to write {}", path.display()))
}

/// Start writing the output file `path` as [`write_file`] does; the
/// content is in place when [`NewFile::commit`](kgate_kernel::atomic::NewFile::commit)
/// returns, and nothing is left if it is dropped.
pub fn create_file(path: &std::path::Path) -> anyhow::Result<kgate_kernel::atomic::NewFile> {
    use std::path::Path;
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    kgate_kernel::atomic::create(dir, Path::new(name), 0o644)
        .with_context(|| format!("failed to write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
    }

    #[test]
    fn escape_field_keeps_one_line_and_no_escape_sequences() {
        assert_eq!(escape_field("sshd"), "sshd");
        assert_eq!(escape_field("net_pf_40"), "net_pf_40");
        assert_eq!(
            escape_field("ev\nevent allow module:x\x1b[2K"),
            "ev\\nevent\\x20allow\\x20module:x\\x1b[2K"
        );
        assert_eq!(escape_field("a\\b"), "a\\\\b");
        assert_eq!(escape_field("\r\t\x7f\u{9b}"), "\\r\\t\\x7f\\u{9b}");
        assert_eq!(escape_field("bad\u{fffd}"), "bad\\u{fffd}");
        assert_eq!(escape_field("\u{202e}txt"), "\\u{202e}txt");
        assert_eq!(escape_field("café"), "café");
        // Escaping is unambiguous: a literal backslash-n differs from a newline.
        assert_ne!(escape_field("\\n"), escape_field("\n"));
    }

    #[test]
    fn escape_text_keeps_spaces_and_escapes_terminal_controls() {
        assert_eq!(
            escape_text("loaded, and reachable"),
            "loaded, and reachable"
        );
        assert_eq!(
            escape_text("t\x1b]0;pwned\x07 \x1b[2J\n"),
            "t\\x1b]0;pwned\\x07 \\x1b[2J\\n"
        );
        assert_eq!(
            escape_text("a\\b \u{9b}\u{202e}"),
            "a\\\\b \\u{9b}\\u{202e}"
        );
    }

    #[test]
    fn text_out_keeps_layout_and_escapes_controls_across_writes() {
        use std::io::Write;
        let mut buf = Vec::new();
        {
            let mut w = TextOut::new(&mut buf);
            write!(w, "a\tb\\c\n\x1b[2J").unwrap();
            // A C1 CSI (U+009B) split across two writes, then a bad byte.
            w.write_all(&[0xc2]).unwrap();
            w.write_all(&[0x9b, b'x', 0xff, b'\n']).unwrap();
            w.flush().unwrap();
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "a\tb\\c\n\\x1b[2J\\u{9b}x\\xff\n"
        );
    }
}
