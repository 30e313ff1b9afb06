//! The socket grammar: `FAMILY`, `FAMILY/PROTOCOL`, `inet/raw`.
//!
//! Families are the `AF_*` names without the prefix, lower case (`unix`,
//! `inet6`, `vsock`) or their numbers (`40`). Protocols are named for
//! `inet`/`inet6` (`tcp`, `udp`, `sctp`, ...) and `netlink` (`route`,
//! `generic`, ...) and numeric everywhere (`inet/132`, `can/1`).

use std::fmt;

use serde::{Serialize, Serializer};

/// `AF_MAX` of Linux 6.12: families are `0..AF_MAX`.
pub const AF_MAX: u32 = 46;

/// Address family numbers and names (`include/linux/socket.h`).
pub const FAMILIES: &[(u32, &str)] = &[
    (1, "unix"),
    (2, "inet"),
    (3, "ax25"),
    (4, "ipx"),
    (5, "appletalk"),
    (6, "netrom"),
    (7, "bridge"),
    (8, "atmpvc"),
    (9, "x25"),
    (10, "inet6"),
    (11, "rose"),
    (12, "decnet"),
    (13, "netbeui"),
    (14, "security"),
    (15, "key"),
    (16, "netlink"),
    (17, "packet"),
    (18, "ash"),
    (19, "econet"),
    (20, "atmsvc"),
    (21, "rds"),
    (22, "sna"),
    (23, "irda"),
    (24, "pppox"),
    (25, "wanpipe"),
    (26, "llc"),
    (27, "ib"),
    (28, "mpls"),
    (29, "can"),
    (30, "tipc"),
    (31, "bluetooth"),
    (32, "iucv"),
    (33, "rxrpc"),
    (34, "isdn"),
    (35, "phonet"),
    (36, "ieee802154"),
    (37, "caif"),
    (38, "alg"),
    (39, "nfc"),
    (40, "vsock"),
    (41, "kcm"),
    (42, "qipcrtr"),
    (43, "smc"),
    (44, "xdp"),
    (45, "mctp"),
];

/// `AF_INET`.
pub const AF_INET: u32 = 2;
/// `AF_INET6`.
pub const AF_INET6: u32 = 10;
/// `AF_NETLINK`.
pub const AF_NETLINK: u32 = 16;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: u32 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: u32 = 2;
/// `SOCK_RAW`.
pub const SOCK_RAW: u32 = 3;

/// Protocol names of `inet` (IPPROTO_*). `inet6` uses the same table with
/// `icmp` = 58 (`icmpv6`).
pub const INET_PROTOCOLS: &[(u32, &str)] = &[
    (0, "ip"),
    (1, "icmp"),
    (6, "tcp"),
    (17, "udp"),
    (33, "dccp"),
    (115, "l2tp"),
    (132, "sctp"),
    (136, "udplite"),
    (256, "smc"),
    (262, "mptcp"),
];

/// `IPPROTO_ICMPV6`.
pub const IPPROTO_ICMPV6: u32 = 58;

/// Netlink protocol names (NETLINK_*).
pub const NETLINK_PROTOCOLS: &[(u32, &str)] = &[
    (0, "route"),
    (2, "usersock"),
    (3, "firewall"),
    (4, "sock_diag"),
    (5, "nflog"),
    (6, "xfrm"),
    (7, "selinux"),
    (8, "iscsi"),
    (9, "audit"),
    (10, "fib_lookup"),
    (11, "connector"),
    (12, "netfilter"),
    (13, "ip6_fw"),
    (14, "dnrtmsg"),
    (15, "kobject_uevent"),
    (16, "generic"),
    (18, "scsitransport"),
    (19, "ecryptfs"),
    (20, "rdma"),
    (21, "crypto"),
    (22, "smc"),
];

/// The name of an address family number (`40` → `vsock`).
pub fn family_name(family: u32) -> Option<&'static str> {
    FAMILIES.iter().find(|(n, _)| *n == family).map(|(_, s)| *s)
}

/// The number of an address family name (`vsock` → 40). Also accepts
/// numbers below [`AF_MAX`] written in decimal.
pub fn family_number(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return (n > 0 && n < AF_MAX).then_some(n);
    }
    FAMILIES.iter().find(|(_, s)| *s == name).map(|(n, _)| *n)
}

/// The name of a protocol number within a family, if it has one.
pub fn protocol_name(family: u32, protocol: u32) -> Option<&'static str> {
    match family {
        AF_INET6 if protocol == IPPROTO_ICMPV6 => Some("icmp"),
        AF_INET6 if protocol == 1 => None,
        AF_INET | AF_INET6 => INET_PROTOCOLS
            .iter()
            .find(|(n, _)| *n == protocol)
            .map(|(_, s)| *s),
        AF_NETLINK => NETLINK_PROTOCOLS
            .iter()
            .find(|(n, _)| *n == protocol)
            .map(|(_, s)| *s),
        _ => None,
    }
}

/// The number of a protocol name within a family (`inet6`, `icmp` → 58).
pub fn protocol_number(family: u32, name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    match (family, name) {
        (AF_INET6, "icmp" | "icmpv6") => Some(IPPROTO_ICMPV6),
        (AF_INET | AF_INET6, _) => INET_PROTOCOLS
            .iter()
            .find(|(_, s)| *s == name)
            .map(|(n, _)| *n),
        (AF_NETLINK, _) => NETLINK_PROTOCOLS
            .iter()
            .find(|(_, s)| *s == name)
            .map(|(n, _)| *n),
        _ => None,
    }
}

/// The protocol names accepted for a family (for error messages).
pub fn protocol_names(family: u32) -> Vec<&'static str> {
    match family {
        AF_INET => INET_PROTOCOLS
            .iter()
            .map(|(_, s)| *s)
            .chain(["raw"])
            .collect(),
        AF_INET6 => INET_PROTOCOLS
            .iter()
            .map(|(_, s)| *s)
            .chain(["icmpv6", "raw"])
            .collect(),
        AF_NETLINK => NETLINK_PROTOCOLS.iter().map(|(_, s)| *s).collect(),
        _ => Vec::new(),
    }
}

/// Which protocols of a family a [`SocketRule`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SocketProtocol {
    /// Any socket of the family (`inet`).
    Any,
    /// One protocol number (`inet/tcp` = 6, `netlink/route` = 0).
    Number(u32),
    /// `SOCK_RAW` sockets of any protocol (`inet/raw`, `inet6/raw`): raw
    /// sockets are a type, not a protocol. Only for `inet` and `inet6`.
    Raw,
}

/// One entry of `sockets.allow`: a family and which of its protocols.
///
/// | written          | `family` | `protocol`              |
/// |------------------|----------|-------------------------|
/// | `unix`           | 1        | `Any`                   |
/// | `inet/tcp`       | 2        | `Number(6)`             |
/// | `inet6/icmp`     | 10       | `Number(58)`            |
/// | `inet/raw`       | 2        | `Raw`                   |
/// | `netlink/route`  | 16       | `Number(0)`             |
/// | `40`             | 40       | `Any`                   |
///
/// See [`SocketRule::matches`] for how a `socket(2)` call is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketRule {
    /// Address family number (`AF_*`).
    pub family: u32,
    /// Which protocols of the family.
    pub protocol: SocketProtocol,
}

/// Why a socket rule did not parse. The message names what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GrammarError {
    /// What is wrong.
    pub message: String,
    /// Accepted values at the point of failure.
    pub allowed: Vec<String>,
    /// The text that failed, to suggest a close match.
    pub got: String,
}

impl GrammarError {
    pub(crate) fn new(message: String, allowed: Vec<String>, got: &str) -> Self {
        GrammarError {
            message,
            allowed,
            got: got.to_owned(),
        }
    }
}

impl SocketRule {
    /// Any socket of `family`.
    pub fn family(family: u32) -> Self {
        SocketRule {
            family,
            protocol: SocketProtocol::Any,
        }
    }

    /// One protocol of `family`.
    pub fn protocol(family: u32, protocol: u32) -> Self {
        SocketRule {
            family,
            protocol: SocketProtocol::Number(protocol),
        }
    }

    /// Parse `FAMILY` or `FAMILY/PROTOCOL`.
    pub fn parse(text: &str) -> Result<SocketRule, GrammarError> {
        let (fam, proto) = match text.split_once('/') {
            Some((f, p)) => (f, Some(p)),
            None => (text, None),
        };
        let family = family_number(fam).ok_or_else(|| {
            GrammarError::new(
                format!("unknown socket family `{fam}`"),
                FAMILIES.iter().map(|(_, s)| s.to_string()).collect(),
                fam,
            )
        })?;
        let Some(proto) = proto else {
            return Ok(SocketRule::family(family));
        };
        let fam_name = family_name(family).unwrap_or(fam);
        if proto == "raw" {
            if family == AF_INET || family == AF_INET6 {
                return Ok(SocketRule {
                    family,
                    protocol: SocketProtocol::Raw,
                });
            }
            return Err(GrammarError::new(
                format!("`raw` is only accepted for inet and inet6, not `{fam_name}`"),
                Vec::new(),
                proto,
            ));
        }
        match protocol_number(family, proto) {
            Some(n) => Ok(SocketRule::protocol(family, n)),
            None => {
                let names = protocol_names(family);
                let message = if names.is_empty() {
                    format!("unknown protocol `{proto}` for family `{fam_name}`: only numbers are accepted for this family")
                } else {
                    format!("unknown protocol `{proto}` for family `{fam_name}`")
                };
                let mut allowed: Vec<String> = names.iter().map(|s| s.to_string()).collect();
                allowed.push("a number".into());
                Err(GrammarError::new(message, allowed, proto))
            }
        }
    }

    /// Does a `socket(family, sock_type, protocol)` call match this rule?
    ///
    /// `sock_type` may carry `SOCK_NONBLOCK`/`SOCK_CLOEXEC`; only its low
    /// four bits are used. A rule for one protocol matches the number as
    /// passed, and also protocol 0 when 0 means that protocol for the type
    /// (`inet`/`inet6`: `SOCK_STREAM` → tcp, `SOCK_DGRAM` → udp). A `raw`
    /// rule matches any `SOCK_RAW` socket of its family. `inet/ip` (0)
    /// matches any call that passes protocol 0.
    pub fn matches(&self, family: u32, sock_type: u32, protocol: u32) -> bool {
        if family != self.family {
            return false;
        }
        let sock_type = sock_type & 0xf;
        match self.protocol {
            SocketProtocol::Any => true,
            SocketProtocol::Raw => sock_type == SOCK_RAW,
            SocketProtocol::Number(p) => {
                if p == protocol {
                    return true;
                }
                if protocol != 0 || !(family == AF_INET || family == AF_INET6) {
                    return false;
                }
                match sock_type {
                    SOCK_STREAM => p == 6,
                    SOCK_DGRAM => p == 17,
                    _ => false,
                }
            }
        }
    }

    /// Does this rule allow everything `other` allows?
    pub fn covers(&self, other: &SocketRule) -> bool {
        self.family == other.family
            && (self.protocol == SocketProtocol::Any || self.protocol == other.protocol)
    }
}

impl fmt::Display for SocketRule {
    /// The canonical spelling: names where known, numbers otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match family_name(self.family) {
            Some(n) => f.write_str(n)?,
            None => write!(f, "{}", self.family)?,
        }
        match self.protocol {
            SocketProtocol::Any => Ok(()),
            SocketProtocol::Raw => f.write_str("/raw"),
            SocketProtocol::Number(p) => match protocol_name(self.family, p) {
                Some(n) => write!(f, "/{n}"),
                None => write!(f, "/{p}"),
            },
        }
    }
}

impl Serialize for SocketRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for SocketRule {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SocketRule::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(family_name(40), Some("vsock"));
        assert_eq!(family_number("vsock"), Some(40));
        assert_eq!(family_number("40"), Some(40));
        assert_eq!(family_number("46"), None);
        assert_eq!(family_number("0"), None);
        assert_eq!(family_number("nope"), None);
        for (n, name) in FAMILIES {
            assert_eq!(family_number(name), Some(*n));
        }
    }

    #[test]
    fn grammar() {
        let p = |s: &str| SocketRule::parse(s).unwrap();
        assert_eq!(p("unix"), SocketRule::family(1));
        assert_eq!(p("inet/tcp"), SocketRule::protocol(2, 6));
        assert_eq!(p("inet/132"), SocketRule::protocol(2, 132));
        assert_eq!(p("inet6/icmp"), SocketRule::protocol(10, 58));
        assert_eq!(p("inet6/icmpv6"), SocketRule::protocol(10, 58));
        assert_eq!(p("inet/icmp"), SocketRule::protocol(2, 1));
        assert_eq!(p("netlink/route"), SocketRule::protocol(16, 0));
        assert_eq!(p("netlink/generic"), SocketRule::protocol(16, 16));
        assert_eq!(p("inet/raw").protocol, SocketProtocol::Raw);
        assert_eq!(p("40"), SocketRule::family(40));
        assert_eq!(p("can/1"), SocketRule::protocol(29, 1));
        for s in [
            "unix",
            "inet/tcp",
            "inet/sctp",
            "inet6/icmp",
            "inet/raw",
            "netlink/route",
            "vsock",
            "can/1",
            "inet/999",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(p("inet/132").to_string(), "inet/sctp");
        assert_eq!(p("40").to_string(), "vsock");

        let e = SocketRule::parse("inet/tpc").unwrap_err();
        assert!(e.message.contains("unknown protocol `tpc`"), "{e}");
        assert!(e.allowed.contains(&"tcp".to_string()));
        let e = SocketRule::parse("vsok").unwrap_err();
        assert!(e.allowed.contains(&"vsock".to_string()));
        assert!(SocketRule::parse("unix/raw").is_err());
        assert!(SocketRule::parse("vsock/stream").is_err());
        assert!(SocketRule::parse("inet/icmpv6").is_err());
    }

    #[test]
    fn matching() {
        let tcp = SocketRule::parse("inet/tcp").unwrap();
        assert!(tcp.matches(2, SOCK_STREAM, 0));
        assert!(tcp.matches(2, SOCK_STREAM | 0o4000, 6));
        assert!(!tcp.matches(2, SOCK_DGRAM, 0));
        assert!(!tcp.matches(10, SOCK_STREAM, 0));
        let raw = SocketRule::parse("inet6/raw").unwrap();
        assert!(raw.matches(10, SOCK_RAW, 58));
        assert!(!raw.matches(10, SOCK_DGRAM, 58));
        let route = SocketRule::parse("netlink/route").unwrap();
        assert!(route.matches(16, SOCK_RAW, 0));
        assert!(!route.matches(16, SOCK_RAW, 16));
        assert!(SocketRule::parse("unix").unwrap().matches(1, SOCK_DGRAM, 0));
        assert!(SocketRule::family(2).covers(&tcp));
        assert!(!tcp.covers(&SocketRule::family(2)));
    }
}
