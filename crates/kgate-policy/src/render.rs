//! The canonical TOML rendering of a policy.

use std::fmt::Write;

use crate::model::*;
use crate::parse::key_segment;

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn entries<T: std::fmt::Display + Ord>(out: &mut String, key: &str, list: &[Entry<T>]) {
    if list.is_empty() {
        let _ = writeln!(out, "{key} = []");
        return;
    }
    let mut sorted: Vec<&Entry<T>> = list.iter().collect();
    sorted.sort_by(|a, b| a.value.cmp(&b.value));
    sorted.dedup_by(|a, b| a.value == b.value);
    let _ = writeln!(out, "{key} = [");
    for e in sorted {
        let name = quote(&e.value.to_string());
        match &e.reason {
            Some(r) => {
                let _ = writeln!(out, "    {{ name = {name}, reason = {} }},", quote(r));
            }
            None => {
                let _ = writeln!(out, "    {name},");
            }
        }
    }
    out.push_str("]\n");
}

pub(crate) fn to_toml(p: &Policy) -> String {
    let mut out = String::new();
    out.push_str("# kgate policy, format version 1. See docs/policy.md.\n");
    out.push_str("# Check it with `kgate policy check FILE`.\n");
    out.push_str("version = 1\n");

    let m = &p.meta;
    if m != &Meta::default() {
        out.push_str("\n[meta]\n");
        for (k, v) in [
            ("name", &m.name),
            ("kernel", &m.kernel),
            ("generated_by", &m.generated_by),
        ] {
            if let Some(v) = v {
                let _ = writeln!(out, "{k} = {}", quote(v));
            }
        }
    }

    if p.modules != ModulesSection::default() {
        out.push_str("\n[modules]\n");
        let _ = writeln!(out, "mode = {}", quote(p.modules.mode.as_str()));
        let _ = writeln!(out, "root = {}", quote(p.modules.root.as_str()));
        entries(&mut out, "allow", &p.modules.allow);
    }

    if p.sockets != SocketsSection::default() {
        out.push_str("\n[sockets]\n");
        let _ = writeln!(out, "mode = {}", quote(p.sockets.mode.as_str()));
        entries(&mut out, "allow", &p.sockets.allow);
    }

    if p.splice != SpliceSection::default() {
        out.push_str("\n[splice]\n");
        let _ = writeln!(out, "mode = {}", quote(p.splice.mode.as_str()));
        entries(&mut out, "allow", &p.splice.allow);
        if !p.splice.pairs.is_empty() {
            entries(&mut out, "pairs", &p.splice.pairs);
        }
        let _ = writeln!(out, "on_deny = {}", quote(p.splice.on_deny.as_str()));
    }

    if p.userns != UsernsSection::default() {
        out.push_str("\n[userns]\n");
        let _ = writeln!(
            out,
            "unprivileged = {}",
            quote(p.userns.unprivileged.as_str())
        );
        entries(&mut out, "allow_exe", &p.userns.allow_exe);
    }

    if p.seccomp != SeccompSection::default() {
        out.push_str("\n[seccomp]\n");
        let _ = writeln!(out, "mode = {}", quote(p.seccomp.mode.as_str()));
        let _ = writeln!(out, "on_deny = {}", quote(p.seccomp.on_deny.as_str()));
        entries(&mut out, "allow", &p.seccomp.allow);
        entries(&mut out, "sockets", &p.seccomp.sockets);
    }

    if !p.sysctl.is_empty() {
        out.push_str("\n[sysctl]\n");
        for (name, e) in &p.sysctl {
            let key = if key_segment(name) == *name {
                name.clone()
            } else {
                quote(name)
            };
            let value = match &e.value {
                SysctlValue::Int(i) => i.to_string(),
                SysctlValue::Str(s) => quote(s),
                SysctlValue::Bool(b) => b.to_string(),
            };
            let _ = writeln!(out, "{key} = {value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        assert_eq!(quote("é"), "\"é\"");
    }
}
