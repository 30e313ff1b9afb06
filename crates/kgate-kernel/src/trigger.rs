//! Triggers: the kernel paths that can make a module load, classified from
//! the module's aliases (and, for a few call sites that request a module by
//! name, from its name).
//!
//! Every `request_module()` call site formats a string (`net-pf-%d`,
//! `fs-%s`, `crypto-%s`, ...) and hands it to modprobe, which matches it
//! against the aliases in each module's `.modinfo`. So the aliases of a
//! module are exactly the requests that can load it, and the prefix of an
//! alias says which call site builds that request. `docs/triggers.md` cites
//! the call site and the privilege check of every kind below.

use serde::{Deserialize, Serialize};

/// What kind of kernel path requests a module with this alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TriggerKind {
    /// `socket(family, …)`: `net-pf-N` from `__sock_create()`.
    SocketFamily,
    /// A protocol inside a family: `net-pf-N-proto-M[-type-T]` (inet,
    /// inet6, pppox, …), `bt-proto-N`, `can-proto-N`.
    SocketProtocol,
    /// `socket(AF_NETLINK, …, proto)`: `net-pf-16-proto-N`.
    Netlink,
    /// A generic netlink family lookup: `net-pf-16-proto-16-family-NAME`,
    /// and modules requested by genetlink handlers.
    Genetlink,
    /// A sock_diag handler: `net-pf-16-proto-4-type-F[-P]`.
    SockDiag,
    /// `mount`/`fsopen` of a filesystem type: `fs-NAME`.
    Filesystem,
    /// `ioctl(TIOCSETD)`: `tty-ldisc-N`.
    TtyLdisc,
    /// A crypto algorithm or template: `crypto-NAME`.
    Crypto,
    /// An AF_ALG algorithm type on `bind()`: `algif-TYPE`.
    AfAlg,
    /// `RTM_NEWLINK` and friends: `rtnl-link-KIND`, `rtnl-lwt-…`.
    RtnlLink,
    /// Traffic control: qdiscs, classifiers, actions, ematches.
    TrafficControl,
    /// nf_tables, x_tables, conntrack helpers, ipset, …
    Netfilter,
    /// IPsec transforms: `xfrm-…`.
    Xfrm,
    /// TCP congestion control (`tcp_NAME`) and upper-layer protocols
    /// (`tcp-ulp-NAME`).
    Tcp,
    /// Opening a character device node: `char-major-M[-m]`.
    CharMajor,
    /// Opening a block device node: `block-major-M[-m]`.
    BlockMajor,
    /// A static `/dev` node created at boot from `devname:` (e.g. `/dev/fuse`).
    Devname,
    /// `execve()` of an unknown binary format: `binfmt-XXXX`.
    Binfmt,
    /// Socket ioctls that request a module by name (`bridge`, `8021q`).
    SocketIoctl,
    /// Network device lookup by interface name: `netdev-NAME`.
    Netdev,
    /// Device/bus match aliases used by udev on hotplug (`pci:`, `usb:`, …).
    Hardware,
    /// Anything else; no known unprivileged call site.
    Other,
}

impl TriggerKind {
    /// Every kind, in display order.
    pub const ALL: &'static [TriggerKind] = &[
        TriggerKind::SocketFamily,
        TriggerKind::SocketProtocol,
        TriggerKind::Netlink,
        TriggerKind::Genetlink,
        TriggerKind::SockDiag,
        TriggerKind::Filesystem,
        TriggerKind::TtyLdisc,
        TriggerKind::Crypto,
        TriggerKind::AfAlg,
        TriggerKind::RtnlLink,
        TriggerKind::TrafficControl,
        TriggerKind::Netfilter,
        TriggerKind::Xfrm,
        TriggerKind::Tcp,
        TriggerKind::CharMajor,
        TriggerKind::BlockMajor,
        TriggerKind::Devname,
        TriggerKind::Binfmt,
        TriggerKind::SocketIoctl,
        TriggerKind::Netdev,
        TriggerKind::Hardware,
        TriggerKind::Other,
    ];

    /// The stable name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::SocketFamily => "socket_family",
            TriggerKind::SocketProtocol => "socket_protocol",
            TriggerKind::Netlink => "netlink",
            TriggerKind::Genetlink => "genetlink",
            TriggerKind::SockDiag => "sock_diag",
            TriggerKind::Filesystem => "filesystem",
            TriggerKind::TtyLdisc => "tty_ldisc",
            TriggerKind::Crypto => "crypto",
            TriggerKind::AfAlg => "af_alg",
            TriggerKind::RtnlLink => "rtnl_link",
            TriggerKind::TrafficControl => "traffic_control",
            TriggerKind::Netfilter => "netfilter",
            TriggerKind::Xfrm => "xfrm",
            TriggerKind::Tcp => "tcp",
            TriggerKind::CharMajor => "char_major",
            TriggerKind::BlockMajor => "block_major",
            TriggerKind::Devname => "devname",
            TriggerKind::Binfmt => "binfmt",
            TriggerKind::SocketIoctl => "socket_ioctl",
            TriggerKind::Netdev => "netdev",
            TriggerKind::Hardware => "hardware",
            TriggerKind::Other => "other",
        }
    }
}

impl std::fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who can reach the call site, judged by the privilege check that runs
/// *before* the module request (not by whatever the loaded code checks later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Access {
    /// Any user: no check before the request.
    Any,
    /// A user who may create a user namespace: the check is a capability in
    /// the user namespace that owns the network or mount namespace.
    UserNamespace,
    /// Any user while `dev.tty.ldisc_autoload = 1`.
    LdiscAutoload,
    /// Any user, through an AF_ALG socket (needs `af_alg` itself reachable).
    ThroughAfAlg,
    /// Whoever can open the device node; reachable when such a node exists
    /// and is world-accessible (`/dev/fuse`, `/dev/net/tun`).
    DeviceNode,
    /// Only real root (a capability in the initial user namespace).
    Root,
    /// udev on hotplug, as root: not a user-triggered path.
    Hardware,
    /// No call site known to kgate.
    Unknown,
}

impl Access {
    /// The stable name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Any => "any",
            Access::UserNamespace => "user_namespace",
            Access::LdiscAutoload => "ldisc_autoload",
            Access::ThroughAfAlg => "through_af_alg",
            Access::DeviceNode => "device_node",
            Access::Root => "root",
            Access::Hardware => "hardware",
            Access::Unknown => "unknown",
        }
    }
}

/// One way to load a module.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Trigger {
    /// Which call site builds this request.
    pub kind: TriggerKind,
    /// The request string (the alias pattern as the module declares it, or
    /// the module name for call sites that request by name).
    pub alias: String,
    /// Who can reach the call site.
    pub access: Access,
}

/// Classify one alias pattern of a module.
pub fn classify_alias(alias: &str) -> (TriggerKind, Access) {
    use Access::*;
    use TriggerKind::*;
    if let Some(rest) = alias.strip_prefix("net-pf-") {
        let (family, rest) = split_number(rest);
        return match (family, rest) {
            (Some(_), "") => (SocketFamily, Any),
            // net/phonet/af_phonet.c: pn_socket_create() checks
            // capable(CAP_SYS_ADMIN) before requesting a protocol.
            (Some(35), r) if r.starts_with("-proto-") => (SocketProtocol, Root),
            (Some(16), r) if r.starts_with("-proto-16-family-") => (Genetlink, Any),
            (Some(16), r) if r.starts_with("-proto-4-type-") => (SockDiag, Any),
            (Some(16), r) if r.starts_with("-proto-") => (Netlink, Any),
            (Some(_), r) if r.starts_with("-proto-") => (SocketProtocol, Any),
            _ => (Other, Unknown),
        };
    }
    if alias.starts_with("bt-proto-") || alias.starts_with("can-proto-") {
        return (SocketProtocol, Any);
    }
    if alias.starts_with("net-l2tp-type-") || alias.starts_with("vport-type-") {
        // Requested from genetlink handlers that require CAP_NET_ADMIN in
        // the network namespace's user namespace (GENL_UNS_ADMIN_PERM).
        return (Genetlink, UserNamespace);
    }
    if alias.starts_with("fs-") {
        return (Filesystem, UserNamespace);
    }
    if alias.starts_with("tty-ldisc-") {
        return (TtyLdisc, LdiscAutoload);
    }
    if alias.starts_with("crypto-") || alias == "cryptomgr" {
        return (Crypto, ThroughAfAlg);
    }
    if alias.starts_with("algif-") {
        return (AfAlg, Any);
    }
    if alias.starts_with("rtnl-link-")
        || alias.starts_with("rtnl-lwt-")
        || alias.starts_with("rtnl-af-")
    {
        return (RtnlLink, UserNamespace);
    }
    // net/sched/cls_api.c: an RTM_GETTFILTER on a shared block reaches
    // tcf_proto_lookup_ops() -> request_module("net-cls-%s") with no
    // capability check (GET messages skip rtnetlink's check).
    if alias.starts_with("net-cls-") {
        return (TrafficControl, Any);
    }
    const TC: &[&str] = &["net-sch-", "net-act-", "ematch-kind-"];
    if TC.iter().any(|p| alias.starts_with(p)) {
        return (TrafficControl, UserNamespace);
    }
    const NETFILTER: &[&str] = &[
        "nft-",
        "nfnetlink-subsys-",
        "nfct-helper-",
        "nf-logger-",
        "nf_conntrack-",
        "nf-flowtable-",
        "nf-nat-",
        "ipt_",
        "ip6t_",
        "xt_",
        "ebt_",
        "arpt_",
        "ip_set_",
    ];
    if NETFILTER.iter().any(|p| alias.starts_with(p)) {
        return (Netfilter, UserNamespace);
    }
    if alias.starts_with("xfrm-") {
        return (Xfrm, UserNamespace);
    }
    if alias.starts_with("tcp-ulp-") {
        return (Tcp, Root);
    }
    if alias.starts_with("char-major-") || alias.starts_with("sound-") || alias.starts_with("snd-")
    {
        return (CharMajor, DeviceNode);
    }
    if alias.starts_with("block-major-") {
        return (BlockMajor, DeviceNode);
    }
    if alias.starts_with("devname:") {
        return (Devname, DeviceNode);
    }
    if alias.starts_with("binfmt-") {
        return (Binfmt, Any);
    }
    if alias.starts_with("netdev-") {
        return (Netdev, Root);
    }
    if is_hardware_alias(alias) {
        return (TriggerKind::Hardware, Access::Hardware);
    }
    (Other, Unknown)
}

/// Triggers for call sites that request a module by its own name rather
/// than by an alias. kmod treats `-` and `_` alike in module names, so a
/// request for `algif-aead` loads the module named `algif_aead` even though
/// that module declares no alias at all (Debian 6.12).
///
/// Returns the request string the call site formats, its kind and access.
pub fn name_trigger(name: &str) -> Option<(String, TriggerKind, Access)> {
    // crypto/af_alg.c alg_bind(): request_module("algif-%s", salg_type),
    // reachable by any user who can create an AF_ALG socket.
    if let Some(kind) = name.strip_prefix("algif_") {
        return Some((format!("algif-{kind}"), TriggerKind::AfAlg, Access::Any));
    }
    name_triggers(name).map(|(k, a)| (name.to_owned(), k, a))
}

fn name_triggers(name: &str) -> Option<(TriggerKind, Access)> {
    use Access::*;
    use TriggerKind::*;
    match name {
        // net/socket.c: SIOCBRADDBR/SIOCBRDELBR and SIOCGIFVLAN/SIOCSIFVLAN
        // request these before any capability check.
        "bridge" | "8021q" => return Some((SocketIoctl, Any)),
        // Requested by name from socket code with no check first:
        // net/rds (rds_tcp transport), net/atm ioctls (pppoatm, clip, lec,
        // mpoa, br2684).
        "rds_tcp" | "pppoatm" | "clip" | "lec" | "mpoa" | "br2684" => {
            return Some((SocketProtocol, Any))
        }
        // crypto/algboss.c: template instantiation requests cryptomgr.
        "cryptomgr" => return Some((Crypto, ThroughAfAlg)),
        _ => {}
    }
    // Linux 6.1 requested classifiers by module name ("cls_%s"), reachable
    // without privilege through RTM_GETTFILTER like "net-cls-%s" later.
    if name.starts_with("cls_") {
        return Some((TrafficControl, Any));
    }
    const TC: &[&str] = &["sch_", "act_", "em_"];
    if TC.iter().any(|p| name.starts_with(p)) {
        return Some((TrafficControl, UserNamespace));
    }
    const NETFILTER: &[&str] = &[
        "xt_",
        "ipt_",
        "ip6t_",
        "ebt_",
        "arpt_",
        "nft_",
        "ip_set_",
        "ip_vs_",
        "iptable_",
        "ip6table_",
        "arptable_",
        "ebtable_",
    ];
    if NETFILTER.iter().any(|p| name.starts_with(p)) {
        return Some((Netfilter, UserNamespace));
    }
    // net/ipv4/tcp_cong.c: setsockopt(TCP_CONGESTION) requests "tcp_%s"
    // only with capable(CAP_NET_ADMIN) in the initial user namespace.
    if name.starts_with("tcp_") && name != "tcp_diag" {
        return Some((Tcp, Root));
    }
    None
}

/// Device and bus match aliases (`pci:v…`, `usb:v…`, `acpi*:…`, `of:N…`),
/// used by udev when hardware appears; never requested by a user syscall.
fn is_hardware_alias(alias: &str) -> bool {
    let head = alias.split([':', '*']).next().unwrap_or_default();
    if head.is_empty() || head.len() == alias.len() {
        return alias.starts_with("acpi") || alias.starts_with("dmi");
    }
    head.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn split_number(s: &str) -> (Option<u32>, &str) {
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    (s[..end].parse().ok(), &s[end..])
}

/// All triggers of a module: one per alias, plus the by-name trigger if any.
/// Duplicates are removed; order follows the aliases.
pub fn module_triggers(name: &str, aliases: &[String]) -> Vec<Trigger> {
    let mut out: Vec<Trigger> = Vec::with_capacity(aliases.len() + 1);
    if let Some((alias, kind, access)) = name_trigger(name) {
        out.push(Trigger {
            kind,
            alias,
            access,
        });
    }
    for alias in aliases {
        let (kind, access) = classify_alias(alias);
        if !out.iter().any(|t| t.alias == *alias) {
            out.push(Trigger {
                kind,
                alias: alias.clone(),
                access,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(alias: &str, kind: TriggerKind, access: Access) {
        assert_eq!(classify_alias(alias), (kind, access), "alias {alias}");
    }

    #[test]
    fn socket_aliases() {
        check("net-pf-40", TriggerKind::SocketFamily, Access::Any);
        check(
            "net-pf-2-proto-132",
            TriggerKind::SocketProtocol,
            Access::Any,
        );
        check(
            "net-pf-2-proto-115-type-2",
            TriggerKind::SocketProtocol,
            Access::Any,
        );
        check("bt-proto-3", TriggerKind::SocketProtocol, Access::Any);
        check("can-proto-2", TriggerKind::SocketProtocol, Access::Any);
        check("net-pf-16-proto-12", TriggerKind::Netlink, Access::Any);
        check(
            "net-pf-16-proto-4-type-2",
            TriggerKind::SockDiag,
            Access::Any,
        );
        check(
            "net-pf-16-proto-4-type-2-132",
            TriggerKind::SockDiag,
            Access::Any,
        );
        check(
            "net-pf-16-proto-16-family-l2tp",
            TriggerKind::Genetlink,
            Access::Any,
        );
        check("net-pf-x", TriggerKind::Other, Access::Unknown);
    }

    #[test]
    fn namespace_and_other_aliases() {
        check("fs-ext4", TriggerKind::Filesystem, Access::UserNamespace);
        check("nft-expr-ct", TriggerKind::Netfilter, Access::UserNamespace);
        check(
            "nfnetlink-subsys-10",
            TriggerKind::Netfilter,
            Access::UserNamespace,
        );
        check("ipt_REJECT", TriggerKind::Netfilter, Access::UserNamespace);
        check(
            "rtnl-link-vxlan",
            TriggerKind::RtnlLink,
            Access::UserNamespace,
        );
        check(
            "net-sch-netem",
            TriggerKind::TrafficControl,
            Access::UserNamespace,
        );
        check("net-cls-u32", TriggerKind::TrafficControl, Access::Any);
        check(
            "net-pf-35-proto-2",
            TriggerKind::SocketProtocol,
            Access::Root,
        );
        check("tty-ldisc-15", TriggerKind::TtyLdisc, Access::LdiscAutoload);
        check(
            "crypto-authencesn",
            TriggerKind::Crypto,
            Access::ThroughAfAlg,
        );
        check("algif-aead", TriggerKind::AfAlg, Access::Any);
        check(
            "char-major-10-229",
            TriggerKind::CharMajor,
            Access::DeviceNode,
        );
        check(
            "block-major-93-*",
            TriggerKind::BlockMajor,
            Access::DeviceNode,
        );
        check("devname:fuse", TriggerKind::Devname, Access::DeviceNode);
        check("netdev-gre0", TriggerKind::Netdev, Access::Root);
        check("tcp-ulp-tls", TriggerKind::Tcp, Access::Root);
    }

    #[test]
    fn hardware_aliases() {
        check(
            "pci:v00008086d00001572sv*sd*bc*sc*i*",
            TriggerKind::Hardware,
            Access::Hardware,
        );
        check(
            "usb:v0BDAp8153d*dc*dsc*dp*ic*isc*ip*in*",
            TriggerKind::Hardware,
            Access::Hardware,
        );
        check("acpi*:PNP0C0A:*", TriggerKind::Hardware, Access::Hardware);
        check("of:N*T*Cfsl,imx", TriggerKind::Hardware, Access::Hardware);
        check("dmi*:svnLENOVO:*", TriggerKind::Hardware, Access::Hardware);
        check(
            "x86cpu:vendor:0000:family:*:model:*:feature:*0080*",
            TriggerKind::Hardware,
            Access::Hardware,
        );
        check("sha256", TriggerKind::Other, Access::Unknown);
    }

    #[test]
    fn module_triggers_adds_by_name_requests_and_dedups() {
        let t = module_triggers(
            "bridge",
            &["rtnl-link-bridge".to_owned(), "rtnl-link-bridge".to_owned()],
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].kind, TriggerKind::SocketIoctl);
        assert_eq!(t[0].access, Access::Any);
        assert_eq!(t[1].kind, TriggerKind::RtnlLink);
        assert!(module_triggers("ext4", &[]).is_empty());
        let algif = module_triggers("algif_aead", &[]);
        assert_eq!(algif[0].alias, "algif-aead");
        assert_eq!(
            (algif[0].kind, algif[0].access),
            (TriggerKind::AfAlg, Access::Any)
        );
        assert_eq!(
            module_triggers("sch_netem", &[])[0].kind,
            TriggerKind::TrafficControl
        );
    }
}
