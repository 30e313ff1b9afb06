//! [`BpfPolicy`]: the plain data the BPF programs enforce, and its
//! construction from a kgate policy and a kernel's module tree.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kgate_kernel::tree::KernelTree;
use kgate_policy::{Policy, SocketProtocol};
use serde::Serialize;

use crate::abi;

/// How a section is applied (mirrors `kgate_policy::Mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionMode {
    /// Not checked.
    #[default]
    Off,
    /// Allowed, and reported when enforce would deny.
    Audit,
    /// Denied unless allowed.
    Enforce,
}

impl SectionMode {
    pub(crate) fn raw(self) -> u32 {
        match self {
            SectionMode::Off => 0,
            SectionMode::Audit => 1,
            SectionMode::Enforce => 2,
        }
    }

    pub(crate) fn from_raw(v: u32) -> Option<SectionMode> {
        Some(match v {
            0 => SectionMode::Off,
            1 => SectionMode::Audit,
            2 => SectionMode::Enforce,
            _ => return None,
        })
    }

    fn from_policy(m: kgate_policy::Mode) -> SectionMode {
        match m {
            kgate_policy::Mode::Enforce => SectionMode::Enforce,
            kgate_policy::Mode::Audit => SectionMode::Audit,
            _ => SectionMode::Off,
        }
    }
}

/// Module autoload requests by real root (global uid 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootMode {
    /// Always pass (counted, not reported).
    #[default]
    Allow,
    /// Pass, reported when the allowlist would deny.
    Audit,
    /// Held to the allowlist like everyone else.
    Policy,
}

impl RootMode {
    pub(crate) fn raw(self) -> u32 {
        match self {
            RootMode::Allow => 0,
            RootMode::Audit => 1,
            RootMode::Policy => 2,
        }
    }

    pub(crate) fn from_raw(v: u32) -> Option<RootMode> {
        Some(match v {
            0 => RootMode::Allow,
            1 => RootMode::Audit,
            2 => RootMode::Policy,
            _ => return None,
        })
    }
}

/// `userns.unprivileged`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsernsMode {
    /// No restriction.
    #[default]
    Allow,
    /// Allowed; creations outside `allow_exe` are reported.
    Audit,
    /// Denied outside `allow_exe`.
    Deny,
}

impl UsernsMode {
    pub(crate) fn raw(self) -> u32 {
        match self {
            UsernsMode::Allow => 0,
            UsernsMode::Audit => 1,
            UsernsMode::Deny => 2,
        }
    }

    pub(crate) fn from_raw(v: u32) -> Option<UsernsMode> {
        Some(match v {
            0 => UsernsMode::Allow,
            1 => UsernsMode::Audit,
            2 => UsernsMode::Deny,
            _ => return None,
        })
    }
}

/// `[modules]` as enforced at `kernel_module_request`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModulesRules {
    /// How the allowlist applies to unprivileged tasks (and to root under
    /// [`RootMode::Policy`]/[`RootMode::Audit`]).
    pub mode: SectionMode,
    /// Requests by real root.
    pub root_mode: RootMode,
    /// Request strings that may pass, kmod-normalized (`-` written `_`,
    /// which the BPF program also does to each request). At most 55 bytes
    /// (the kernel formats requests into `MODULE_NAME_LEN` = 56 bytes).
    pub allowed_requests: BTreeSet<String>,
    /// Allowed names that are not modules of this kernel but aliases of
    /// modules the policy blocks (`net-pf-40` with vsock blocked), left
    /// out of [`ModulesRules::allowed_requests`]: each with the blocked
    /// modules modprobe would load for it.
    pub dropped_aliases: Vec<(String, Vec<String>)>,
}

/// One allowed `socket(family, type, protocol)` pattern; `None` is any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SocketMatch {
    /// `AF_*`, below 64.
    pub family: u32,
    /// `SOCK_*` (low 4 bits), or any.
    pub sock_type: Option<u32>,
    /// Protocol number as passed to `socket(2)`, or any.
    pub protocol: Option<u32>,
}

/// `[sockets]` as enforced at `socket_create` (unprivileged tasks,
/// non-kernel sockets only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SocketsRules {
    /// How the allowlist applies.
    pub mode: SectionMode,
    /// Allowed patterns. A call is allowed when one matches exactly on
    /// family and on type/protocol (or their wildcard).
    pub allow: BTreeSet<SocketMatch>,
}

/// `[userns]` as enforced at `userns_create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsernsRules {
    /// What unprivileged tasks may do.
    pub mode: UsernsMode,
    /// Absolute paths of executables that may create user namespaces.
    /// `apply` stat()s each and matches the running executable by
    /// (device, inode); a missing path is skipped and reported.
    pub allow_exe: BTreeSet<PathBuf>,
}

/// One splice endpoint, or a pattern of them, as the BPF program matches
/// it: `[kind, a, b, c]` with `KG_EP_*` kinds (pipe 1, file 2 with a =
/// superblock magic, socket 3 with a/b/c = family/type/protocol, chardev 4
/// with a/b = major/minor, other 5, memory 6, any kind `u32::MAX`);
/// `u32::MAX` in
/// a, b or c matches anything.
pub type EndpointKey = [u32; 4];

/// `[splice]` as enforced at `file_permission` in splice context
/// (unprivileged tasks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpliceRules {
    /// How the registry applies.
    pub mode: SectionMode,
    /// Allowed endpoints (exact, or sockets with wildcards).
    pub endpoints: BTreeSet<EndpointKey>,
    /// Allowed (source, destination) patterns; only consulted when
    /// `has_pairs`.
    pub pairs: BTreeSet<(EndpointKey, EndpointKey)>,
    /// The policy lists pairs: a call must also match one.
    pub has_pairs: bool,
}

const EP_PIPE: u32 = 1;
const EP_FILE: u32 = 2;
const EP_SOCKET: u32 = 3;
const EP_CHARDEV: u32 = 4;
const EP_OTHER: u32 = 5;
const EP_MEMORY: u32 = 6;
const EP_ANYKIND: u32 = u32::MAX;

/// The key of a policy endpoint (socket rules may carry wildcards).
pub fn endpoint_key(e: &kgate_policy::Endpoint) -> EndpointKey {
    use kgate_policy::Endpoint as E;
    match e {
        E::Pipe => [EP_PIPE, 0, 0, 0],
        E::File(_) => [EP_FILE, e.fs_magic().unwrap_or(0), 0, 0],
        E::Socket(r) => match r.protocol {
            SocketProtocol::Number(p) => [EP_SOCKET, r.family, abi::ANY, p],
            SocketProtocol::Raw => [EP_SOCKET, r.family, libc::SOCK_RAW as u32, abi::ANY],
            _ => [EP_SOCKET, r.family, abi::ANY, abi::ANY],
        },
        E::Chardev(_) => {
            let (maj, min) = e.chardev_numbers().unwrap_or((0, 0));
            [EP_CHARDEV, maj, min, 0]
        }
        E::Memory => [EP_MEMORY, 0, 0, 0],
        _ => [EP_OTHER, 0, 0, 0],
    }
}

fn pattern_key(p: &kgate_policy::EndpointPattern) -> EndpointKey {
    use kgate_policy::EndpointPattern as P;
    let any = abi::ANY;
    match p {
        P::Exact(e) => endpoint_key(e),
        P::AnyFile => [EP_FILE, any, any, any],
        P::AnySocket => [EP_SOCKET, any, any, any],
        P::AnyChardev => [EP_CHARDEV, any, any, any],
        _ => [EP_ANYKIND, any, any, any],
    }
}

/// A concrete endpoint as the kernel shows it (what `kg_classify` in
/// splice.bpf.c computes): for tests and tools.
pub fn concrete_key(e: &kgate_policy::Endpoint, sock_type: u32) -> EndpointKey {
    let mut k = endpoint_key(e);
    if k[0] == EP_SOCKET {
        k[2] = sock_type;
        if k[3] == abi::ANY {
            k[3] = 0;
        }
    }
    k
}

/// The patterns a concrete endpoint matches, in the BPF program's order
/// (`kg_pattern`): exact, the socket wildcards, its class, anything.
fn patterns(ep: EndpointKey) -> Vec<EndpointKey> {
    let any = abi::ANY;
    let [kind, a, b, c] = ep;
    let mut v = vec![ep];
    if kind == EP_SOCKET {
        v.push([kind, a, any, c]);
        v.push([kind, a, b, any]);
        v.push([kind, a, any, any]);
    }
    if matches!(kind, EP_FILE | EP_SOCKET | EP_CHARDEV) {
        v.push([kind, any, any, any]);
    }
    v.push([EP_ANYKIND, any, any, any]);
    v
}

impl SpliceRules {
    /// `tee(2)` moves pipe -> pipe: allowed when that transfer is.
    pub fn tee_allowed(&self) -> bool {
        let pipe = [EP_PIPE, 0, 0, 0];
        self.allows(pipe, pipe)
    }

    /// `vmsplice(2)` moves memory -> pipe or pipe -> memory, by which end
    /// of the pipe its fd is (which a thread sharing the fd table can
    /// change after any check): allowed only when both directions are.
    pub fn vmsplice_allowed(&self) -> bool {
        let (pipe, mem) = ([EP_PIPE, 0, 0, 0], [EP_MEMORY, 0, 0, 0]);
        self.allows(mem, pipe) && self.allows(pipe, mem)
    }

    /// The keys written to the endpoint map: `endpoints`, plus, for socket
    /// rules with a wildcard type, the same rule with each common type
    /// spelled out (and for `unix`, protocol 0 too), so that the BPF
    /// program's first lookup (the socket's exact family/type/protocol)
    /// hits for the usual sockets instead of its third or fourth. They
    /// match nothing the wildcard rule does not: same decisions.
    pub fn map_endpoints(&self) -> BTreeSet<EndpointKey> {
        const TYPES: [u32; 4] = [1, 2, 3, 5]; // STREAM, DGRAM, RAW, SEQPACKET
        let mut out = self.endpoints.clone();
        for &[kind, fam, ty, proto] in &self.endpoints {
            if kind != EP_SOCKET || ty != abi::ANY {
                continue;
            }
            let proto = match proto {
                abi::ANY if fam == libc::AF_UNIX as u32 => 0,
                abi::ANY => continue,
                p => p,
            };
            for t in TYPES {
                out.insert([kind, fam, t, proto]);
            }
        }
        out
    }

    /// `kg_config.splice_flags`.
    pub fn flags(&self) -> u32 {
        let mut f = 0;
        if self.has_pairs {
            f |= abi::SPLICE_HAS_PAIRS;
        }
        if self.endpoints.contains(&[EP_PIPE, 0, 0, 0]) {
            f |= abi::SPLICE_PIPE_OK;
        }
        if self.tee_allowed() {
            f |= abi::SPLICE_TEE_OK;
        }
        if self.vmsplice_allowed() {
            f |= abi::SPLICE_VMSPLICE_OK;
        }
        f
    }

    /// The same decision the BPF program makes for a transfer between two
    /// concrete endpoints.
    pub fn allows(&self, src: EndpointKey, dst: EndpointKey) -> bool {
        // Endpoints: exact, or for sockets the three wildcard forms
        // (`kg_ep_allowed`); class wildcards exist only in pairs.
        let ep_ok = |e: EndpointKey| {
            let n = if e[0] == EP_SOCKET { 4 } else { 1 };
            patterns(e)[..n].iter().any(|p| self.endpoints.contains(p))
        };
        ep_ok(src)
            && ep_ok(dst)
            && (!self.has_pairs
                || patterns(src)
                    .iter()
                    .any(|s| patterns(dst).iter().any(|d| self.pairs.contains(&(*s, *d)))))
    }
}

/// Everything the BPF programs enforce: plain data, validated by
/// [`BpfPolicy::validate`] (which `apply` calls before touching anything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BpfPolicy {
    /// Module autoload.
    pub modules: ModulesRules,
    /// Socket families and protocols.
    pub sockets: SocketsRules,
    /// User namespace creation.
    pub userns: UsernsRules,
    /// Splice-family endpoints.
    pub splice: SpliceRules,
    /// The policy hash shown by `status` (`Policy::hash`: 64 hex digits).
    pub hash: String,
}

/// Longest request string the kernel can pass (`MODULE_NAME_LEN` - 1).
pub const MAX_REQUEST_LEN: usize = 55;

impl BpfPolicy {
    /// What [`BpfPolicy::from_policy`] left out of the policy and why,
    /// for the user to fix: one line each.
    pub fn warnings(&self) -> Vec<String> {
        self.modules
            .dropped_aliases
            .iter()
            .map(|(name, blocked)| {
                format!(
                    "modules.allow {name:?} is not a module of this kernel but an alias of {} \
                     that the policy blocks, so modprobe would load {}: not allowed. Allow {} \
                     by name if it is meant to load, or remove {name:?}",
                    blocked.join(", "),
                    if blocked.len() == 1 { "it" } else { "them" },
                    if blocked.len() == 1 { "it" } else { "them" },
                )
            })
            .collect()
    }

    /// Every problem, each naming the offending entry; empty when valid.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.hash.len() != 64 || !self.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            p.push(format!(
                "hash: `{}` is not 64 hex digits (use kgate_policy::Policy::hash)",
                self.hash
            ));
        }
        let max_modules = abi::MODULE_MAP_ENTRIES / 2;
        if self.modules.allowed_requests.len() > max_modules {
            p.push(format!(
                "modules: {} allowed request strings, at most {max_modules} fit",
                self.modules.allowed_requests.len()
            ));
        }
        for r in &self.modules.allowed_requests {
            if r.is_empty() || r.len() > MAX_REQUEST_LEN || r.bytes().any(|b| b == 0) {
                p.push(format!(
                    "modules: request string {r:?} is empty, contains NUL or is longer than {MAX_REQUEST_LEN} bytes"
                ));
            } else if r.contains('-') {
                p.push(format!(
                    "modules: request string {r:?} is not kmod-normalized (write `-` as `_`)"
                ));
            }
        }
        if self.sockets.allow.len() > abi::SOCKET_MAP_ENTRIES / 2 {
            p.push(format!(
                "sockets: {} patterns, at most {} fit",
                self.sockets.allow.len(),
                abi::SOCKET_MAP_ENTRIES / 2
            ));
        }
        for s in &self.sockets.allow {
            if s.family >= abi::FAMILIES {
                p.push(format!(
                    "sockets: family {} is out of range (0..{})",
                    s.family,
                    abi::FAMILIES
                ));
            }
            if s.sock_type.is_some_and(|t| t > 0xf) {
                p.push(format!(
                    "sockets: type {:?} of family {} is out of range (0..16)",
                    s.sock_type, s.family
                ));
            }
            if s.protocol == Some(abi::ANY) {
                p.push(format!(
                    "sockets: protocol {} of family {} is reserved for `any`",
                    abi::ANY,
                    s.family
                ));
            }
        }
        for (what, n) in [
            ("endpoints", self.splice.map_endpoints().len()),
            ("pairs", self.splice.pairs.len()),
        ] {
            if n > abi::SPLICE_MAP_ENTRIES / 2 {
                p.push(format!(
                    "splice: {n} {what}, at most {} fit",
                    abi::SPLICE_MAP_ENTRIES / 2
                ));
            }
        }
        if self.userns.allow_exe.len() > abi::EXE_MAP_ENTRIES / 2 {
            p.push(format!(
                "userns: {} allow_exe paths, at most {} fit",
                self.userns.allow_exe.len(),
                abi::EXE_MAP_ENTRIES / 2
            ));
        }
        for e in &self.userns.allow_exe {
            if !e.is_absolute() {
                p.push(format!(
                    "userns: allow_exe {} is not an absolute path",
                    e.display()
                ));
            }
        }
        p
    }

    /// `Ok` when [`BpfPolicy::problems`] finds nothing.
    pub fn validate(&self) -> Result<(), crate::BpfError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(crate::BpfError::InvalidPolicy { problems })
        }
    }

    /// The policy's rules for this kernel.
    ///
    /// Modules: the effective allowlist ([`Policy::effective_modules`]:
    /// listed modules, their load closure, builtins) becomes request
    /// strings: every allowed module's name, and every alias of an allowed
    /// module that has no glob characters and resolves
    /// ([`KernelTree::resolve`]) only to allowed modules (an alias another,
    /// blocked module also matches would load that one too, so it is left
    /// out). Limits: requests that only match glob aliases (`pci:v…`,
    /// `usb:v…`, `cpu:type:…`, i.e. hardware, requested by root through
    /// udev) are not in the map and follow `modules.root`; a module of
    /// another kernel's tree is allowed by name only.
    ///
    /// Sockets: each `sockets.allow` rule becomes the patterns that
    /// reproduce [`kgate_policy::SocketRule::matches`]: `FAMILY` → (family,
    /// any, any); `FAMILY/P` → (family, any, P), plus (family, STREAM, 0)
    /// for inet/inet6 tcp and (family, DGRAM, 0) for udp; `raw` →
    /// (family, SOCK_RAW, any).
    pub fn from_policy(policy: &Policy, tree: &KernelTree) -> BpfPolicy {
        let allowed: BTreeSet<String> = policy.effective_modules(tree).into_keys().collect();
        // An allowed name that is an alias of a blocked module would reach
        // modprobe, which loads the blocked module: never a request string.
        let dropped = tree.aliases_of_unallowed(&allowed);
        let mut requests = BTreeSet::new();
        let mut add = |s: String| {
            if !s.is_empty() && s.len() <= MAX_REQUEST_LEN {
                requests.insert(s);
            }
        };
        for name in &allowed {
            if dropped.iter().any(|(d, _)| d == name) {
                continue;
            }
            add(kgate_kernel::normalize_alias(name));
            let Some(m) = tree.get(name) else { continue };
            for alias in &m.aliases {
                if alias.contains(['*', '?', '[']) {
                    continue;
                }
                let targets = tree.resolve(alias);
                if !targets.is_empty() && targets.iter().all(|t| allowed.contains(&t.name)) {
                    add(kgate_kernel::normalize_alias(alias));
                }
            }
        }

        let mut socks = BTreeSet::new();
        for e in &policy.sockets.allow {
            let r = e.value;
            let f = r.family;
            match r.protocol {
                SocketProtocol::Any => {
                    socks.insert(SocketMatch {
                        family: f,
                        sock_type: None,
                        protocol: None,
                    });
                }
                SocketProtocol::Raw => {
                    socks.insert(SocketMatch {
                        family: f,
                        sock_type: Some(libc::SOCK_RAW as u32),
                        protocol: None,
                    });
                }
                SocketProtocol::Number(p) => {
                    socks.insert(SocketMatch {
                        family: f,
                        sock_type: None,
                        protocol: Some(p),
                    });
                    let inet = f == libc::AF_INET as u32 || f == libc::AF_INET6 as u32;
                    if inet && p == libc::IPPROTO_TCP as u32 {
                        socks.insert(SocketMatch {
                            family: f,
                            sock_type: Some(libc::SOCK_STREAM as u32),
                            protocol: Some(0),
                        });
                    }
                    if inet && p == libc::IPPROTO_UDP as u32 {
                        socks.insert(SocketMatch {
                            family: f,
                            sock_type: Some(libc::SOCK_DGRAM as u32),
                            protocol: Some(0),
                        });
                    }
                }
                // A protocol kind this crate does not know yet: allow the
                // whole family rather than deny what the policy allows.
                _ => {
                    socks.insert(SocketMatch {
                        family: f,
                        sock_type: None,
                        protocol: None,
                    });
                }
            }
        }

        BpfPolicy {
            modules: ModulesRules {
                mode: SectionMode::from_policy(policy.modules.mode),
                root_mode: match policy.modules.root {
                    kgate_policy::RootMode::Audit => RootMode::Audit,
                    kgate_policy::RootMode::Policy => RootMode::Policy,
                    _ => RootMode::Allow,
                },
                allowed_requests: requests,
                dropped_aliases: dropped,
            },
            sockets: SocketsRules {
                mode: SectionMode::from_policy(policy.sockets.mode),
                allow: socks,
            },
            userns: UsernsRules {
                mode: match policy.userns.unprivileged {
                    kgate_policy::UsernsMode::Deny => UsernsMode::Deny,
                    kgate_policy::UsernsMode::Audit => UsernsMode::Audit,
                    _ => UsernsMode::Allow,
                },
                allow_exe: policy
                    .userns
                    .allow_exe
                    .iter()
                    .map(|e| PathBuf::from(&e.value))
                    .collect(),
            },
            splice: SpliceRules {
                mode: SectionMode::from_policy(policy.splice.mode),
                endpoints: policy
                    .splice
                    .allow
                    .iter()
                    .map(|e| endpoint_key(&e.value))
                    .collect(),
                pairs: policy
                    .splice
                    .pairs
                    .iter()
                    .map(|p| {
                        (
                            pattern_key(&p.value.source),
                            pattern_key(&p.value.destination),
                        )
                    })
                    .collect(),
                has_pairs: !policy.splice.pairs.is_empty(),
            },
            hash: policy.hash(),
        }
    }

    /// Would `socket(family, sock_type, protocol)` by an unprivileged task
    /// match an allowed pattern? The same lookups the BPF program does.
    pub fn socket_allowed(&self, family: u32, sock_type: u32, protocol: u32) -> bool {
        let t = sock_type & 0xf;
        [
            (None, None),
            (None, Some(protocol)),
            (Some(t), Some(protocol)),
            (Some(t), None),
        ]
        .iter()
        .any(|&(sock_type, protocol)| {
            self.sockets.allow.contains(&SocketMatch {
                family,
                sock_type,
                protocol,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use kgate_policy::{Endpoint, Mode, SplicePreset, SpliceSection};

    use super::*;

    /// Concrete endpoints as the kernel shows them: (policy endpoint,
    /// socket type).
    fn concrete() -> Vec<(Endpoint, u32)> {
        let mut v = vec![
            (Endpoint::Pipe, 0),
            (Endpoint::Other, 0),
            (Endpoint::Memory, 0),
        ];
        for fs in ["ext4", "xfs", "tmpfs", "proc", "sysfs", "btrfs"] {
            v.push((Endpoint::parse(&format!("file:{fs}")).unwrap(), 0));
        }
        for (s, t) in [
            ("inet/tcp", 1),
            ("inet6/udp", 2),
            ("unix", 1),
            ("unix", 2),
            ("alg", 5),
            ("netlink/route", 3),
            ("inet/sctp", 1),
        ] {
            v.push((Endpoint::parse(&format!("socket:{s}")).unwrap(), t));
        }
        for c in ["null", "zero", "urandom", "kmsg"] {
            v.push((Endpoint::parse(&format!("chardev:{c}")).unwrap(), 0));
        }
        v
    }

    /// The map encoding decides every concrete pair exactly as the policy
    /// model does, for both presets and a hand-written section.
    #[test]
    fn splice_maps_decide_like_the_policy_model() {
        let custom = {
            let mut s = SpliceSection::preset(SplicePreset::Default, Mode::Enforce);
            s.allow.push(kgate_policy::Entry::new(
                Endpoint::parse("socket:alg").unwrap(),
            ));
            s.pairs = ["file:ext4 -> socket:inet", "* -> socket:alg", "pipe -> *"]
                .iter()
                .map(|p| kgate_policy::Entry::new(kgate_policy::SplicePair::parse(p).unwrap()))
                .collect();
            s
        };
        for section in [
            SpliceSection::preset(SplicePreset::Default, Mode::Enforce),
            SpliceSection::preset(SplicePreset::Strict, Mode::Enforce),
            custom,
        ] {
            let policy = Policy {
                splice: section.clone(),
                ..Policy::default()
            };
            let rules =
                BpfPolicy::from_policy(&policy, &KernelTree::empty("/nonexistent".into())).splice;
            // What the map holds: the type-expanded socket rules.
            let written = SpliceRules {
                endpoints: rules.map_endpoints(),
                ..rules.clone()
            };
            assert!(written.endpoints.len() > rules.endpoints.len());
            let mut checked = 0;
            for (src, st) in concrete() {
                for (dst, dt) in concrete() {
                    let want = section.allows(&src, &dst);
                    let (s, d) = (concrete_key(&src, st), concrete_key(&dst, dt));
                    assert_eq!(rules.allows(s, d), want, "{src} -> {dst} under {section:?}");
                    assert_eq!(written.allows(s, d), want, "written: {src} -> {dst}");
                    checked += 1;
                }
            }
            assert_eq!(checked, 20 * 20);
            let pipe = [EP_PIPE, 0, 0, 0];
            let mem = [EP_MEMORY, 0, 0, 0];
            assert_eq!(
                rules.tee_allowed(),
                section.allows(&Endpoint::Pipe, &Endpoint::Pipe)
            );
            assert_eq!(
                rules.vmsplice_allowed(),
                rules.allows(mem, pipe) && rules.allows(pipe, mem)
            );
        }
    }
}
