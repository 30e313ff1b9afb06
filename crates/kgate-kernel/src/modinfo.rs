//! Parsing `.modinfo` sections and `modules.builtin.modinfo`.
//!
//! A module's `.modinfo` section is a sequence of NUL-terminated `key=value`
//! strings, possibly separated by padding NULs. The kernel build writes the
//! same records for builtin modules into `lib/modules/VER/modules.builtin.modinfo`,
//! each key prefixed with the module name: `ext4.alias=fs-ext4\0`.
//!
//! Both parsers accept any bytes: invalid UTF-8 is decoded lossily, records
//! without `=` and unknown keys are ignored, and nothing panics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::canonical_name;

/// What a module's `.modinfo` section says about it.
///
/// Module names (`name`, `depends`, softdeps, weakdeps) are canonical
/// ([`crate::canonical_name`]) and each list holds a name at most once, in
/// order of first appearance. Aliases are kept verbatim, in order, including
/// repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModInfo {
    /// `name=`: the module's own name (first occurrence wins).
    pub name: Option<String>,
    /// `alias=` (repeated): patterns such as `net-pf-2-proto-132` or
    /// `pci:v00008086d*`, verbatim.
    pub aliases: Vec<String>,
    /// `depends=`: modules whose symbols this one uses (comma-separated in
    /// the section, possibly empty).
    pub depends: Vec<String>,
    /// The `pre:` part of `softdep=` entries: modules to load before this one.
    pub softdep_pre: Vec<String>,
    /// The `post:` part of `softdep=` entries: modules to load after this one.
    pub softdep_post: Vec<String>,
    /// `weakdep=` (repeated): modules this one may use at run time
    /// (Linux 6.11+).
    pub weakdeps: Vec<String>,
    /// `intree=Y`: the module was built from the kernel tree.
    pub intree: bool,
    /// `vermagic=`: kernel version and build options the module was built for.
    pub vermagic: Option<String>,
    /// `description=` (first occurrence wins).
    pub description: Option<String>,
    /// `license=` (first occurrence wins).
    pub license: Option<String>,
}

impl ModInfo {
    /// Applies one `key=value` record.
    fn apply(&mut self, key: &str, value: &str) {
        match key {
            "alias" => self.aliases.push(value.to_owned()),
            "depends" => {
                for dep in value.split(',') {
                    push_module(&mut self.depends, dep);
                }
            }
            "softdep" => self.apply_softdep(value),
            "weakdep" => push_module(&mut self.weakdeps, value),
            "name" => {
                let name = value.trim();
                if self.name.is_none() && !name.is_empty() {
                    self.name = Some(canonical_name(name));
                }
            }
            "intree" => self.intree |= value.trim() == "Y",
            "vermagic" => set_once(&mut self.vermagic, value),
            "description" => set_once(&mut self.description, value),
            "license" => set_once(&mut self.license, value),
            _ => {}
        }
    }

    /// `softdep=pre: a b post: c d`, following kmod's parser: tokens before
    /// any `pre:`/`post:` marker are ignored, either part may be missing.
    fn apply_softdep(&mut self, value: &str) {
        #[derive(Clone, Copy)]
        enum Mode {
            None,
            Pre,
            Post,
        }
        let mut mode = Mode::None;
        for token in value.split_ascii_whitespace() {
            match token {
                "pre:" => mode = Mode::Pre,
                "post:" => mode = Mode::Post,
                _ => match mode {
                    Mode::None => {}
                    Mode::Pre => push_module(&mut self.softdep_pre, token),
                    Mode::Post => push_module(&mut self.softdep_post, token),
                },
            }
        }
    }
}

/// Adds a module name to a list: trimmed, canonical, skipped when empty or
/// already present.
fn push_module(list: &mut Vec<String>, name: &str) {
    let name = name.trim();
    if name.is_empty() {
        return;
    }
    let name = canonical_name(name);
    if !list.contains(&name) {
        list.push(name);
    }
}

fn set_once(slot: &mut Option<String>, value: &str) {
    if slot.is_none() {
        *slot = Some(value.to_owned());
    }
}

/// Splits a blob into its non-empty NUL-terminated records, each as
/// `(key, value)`; records without `=` are skipped.
fn records(blob: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    blob.split(|&b| b == 0)
        .filter(|rec| !rec.is_empty())
        .filter_map(|rec| {
            let eq = rec.iter().position(|&b| b == b'=')?;
            let key = String::from_utf8_lossy(&rec[..eq]);
            let value = String::from_utf8_lossy(&rec[eq + 1..]);
            Some((key.into_owned(), value.into_owned()))
        })
}

/// Parses a module's `.modinfo` section.
///
/// Never fails: garbage yields whatever well-formed records it contains
/// (often an empty [`ModInfo`]).
pub fn parse_modinfo(blob: &[u8]) -> ModInfo {
    let mut info = ModInfo::default();
    for (key, value) in records(blob) {
        info.apply(key.trim(), &value);
    }
    info
}

/// Parses `modules.builtin.modinfo`: `module.key=value\0` records of the
/// modules built into the kernel image, grouped by canonical module name.
///
/// The module name is everything before the first `.` of the key; records
/// without a `.` before the `=` are skipped. A module whose records carry no
/// `name=` key gets its (canonical) module name as [`ModInfo::name`].
pub fn parse_builtin_modinfo(blob: &[u8]) -> BTreeMap<String, ModInfo> {
    let mut map: BTreeMap<String, ModInfo> = BTreeMap::new();
    for (key, value) in records(blob) {
        let Some((module, key)) = key.split_once('.') else {
            continue;
        };
        let module = module.trim();
        if module.is_empty() {
            continue;
        }
        let module = canonical_name(module);
        map.entry(module).or_default().apply(key.trim(), &value);
    }
    for (module, info) in &mut map {
        if info.name.is_none() {
            info.name = Some(module.clone());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_all_keys() {
        let blob = b"\0\0license=GPL\0description=SCTP core\0author=someone\0\
alias=net-pf-2-proto-132\0alias=net-pf-10-proto-132\0alias=net-pf-2-proto-132\0\
depends=libcrc32c,ip6_udp_tunnel,udp-tunnel\0\0\0softdep=pre: crc32c-intel\0\
softdep=pre: foo post: bar-baz qux\0weakdep=crc32-generic\0weakdep=crc32_generic\0\
intree=Y\0name=sctp\0vermagic=6.12.113+deb12-amd64 SMP preempt mod_unload modversions \0\
parm=x:int\0\0";
        let info = parse_modinfo(blob);
        assert_eq!(
            info,
            ModInfo {
                name: Some("sctp".into()),
                aliases: v(&[
                    "net-pf-2-proto-132",
                    "net-pf-10-proto-132",
                    "net-pf-2-proto-132"
                ]),
                depends: v(&["libcrc32c", "ip6_udp_tunnel", "udp_tunnel"]),
                softdep_pre: v(&["crc32c_intel", "foo"]),
                softdep_post: v(&["bar_baz", "qux"]),
                weakdeps: v(&["crc32_generic"]),
                intree: true,
                vermagic: Some("6.12.113+deb12-amd64 SMP preempt mod_unload modversions ".into()),
                description: Some("SCTP core".into()),
                license: Some("GPL".into()),
            }
        );
    }

    #[test]
    fn softdep_only_post_and_leading_tokens() {
        let info =
            parse_modinfo(b"softdep=post: snd-hda-codec-hdmi\0softdep=ignored pre:  a\tb \0");
        assert_eq!(info.softdep_post, v(&["snd_hda_codec_hdmi"]));
        assert_eq!(info.softdep_pre, v(&["a", "b"]));
    }

    #[test]
    fn empty_depends_and_missing_keys() {
        let info = parse_modinfo(b"depends=\0intree=N\0name=\0");
        assert_eq!(info, ModInfo::default());
        assert_eq!(parse_modinfo(b""), ModInfo::default());
        assert_eq!(parse_modinfo(b"depends=,,a,\0").depends, v(&["a"]));
    }

    #[test]
    fn first_value_wins_for_single_keys() {
        let info = parse_modinfo(b"license=GPL\0license=Dual BSD/GPL\0name=a-b\0name=c\0");
        assert_eq!(info.license.as_deref(), Some("GPL"));
        assert_eq!(info.name.as_deref(), Some("a_b"));
    }

    #[test]
    fn garbage_never_panics() {
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = parse_modinfo(&garbage);
        let _ = parse_builtin_modinfo(&garbage);
        let info = parse_modinfo(b"\xff\xfe=\x80\0alias=a\xffb\0no-equals-sign\0=\0==\0");
        assert_eq!(info.aliases, vec!["a\u{fffd}b".to_string()]);
        assert!(parse_builtin_modinfo(b"nodot=1\0.alias=x\0=\0").is_empty());
    }

    #[test]
    fn builtin_modinfo_groups_by_module() {
        let blob =
            b"ext4.license=GPL\0ext4.alias=fs-ext4\0ext4.alias=ext3\0ext4.file=fs/ext4/ext4\0\
crc32c-generic.alias=crypto-crc32c\0crc32c_generic.softdep=pre: crc32c-intel\0\
x.vermagic=1.2.3\0\0";
        let map = parse_builtin_modinfo(blob);
        assert_eq!(
            map.keys().collect::<Vec<_>>(),
            ["crc32c_generic", "ext4", "x"]
        );
        let ext4 = &map["ext4"];
        assert_eq!(ext4.name.as_deref(), Some("ext4"));
        assert_eq!(ext4.aliases, v(&["fs-ext4", "ext3"]));
        assert_eq!(ext4.license.as_deref(), Some("GPL"));
        let crc = &map["crc32c_generic"];
        assert_eq!(crc.aliases, v(&["crypto-crc32c"]));
        assert_eq!(crc.softdep_pre, v(&["crc32c_intel"]));
        assert_eq!(map["x"].vermagic.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn serde_round_trip() {
        let info = parse_modinfo(b"alias=a\0depends=b\0intree=Y\0");
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(serde_json::from_str::<ModInfo>(&json).unwrap(), info);
    }
}
