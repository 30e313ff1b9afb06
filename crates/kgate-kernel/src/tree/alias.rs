//! Alias resolution as kmod does it: fnmatch(3) patterns, and an index of
//! every module's aliases, normalized once.

use std::collections::HashMap;

use super::Module;

/// Every module's aliases normalized once ([`crate::normalize_alias`]),
/// for [`KernelTree::resolve`]: the literal ones by value, and the glob
/// patterns (most of Debian's 30,000: `pci:v00008086d*sv*...`) by their
/// literal prefix, so that a request is compared only with the patterns
/// whose prefix it starts with.
#[derive(Debug, Clone, Default)]
pub(super) struct AliasIndex {
    literal: HashMap<String, Vec<usize>>,
    globs: HashMap<String, Vec<(String, usize)>>,
}

impl AliasIndex {
    pub(super) fn build(modules: &[Module]) -> AliasIndex {
        let mut ix = AliasIndex::default();
        for (i, m) in modules.iter().enumerate() {
            for a in &m.aliases {
                let n = crate::normalize_alias(a);
                match n.find(['*', '?', '[']) {
                    Some(at) => ix.globs.entry(n[..at].to_owned()).or_default().push((n, i)),
                    None => {
                        let v = ix.literal.entry(n).or_default();
                        if v.last() != Some(&i) {
                            v.push(i);
                        }
                    }
                }
            }
        }
        ix
    }

    /// Indexes of the modules with an alias matching the normalized
    /// `request`, sorted.
    pub(super) fn matches(&self, request: &str) -> Vec<usize> {
        let mut out: Vec<usize> = self.literal.get(request).cloned().unwrap_or_default();
        for end in (0..=request.len()).filter(|e| request.is_char_boundary(*e)) {
            for (pattern, i) in self.globs.get(&request[..end]).into_iter().flatten() {
                if glob_match(pattern, request) {
                    out.push(*i);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// fnmatch(3) without flags, as kmod uses for alias patterns: `*`, `?` and
/// `[...]` classes (with `!` or `^` negation and ranges).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
        // Returns (matched, bytes consumed including the closing ']').
        let mut i = 1;
        let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == b']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                if p[i] <= c && c <= p[i + 2] {
                    matched = true;
                }
                i += 3;
            } else {
                if p[i] == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(b'?') => {
                pi += 1;
                ti += 1;
                continue;
            }
            Some(b'[') => {
                if let Some((true, len)) = class(&p[pi..], t[ti]) {
                    pi += len;
                    ti += 1;
                    continue;
                }
                if class(&p[pi..], t[ti]).is_none() && t[ti] == b'[' {
                    pi += 1;
                    ti += 1;
                    continue;
                }
            }
            Some(&c) if c == t[ti] => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}
