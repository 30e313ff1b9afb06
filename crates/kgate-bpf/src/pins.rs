//! The pin directory's layout: which maps, programs and links are pinned
//! under which names, and opening what is pinned.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libbpf_rs::{Link, MapHandle};

use crate::hook::Hook;
use crate::BpfError;

/// Pinned maps; the first [`POLICY_MAPS`] hold the policy.
/// Every map of the object, in pin order, given to `$f!` as a list of
/// identifiers: the one definition of what is pinned.
macro_rules! with_maps {
    ($f:ident!($($args:tt)*)) => {
        $f!($($args)*; kg_active, kg_config, kg_module_allow, kg_socket_allow,
            kg_socket_family, kg_userns_exe, kg_splice_ep, kg_splice_pair,
            kg_uring_splice, kg_uring_unmarked, kg_events, kg_drops, kg_counters,
            kg_selftest, kg_selftest_hits, kg_crypto_larval, kg_task_attr)
    };
}
pub(crate) use with_maps;

macro_rules! map_names {
    (; $($m:ident),*) => { [$(stringify!($m)),*] };
}

macro_rules! map_refs {
    ($maps:expr, $ty:ty; $($m:ident),*) => {
        [$((stringify!($m), &mut $maps.$m as &mut $ty)),*]
    };
}
pub(crate) use map_refs;

pub(crate) const MAPS: [&str; 17] = with_maps!(map_names!());

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

pub(crate) fn is_applied(pin_dir: &Path) -> bool {
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
