//! The splice endpoint grammar and the splice presets.
//!
//! An endpoint is one side of `splice(2)`, `tee(2)`, `sendfile(2)`,
//! `copy_file_range(2)` or `vmsplice(2)`:
//!
//! * `pipe`
//! * `file:FS`: a regular file on filesystem `FS` (matched by superblock
//!   magic, see [`FILESYSTEMS`])
//! * `socket:FAMILY[/PROTO]`: a socket, in the [`crate::socket`] grammar
//! * `chardev:NAME`: a character device (see [`CHARDEVS`])
//! * `memory`: the calling process's memory, `vmsplice(2)`'s other end
//! * `other`: anything else (anonymous inodes, block devices, ...)
//!
//! In `splice.pairs` either side may also be a class wildcard: `file:*`,
//! `socket:*`, `chardev:*` or `*`.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::socket::{GrammarError, SocketRule};

/// Known filesystem names and their superblock magic (`include/uapi/linux/magic.h`).
/// `ext2`, `ext3` and `ext4` share one magic, as do `tmpfs` and `devtmpfs`.
pub const FILESYSTEMS: &[(&str, u32)] = &[
    ("ext2", 0xEF53),
    ("ext3", 0xEF53),
    ("ext4", 0xEF53),
    ("xfs", 0x5846_5342),
    ("btrfs", 0x9123_683E),
    ("tmpfs", 0x0102_1994),
    ("devtmpfs", 0x0102_1994),
    ("proc", 0x9fa0),
    ("sysfs", 0x6265_6572),
    ("overlay", 0x794c_7630),
    ("nfs", 0x6969),
    ("fuse", 0x6573_5546),
    ("vfat", 0x4d44),
    ("squashfs", 0x7371_7368),
    ("erofs", 0xE0F5_E1E2),
    ("f2fs", 0xF2F5_2010),
    ("zfs", 0x2fc1_2fc1),
    ("ramfs", 0x8584_58f6),
    ("cgroup2", 0x6367_7270),
    ("bpf", 0xcafe_4a11),
    ("debugfs", 0x6462_6720),
    ("tracefs", 0x7472_6163),
    ("hugetlbfs", 0x9584_58f6),
    ("anon_inode", 0x0904_1934),
    ("sockfs", 0x534F_434B),
    ("pipefs", 0x5049_5045),
];

/// Known character devices: name (under `/dev`) → (major, minor).
pub const CHARDEVS: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("kmsg", 1, 11),
    ("tty", 5, 0),
    ("console", 5, 1),
    ("ptmx", 5, 2),
];

/// The superblock magic of a known filesystem name.
pub fn fs_magic(name: &str) -> Option<u32> {
    FILESYSTEMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
}

/// The device numbers of a known character device name.
pub fn chardev_numbers(name: &str) -> Option<(u32, u32)> {
    CHARDEVS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, a, b)| (*a, *b))
}

/// One side of a splice-family call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A pipe.
    Pipe,
    /// A regular file on this filesystem (a name of [`FILESYSTEMS`]).
    File(String),
    /// A socket.
    Socket(SocketRule),
    /// A character device (a name of [`CHARDEVS`]).
    Chardev(String),
    /// A process's own memory: the other end of `vmsplice(2)` (user pages
    /// into a pipe, or pipe pages out to user memory).
    Memory,
    /// Anything else.
    Other,
}

impl Endpoint {
    /// Parse one endpoint.
    pub fn parse(text: &str) -> Result<Endpoint, GrammarError> {
        let kinds = || {
            [
                "pipe",
                "file:FS",
                "socket:FAMILY[/PROTO]",
                "chardev:NAME",
                "memory",
                "other",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        match text {
            "pipe" => return Ok(Endpoint::Pipe),
            "memory" => return Ok(Endpoint::Memory),
            "other" => return Ok(Endpoint::Other),
            _ => {}
        }
        let Some((kind, rest)) = text.split_once(':') else {
            return Err(GrammarError::new(
                format!("unknown splice endpoint `{text}`"),
                kinds(),
                text,
            ));
        };
        match kind {
            "file" => {
                if fs_magic(rest).is_some() {
                    Ok(Endpoint::File(rest.to_owned()))
                } else {
                    Err(GrammarError::new(
                        format!("unknown filesystem `{rest}`"),
                        FILESYSTEMS.iter().map(|(n, _)| n.to_string()).collect(),
                        rest,
                    ))
                }
            }
            "socket" => SocketRule::parse(rest).map(Endpoint::Socket),
            "chardev" => {
                if chardev_numbers(rest).is_some() {
                    Ok(Endpoint::Chardev(rest.to_owned()))
                } else {
                    Err(GrammarError::new(
                        format!("unknown character device `{rest}`"),
                        CHARDEVS.iter().map(|(n, _, _)| n.to_string()).collect(),
                        rest,
                    ))
                }
            }
            _ => Err(GrammarError::new(
                format!("unknown splice endpoint kind `{kind}`"),
                kinds(),
                kind,
            )),
        }
    }

    /// The superblock magic for `file:` endpoints.
    pub fn fs_magic(&self) -> Option<u32> {
        match self {
            Endpoint::File(fs) => fs_magic(fs),
            _ => None,
        }
    }

    /// The device numbers for `chardev:` endpoints.
    pub fn chardev_numbers(&self) -> Option<(u32, u32)> {
        match self {
            Endpoint::Chardev(name) => chardev_numbers(name),
            _ => None,
        }
    }

    /// Does an allowlist entry `self` cover the concrete endpoint `other`?
    /// Equal endpoints cover each other; a socket rule covers the sockets it
    /// matches (`socket:inet` covers `socket:inet/tcp`); `file:ext4` covers
    /// `file:ext2` (same magic).
    pub fn covers(&self, other: &Endpoint) -> bool {
        match (self, other) {
            (Endpoint::Socket(a), Endpoint::Socket(b)) => a.covers(b),
            (Endpoint::File(a), Endpoint::File(b)) => fs_magic(a) == fs_magic(b),
            _ => self == other,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Pipe => f.write_str("pipe"),
            Endpoint::File(fs) => write!(f, "file:{fs}"),
            Endpoint::Socket(s) => write!(f, "socket:{s}"),
            Endpoint::Chardev(c) => write!(f, "chardev:{c}"),
            Endpoint::Memory => f.write_str("memory"),
            Endpoint::Other => f.write_str("other"),
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One side of a `splice.pairs` entry: an endpoint or a class wildcard.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EndpointPattern {
    /// Endpoints covered by this one (see [`Endpoint::covers`]).
    Exact(Endpoint),
    /// `file:*`: any regular file.
    AnyFile,
    /// `socket:*`: any socket.
    AnySocket,
    /// `chardev:*`: any character device.
    AnyChardev,
    /// `*`: anything.
    Any,
}

impl EndpointPattern {
    /// Parse an endpoint or a wildcard.
    pub fn parse(text: &str) -> Result<EndpointPattern, GrammarError> {
        Ok(match text {
            "*" => EndpointPattern::Any,
            "file:*" => EndpointPattern::AnyFile,
            "socket:*" => EndpointPattern::AnySocket,
            "chardev:*" => EndpointPattern::AnyChardev,
            _ => EndpointPattern::Exact(Endpoint::parse(text)?),
        })
    }

    /// Does the pattern match a concrete endpoint?
    pub fn matches(&self, e: &Endpoint) -> bool {
        match self {
            EndpointPattern::Exact(x) => x.covers(e),
            EndpointPattern::AnyFile => matches!(e, Endpoint::File(_)),
            EndpointPattern::AnySocket => matches!(e, Endpoint::Socket(_)),
            EndpointPattern::AnyChardev => matches!(e, Endpoint::Chardev(_)),
            EndpointPattern::Any => true,
        }
    }
}

impl fmt::Display for EndpointPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointPattern::Exact(e) => e.fmt(f),
            EndpointPattern::AnyFile => f.write_str("file:*"),
            EndpointPattern::AnySocket => f.write_str("socket:*"),
            EndpointPattern::AnyChardev => f.write_str("chardev:*"),
            EndpointPattern::Any => f.write_str("*"),
        }
    }
}

/// A `splice.pairs` entry: data may flow from `source` to `destination`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SplicePair {
    /// The side data is read from (`fd_in`).
    pub source: EndpointPattern,
    /// The side data is written to (`fd_out`).
    pub destination: EndpointPattern,
}

impl SplicePair {
    /// Parse `A -> B`.
    pub fn parse(text: &str) -> Result<SplicePair, GrammarError> {
        let Some((a, b)) = text.split_once("->") else {
            return Err(GrammarError::new(
                format!("`{text}` is not a pair"),
                vec!["SOURCE -> DESTINATION".into()],
                text,
            ));
        };
        Ok(SplicePair {
            source: EndpointPattern::parse(a.trim())?,
            destination: EndpointPattern::parse(b.trim())?,
        })
    }

    /// Does the pair allow a transfer from `source` to `destination`?
    pub fn matches(&self, source: &Endpoint, destination: &Endpoint) -> bool {
        self.source.matches(source) && self.destination.matches(destination)
    }
}

impl fmt::Display for SplicePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.source, self.destination)
    }
}

impl Serialize for SplicePair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a denied splice-family call returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnDeny {
    /// `-EINVAL`: what the kernel returns for endpoints that do not support
    /// splicing, so well-behaved callers (coreutils, nginx, ...) fall back to
    /// `read`/`write`.
    #[default]
    Einval,
}

impl OnDeny {
    /// Every value, for messages.
    pub const ALL: &'static [&'static str] = &["einval"];

    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnDeny::Einval => "einval",
        }
    }

    /// Parse the TOML spelling.
    pub fn parse(s: &str) -> Option<OnDeny> {
        match s {
            "einval" => Some(OnDeny::Einval),
            _ => None,
        }
    }
}

/// Ready-made splice allowlists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SplicePreset {
    /// The endpoints servers and shells use ([`SplicePreset::endpoints`]),
    /// in any combination (no `pairs`).
    Default,
    /// The same endpoints, but only the pairs of [`SplicePreset::pairs`]:
    /// every class combination except `file -> pipe` (moving page-cache
    /// pages of a file into a pipe, the primitive behind Dirty Pipe,
    /// CVE-2022-0847), `socket -> socket`, and anything with `memory`
    /// (`vmsplice(2)`, denied where the kernel lets kgate gate it).
    Strict,
}

impl SplicePreset {
    /// The names `preset = "..."` accepts.
    pub const ALL: &'static [&'static str] = &["default", "strict"];

    /// Parse a preset name.
    pub fn parse(s: &str) -> Option<SplicePreset> {
        match s {
            "default" => Some(SplicePreset::Default),
            "strict" => Some(SplicePreset::Strict),
            _ => None,
        }
    }

    /// The allowed endpoints (same for both presets). `memory` (vmsplice)
    /// is among them, but Strict's pairs never name it.
    pub fn endpoints(self) -> Vec<Endpoint> {
        let mut v = vec![Endpoint::Pipe];
        for fs in [
            "ext4", "xfs", "btrfs", "tmpfs", "vfat", "nfs", "overlay", "fuse",
        ] {
            v.push(Endpoint::File(fs.into()));
        }
        for s in ["inet/tcp", "inet6/tcp", "inet/udp", "inet6/udp", "unix"] {
            v.push(Endpoint::Socket(SocketRule::parse(s).expect("valid rule")));
        }
        v.push(Endpoint::Chardev("null".into()));
        v.push(Endpoint::Chardev("zero".into()));
        v.push(Endpoint::Memory);
        v
    }

    /// The allowed pairs; empty (any combination) for `Default`.
    pub fn pairs(self) -> Vec<SplicePair> {
        match self {
            SplicePreset::Default => Vec::new(),
            SplicePreset::Strict => [
                "file:* -> socket:*",
                "file:* -> file:*",
                "file:* -> chardev:*",
                "pipe -> socket:*",
                "pipe -> file:*",
                "pipe -> pipe",
                "pipe -> chardev:*",
                "socket:* -> pipe",
                "socket:* -> file:*",
                "chardev:* -> pipe",
                "chardev:* -> file:*",
                "chardev:* -> socket:*",
            ]
            .iter()
            .map(|p| SplicePair::parse(p).expect("valid pair"))
            .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(Endpoint::parse("pipe").unwrap(), Endpoint::Pipe);
        assert_eq!(Endpoint::parse("other").unwrap(), Endpoint::Other);
        let e = Endpoint::parse("file:ext4").unwrap();
        assert_eq!(e.fs_magic(), Some(0xEF53));
        assert_eq!(
            Endpoint::parse("file:devtmpfs").unwrap().fs_magic(),
            fs_magic("tmpfs")
        );
        let s = Endpoint::parse("socket:inet/tcp").unwrap();
        assert_eq!(s, Endpoint::Socket(SocketRule::protocol(2, 6)));
        assert_eq!(
            Endpoint::parse("chardev:null").unwrap().chardev_numbers(),
            Some((1, 3))
        );
        for t in [
            "pipe",
            "file:xfs",
            "socket:unix",
            "socket:inet6/udp",
            "chardev:zero",
            "memory",
            "other",
        ] {
            assert_eq!(Endpoint::parse(t).unwrap().to_string(), t);
        }
        let err = Endpoint::parse("file:ext5").unwrap_err();
        assert!(err.message.contains("unknown filesystem `ext5`"));
        assert!(err.allowed.contains(&"ext4".to_string()));
        assert!(Endpoint::parse("socket:inet/bogus").is_err());
        assert!(Endpoint::parse("chardev:sda").is_err());
        assert!(Endpoint::parse("fifo").is_err());
        assert!(Endpoint::parse("block:sda").is_err());
    }

    #[test]
    fn pairs() {
        let p = SplicePair::parse("file:ext4 -> socket:inet/tcp").unwrap();
        assert_eq!(p.to_string(), "file:ext4 -> socket:inet/tcp");
        let ext4 = Endpoint::File("ext4".into());
        let tcp = Endpoint::Socket(SocketRule::protocol(2, 6));
        assert!(p.matches(&ext4, &tcp));
        assert!(!p.matches(&tcp, &ext4));
        let w = SplicePair::parse("file:*->socket:inet").unwrap();
        assert!(w.matches(&Endpoint::File("xfs".into()), &tcp));
        assert!(SplicePair::parse("pipe").is_err());
        assert!(SplicePair::parse("pipe -> nope").is_err());
    }

    #[test]
    fn strict_excludes_file_to_pipe() {
        let pairs = SplicePreset::Strict.pairs();
        let allowed = |a: &Endpoint, b: &Endpoint| pairs.iter().any(|p| p.matches(a, b));
        let file = Endpoint::File("ext4".into());
        let tcp = Endpoint::Socket(SocketRule::protocol(2, 6));
        assert!(!allowed(&file, &Endpoint::Pipe));
        assert!(allowed(&file, &tcp));
        assert!(allowed(&Endpoint::Pipe, &file));
        assert!(allowed(&tcp, &Endpoint::Pipe));
        assert!(!allowed(&tcp, &tcp));
        assert!(!allowed(&Endpoint::Memory, &Endpoint::Pipe));
        assert!(!allowed(&Endpoint::Pipe, &Endpoint::Memory));
        assert!(allowed(&Endpoint::Pipe, &Endpoint::Pipe));
        assert!(SplicePreset::Default
            .endpoints()
            .contains(&Endpoint::Memory));
        assert!(SplicePreset::Default.pairs().is_empty());
        assert_eq!(
            SplicePreset::Default.endpoints(),
            SplicePreset::Strict.endpoints()
        );
    }
}
