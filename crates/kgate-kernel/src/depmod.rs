//! Parsers for depmod's output and the kernel's own module lists in
//! `/lib/modules/VER`: `modules.dep`, `modules.alias`, `modules.softdep`,
//! `modules.builtin`, and `/proc/modules` (or `lsmod` output).
//!
//! The parsers take text and never fail: a malformed line is skipped and
//! counted, so one damaged file degrades the survey instead of stopping it.

use std::collections::{BTreeMap, BTreeSet};

use crate::canonical_name;
use crate::ko::module_name_from_path;

/// `modules.dep`: module name → names of every module it depends on
/// (depmod writes the full transitive list, in load order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepFile {
    /// Dependencies by module name.
    pub deps: BTreeMap<String, Vec<String>>,
    /// Path of each module relative to the modules directory.
    pub paths: BTreeMap<String, String>,
    /// Lines that could not be parsed.
    pub bad_lines: usize,
}

/// Parse `modules.dep` (`kernel/a/b.ko.xz: kernel/c.ko.xz kernel/d.ko.xz`).
pub fn parse_modules_dep(text: &str) -> DepFile {
    let mut out = DepFile::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some((module, deps)) = line.split_once(':') else {
            out.bad_lines += 1;
            continue;
        };
        let Some(name) = module_name_from_path(std::path::Path::new(module.trim())) else {
            out.bad_lines += 1;
            continue;
        };
        let deps = deps
            .split_whitespace()
            .filter_map(|d| module_name_from_path(std::path::Path::new(d)))
            .collect();
        out.paths.insert(name.clone(), module.trim().to_owned());
        out.deps.insert(name, deps);
    }
    out
}

/// Parse `modules.alias` (`alias PATTERN MODULE`) into module → aliases.
pub fn parse_modules_alias(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("alias") {
            continue;
        }
        if let (Some(pattern), Some(module)) = (words.next(), words.next()) {
            out.entry(canonical_name(module))
                .or_default()
                .push(pattern.to_owned());
        }
    }
    out
}

/// Soft dependencies of one module: modprobe loads `pre` before it and
/// `post` after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftDep {
    /// Loaded before the module.
    pub pre: Vec<String>,
    /// Loaded after the module.
    pub post: Vec<String>,
}

/// Parse a softdep value (`pre: a b post: c`) into `dep`.
pub fn parse_softdep_value(value: &str, dep: &mut SoftDep) {
    let mut post = false;
    for word in value.split_whitespace() {
        match word {
            "pre:" => post = false,
            "post:" => post = true,
            name if post => dep.post.push(canonical_name(name)),
            name => dep.pre.push(canonical_name(name)),
        }
    }
}

/// Parse `modules.softdep` (`softdep MODULE pre: a b post: c`).
pub fn parse_modules_softdep(text: &str) -> BTreeMap<String, SoftDep> {
    let mut out: BTreeMap<String, SoftDep> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("softdep ") else {
            continue;
        };
        let rest = rest.trim_start();
        let (module, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        parse_softdep_value(value, out.entry(canonical_name(module)).or_default());
    }
    out
}

/// Parse `modules.builtin` (one `kernel/path/name.ko` per line) into names.
pub fn parse_modules_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| module_name_from_path(std::path::Path::new(l.trim())))
        .collect()
}

/// Parse `/proc/modules` or `lsmod` output into the set of loaded module
/// names. The `lsmod` header line (`Module Size Used by`) is skipped.
pub fn parse_proc_modules(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "Module")
        .filter(|name| {
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .map(canonical_name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_dep() {
        let dep = parse_modules_dep(
            "kernel/net/sctp/sctp.ko.xz: kernel/net/ipv4/udp_tunnel.ko.xz kernel/lib/libcrc32c.ko.xz\n\
             kernel/fs/ext4/ext4.ko.zst:\n\
             garbage line\n",
        );
        assert_eq!(dep.deps["sctp"], vec!["udp_tunnel", "libcrc32c"]);
        assert_eq!(dep.deps["ext4"], Vec::<String>::new());
        assert_eq!(dep.paths["sctp"], "kernel/net/sctp/sctp.ko.xz");
        assert_eq!(dep.bad_lines, 1);
    }

    #[test]
    fn modules_alias_and_softdep() {
        let a = parse_modules_alias(
            "# Aliases extracted from modules themselves.\nalias net-pf-40 vsock\nalias fs-ext4 ext4\nalias ext3 ext4\n",
        );
        assert_eq!(a["vsock"], vec!["net-pf-40"]);
        assert_eq!(a["ext4"], vec!["fs-ext4", "ext3"]);
        let s = parse_modules_softdep(
            "# Soft dependencies\nsoftdep crc32c pre: crc32c-intel\nsoftdep xfs pre: crc32c post: a-b\n",
        );
        assert_eq!(s["crc32c"].pre, vec!["crc32c_intel"]);
        assert_eq!(s["xfs"].post, vec!["a_b"]);
    }

    #[test]
    fn loaded_modules_in_both_formats() {
        let proc = "vsock 57344 0 - Live 0x0000000000000000\nsctp 458752 2 - Live 0x0\n";
        let lsmod = "Module                  Size  Used by\nvsock                  57344  0\nnf-tables 1 0\n";
        assert_eq!(
            parse_proc_modules(proc),
            ["sctp", "vsock"].map(String::from).into()
        );
        assert_eq!(
            parse_proc_modules(lsmod),
            ["nf_tables", "vsock"].map(String::from).into()
        );
    }

    #[test]
    fn builtin_list() {
        let b = parse_modules_builtin(
            "kernel/fs/ext4/ext4.ko\nkernel/arch/x86/events/amd/amd-uncore.ko\n",
        );
        assert!(b.contains("ext4") && b.contains("amd_uncore"));
    }
}
