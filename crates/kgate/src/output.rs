//! Shared output helpers: formats, sizes, progress bars, broken pipes.

use std::io::IsTerminal;

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

/// `s` made safe for one line of text output: control characters
/// (`\n`, ESC, DEL, C1), backslash, space, the replacement character
/// (where the kernel's bytes were not UTF-8) and invisible format
/// characters (bidi overrides, zero-width) are written as escapes (`\n`,
/// `\x1b`, `\\`, `\x20`, `\u{fffd}`), so that a file or task name chosen
/// by an unprivileged user can neither end a line, drive the terminal,
/// nor pass for another `key=value` field. JSON output needs none of this:
/// serde escapes exactly.
pub fn escape_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' ' => out.push_str("\\x20"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || is_invisible(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that change how a line displays without showing.
fn is_invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x00ad | 0x061c | 0x180e | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffd
    )
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
}
