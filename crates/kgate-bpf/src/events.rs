//! The event ring buffer: reading it, and decoding its records.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use libbpf_rs::RingBufferBuilder;
use serde::Serialize;

use crate::abi;
use crate::hook::{Hook, Rule, Verdict};
use crate::pins::{bpf_err, is_applied, open_pinned};
use crate::status::sum_percpu;
use crate::BpfError;

/// What was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Request {
    /// A module autoload request string (kmod-normalized: `net_pf_40`).
    Module {
        /// The request.
        alias: String,
    },
    /// `socket(family, type, protocol)`.
    Socket {
        /// `AF_*`.
        family: u32,
        /// `SOCK_*` (low 4 bits).
        sock_type: u32,
        /// Protocol as passed.
        protocol: u32,
    },
    /// A user namespace.
    Userns,
    /// An explicit module load (`finit_module`/`init_module`).
    ModuleLoad {
        /// The module name (kmod-normalized), empty when unreadable.
        module: String,
    },
    /// A splice-family transfer.
    Splice {
        /// `splice`, `sendfile`, `copy_file_range`, `io_uring`, `vmsplice`
        /// or `tee`.
        call: String,
        /// Source endpoint, in the policy grammar (`file:tmpfs`, `pipe`,
        /// `socket:inet/tcp`, `chardev:1:9`, `memory`, `other`).
        source: String,
        /// Destination endpoint.
        destination: String,
    },
}

/// A concrete endpoint key as policy text: names where the policy has
/// them, numbers otherwise.
pub fn endpoint_text(k: [u32; 4]) -> String {
    let [kind, a, b, c] = k;
    match kind {
        1 => "pipe".into(),
        2 => match kgate_policy::splice::FILESYSTEMS
            .iter()
            .find(|(_, m)| *m == a)
        {
            Some((name, _)) => format!("file:{name}"),
            None => format!("file:0x{a:x}"),
        },
        3 => {
            let fam = kgate_policy::family_name(a)
                .map(str::to_owned)
                .unwrap_or_else(|| a.to_string());
            let proto = match (a, c) {
                (2 | 10, 6) => "tcp".to_owned(),
                (2 | 10, 17) => "udp".to_owned(),
                (1, _) | (_, 0) => return format!("socket:{fam}"),
                _ => c.to_string(),
            };
            let _ = b;
            format!("socket:{fam}/{proto}")
        }
        4 => match kgate_policy::splice::CHARDEVS
            .iter()
            .find(|(_, x, y)| *x == a && *y == b)
        {
            Some((name, _, _)) => format!("chardev:{name}"),
            None => format!("chardev:{a}:{b}"),
        },
        6 => "memory".into(),
        _ => "other".into(),
    }
}

/// One event from the ring buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`).
    pub time_ns: u64,
    /// Wall-clock estimate: nanoseconds since the Unix epoch.
    pub unix_time_ns: u64,
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// Global uid.
    pub uid: u32,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// Task name.
    pub comm: String,
    /// File name of the executable (best effort, no directory).
    pub exe: String,
    /// The hook.
    pub hook: Hook,
    /// What was requested.
    pub request: Request,
    /// The deciding rule.
    pub rule: Rule,
    /// The verdict.
    pub verdict: Verdict,
}

impl Event {
    fn decode(b: &[u8], clock_offset: i128) -> Option<Event> {
        if b.len() < abi::EVENT_SIZE {
            return None;
        }
        let hook = Hook::from_raw(abi::u32_at(b, 28))?;
        let verdict = *Verdict::ALL.get(abi::u32_at(b, 32) as usize)?;
        let time_ns = abi::u64_at(b, 0);
        let request = match hook {
            Hook::ModuleRequest => Request::Module {
                alias: abi::cstr(&b[72..136]),
            },
            Hook::SocketCreate => Request::Socket {
                family: abi::u32_at(b, 40),
                sock_type: abi::u32_at(b, 44),
                protocol: abi::u32_at(b, 48),
            },
            Hook::UsernsCreate | Hook::SetnsEnter | Hook::PtraceAttach | Hook::MmapExec => {
                Request::Userns
            }
            Hook::CryptoNotify | Hook::CryptoProbe => return None,
            Hook::ModuleLoadFile | Hook::ModuleLoadData => Request::ModuleLoad {
                module: abi::cstr(&b[72..136]),
            },
            Hook::SpliceFile
            | Hook::UringSpliceEnter
            | Hook::UringSpliceExit
            | Hook::VmspliceSyscall
            | Hook::TeeSyscall
            | Hook::VmspliceSyscall32
            | Hook::TeeSyscall32 => {
                let r = &b[72..72 + abi::SPLICE_REQUEST_SIZE];
                let ep = |off: usize| {
                    [
                        abi::u32_at(r, off),
                        abi::u32_at(r, off + 4),
                        abi::u32_at(r, off + 8),
                        abi::u32_at(r, off + 12),
                    ]
                };
                Request::Splice {
                    call: match abi::u32_at(r, 0) {
                        1 => "splice",
                        2 => "sendfile",
                        3 => "copy_file_range",
                        4 => "io_uring",
                        5 => "vmsplice",
                        6 => "tee",
                        _ => "unknown",
                    }
                    .into(),
                    source: endpoint_text(ep(4)),
                    destination: endpoint_text(ep(20)),
                }
            }
        };
        Some(Event {
            time_ns,
            unix_time_ns: (time_ns as i128 + clock_offset).max(0) as u64,
            cgroup_id: abi::u64_at(b, 8),
            pid: abi::u32_at(b, 16),
            tgid: abi::u32_at(b, 20),
            uid: abi::u32_at(b, 24),
            comm: abi::cstr(&b[56..72]),
            exe: abi::cstr(&b[136..200]),
            hook,
            request,
            rule: Rule::from_raw(abi::u32_at(b, 36)),
            verdict,
        })
    }
}

/// What [`events`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventsSummary {
    /// Events passed to the sink.
    pub delivered: u64,
    /// Events lost since load because the ring buffer was full.
    pub dropped_total: u64,
    /// How much `dropped_total` grew while this call was reading.
    pub dropped_while_reading: u64,
}

pub(crate) fn clock_offset() -> i128 {
    let now = |clock| {
        let mut ts = MaybeUninit::<libc::timespec>::uninit();
        // SAFETY: `ts` is writable memory for one timespec.
        let rc = unsafe { libc::clock_gettime(clock, ts.as_mut_ptr()) };
        if rc != 0 {
            return 0i128;
        }
        // SAFETY: clock_gettime returned 0, so it filled `ts`.
        let ts = unsafe { ts.assume_init() };
        ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
    };
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_MONOTONIC)
}

/// Read events from the pinned ring buffer and pass each to `sink`.
/// Reading consumes them (one reader at a time). Without `follow`, returns
/// once the buffer is empty; with it, waits for more until `sink` returns
/// [`ControlFlow::Break`]. The summary includes the drop counter, so lost
/// events are never silent; while following, `on_drop(total, new)` is
/// called as soon as the counter grows.
pub fn events(
    pin_dir: &Path,
    follow: bool,
    mut sink: impl FnMut(Event) -> ControlFlow<()>,
    mut on_drop: impl FnMut(u64, u64),
) -> Result<EventsSummary, BpfError> {
    crate::pindir::check(pin_dir)?;
    if !is_applied(pin_dir) {
        return Err(BpfError::NotApplied {
            pin_dir: pin_dir.to_owned(),
        });
    }
    let ring = open_pinned(pin_dir, "kg_events")?;
    let drops = open_pinned(pin_dir, "kg_drops")?;
    let offset = clock_offset();
    let mut dropped_seen = sum_percpu(&drops, 0)?;
    let dropped_at_start = dropped_seen;
    let delivered = Cell::new(0u64);
    let stop = Cell::new(false);
    {
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&ring, |data: &[u8]| {
                if stop.get() {
                    return -1;
                }
                if let Some(ev) = Event::decode(data, offset) {
                    delivered.set(delivered.get() + 1);
                    if sink(ev).is_break() {
                        stop.set(true);
                        return -1;
                    }
                }
                0
            })
            .map_err(bpf_err("reading the event ring buffer", None))?;
        let rb = builder
            .build()
            .map_err(bpf_err("reading the event ring buffer", None))?;
        loop {
            let r = rb.consume();
            if stop.get() || !follow {
                if !stop.get() {
                    r.map_err(bpf_err("reading the event ring buffer", None))?;
                }
                break;
            }
            r.map_err(bpf_err("reading the event ring buffer", None))?;
            let p = rb.poll(Duration::from_millis(250));
            if stop.get() {
                break;
            }
            p.map_err(bpf_err("waiting for events", None))?;
            let now = sum_percpu(&drops, 0)?;
            if now > dropped_seen {
                on_drop(now, now - dropped_seen);
                dropped_seen = now;
            }
        }
    }
    let dropped_total = sum_percpu(&drops, 0)?;
    Ok(EventsSummary {
        delivered: delivered.get(),
        dropped_total,
        dropped_while_reading: dropped_total - dropped_at_start,
    })
}
