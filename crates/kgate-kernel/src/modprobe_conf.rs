//! What the host's modprobe configuration already blocks: `install M
//! /bin/false` lines stop every load of M (alias, name, dependency);
//! `blacklist M` only stops loads through M's own aliases.
//!
//! Read from the directories kmod reads, in its order of precedence:
//! `/etc/modprobe.d`, `/run/modprobe.d`, `/usr/local/lib/modprobe.d`,
//! `/lib/modprobe.d`, `/usr/lib/modprobe.d`. A file name in an earlier
//! directory hides the same name in later ones, as in kmod.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::canonical_name;

/// The directories kmod reads configuration from, highest precedence first.
pub const CONFIG_DIRS: &[&str] = &[
    "etc/modprobe.d",
    "run/modprobe.d",
    "usr/local/lib/modprobe.d",
    "lib/modprobe.d",
    "usr/lib/modprobe.d",
];

/// Blocking rules found in modprobe configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModprobeConf {
    /// Modules whose `install` command makes every load a no-op or a
    /// failure, with the file that says so.
    pub install_blocked: BTreeMap<String, String>,
    /// Modules whose aliases modprobe ignores (`blacklist`), with the file.
    pub blacklisted: BTreeMap<String, String>,
}

impl ModprobeConf {
    /// Read the configuration below `root` (`/` on a live host).
    pub fn read(root: &Path) -> ModprobeConf {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
        for dir in CONFIG_DIRS {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".conf") && seen.insert(name.clone()) {
                    files.push((name, e.path()));
                }
            }
        }
        // kmod applies files in name order across directories.
        files.sort();
        let mut conf = ModprobeConf::default();
        for (_, path) in files {
            if let Ok(text) =
                crate::bounded::read_text(root, &path, crate::bounded::Limit::HOST_FILE)
            {
                conf.add(&text, &path.display().to_string());
            }
        }
        conf
    }

    /// Add the rules of one file's text.
    pub fn add(&mut self, text: &str, origin: &str) {
        let mut logical = String::new();
        for raw in text.lines() {
            // A trailing backslash continues the line.
            if let Some(head) = raw.strip_suffix('\\') {
                logical.push_str(head);
                logical.push(' ');
                continue;
            }
            logical.push_str(raw);
            let line = std::mem::take(&mut logical);
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("install"), Some(module)) => {
                    let command: Vec<&str> = words.collect();
                    if is_blocking_command(&command) {
                        self.install_blocked
                            .entry(canonical_name(module))
                            .or_insert_with(|| origin.to_owned());
                    }
                }
                (Some("blacklist"), Some(module)) => {
                    self.blacklisted
                        .entry(canonical_name(module))
                        .or_insert_with(|| origin.to_owned());
                }
                _ => {}
            }
        }
    }
}

/// An install command that never loads the module: `/bin/false`,
/// `/bin/true`, `false`, `true`, `exit 1` and the like.
fn is_blocking_command(command: &[&str]) -> bool {
    const NOOPS: &[&str] = &[
        "/bin/false",
        "/usr/bin/false",
        "false",
        "/bin/true",
        "/usr/bin/true",
        "true",
        ":",
    ];
    match command {
        [single] => NOOPS.contains(single),
        ["exit", code] => code.parse::<i32>().is_ok(),
        [shell, "-c", script @ ..] if shell.ends_with("/sh") => {
            let script = script.join(" ");
            let script = script.trim_matches(|c| c == '\'' || c == '"').trim();
            NOOPS.contains(&script) || script.starts_with("exit ")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_and_blacklist() {
        let mut c = ModprobeConf::default();
        c.add(
            "# comment\ninstall sctp /bin/false\ninstall vsock /bin/true\n\
             install dccp /bin/sh -c 'exit 1'\ninstall usb-storage /sbin/modprobe --ignore-install usb-storage\n\
             blacklist cramfs\ninstall tipc \\\n  /bin/false\n",
            "/etc/modprobe.d/x.conf",
        );
        let blocked: Vec<&str> = c.install_blocked.keys().map(String::as_str).collect();
        assert_eq!(blocked, ["dccp", "sctp", "tipc", "vsock"]);
        assert!(c.blacklisted.contains_key("cramfs"));
        assert!(!c.install_blocked.contains_key("usb_storage"));
    }

    #[test]
    fn etc_hides_lib_with_the_same_file_name() {
        let tmp = crate::testutil::TempDir::new("modprobe-conf");
        let root = tmp.path();
        for (dir, text) in [
            ("etc/modprobe.d", "blacklist a\n"),
            ("lib/modprobe.d", "blacklist b\n"),
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            std::fs::write(root.join(dir).join("same.conf"), text).unwrap();
        }
        std::fs::write(
            root.join("lib/modprobe.d/other.conf"),
            "install c /bin/false\n",
        )
        .unwrap();
        let c = ModprobeConf::read(root);
        assert!(c.blacklisted.contains_key("a"));
        assert!(!c.blacklisted.contains_key("b"));
        assert!(c.install_blocked.contains_key("c"));
    }
}
