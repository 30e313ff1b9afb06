//! The pin directory's layout: which maps, programs and links are pinned
//! under which names, and opening what is pinned.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libbpf_rs::{Link, MapHandle};

use crate::hook::Hook;
use crate::BpfError;

/// What a pinned map holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Policy, written by `apply` (both generations): its values have this
    /// many bytes, checked before a re-apply writes into a pinned map.
    Policy { value_size: usize },
    /// Kernel-side state and output (events, counters, self-test, task
    /// marks): never written by `apply`.
    State,
    /// Not pinned: per-call scratch space of one program (task storage),
    /// each loaded object its own. Listed so that the table names every
    /// map of the object.
    Scratch,
}

/// One map of the object, pinned (unless [`Role::Scratch`]) as `map_NAME`
/// under the pin directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PinnedMap {
    /// The map's name in the BPF object (and in its pin).
    pub name: &'static str,
    /// What it holds.
    pub role: Role,
}

/// Names of the maps the Rust side opens by name.
pub(crate) mod map {
    pub const ACTIVE: &str = "kg_active";
    pub const CONFIG: &str = "kg_config";
    pub const MODULE_ALLOW: &str = "kg_module_allow";
    pub const SOCKET_ALLOW: &str = "kg_socket_allow";
    pub const SOCKET_FAMILY: &str = "kg_socket_family";
    pub const USERNS_EXE: &str = "kg_userns_exe";
    pub const SPLICE_EP: &str = "kg_splice_ep";
    pub const SPLICE_PAIR: &str = "kg_splice_pair";
    pub const EVENTS: &str = "kg_events";
    pub const DROPS: &str = "kg_drops";
    pub const COUNTERS: &str = "kg_counters";
    pub const SELFTEST: &str = "kg_selftest";
    pub const SELFTEST_HITS: &str = "kg_selftest_hits";
}

const fn policy(name: &'static str, value_size: usize) -> PinnedMap {
    PinnedMap {
        name,
        role: Role::Policy { value_size },
    }
}

const fn state(name: &'static str) -> PinnedMap {
    PinnedMap {
        name,
        role: Role::State,
    }
}

/// Every map of the object, in pin order: the one definition of what is
/// pinned (apply), reused (attaching more programs), checked (re-apply),
/// read (status, events, self-test) and unpinned (revert). A test checks
/// it against the object's maps.
pub(crate) const MAPS: [PinnedMap; 18] = [
    policy(map::ACTIVE, 4),
    policy(map::CONFIG, crate::abi::CONFIG_SIZE),
    policy(map::MODULE_ALLOW, 1),
    policy(map::SOCKET_ALLOW, 1),
    policy(map::SOCKET_FAMILY, 1),
    policy(map::USERNS_EXE, 1),
    policy(map::SPLICE_EP, 1),
    policy(map::SPLICE_PAIR, 1),
    state("kg_uring_splice"),
    state("kg_uring_unmarked"),
    state(map::EVENTS),
    state(map::DROPS),
    state(map::COUNTERS),
    state(map::SELFTEST),
    state(map::SELFTEST_HITS),
    state("kg_crypto_larval"),
    state("kg_task_attr"),
    PinnedMap {
        name: "kg_splice_stash",
        role: Role::Scratch,
    },
];

/// The maps of [`MAPS`] that are pinned, in pin order.
pub(crate) fn pinned_maps() -> impl Iterator<Item = &'static str> {
    MAPS.iter()
        .filter(|m| m.role != Role::Scratch)
        .map(|m| m.name)
}

/// The maps that hold the policy, with their value sizes.
pub(crate) fn policy_maps() -> impl Iterator<Item = (&'static str, usize)> {
    MAPS.iter().filter_map(|m| match m.role {
        Role::Policy { value_size } => Some((m.name, value_size)),
        Role::State | Role::Scratch => None,
    })
}

/// The error for a map of [`MAPS`] the object lacks (a build out of step
/// with the table).
pub(crate) fn missing_map(name: &str) -> BpfError {
    BpfError::NotSupported {
        reason: format!(
            "this kgate's BPF object has no map {name}, which it pins: a broken build; \
             rebuild kgate (its `cargo test -p kgate-bpf` names the mismatch)"
        ),
    }
}

pub(crate) fn link_pin(dir: &Path, h: Hook) -> PathBuf {
    dir.join(format!("link_{}", h.pin_name()))
}

pub(crate) fn prog_pin(dir: &Path, h: Hook) -> PathBuf {
    dir.join(format!("prog_{}", h.pin_name()))
}

pub(crate) fn map_pin(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("map_{name}"))
}

pub(crate) fn bpf_err(
    what: impl Into<String>,
    hint: Option<&'static str>,
) -> impl FnOnce(libbpf_rs::Error) -> BpfError {
    let what = what.into();
    move |source| BpfError::Bpf { what, source, hint }
}

/// Whether a policy is pinned under `pin_dir` (some hook's link is).
pub fn is_applied(pin_dir: &Path) -> bool {
    Hook::ALL.iter().any(|h| link_pin(pin_dir, *h).exists())
}

pub(crate) fn open_pinned(pin_dir: &Path, name: &str) -> Result<MapHandle, BpfError> {
    let path = map_pin(pin_dir, name);
    MapHandle::from_pinned_path(&path).map_err(|source| BpfError::Inconsistent {
        pin_dir: pin_dir.to_owned(),
        what: format!("cannot open the pinned map {}: {source}", path.display()),
    })
}

/// Check `path`'s directory is on a BPF filesystem.
pub(crate) fn check_bpffs(pin_dir: &Path) -> Result<(), BpfError> {
    let parent = pin_dir.parent().unwrap_or(Path::new("/"));
    let c = CString::new(parent.as_os_str().as_bytes()).map_err(|_| BpfError::Io {
        what: "pin directory path contains NUL:",
        path: pin_dir.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable
    // memory of the right size.
    let rc = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(BpfError::Io {
            what: "cannot statfs the parent of the pin directory",
            path: parent.to_owned(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: statfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    // f_type's integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    let f_type = st.f_type as i64;
    if f_type != BPF_FS_MAGIC {
        return Err(BpfError::NotSupported {
            reason: format!(
                "{} is not a BPF filesystem, so programs cannot be pinned there: mount it \
                 (`mount -t bpf bpf /sys/fs/bpf`) or add it to /etc/fstab",
                parent.display()
            ),
        });
    }
    Ok(())
}

/// The kernel id of the link pinned at `path`.
/// The ids of a pinned link and of the program it attaches.
pub(crate) fn link_ids(path: &Path) -> Option<(u32, u32)> {
    use std::os::fd::{AsFd, AsRawFd};
    let link = Link::open(path).ok()?;
    // SAFETY: bpf_link_info is plain old data; all-zero is a valid value.
    let mut info: libbpf_rs::libbpf_sys::bpf_link_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: the fd is a valid link fd owned by `link` for this call;
    // `info` and `len` are valid for writes of `len` bytes.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_link_get_info_by_fd(
            link.as_fd().as_raw_fd(),
            &mut info,
            &mut len,
        )
    };
    (rc == 0).then_some((info.id, info.prog_id))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::mem::MaybeUninit;

    use libbpf_rs::skel::{OpenSkel, SkelBuilder};

    use super::*;

    /// The table names exactly the object's maps (libbpf's internal
    /// `.rodata`/`.bss` maps aside), each once.
    #[test]
    fn maps_table_is_the_objects_maps() {
        let mut storage = MaybeUninit::uninit();
        let open = crate::skel::KgateSkelBuilder::default()
            .open(&mut storage)
            .expect("the embedded object opens (no privilege needed)");
        let object: BTreeSet<String> = open
            .open_object()
            .maps()
            .map(|m| m.name().to_string_lossy().into_owned())
            .filter(|n| !n.contains('.'))
            .collect();
        let table: BTreeSet<String> = MAPS.iter().map(|m| m.name.to_owned()).collect();
        assert_eq!(table.len(), MAPS.len(), "a map is listed twice");
        assert_eq!(table, object);
    }

    #[test]
    fn policy_value_sizes_match_the_c_structs() {
        use crate::skel::types;
        let sizes: Vec<_> = policy_maps().collect();
        assert!(sizes.contains(&(map::CONFIG, std::mem::size_of::<types::kg_config>())));
        assert!(sizes.contains(&(map::ACTIVE, 4)));
        assert_eq!(sizes.len(), 8);
    }
}
