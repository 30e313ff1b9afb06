//! The byte layouts shared with the BPF programs (`src/bpf/kgate.h`).
//!
//! Keys and values are encoded by hand, native-endian, field for field, so
//! the layout is explicit here and checked against the skeleton's generated
//! types in the tests.

/// Length of a module request key (`KG_NAME_LEN`): `MODULE_NAME_LEN` is 56,
/// so every request string the kernel formats fits.
pub const NAME_LEN: usize = 64;
/// Families with a slot in the per-family array (`KG_FAMILIES`).
pub const FAMILIES: u32 = 64;
/// Wildcard type or protocol in a socket key (`KG_ANY`).
pub const ANY: u32 = u32::MAX;
/// Counter slots per hook (`KG_VERDICTS`).
pub const VERDICTS: usize = 4;
/// Size of `struct kg_config`.
pub const CONFIG_SIZE: usize = 6 * 4 + 8 + 64;
/// Size of `struct kg_event`.
pub const EVENT_SIZE: usize = 8 + 8 + 4 * 10 + 16 + NAME_LEN + NAME_LEN;
/// Capacity of the module request map (both generations).
pub const MODULE_MAP_ENTRIES: usize = 65536;
/// Capacity of the socket rule map (both generations).
pub const SOCKET_MAP_ENTRIES: usize = 8192;
/// Capacity of the allowed-executable map (both generations).
pub const EXE_MAP_ENTRIES: usize = 2048;
/// Capacity of each splice map (endpoints, pairs; both generations).
pub const SPLICE_MAP_ENTRIES: usize = 4096;
/// `KG_SPLICE_HAS_PAIRS`.
pub const SPLICE_HAS_PAIRS: u32 = 1;
/// `KG_SPLICE_TEE_OK`: `tee(2)` (pipe -> pipe) is allowed.
pub const SPLICE_TEE_OK: u32 = 2;
/// `KG_SPLICE_VMSPLICE_OK`: `vmsplice(2)` (memory <-> pipe) is allowed.
pub const SPLICE_VMSPLICE_OK: u32 = 4;
/// `KG_SPLICE_PIPE_OK`: `pipe` is in `splice.allow` (the pipe end of a
/// splice needs no lookup).
pub const SPLICE_PIPE_OK: u32 = 8;
/// Counter sections (`KG_SECTIONS`): at least one per hook.
pub const SECTIONS: usize = 24;
/// Size of `struct kg_splice_request` (a splice event's request bytes).
pub const SPLICE_REQUEST_SIZE: usize = 4 + 16 + 16;

/// `struct kg_config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub modules_mode: u32,
    pub root_mode: u32,
    pub sockets_mode: u32,
    pub userns_mode: u32,
    pub splice_mode: u32,
    pub splice_flags: u32,
    pub generation: u64,
    pub hash: String,
}

impl Config {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CONFIG_SIZE);
        for x in [
            self.modules_mode,
            self.root_mode,
            self.sockets_mode,
            self.userns_mode,
            self.splice_mode,
            self.splice_flags,
        ] {
            v.extend_from_slice(&x.to_ne_bytes());
        }
        v.extend_from_slice(&self.generation.to_ne_bytes());
        let mut hash = [0u8; 64];
        let h = self.hash.as_bytes();
        hash[..h.len().min(64)].copy_from_slice(&h[..h.len().min(64)]);
        v.extend_from_slice(&hash);
        v
    }

    pub fn decode(b: &[u8]) -> Option<Config> {
        if b.len() != CONFIG_SIZE {
            return None;
        }
        Some(Config {
            modules_mode: u32_at(b, 0),
            root_mode: u32_at(b, 4),
            sockets_mode: u32_at(b, 8),
            userns_mode: u32_at(b, 12),
            splice_mode: u32_at(b, 16),
            splice_flags: u32_at(b, 20),
            generation: u64_at(b, 24),
            hash: cstr(&b[32..96]),
        })
    }
}

/// `struct kg_module_key`.
pub fn module_key(gen: u32, request: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + NAME_LEN);
    v.extend_from_slice(&gen.to_ne_bytes());
    let mut name = [0u8; NAME_LEN];
    name[..request.len()].copy_from_slice(request.as_bytes());
    v.extend_from_slice(&name);
    v
}

/// `struct kg_socket_key`.
pub fn socket_key(gen: u32, family: u32, sock_type: u32, protocol: u32) -> Vec<u8> {
    [gen, family, sock_type, protocol]
        .iter()
        .flat_map(|x| x.to_ne_bytes())
        .collect()
}

/// `struct kg_exe_key`: device in the kernel's encoding (major << 20 |
/// minor), inode, and the inode's change time.
pub fn exe_key(gen: u32, dev: u32, ino: u64, ctime_sec: i64, ctime_nsec: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(32);
    k.extend_from_slice(&gen.to_ne_bytes());
    k.extend_from_slice(&dev.to_ne_bytes());
    k.extend_from_slice(&ino.to_ne_bytes());
    k.extend_from_slice(&ctime_sec.to_ne_bytes());
    k.extend_from_slice(&ctime_nsec.to_ne_bytes());
    k.extend_from_slice(&0u32.to_ne_bytes());
    k
}

/// `struct kg_splice_ep_key`.
pub fn splice_ep_key(gen: u32, ep: [u32; 4]) -> Vec<u8> {
    std::iter::once(gen)
        .chain(ep)
        .flat_map(|x| x.to_ne_bytes())
        .collect()
}

/// `struct kg_splice_pair_key`.
pub fn splice_pair_key(gen: u32, src: [u32; 4], dst: [u32; 4]) -> Vec<u8> {
    std::iter::once(gen)
        .chain(src)
        .chain(dst)
        .flat_map(|x| x.to_ne_bytes())
        .collect()
}

/// The generation a policy map key belongs to (its first field).
pub fn key_gen(key: &[u8]) -> Option<u32> {
    key.get(..4).map(|_| u32_at(key, 0))
}

pub fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

pub fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// A NUL-terminated (or full) byte string, lossily as UTF-8.
pub fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The kernel's `dev_t` encoding of a userspace `st_dev`.
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = libc::major(st_dev);
    let minor = libc::minor(st_dev);
    (major << 20) | minor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skel::types;

    #[test]
    fn sizes_match_the_c_structs() {
        assert_eq!(std::mem::size_of::<types::kg_config>(), CONFIG_SIZE);
        assert_eq!(
            std::mem::size_of::<types::kg_module_key>(),
            module_key(0, "x").len()
        );
        assert_eq!(
            std::mem::size_of::<types::kg_socket_key>(),
            socket_key(0, 0, 0, 0).len()
        );
        assert_eq!(
            std::mem::size_of::<types::kg_exe_key>(),
            exe_key(0, 0, 0, 0, 0).len()
        );
        assert_eq!(
            std::mem::size_of::<types::kg_splice_ep_key>(),
            splice_ep_key(0, [0; 4]).len()
        );
        assert_eq!(
            std::mem::size_of::<types::kg_splice_pair_key>(),
            splice_pair_key(0, [0; 4], [0; 4]).len()
        );
    }

    #[test]
    fn config_round_trips() {
        let c = Config {
            modules_mode: 2,
            root_mode: 1,
            sockets_mode: 2,
            userns_mode: 2,
            splice_mode: 1,
            splice_flags: 1,
            generation: 7,
            hash: "ab".repeat(32),
        };
        assert_eq!(Config::decode(&c.encode()), Some(c));
    }

    #[test]
    fn every_hook_has_a_counter_section() {
        assert!(crate::Hook::ALL.len() <= SECTIONS);
        // SECTIONS mirrors KG_SECTIONS, which sizes the counters map.
        let h = include_str!("bpf/kgate.h");
        let line = h
            .lines()
            .find(|l| l.starts_with("#define KG_SECTIONS "))
            .expect("KG_SECTIONS in kgate.h");
        let n: usize = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert_eq!(n, SECTIONS);
    }

    #[test]
    fn kernel_dev_encoding() {
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
        assert_eq!(kernel_dev(libc::makedev(0, 300)), 300);
    }
}
