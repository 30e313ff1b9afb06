//! TOML → [`Policy`], collecting every error with its line and column.
//!
//! The document is parsed with `toml_edit`, which keeps the byte span of
//! every key and value, and then walked by hand: that way an unknown key, a
//! wrong type or a bad value anywhere is reported with its position, and
//! all of them are reported, not just the first.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml_edit::{ImDocument, Item, TableLike, Value};

use crate::diag::{Diagnostic, LineIndex, Location, Sink};
use crate::model::*;
use crate::socket::{GrammarError, SocketRule};
use crate::splice::{Endpoint, OnDeny, SplicePair, SplicePreset};
use crate::sysctl::{self, SysctlRange};

/// Parse and validate. Returns the policy (if there were no errors) and
/// every diagnostic (errors and warnings, in file order).
pub(crate) fn parse(text: &str, path: &Path) -> (Option<Policy>, Vec<Diagnostic>) {
    let mut p = Parser {
        idx: LineIndex::new(text),
        sink: Sink::new(path),
    };
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let at = e.span().map(|s| p.idx.locate(s.start));
            let key = at.map(|l| guess_key(&p.idx, l.line)).unwrap_or_default();
            let message = e.message().trim().replace('\n', "; ");
            p.sink.error(at, key, format!("TOML syntax: {message}"));
            return (None, p.sink.items);
        }
    };
    let policy = p.root(doc.as_table());
    let mut items = p.sink.items;
    items.sort_by_key(|d| (d.line, d.column));
    if items.iter().any(Diagnostic::is_error) {
        (None, items)
    } else {
        let mut policy = policy;
        policy.source = Some(path.to_owned());
        (Some(policy), items)
    }
}

/// Best effort: the dotted key on `line`, from the last table header above
/// it and the `key =` on the line itself.
fn guess_key(idx: &LineIndex<'_>, line: usize) -> String {
    let mut header = String::new();
    for n in 1..line {
        let t = idx.line_text(n).trim();
        if t.starts_with('[') {
            header = t
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
        }
    }
    let t = idx.line_text(line).trim();
    if t.starts_with('[') {
        return String::new();
    }
    match t.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() => {
            let k = k.trim();
            if header.is_empty() {
                k.to_owned()
            } else {
                format!("{header}.{k}")
            }
        }
        _ => header,
    }
}

/// A key path segment, quoted unless bare.
pub(crate) fn key_segment(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_owned()
    } else {
        format!("{k:?}")
    }
}

fn type_of(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => value_type(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "an inline table",
    }
}

struct Parser<'t> {
    idx: LineIndex<'t>,
    sink: Sink,
}

/// A raw allowlist entry before its value is parsed.
struct RawEntry {
    name: String,
    reason: Option<String>,
    at: Option<Location>,
    key: String,
}

impl Parser<'_> {
    fn at(&self, span: Option<Range<usize>>) -> Option<Location> {
        span.map(|s| self.idx.locate(s.start))
    }

    /// Position of `key`'s value in `tbl`, else of the key itself.
    fn item_at(&self, tbl: &dyn TableLike, key: &str) -> Option<Location> {
        let (k, item) = tbl.get_key_value(key)?;
        self.at(item.span().or_else(|| k.span()))
    }

    fn key_at(&self, tbl: &dyn TableLike, key: &str) -> Option<Location> {
        let (k, item) = tbl.get_key_value(key)?;
        self.at(k.span().or_else(|| item.span()))
    }

    fn check_keys(&mut self, tbl: &dyn TableLike, prefix: &str, allowed: &[&str]) {
        let unknown: Vec<String> = tbl
            .iter()
            .map(|(k, _)| k.to_owned())
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        for k in unknown {
            let at = self.key_at(tbl, &k);
            let path = join(prefix, &k);
            self.sink
                .error(at, path, format!("unknown key `{k}`"))
                .allowing(allowed.iter())
                .suggest(&k, allowed.iter().copied());
        }
    }

    fn wrong_type(&mut self, at: Option<Location>, key: &str, want: &str, got: &str) {
        self.sink
            .error(at, key, format!("expected {want}, found {got}"));
    }

    /// A string value, or an error if present with another type.
    fn string(
        &mut self,
        tbl: &dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Option<(String, Option<Location>)> {
        let item = tbl.get(key)?;
        let at = self.item_at(tbl, key);
        match item.as_str() {
            Some(s) => Some((s.to_owned(), at)),
            None => {
                let got = type_of(item);
                self.wrong_type(at, &join(prefix, key), "a string", got);
                None
            }
        }
    }

    /// A string value from a fixed set.
    fn choice<T>(
        &mut self,
        tbl: &dyn TableLike,
        prefix: &str,
        key: &str,
        allowed: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let (s, at) = self.string(tbl, prefix, key)?;
        match parse(&s) {
            Some(v) => Some(v),
            None => {
                self.sink
                    .error(at, join(prefix, key), format!("unknown value {s:?}"))
                    .allowing(allowed.iter())
                    .suggest(&s, allowed.iter().copied());
                None
            }
        }
    }

    fn section<'d>(&mut self, root: &'d dyn TableLike, key: &str) -> Option<&'d dyn TableLike> {
        let item = root.get(key)?;
        match item.as_table_like() {
            Some(t) => Some(t),
            None => {
                let at = self.item_at(root, key);
                self.wrong_type(at, key, "a table", type_of(item));
                None
            }
        }
    }

    fn root(&mut self, root: &toml_edit::Table) -> Policy {
        const KEYS: &[&str] = &[
            "version", "meta", "modules", "sockets", "splice", "userns", "sysctl", "seccomp",
        ];
        self.check_keys(root, "", KEYS);
        let mut policy = Policy::default();
        match root.get("version") {
            None => {
                self.sink
                    .error(
                        Some(Location { line: 1, column: 1 }),
                        "version",
                        "missing required key `version`; write `version = 1` at the top",
                    )
                    .allowing(["1"]);
            }
            Some(item) => {
                let at = self.item_at(root, "version");
                match item.as_integer() {
                    Some(FORMAT_VERSION) => {}
                    Some(v) => {
                        self.sink
                            .error(
                                at,
                                "version",
                                format!("unsupported policy format version {v}"),
                            )
                            .allowing(["1"]);
                    }
                    None => self.wrong_type(at, "version", "an integer", type_of(item)),
                }
            }
        }
        if let Some(t) = self.section(root, "meta") {
            self.check_keys(t, "meta", &["name", "kernel", "generated_by"]);
            policy.meta.name = self.string(t, "meta", "name").map(|x| x.0);
            policy.meta.kernel = self.string(t, "meta", "kernel").map(|x| x.0);
            policy.meta.generated_by = self.string(t, "meta", "generated_by").map(|x| x.0);
        }
        if let Some(t) = self.section(root, "modules") {
            policy.modules = self.modules(t);
        }
        if let Some(t) = self.section(root, "sockets") {
            self.check_keys(t, "sockets", &["mode", "allow"]);
            let s = &mut policy.sockets;
            s.mode = self
                .choice(t, "sockets", "mode", Mode::ALL, Mode::parse)
                .unwrap_or_default();
            s.allow = self.list(t, "sockets", "allow", SocketRule::parse);
        }
        if let Some(t) = self.section(root, "splice") {
            self.check_keys(
                t,
                "splice",
                &["mode", "preset", "allow", "pairs", "on_deny"],
            );
            let s = &mut policy.splice;
            s.mode = self
                .choice(t, "splice", "mode", Mode::ALL, Mode::parse)
                .unwrap_or_default();
            // A preset gives the base lists; `allow` and `pairs` add to them.
            if let Some(p) = self.choice(
                t,
                "splice",
                "preset",
                SplicePreset::ALL,
                SplicePreset::parse,
            ) {
                let base = crate::model::SpliceSection::preset(p, s.mode);
                s.allow = base.allow;
                s.pairs = base.pairs;
            }
            s.allow
                .extend(self.list(t, "splice", "allow", Endpoint::parse));
            s.pairs
                .extend(self.list(t, "splice", "pairs", SplicePair::parse));
            s.on_deny = self
                .choice(t, "splice", "on_deny", OnDeny::ALL, OnDeny::parse)
                .unwrap_or_default();
        }
        if let Some(t) = self.section(root, "userns") {
            self.check_keys(t, "userns", &["unprivileged", "allow_exe"]);
            policy.userns.unprivileged = self
                .choice(
                    t,
                    "userns",
                    "unprivileged",
                    UsernsMode::ALL,
                    UsernsMode::parse,
                )
                .unwrap_or_default();
            policy.userns.allow_exe = self.list(t, "userns", "allow_exe", |s| {
                if s.starts_with('/') {
                    Ok(s.to_owned())
                } else {
                    Err(GrammarError::new(
                        format!("relative path `{s}`: allow_exe needs absolute paths (as the kernel resolves them, symlinks followed)"),
                        vec!["an absolute path".into()],
                        s,
                    ))
                }
            });
        }
        if let Some(t) = self.section(root, "seccomp") {
            policy.seccomp = self.seccomp(t);
        }
        if let Some(t) = self.section(root, "sysctl") {
            let mut out = BTreeMap::new();
            self.sysctls(t, "", &mut out);
            policy.sysctl = out;
        }
        policy
    }

    fn modules(&mut self, t: &dyn TableLike) -> ModulesSection {
        self.check_keys(t, "modules", &["mode", "root", "allow"]);
        ModulesSection {
            mode: self
                .choice(t, "modules", "mode", Mode::ALL, Mode::parse)
                .unwrap_or_default(),
            root: self
                .choice(t, "modules", "root", RootMode::ALL, RootMode::parse)
                .unwrap_or_default(),
            allow: self.list(t, "modules", "allow", |s| {
                let ok = !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if ok {
                    Ok(kgate_kernel::canonical_name(s))
                } else {
                    Err(GrammarError::new(
                        format!("`{s}` is not a module name"),
                        vec!["letters, digits, `_` and `-`".into()],
                        s,
                    ))
                }
            }),
        }
    }

    fn seccomp(&mut self, t: &dyn TableLike) -> SeccompSection {
        self.check_keys(t, "seccomp", &["mode", "allow", "sockets", "on_deny"]);
        let allow = self.list(t, "seccomp", "allow", |s| {
            if crate::syscall::number(s).is_some() {
                Ok(s.to_owned())
            } else {
                let mut near: Vec<&str> = crate::syscall::X86_64.iter().map(|(_, n)| *n).collect();
                near.sort_by_key(|n| crate::diag::edit_distance(n, s));
                Err(GrammarError::new(
                    format!("`{s}` is not an x86_64 syscall name"),
                    near.into_iter().take(1).map(str::to_owned).collect(),
                    s,
                ))
            }
        });
        SeccompSection {
            mode: self
                .choice(t, "seccomp", "mode", Mode::ALL, Mode::parse)
                .unwrap_or_default(),
            allow,
            sockets: self.list(t, "seccomp", "sockets", SocketFamily::parse),
            on_deny: self
                .choice(
                    t,
                    "seccomp",
                    "on_deny",
                    SeccompErrno::ALL,
                    SeccompErrno::parse,
                )
                .unwrap_or_default(),
        }
    }

    /// The raw entries of an allow list: strings or `{ name, reason }`.
    fn raw_entries(&mut self, tbl: &dyn TableLike, prefix: &str, key: &str) -> Vec<RawEntry> {
        let Some(item) = tbl.get(key) else {
            return Vec::new();
        };
        let path = join(prefix, key);
        const WANT: &str = "an array of strings or { name = \"...\", reason = \"...\" } tables";
        let Some(array) = item.as_array() else {
            let at = self.item_at(tbl, key);
            self.wrong_type(at, &path, WANT, type_of(item));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, v) in array.iter().enumerate() {
            let key = format!("{path}[{i}]");
            let at = self.at(v.span());
            match v {
                Value::String(s) => out.push(RawEntry {
                    name: s.value().clone(),
                    reason: None,
                    at,
                    key,
                }),
                Value::InlineTable(t) => {
                    self.check_keys(t, &key, &["name", "reason"]);
                    let reason = self.string(t, &key, "reason").map(|x| x.0);
                    match t.get("name") {
                        None => {
                            self.sink
                                .error(at, &key, "missing key `name`")
                                .allowing(["name", "reason"]);
                        }
                        Some(_) => {
                            if let Some((name, name_at)) = self.string(t, &key, "name") {
                                out.push(RawEntry {
                                    name,
                                    reason,
                                    at: name_at.or(at),
                                    key,
                                });
                            }
                        }
                    }
                }
                other => self.wrong_type(
                    at,
                    &key,
                    "a string or { name, reason } table",
                    value_type(other),
                ),
            }
        }
        out
    }

    /// Parse an allow list; bad entries are errors, duplicates warnings.
    fn list<T: Ord + Clone + std::fmt::Display>(
        &mut self,
        tbl: &dyn TableLike,
        prefix: &str,
        key: &str,
        parse: impl Fn(&str) -> Result<T, GrammarError>,
    ) -> Vec<Entry<T>> {
        let mut out: Vec<Entry<T>> = Vec::new();
        for raw in self.raw_entries(tbl, prefix, key) {
            match parse(&raw.name) {
                Ok(value) => {
                    if let Some(first) = out.iter().find(|e| e.value == value) {
                        let first_line = first
                            .line()
                            .map_or(String::new(), |l| format!(" (first at line {l})"));
                        let same = if value.to_string() == raw.name {
                            format!("duplicate entry `{}`{first_line}", raw.name)
                        } else {
                            format!(
                                "duplicate entry `{}` (same as `{value}`){first_line}",
                                raw.name
                            )
                        };
                        self.sink.warn(raw.at, raw.key, same);
                        continue;
                    }
                    out.push(Entry {
                        value,
                        reason: raw.reason,
                        at: raw.at,
                    });
                }
                Err(e) => {
                    let allowed = e.allowed.clone();
                    self.sink
                        .error(raw.at, raw.key, e.message)
                        .allowing(allowed.iter())
                        .suggest(&e.got, allowed.iter().map(String::as_str));
                }
            }
        }
        out.sort_by(|a, b| a.value.cmp(&b.value));
        out
    }

    /// `[sysctl]`, flattening unquoted dotted keys (`kernel.modprobe = ...`
    /// without quotes is a nested table in TOML).
    fn sysctls(
        &mut self,
        tbl: &dyn TableLike,
        prefix: &str,
        out: &mut BTreeMap<String, Entry<SysctlValue>>,
    ) {
        let keys: Vec<String> = tbl.iter().map(|(k, _)| k.to_owned()).collect();
        for k in keys {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let item = tbl.get(&k).expect("key just listed");
            if let Some(sub) = item.as_table_like() {
                self.sysctls(sub, &name, out);
                continue;
            }
            let key = format!("sysctl.{}", key_segment(&name));
            let at = self.item_at(tbl, &k);
            let key_at = self.key_at(tbl, &k);
            if let Some(value) = self.sysctl_value(&name, item, &key, at, key_at) {
                if out.contains_key(&name) {
                    self.sink.warn(
                        key_at,
                        &key,
                        format!("`{name}` is set twice; the last value wins"),
                    );
                }
                out.insert(
                    name,
                    Entry {
                        value,
                        reason: None,
                        at: key_at,
                    },
                );
            }
        }
    }

    fn sysctl_value(
        &mut self,
        name: &str,
        item: &Item,
        key: &str,
        at: Option<Location>,
        key_at: Option<Location>,
    ) -> Option<SysctlValue> {
        let value = match item.as_value() {
            Some(Value::Integer(i)) => SysctlValue::Int(*i.value()),
            Some(Value::String(s)) => SysctlValue::Str(s.value().clone()),
            Some(Value::Boolean(b)) => SysctlValue::Bool(*b.value()),
            _ => {
                self.wrong_type(at, key, "an integer, a string or a boolean", type_of(item));
                return None;
            }
        };
        let Some(range) = sysctl::range(name) else {
            if !sysctl::is_valid_name(name) {
                self.sink
                    .error(key_at, key, format!("`{name}` is not a sysctl name"))
                    .allowing(["dotted lower-case names such as kernel.modprobe"]);
                return None;
            }
            let names = sysctl::SYSCTL_RANGES.iter().map(|(n, _)| *n);
            self.sink
                .warn(
                    key_at,
                    key,
                    format!("`{name}` is not one of kgate's attack-surface sysctls; it is written as given"),
                )
                .suggest(name, names);
            return Some(value);
        };
        match (range, &value) {
            (SysctlRange::Int { min, max }, SysctlValue::Int(v)) => {
                if *v < min || max.is_some_and(|m| *v > m) {
                    self.sink
                        .error(at, key, format!("value {v} is out of range"))
                        .allowing(range.describe());
                    return None;
                }
                if let Some(why) = sysctl::one_way(name, *v) {
                    self.sink.warn(
                        at,
                        key,
                        format!("{name} = {v} cannot be reverted until reboot: {why}"),
                    );
                }
            }
            (SysctlRange::EmptyOrAbsolutePath, SysctlValue::Str(s)) => {
                if !(s.is_empty() || s.starts_with('/')) {
                    self.sink
                        .error(at, key, format!("{s:?} is not an absolute path"))
                        .allowing(range.describe());
                    return None;
                }
            }
            (SysctlRange::Int { .. }, _) => {
                self.wrong_type(at, key, "an integer", type_of(item));
                return None;
            }
            (SysctlRange::EmptyOrAbsolutePath, _) => {
                self.wrong_type(at, key, "a string", type_of(item));
                return None;
            }
        }
        Some(value)
    }
}

fn join(prefix: &str, key: &str) -> String {
    let k = key_segment(key);
    if prefix.is_empty() {
        k
    } else {
        format!("{prefix}.{k}")
    }
}
