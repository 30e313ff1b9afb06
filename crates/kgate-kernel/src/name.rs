//! Module names as the kernel and kmod accept them.
//!
//! A module's name comes from files others control: its `.modinfo`
//! `name=`, its file name, `modules.builtin`. kgate writes names into
//! `modprobe.d` (`install NAME /bin/false`), where kmod splits a line at
//! spaces and tabs and a newline starts a new directive, so a name such as
//! `ext4 /tmp/x` would make modprobe run `/tmp/x` as root (issue 19). A
//! [`ModuleName`] can only be built by [`ModuleName::new`], which accepts:
//!
//! * 1 to [`MODULE_NAME_MAX`] bytes: the kernel keeps a module's name in
//!   `char name[MODULE_NAME_LEN]` (`struct module`, `MODULE_NAME_LEN` = 64 -
//!   sizeof(unsigned long) = 56 on 64-bit), NUL included, and refuses a
//!   `request_module()` string that does not fit;
//! * ASCII letters, digits, `_` and `-` only (`-` is stored as `_`, as
//!   kmod and `/proc/modules` do). Every module of Debian's 6.1 and 6.12
//!   packages (4230 in the generic 6.12 package, the longest 35 bytes)
//!   and every builtin one fits; kmod itself stops a name at `.` (the
//!   file suffix) and its configuration parser at white space, and the
//!   kernel build derives names from C file names.

use std::fmt;
use std::ops::Deref;

use serde::Serialize;

/// The longest module name: `MODULE_NAME_LEN - 1` = 55 bytes.
pub const MODULE_NAME_MAX: usize = 55;

/// A module name that is safe to write anywhere kmod reads one: canonical
/// (`_`, never `-`), 1 to [`MODULE_NAME_MAX`] bytes of `[A-Za-z0-9_]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ModuleName(String);

/// Why a string is not a module name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadModuleName {
    /// Nothing at all.
    #[error("empty module name")]
    Empty,
    /// More than [`MODULE_NAME_MAX`] bytes.
    #[error("module name {name:?} is {len} bytes; the kernel allows at most {MODULE_NAME_MAX}")]
    TooLong {
        /// The name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A character outside `[A-Za-z0-9_-]`.
    #[error(
        "module name {name:?} contains {bad:?}; module names are letters, digits, _ and - only"
    )]
    BadChar {
        /// The name.
        name: String,
        /// The first offending character.
        bad: char,
    },
}

impl ModuleName {
    /// Checks `name` and returns its canonical form (`-` as `_`).
    pub fn new(name: &str) -> Result<ModuleName, BadModuleName> {
        if name.is_empty() {
            return Err(BadModuleName::Empty);
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
        {
            return Err(BadModuleName::BadChar {
                name: name.to_owned(),
                bad,
            });
        }
        if name.len() > MODULE_NAME_MAX {
            return Err(BadModuleName::TooLong {
                name: name.to_owned(),
                len: name.len(),
            });
        }
        Ok(ModuleName(crate::canonical_name(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for ModuleName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for ModuleName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ModuleName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ModuleName {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_names_and_canonicalizes() {
        for n in ["ext4", "8021q", "snd_hda_intel", "nf_conntrack_ipv4"] {
            assert_eq!(ModuleName::new(n).unwrap(), n);
        }
        assert_eq!(ModuleName::new("crc32c-intel").unwrap(), "crc32c_intel");
        assert!(ModuleName::new(&"a".repeat(MODULE_NAME_MAX)).is_ok());
    }

    #[test]
    fn refuses_what_would_break_a_modprobe_d_line() {
        for n in [
            "ext4 /tmp/x",
            "a\nb",
            "a\tb",
            "a#b",
            "fs.ko",
            "a/b",
            "é",
            "a\0",
        ] {
            assert!(
                matches!(ModuleName::new(n), Err(BadModuleName::BadChar { .. })),
                "{n:?}"
            );
        }
        assert_eq!(ModuleName::new(""), Err(BadModuleName::Empty));
        assert!(matches!(
            ModuleName::new(&"a".repeat(MODULE_NAME_MAX + 1)),
            Err(BadModuleName::TooLong { len: 56, .. })
        ));
    }
}
