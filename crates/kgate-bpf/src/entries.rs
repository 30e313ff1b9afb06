//! The pure step from a [`BpfPolicy`] to the bytes of one policy
//! generation: every (map, key, value) the loader writes, in order. The
//! loader does no encoding of its own, so what the BPF programs will see
//! is decided (and tested) here, without a kernel.

use crate::abi::{self, Config};
use crate::attach::ExeKey;
use crate::pins::map;
use crate::policy::BpfPolicy;

/// One map write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapEntry {
    /// The map ([`crate::pins::MAPS`]).
    pub map: &'static str,
    /// Key bytes, as the BPF side lays them out (`src/bpf/kgate.h`).
    pub key: Vec<u8>,
    /// Value bytes.
    pub value: Vec<u8>,
    /// What the entry is, for an error message ("adding module request
    /// \"vsock\" to kg_module_allow").
    pub what: String,
}

/// The maps keyed by generation, whose entries of the generation being
/// filled are stale (from the apply before last) and deleted first.
pub(crate) const GENERATION_KEYED: [&str; 5] = [
    map::MODULE_ALLOW,
    map::SOCKET_ALLOW,
    map::USERNS_EXE,
    map::SPLICE_EP,
    map::SPLICE_PAIR,
];

/// Everything one apply writes: delete `gen`'s entries of
/// [`GENERATION_KEYED`], write `entries` in order (the config last), then
/// `activate`, the one 4-byte write that swaps the policy in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenerationWrite {
    /// The generation bit filled (0 or 1).
    pub gen: u32,
    /// The policy's entries under `gen`, then its config.
    pub entries: Vec<MapEntry>,
    /// `kg_active[0] = gen`.
    pub activate: MapEntry,
}

const ONE: [u8; 1] = [1];

/// The writes that put `policy` into generation bit `gen`, numbered
/// `generation` (shown by `status`), with the resolved `allow_exe`
/// executables `exes`. The policy must be valid
/// ([`BpfPolicy::validate`]): request strings fit the key, families are
/// below 64.
pub(crate) fn generation_write(
    policy: &BpfPolicy,
    exes: &[ExeKey],
    gen: u32,
    generation: u64,
) -> GenerationWrite {
    let mut entries = Vec::new();
    for r in &policy.modules.allowed_requests {
        entries.push(MapEntry {
            map: map::MODULE_ALLOW,
            key: abi::module_key(gen, r),
            value: ONE.to_vec(),
            what: format!("adding module request {r:?} to {}", map::MODULE_ALLOW),
        });
    }
    let mut families = [0u8; abi::FAMILIES as usize];
    for s in &policy.sockets.allow {
        if let Some(f) = families.get_mut(s.family as usize) {
            *f = 1;
        }
        entries.push(MapEntry {
            map: map::SOCKET_ALLOW,
            key: abi::socket_key(
                gen,
                s.family,
                s.sock_type.unwrap_or(abi::ANY),
                s.protocol.unwrap_or(abi::ANY),
            ),
            value: ONE.to_vec(),
            what: format!("adding socket rule {s:?} to {}", map::SOCKET_ALLOW),
        });
    }
    for (fam, listed) in families.iter().enumerate() {
        let idx = gen * abi::FAMILIES + fam as u32;
        entries.push(MapEntry {
            map: map::SOCKET_FAMILY,
            key: idx.to_ne_bytes().to_vec(),
            value: vec![*listed],
            what: format!("writing family {fam} of {}", map::SOCKET_FAMILY),
        });
    }
    for &(dev, ino, sec, nsec) in exes {
        entries.push(MapEntry {
            map: map::USERNS_EXE,
            key: abi::exe_key(gen, dev, ino, sec, nsec),
            value: ONE.to_vec(),
            what: format!(
                "adding an allow_exe executable (inode {ino}) to {}",
                map::USERNS_EXE
            ),
        });
    }
    for ep in &policy.splice.map_endpoints() {
        entries.push(MapEntry {
            map: map::SPLICE_EP,
            key: abi::splice_ep_key(gen, *ep),
            value: ONE.to_vec(),
            what: format!("adding splice endpoint {ep:?} to {}", map::SPLICE_EP),
        });
    }
    for (src, dst) in &policy.splice.pairs {
        entries.push(MapEntry {
            map: map::SPLICE_PAIR,
            key: abi::splice_pair_key(gen, *src, *dst),
            value: ONE.to_vec(),
            what: format!(
                "adding splice pair {src:?} -> {dst:?} to {}",
                map::SPLICE_PAIR
            ),
        });
    }
    let cfg = Config {
        modules_mode: policy.modules.mode.raw(),
        root_mode: policy.modules.root_mode.raw(),
        sockets_mode: policy.sockets.mode.raw(),
        userns_mode: policy.userns.mode.raw(),
        splice_mode: policy.splice.mode.raw(),
        splice_flags: policy.splice.flags(),
        generation,
        hash: policy.hash.clone(),
    };
    entries.push(MapEntry {
        map: map::CONFIG,
        key: gen.to_ne_bytes().to_vec(),
        value: cfg.encode(),
        what: format!("writing {}", map::CONFIG),
    });
    GenerationWrite {
        gen,
        entries,
        activate: MapEntry {
            map: map::ACTIVE,
            key: 0u32.to_ne_bytes().to_vec(),
            value: gen.to_ne_bytes().to_vec(),
            what: format!("switching {} to the new policy", map::ACTIVE),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::pins::policy_maps;
    use crate::policy::{RootMode, SectionMode, SocketMatch, UsernsMode};
    use crate::skel::types;

    fn ne(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    fn policy() -> BpfPolicy {
        let mut p = BpfPolicy {
            hash: "ab".repeat(32),
            ..BpfPolicy::default()
        };
        p.modules.mode = SectionMode::Enforce;
        p.modules.root_mode = RootMode::Audit;
        p.modules.allowed_requests = BTreeSet::from(["vsock".to_owned()]);
        p.sockets.mode = SectionMode::Audit;
        p.sockets.allow = BTreeSet::from([SocketMatch {
            family: 2,
            sock_type: None,
            protocol: Some(6),
        }]);
        p.userns.mode = UsernsMode::Deny;
        p.splice.mode = SectionMode::Enforce;
        p.splice.endpoints = BTreeSet::from([[1, 0, 0, 0]]);
        p.splice.pairs = BTreeSet::from([([1, 0, 0, 0], [u32::MAX; 4])]);
        p.splice.has_pairs = true;
        p
    }

    #[test]
    fn exact_entries_of_a_small_policy() {
        let w = generation_write(&policy(), &[(0x80_0001, 42, 1_700_000_000, 5)], 1, 7);
        assert_eq!(w.gen, 1);
        let of = |m: &str| -> Vec<&MapEntry> { w.entries.iter().filter(|e| e.map == m).collect() };

        let mut module_key = 1u32.to_ne_bytes().to_vec();
        module_key.extend_from_slice(b"vsock");
        module_key.resize(4 + abi::NAME_LEN, 0);
        let m = of(map::MODULE_ALLOW);
        assert_eq!(m.len(), 1);
        assert_eq!((&m[0].key, &m[0].value), (&module_key, &vec![1]));

        let s = of(map::SOCKET_ALLOW);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].key, ne(&[1, 2, u32::MAX, 6]));

        // Every family slot of generation 1 (64..128), inet listed.
        let f = of(map::SOCKET_FAMILY);
        assert_eq!(f.len(), abi::FAMILIES as usize);
        for (i, e) in f.iter().enumerate() {
            assert_eq!(e.key, (64 + i as u32).to_ne_bytes());
            assert_eq!(e.value, vec![u8::from(i == 2)]);
        }

        let x = of(map::USERNS_EXE);
        let mut exe_key = ne(&[1, 0x80_0001]);
        exe_key.extend_from_slice(&42u64.to_ne_bytes());
        exe_key.extend_from_slice(&1_700_000_000i64.to_ne_bytes());
        exe_key.extend_from_slice(&ne(&[5, 0]));
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].key, exe_key);

        let ep = of(map::SPLICE_EP);
        assert_eq!(ep.len(), 1);
        assert_eq!(ep[0].key, ne(&[1, 1, 0, 0, 0]));
        let pair = of(map::SPLICE_PAIR);
        assert_eq!(pair.len(), 1);
        let mut pair_key = ne(&[1, 1, 0, 0, 0]);
        pair_key.extend_from_slice(&ne(&[u32::MAX; 4]));
        assert_eq!(pair[0].key, pair_key);

        // The config comes last, under generation bit 1.
        let cfg = w.entries.last().unwrap();
        assert_eq!(cfg.map, map::CONFIG);
        assert_eq!(cfg.key, 1u32.to_ne_bytes());
        let decoded = Config::decode(&cfg.value).unwrap();
        assert_eq!(
            decoded,
            Config {
                modules_mode: 2,
                root_mode: 1,
                sockets_mode: 1,
                userns_mode: 2,
                splice_mode: 2,
                // pipe -> * covers pipe -> pipe: tee is allowed.
                splice_flags: abi::SPLICE_HAS_PAIRS | abi::SPLICE_PIPE_OK | abi::SPLICE_TEE_OK,
                generation: 7,
                hash: "ab".repeat(32),
            }
        );
        assert_eq!(of(map::CONFIG).len(), 1);

        assert_eq!(
            w.activate,
            MapEntry {
                map: map::ACTIVE,
                key: vec![0; 4],
                value: 1u32.to_ne_bytes().to_vec(),
                what: "switching kg_active to the new policy".into(),
            }
        );
        assert_eq!(w.entries.len(), 1 + 1 + 64 + 1 + 1 + 1 + 1);
    }

    /// Every key and value has the size of its map's C type, and every
    /// map written is a policy map.
    #[test]
    fn sizes_match_the_maps() {
        use std::mem::size_of;
        let key_size = |m: &str| match m {
            map::MODULE_ALLOW => size_of::<types::kg_module_key>(),
            map::SOCKET_ALLOW => size_of::<types::kg_socket_key>(),
            map::USERNS_EXE => size_of::<types::kg_exe_key>(),
            map::SPLICE_EP => size_of::<types::kg_splice_ep_key>(),
            map::SPLICE_PAIR => size_of::<types::kg_splice_pair_key>(),
            _ => 4,
        };
        for gen in [0, 1] {
            let w = generation_write(&policy(), &[(1, 2, 3, 4)], gen, 1);
            for e in w.entries.iter().chain([&w.activate]) {
                let (_, value_size) = policy_maps()
                    .find(|(n, _)| *n == e.map)
                    .unwrap_or_else(|| panic!("{} is not a policy map", e.map));
                assert_eq!(e.key.len(), key_size(e.map), "{}", e.what);
                assert_eq!(e.value.len(), value_size, "{}", e.what);
                if GENERATION_KEYED.contains(&e.map) {
                    assert_eq!(abi::key_gen(&e.key), Some(gen), "{}", e.what);
                }
            }
        }
    }

    #[test]
    fn empty_policy_writes_families_config_and_the_swap() {
        let p = BpfPolicy {
            hash: "0".repeat(64),
            ..BpfPolicy::default()
        };
        let w = generation_write(&p, &[], 0, 1);
        assert_eq!(w.entries.len(), abi::FAMILIES as usize + 1);
        assert!(w.entries[..64]
            .iter()
            .all(|e| e.map == map::SOCKET_FAMILY && e.value == [0]));
        assert_eq!(w.activate.value, 0u32.to_ne_bytes());
    }
}
