//! The syscall recorder behind `kgate record` (issue 6): its own BPF
//! object (`src/bpf/record.bpf.c`) on raw tracepoints, which attach
//! wherever BPF does (no BPF-LSM, no fentry, no kernel headers, no bcc).
//!
//! Aggregation happens in the kernel: per-CPU syscall counters indexed by
//! number and hash maps of counters for socket shapes, exec'd paths and
//! module requests. A busy workload only makes counters bigger; the one
//! possible loss (a full hash map) is counted and reported in
//! [`Recording::lost`].
//!
//! ```no_run
//! use kgate_bpf::record::{Follow, Recorder};
//! let rec = Recorder::start(Follow::Tasks { follow_children: true })?;
//! rec.track(1234)?;                 // a process, before it runs
//! // ... let it run ...
//! let recording = rec.finish()?;
//! # Ok::<(), kgate_bpf::record::RecordError>(())
//! ```

use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A libbpf call failed.
    #[error("{what}: {source}")]
    Bpf {
        /// What kgate was doing.
        what: String,
        /// libbpf's error.
        source: libbpf_rs::Error,
    },
    /// A file could not be opened or read.
    #[error("{what}: {source}")]
    Io {
        /// What kgate was doing.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

#[allow(
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/record.skel.rs"));
}

use skel::{RecordSkel, RecordSkelBuilder};

// Mirrors of record.h.
const NR_MAX: u32 = 1024;
const NR_OTHER: u32 = NR_MAX - 1;
const NR_IA32: u32 = 512;
const MODE_TASKS: u32 = 0;
const MODE_CGROUP: u32 = 1;
const STAT_LOST_TASKS: u32 = 0;
const STAT_LOST_SOCKETS: u32 = 1;
const STAT_LOST_EXECS: u32 = 2;
const STAT_LOST_MODREQ: u32 = 3;
const STAT_PROCESSES: u32 = 4;
const STAT_THREADS: u32 = 5;

/// Which tasks to record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Follow {
    /// Thread ids added with [`Recorder::track`], their new threads and,
    /// with `follow_children`, their new child processes (recursively).
    Tasks {
        /// Follow new child processes too.
        follow_children: bool,
    },
    /// Every task in this cgroup (v2 directory) or a descendant cgroup.
    Cgroup(PathBuf),
}

/// What was recorded, aggregated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// `(syscall number, count)` of every x86_64 number entered, sorted.
    pub syscalls: Vec<(u32, u64)>,
    /// `(ia32 syscall number, count)` of compat syscalls (32-bit
    /// processes, `int 0x80`), sorted.
    pub ia32_syscalls: Vec<(u32, u64)>,
    /// Entries with a number out of range (x32 ABI, invalid numbers).
    pub other_syscalls: u64,
    /// `((family, type, protocol), count)`, sorted.
    pub sockets: Vec<((u32, u32, u32), u64)>,
    /// `(path, count)` of exec'd files, sorted.
    pub execs: Vec<(String, u64)>,
    /// `(request, count)` of module requests, sorted.
    pub module_requests: Vec<(String, u64)>,
    /// Whether module requests could be observed (the tracepoint exists
    /// only with `CONFIG_MODULES`).
    pub module_requests_observable: bool,
    /// New processes followed.
    pub processes: u64,
    /// New threads followed.
    pub threads: u64,
    /// Losses: (tasks, sockets, execs, module requests).
    pub lost: (u64, u64, u64, u64),
}

/// A running recording. The programs stay attached until [`finish`]
/// (or drop: the links go first).
///
/// [`finish`]: Recorder::finish
pub struct Recorder {
    // Dropped in declaration order: links, then the skeleton, then the
    // storage the skeleton borrows.
    _links: Vec<libbpf_rs::Link>,
    skel: RecordSkel<'static>,
    module_requests_observable: bool,
    _storage: Box<MaybeUninit<libbpf_rs::OpenObject>>,
}

fn err(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> RecordError {
    let what = what.into();
    move |source| RecordError::Bpf { what, source }
}

impl Recorder {
    /// Load and attach the recorder.
    pub fn start(follow: Follow) -> Result<Recorder, RecordError> {
        let mut storage: Box<MaybeUninit<libbpf_rs::OpenObject>> = Box::new(MaybeUninit::uninit());
        // SAFETY: the skeleton borrows the boxed storage, whose heap
        // address never changes; `Recorder` drops `skel` before the box
        // (field order), so the borrow never outlives it.
        let storage_ref: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
            unsafe { &mut *(storage.as_mut() as *mut _) };
        let mut open = RecordSkelBuilder::default()
            .open(storage_ref)
            .map_err(err("opening the recorder BPF object"))?;
        let (mode, follow_children) = match &follow {
            Follow::Tasks { follow_children } => (MODE_TASKS, *follow_children),
            Follow::Cgroup(_) => (MODE_CGROUP, false),
        };
        // One bit per possible thread id.
        let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4_194_304);
        open.maps
            .kr_tasks
            .set_max_entries(pid_max.div_ceil(64).max(1))
            .map_err(err("sizing the task bitmap"))?;
        open.maps.rodata_data.kr_mode = mode;
        open.maps.rodata_data.kr_follow_children = u32::from(follow_children);
        let mut skel = open.load().map_err(err(
            "loading the recorder (needs root, or CAP_BPF and CAP_PERFMON)",
        ))?;
        if let Follow::Cgroup(path) = &follow {
            let dir = std::fs::File::open(path).map_err(|source| RecordError::Io {
                what: format!("opening cgroup {}", path.display()),
                source,
            })?;
            skel.maps
                .kr_cgroup
                .update(
                    &0u32.to_ne_bytes(),
                    &(dir.as_raw_fd() as u32).to_ne_bytes(),
                    MapFlags::ANY,
                )
                .map_err(err(format!(
                    "using {} as a cgroup (a cgroup v2 directory under /sys/fs/cgroup?)",
                    path.display()
                )))?;
        }
        let mut links = Vec::new();
        for (name, prog) in [
            ("raw_syscalls:sys_enter", &mut skel.progs.kr_sys_enter),
            ("sched:sched_process_fork", &mut skel.progs.kr_fork),
            ("sched:sched_process_exit", &mut skel.progs.kr_exit),
            ("sched:sched_process_exec", &mut skel.progs.kr_exec),
        ] {
            links.push(
                prog.attach()
                    .map_err(err(format!("attaching to the {name} tracepoint")))?,
            );
        }
        // Only kernels with CONFIG_MODULES have this tracepoint.
        let modreq = skel.progs.kr_module_request.attach().ok();
        let module_requests_observable = modreq.is_some();
        links.extend(modreq);
        Ok(Recorder {
            _links: links,
            skel,
            module_requests_observable,
            _storage: storage,
        })
    }

    /// Follow thread `tid` (and, per [`Follow::Tasks`], what it forks).
    pub fn track(&self, tid: u32) -> Result<(), RecordError> {
        let map = &self.skel.maps.kr_tasks;
        let key = (tid >> 6).to_ne_bytes();
        let word = map
            .lookup(&key, MapFlags::ANY)
            .map_err(err(format!("following task {tid}")))?
            .as_deref()
            .map_or(0, u64_of);
        // Read-modify-write: the programs only set bits of followed tasks'
        // children, which cannot exist before this task is followed.
        map.update(
            &key,
            &(word | 1u64 << (tid & 63)).to_ne_bytes(),
            MapFlags::ANY,
        )
        .map_err(err(format!("following task {tid}")))
    }

    /// Follow every thread of process `pid` that exists now.
    pub fn track_process(&self, pid: u32) -> Result<usize, RecordError> {
        let dir = Path::new("/proc").join(pid.to_string()).join("task");
        let entries = std::fs::read_dir(&dir).map_err(|source| RecordError::Io {
            what: format!("listing the threads of process {pid} ({})", dir.display()),
            source,
        })?;
        let mut n = 0;
        for e in entries.flatten() {
            if let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) {
                self.track(tid)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Follow process `pid` (every thread) and every descendant process
    /// that exists now; the fork tracepoint already follows those created
    /// from here on. A process that forks while /proc is being read can
    /// hide its new child from that pass, so passes repeat until one finds
    /// nothing new (at most 8). Returns the processes followed.
    pub fn track_tree(&self, pid: u32) -> Result<usize, RecordError> {
        self.track_process(pid)?;
        let mut followed = std::collections::BTreeSet::from([pid]);
        for _ in 0..8 {
            let parents = process_parents();
            let mut new = Vec::new();
            let mut frontier = vec![pid];
            let mut seen = std::collections::BTreeSet::from([pid]);
            while let Some(p) = frontier.pop() {
                for (&child, _) in parents.iter().filter(|(_, &pp)| pp == p) {
                    if seen.insert(child) {
                        frontier.push(child);
                        if !followed.contains(&child) {
                            new.push(child);
                        }
                    }
                }
            }
            if new.is_empty() {
                break;
            }
            for child in new {
                // A process that exited since the listing has nothing left
                // to record.
                if self.track_process(child).is_ok() {
                    followed.insert(child);
                }
            }
        }
        Ok(followed.len())
    }

    /// Detach and read the aggregates.
    pub fn finish(self) -> Result<Recording, RecordError> {
        let m = &self.skel.maps;
        let mut rec = Recording {
            module_requests_observable: self.module_requests_observable,
            ..Recording::default()
        };
        let totals = match batch_totals(&m.kr_syscalls) {
            Some(t) => t,
            None => {
                let mut t = Vec::with_capacity(NR_MAX as usize);
                for nr in 0..NR_MAX {
                    let per_cpu = m
                        .kr_syscalls
                        .lookup_percpu(&nr.to_ne_bytes(), MapFlags::ANY)
                        .map_err(err("reading the syscall counters"))?
                        .unwrap_or_default();
                    t.push(per_cpu.iter().map(|v| u64_of(v)).sum());
                }
                t
            }
        };
        for (nr, &total) in (0..NR_MAX).zip(totals.iter()) {
            if total == 0 {
                continue;
            }
            if nr == NR_OTHER {
                rec.other_syscalls = total;
            } else if nr >= NR_IA32 {
                rec.ia32_syscalls.push((nr - NR_IA32, total));
            } else {
                rec.syscalls.push((nr, total));
            }
        }
        for k in m.kr_sockets.keys() {
            let v = m.kr_sockets.lookup(&k, MapFlags::ANY).ok().flatten();
            let w = |i: usize| u32::from_ne_bytes(k[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
            rec.sockets
                .push(((w(0), w(1), w(2)), v.as_deref().map_or(0, u64_of)));
        }
        rec.sockets.sort();
        for (map, out) in [
            (&m.kr_execs, &mut rec.execs),
            (&m.kr_modreq, &mut rec.module_requests),
        ] {
            for k in map.keys() {
                let v = map.lookup(&k, MapFlags::ANY).ok().flatten();
                let end = k.iter().position(|b| *b == 0).unwrap_or(k.len());
                out.push((
                    String::from_utf8_lossy(&k[..end]).into_owned(),
                    v.as_deref().map_or(0, u64_of),
                ));
            }
            out.sort();
        }
        let stat = |i: u32| {
            m.kr_stats
                .lookup(&i.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .as_deref()
                .map_or(0, u64_of)
        };
        rec.processes = stat(STAT_PROCESSES);
        rec.threads = stat(STAT_THREADS);
        rec.lost = (
            stat(STAT_LOST_TASKS),
            stat(STAT_LOST_SOCKETS),
            stat(STAT_LOST_EXECS),
            stat(STAT_LOST_MODREQ),
        );
        Ok(rec)
    }
}

/// Every syscall counter summed over the CPUs, by number, in one batched
/// lookup (`BPF_MAP_LOOKUP_BATCH`, Linux 5.6+) instead of one `bpf()`
/// call per number. `None` when the kernel cannot (the caller then reads
/// key by key).
fn batch_totals<M: MapCore>(map: &M) -> Option<Vec<u64>> {
    let ncpu = libbpf_rs::num_possible_cpus().ok()?;
    let n = NR_MAX as usize;
    let mut keys = vec![0u32; n];
    let mut values = vec![0u64; n * ncpu];
    let mut count = NR_MAX;
    let mut out_batch = 0u32;
    let opts = libbpf_rs::libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_batch_opts>() as _,
        elem_flags: 0,
        flags: 0,
    };
    // SAFETY: the fd is the map's, valid for the call; `keys` holds `n`
    // u32 keys and `values` `n` per-CPU values of `ncpu` u64s each (an
    // array map's 8-byte values are not padded), as `count` = n says;
    // `out_batch` is a u32, the key size; a null in_batch starts at the
    // first element.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_lookup_batch(
            map.as_fd().as_raw_fd(),
            std::ptr::null_mut(),
            (&mut out_batch as *mut u32).cast(),
            keys.as_mut_ptr().cast(),
            values.as_mut_ptr().cast(),
            &mut count,
            &opts,
        )
    };
    // The whole array in one call: 0, or -ENOENT for "and that was the end".
    if (rc != 0 && rc != -libc::ENOENT) || count != NR_MAX {
        return None;
    }
    let mut totals = vec![0u64; n];
    for (i, &k) in keys.iter().enumerate() {
        let t = values[i * ncpu..(i + 1) * ncpu].iter().sum();
        *totals.get_mut(k as usize)? = t;
    }
    Some(totals)
}

fn u64_of(b: &[u8]) -> u64 {
    b.get(..8)
        .map_or(0, |s| u64::from_ne_bytes(s.try_into().expect("8 bytes")))
}

/// Every process in /proc with its parent's pid (field 4 of
/// /proc/PID/stat, after the parenthesized command name).
fn process_parents() -> std::collections::BTreeMap<u32, u32> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Some(ppid) = parse_ppid(&stat) {
            out.insert(pid, ppid);
        }
    }
    out
}

/// The parent pid in a /proc/PID/stat line; the command name may hold
/// spaces and parentheses, so fields count from its last `)`.
fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_ppid;

    #[test]
    fn ppid_after_a_command_name_with_spaces_and_parens() {
        assert_eq!(parse_ppid("42 (sh) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parse_ppid("43 (a) b (c)) R 1234 43 1 0"), Some(1234));
        assert_eq!(parse_ppid("44 (x"), None);
        assert_eq!(parse_ppid(""), None);
    }

    #[test]
    fn this_process_has_its_parent_in_the_listing() {
        let parents = super::process_parents();
        let me = std::process::id();
        assert_eq!(
            parents.get(&me).copied(),
            Some(std::os::unix::process::parent_id())
        );
    }
}
