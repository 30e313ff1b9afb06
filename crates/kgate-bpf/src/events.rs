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
use crate::pins::{bpf_err, is_applied, map, open_pinned};
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

impl Request {
    /// The request as one word group, as `kgate events` and the journal
    /// name it (`module:ALIAS`, `socket:F/T/P`, `userns`, `load:MODULE`,
    /// `splice:CALL SRC -> DST`), each string the kernel copied from a
    /// task passed through `field` (an escape for terminals, or none).
    pub fn describe(&self, field: impl Fn(&str) -> String) -> String {
        match self {
            Request::Module { alias } => format!("module:{}", field(alias)),
            Request::Socket {
                family,
                sock_type,
                protocol,
            } => format!("socket:{family}/{sock_type}/{protocol}"),
            Request::Userns => "userns".into(),
            Request::ModuleLoad { module } => format!("load:{}", field(module)),
            Request::Splice {
                call,
                source,
                destination,
            } => format!(
                "splice:{} {} -> {}",
                field(call),
                field(source),
                field(destination)
            ),
        }
    }
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

/// Why a ring-buffer record is not an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than `struct kg_event`.
    #[error(
        "event record of {len} bytes is shorter than struct kg_event ({need} bytes): the pinned \
         programs are from another kgate version; run `kgate revert` and apply again"
    )]
    Truncated {
        /// The record's length.
        len: usize,
        /// `struct kg_event`'s size.
        need: usize,
    },
    /// A hook number this kgate does not know.
    #[error(
        "event record names hook {raw}, which this kgate does not know: the pinned programs are \
         from a newer kgate; run `kgate revert` and apply again"
    )]
    UnknownHook {
        /// The number.
        raw: u32,
    },
    /// A verdict number this kgate does not know.
    #[error(
        "event record has verdict {raw}, which this kgate does not know: the pinned programs are \
         from a newer kgate; run `kgate revert` and apply again"
    )]
    UnknownVerdict {
        /// The number.
        raw: u32,
    },
    /// A hook that decides nothing, so sends no events.
    #[error("event record names hook {hook:?}, which makes no decisions and sends no events (a corrupt record)")]
    NotDeciding {
        /// The hook.
        hook: Hook,
    },
}

/// Field offsets of `struct kg_event` (`src/bpf/kgate.h`).
mod off {
    pub const TIME: usize = 0;
    pub const CGROUP: usize = 8;
    pub const PID: usize = 16;
    pub const TGID: usize = 20;
    pub const UID: usize = 24;
    pub const HOOK: usize = 28;
    pub const VERDICT: usize = 32;
    pub const RULE: usize = 36;
    pub const FAMILY: usize = 40;
    pub const TYPE: usize = 44;
    pub const PROTOCOL: usize = 48;
    pub const COMM: usize = 56;
    pub const REQUEST: usize = 72;
    pub const EXE: usize = REQUEST + crate::abi::NAME_LEN;
}

/// Decode one ring-buffer record (`struct kg_event`, native-endian) into
/// an [`Event`]; `clock_offset_ns` is `CLOCK_REALTIME - CLOCK_MONOTONIC`,
/// for [`Event::unix_time_ns`]. Pure: no syscalls. Bytes past the struct
/// are ignored.
///
/// Errors: a short record, an unknown hook or verdict number, or a hook
/// that sends no events.
pub fn decode_event(record: &[u8], clock_offset_ns: i128) -> Result<Event, DecodeError> {
    let b = record;
    if b.len() < abi::EVENT_SIZE {
        return Err(DecodeError::Truncated {
            len: b.len(),
            need: abi::EVENT_SIZE,
        });
    }
    let raw_hook = abi::u32_at(b, off::HOOK);
    let hook = Hook::from_raw(raw_hook).ok_or(DecodeError::UnknownHook { raw: raw_hook })?;
    let raw_verdict = abi::u32_at(b, off::VERDICT);
    let verdict = *Verdict::ALL
        .get(raw_verdict as usize)
        .ok_or(DecodeError::UnknownVerdict { raw: raw_verdict })?;
    let time_ns = abi::u64_at(b, off::TIME);
    let request_bytes = &b[off::REQUEST..off::EXE];
    let request = match hook {
        Hook::ModuleRequest => Request::Module {
            alias: abi::cstr(request_bytes),
        },
        Hook::SocketCreate => Request::Socket {
            family: abi::u32_at(b, off::FAMILY),
            sock_type: abi::u32_at(b, off::TYPE),
            protocol: abi::u32_at(b, off::PROTOCOL),
        },
        Hook::UsernsCreate | Hook::SetnsEnter | Hook::PtraceAttach | Hook::MmapExec => {
            Request::Userns
        }
        Hook::CryptoNotify | Hook::CryptoProbe => return Err(DecodeError::NotDeciding { hook }),
        Hook::ModuleLoadFile | Hook::ModuleLoadData => Request::ModuleLoad {
            module: abi::cstr(request_bytes),
        },
        Hook::SpliceFile
        | Hook::UringSpliceEnter
        | Hook::UringSpliceExit
        | Hook::VmspliceSyscall
        | Hook::TeeSyscall
        | Hook::VmspliceSyscall32
        | Hook::TeeSyscall32 => splice_request(&request_bytes[..abi::SPLICE_REQUEST_SIZE]),
    };
    Ok(Event {
        time_ns,
        unix_time_ns: (time_ns as i128)
            .saturating_add(clock_offset_ns)
            .clamp(0, u64::MAX as i128) as u64,
        cgroup_id: abi::u64_at(b, off::CGROUP),
        pid: abi::u32_at(b, off::PID),
        tgid: abi::u32_at(b, off::TGID),
        uid: abi::u32_at(b, off::UID),
        comm: abi::cstr(&b[off::COMM..off::REQUEST]),
        exe: abi::cstr(&b[off::EXE..abi::EVENT_SIZE]),
        hook,
        request,
        rule: Rule::from_raw(abi::u32_at(b, off::RULE)),
        verdict,
    })
}

/// `struct kg_splice_request`: the call, then the source and destination
/// endpoint keys.
fn splice_request(r: &[u8]) -> Request {
    let ep = |o: usize| {
        [
            abi::u32_at(r, o),
            abi::u32_at(r, o + 4),
            abi::u32_at(r, o + 8),
            abi::u32_at(r, o + 12),
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

/// What [`events`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventsSummary {
    /// Events passed to the sink.
    pub delivered: u64,
    /// Events lost since load because the ring buffer was full.
    pub dropped_total: u64,
    /// How much `dropped_total` grew while this call was reading.
    pub dropped_while_reading: u64,
    /// Records read but not decodable ([`decode_event`] failed): counted,
    /// never passed to the sink.
    pub undecodable: u64,
    /// Why the first undecodable record was refused.
    pub first_undecodable: Option<String>,
    /// With `follow`: reading stopped because the pinned ring buffer was
    /// replaced or removed (a new `kgate apply`, or `kgate revert`); a
    /// follower that must not miss events reads again.
    pub ring_replaced: bool,
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
    let ring = open_pinned(pin_dir, map::EVENTS)?;
    let drops = open_pinned(pin_dir, map::DROPS)?;
    let ring_inode = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(crate::pins::map_pin(pin_dir, map::EVENTS))
            .map(|m| m.ino())
            .ok()
    };
    let ring_at_start = ring_inode();
    let mut ring_replaced = false;
    let offset = clock_offset();
    let mut dropped_seen = sum_percpu(&drops, 0)?;
    let dropped_at_start = dropped_seen;
    let delivered = Cell::new(0u64);
    let undecodable = Cell::new(0u64);
    let first_undecodable = std::cell::RefCell::new(None);
    let stop = Cell::new(false);
    {
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&ring, |data: &[u8]| {
                if stop.get() {
                    return -1;
                }
                // A record this kgate cannot decode (programs pinned by
                // another kgate version) is counted and reported, not
                // passed on.
                match decode_event(data, offset) {
                    Ok(ev) => {
                        delivered.set(delivered.get() + 1);
                        if sink(ev).is_break() {
                            stop.set(true);
                            return -1;
                        }
                    }
                    Err(e) => {
                        undecodable.set(undecodable.get() + 1);
                        first_undecodable.borrow_mut().get_or_insert(e.to_string());
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
            if ring_inode() != ring_at_start {
                // Drain what the old ring still holds, then stop.
                let _ = rb.consume();
                ring_replaced = true;
                break;
            }
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
        undecodable: undecodable.get(),
        first_undecodable: first_undecodable.into_inner(),
        ring_replaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `struct kg_event` as the BPF programs write it.
    struct Record(Vec<u8>);

    impl Record {
        fn new(hook: Hook, verdict: Verdict, rule: u32) -> Record {
            let mut r = Record(vec![0; abi::EVENT_SIZE]);
            r.u64(off::TIME, 1_000)
                .u64(off::CGROUP, 77)
                .u32(off::PID, 4242)
                .u32(off::TGID, 4240)
                .u32(off::UID, 1000)
                .u32(off::HOOK, hook.index())
                .u32(
                    off::VERDICT,
                    Verdict::ALL.iter().position(|v| *v == verdict).unwrap() as u32,
                )
                .u32(off::RULE, rule)
                .bytes(off::COMM, b"bash")
                .bytes(off::EXE, b"bash");
            r
        }
        fn u32(&mut self, at: usize, v: u32) -> &mut Record {
            self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            self
        }
        fn u64(&mut self, at: usize, v: u64) -> &mut Record {
            self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
            self
        }
        fn bytes(&mut self, at: usize, v: &[u8]) -> &mut Record {
            self.0[at..at + v.len()].copy_from_slice(v);
            self
        }
        #[track_caller]
        fn decode(&self) -> Event {
            decode_event(&self.0, 0).expect("a valid record decodes")
        }
    }

    #[test]
    fn offsets_match_kgate_h() {
        let h = include_str!("bpf/kgate.h");
        let body = h
            .split("struct kg_event {")
            .nth(1)
            .and_then(|s| s.split("};").next())
            .expect("struct kg_event in kgate.h");
        let mut at = 0;
        let mut fields = Vec::new();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (ty, name) = line.trim_end_matches(';').split_once(' ').unwrap();
            let (name, size) = match name.split_once('[') {
                Some((n, len)) => {
                    let len = len.trim_end_matches(']');
                    let len = if len == "KG_NAME_LEN" {
                        abi::NAME_LEN
                    } else {
                        len.parse().unwrap()
                    };
                    (n, len)
                }
                None => (name, if ty == "u64" { 8 } else { 4 }),
            };
            fields.push((name.to_owned(), at));
            at += size;
        }
        assert_eq!(at, abi::EVENT_SIZE);
        let want = [
            ("time_ns", off::TIME),
            ("cgroup_id", off::CGROUP),
            ("pid", off::PID),
            ("tgid", off::TGID),
            ("uid", off::UID),
            ("hook", off::HOOK),
            ("verdict", off::VERDICT),
            ("rule", off::RULE),
            ("family", off::FAMILY),
            ("type", off::TYPE),
            ("protocol", off::PROTOCOL),
            ("comm", off::COMM),
            ("request", off::REQUEST),
            ("exe", off::EXE),
        ];
        for (name, o) in want {
            assert!(
                fields.contains(&(name.to_owned(), o)),
                "{name} at {o}: {fields:?}"
            );
        }
    }

    #[test]
    fn module_request() {
        let ev = Record::new(Hook::ModuleRequest, Verdict::Deny, 2)
            .bytes(off::REQUEST, b"net_pf_40")
            .decode();
        assert_eq!(
            ev,
            Event {
                time_ns: 1_000,
                unix_time_ns: 1_000,
                pid: 4242,
                tgid: 4240,
                uid: 1000,
                cgroup_id: 77,
                comm: "bash".into(),
                exe: "bash".into(),
                hook: Hook::ModuleRequest,
                request: Request::Module {
                    alias: "net_pf_40".into()
                },
                rule: Rule::ModuleNotListed,
                verdict: Verdict::Deny,
            }
        );
    }

    #[test]
    fn socket_create() {
        let ev = Record::new(Hook::SocketCreate, Verdict::Audit, 5)
            .u32(off::FAMILY, 40)
            .u32(off::TYPE, 1)
            .u32(off::PROTOCOL, 0)
            .decode();
        assert_eq!(
            ev.request,
            Request::Socket {
                family: 40,
                sock_type: 1,
                protocol: 0
            }
        );
        assert_eq!(ev.rule, Rule::SocketFamilyNotListed);
        assert_eq!(ev.verdict, Verdict::Audit);
    }

    #[test]
    fn userns_hooks() {
        for (hook, rule, want) in [
            (Hook::UsernsCreate, 8, Rule::UsernsUnprivileged),
            (Hook::SetnsEnter, 15, Rule::UsernsEnter),
            (Hook::PtraceAttach, 16, Rule::UsernsPtrace),
            (Hook::MmapExec, 17, Rule::UsernsInject),
        ] {
            let ev = Record::new(hook, Verdict::Deny, rule).decode();
            assert_eq!(
                (ev.hook, ev.request, ev.rule),
                (hook, Request::Userns, want)
            );
        }
    }

    #[test]
    fn module_loads() {
        for hook in [Hook::ModuleLoadFile, Hook::ModuleLoadData] {
            let ev = Record::new(hook, Verdict::Allow, 1)
                .bytes(off::REQUEST, b"vsock")
                .decode();
            assert_eq!(
                ev.request,
                Request::ModuleLoad {
                    module: "vsock".into()
                }
            );
            let unnamed = Record::new(hook, Verdict::Deny, 9).decode();
            assert_eq!(
                unnamed.request,
                Request::ModuleLoad {
                    module: String::new()
                }
            );
            assert_eq!(unnamed.rule, Rule::ModuleUnnamed);
        }
    }

    #[test]
    fn splice_hooks() {
        let r = off::REQUEST;
        let tmpfs = kgate_policy::splice::FILESYSTEMS
            .iter()
            .find(|(n, _)| *n == "tmpfs")
            .map(|(_, m)| *m)
            .expect("tmpfs is a known filesystem");
        for (hook, call, name) in [
            (Hook::SpliceFile, 1, "splice"),
            (Hook::SpliceFile, 2, "sendfile"),
            (Hook::SpliceFile, 3, "copy_file_range"),
            (Hook::UringSpliceEnter, 4, "io_uring"),
            (Hook::UringSpliceExit, 4, "io_uring"),
            (Hook::VmspliceSyscall, 5, "vmsplice"),
            (Hook::VmspliceSyscall32, 5, "vmsplice"),
            (Hook::TeeSyscall, 6, "tee"),
            (Hook::TeeSyscall32, 6, "tee"),
            (Hook::SpliceFile, 99, "unknown"),
        ] {
            let ev = Record::new(hook, Verdict::Deny, 11)
                .u32(r, call)
                .u32(r + 4, 2) // file
                .u32(r + 8, tmpfs)
                .u32(r + 20, 3) // socket inet/tcp
                .u32(r + 24, 2)
                .u32(r + 28, 1)
                .u32(r + 32, 6)
                .decode();
            assert_eq!(
                ev.request,
                Request::Splice {
                    call: name.into(),
                    source: "file:tmpfs".into(),
                    destination: "socket:inet/tcp".into(),
                },
                "{hook:?} call {call}"
            );
            assert_eq!(ev.rule, Rule::SpliceSourceNotListed);
        }
    }

    #[test]
    fn every_deciding_hook_decodes() {
        for hook in Hook::ALL {
            let r = decode_event(&Record::new(hook, Verdict::Pass, 0).0, 0);
            match hook {
                Hook::CryptoNotify | Hook::CryptoProbe => {
                    assert_eq!(r, Err(DecodeError::NotDeciding { hook }))
                }
                _ => assert_eq!(r.map(|e| e.hook), Ok(hook)),
            }
        }
    }

    #[test]
    fn unknown_rule_is_kept() {
        let ev = Record::new(Hook::ModuleRequest, Verdict::Deny, 1234).decode();
        assert_eq!(ev.rule, Rule::Other(1234));
    }

    #[test]
    fn strings_without_nul_and_invalid_utf8() {
        let ev = Record::new(Hook::ModuleRequest, Verdict::Deny, 2)
            .bytes(off::COMM, &[b'x'; 16])
            .bytes(off::REQUEST, &[0xff; abi::NAME_LEN])
            .bytes(off::EXE, &[b'e'; abi::NAME_LEN])
            .decode();
        assert_eq!(ev.comm, "x".repeat(16));
        assert_eq!(ev.exe, "e".repeat(abi::NAME_LEN));
        assert_eq!(
            ev.request,
            Request::Module {
                alias: "\u{fffd}".repeat(abi::NAME_LEN)
            }
        );
    }

    #[test]
    fn wall_clock_from_the_offset() {
        let rec = Record::new(Hook::ModuleRequest, Verdict::Deny, 2);
        assert_eq!(decode_event(&rec.0, 5_000).unwrap().unix_time_ns, 6_000);
        // Before the epoch: clamped to 0.
        assert_eq!(decode_event(&rec.0, -5_000).unwrap().unix_time_ns, 0);
    }

    /// The offset is the caller's: an extreme one saturates instead of
    /// overflowing (a panic with overflow checks on).
    #[test]
    fn extreme_clock_offsets_saturate() {
        let mut rec = Record::new(Hook::ModuleRequest, Verdict::Deny, 2);
        rec.u64(off::TIME, u64::MAX);
        assert_eq!(
            decode_event(&rec.0, i128::MAX).unwrap().unix_time_ns,
            u64::MAX
        );
        assert_eq!(decode_event(&rec.0, i128::MIN).unwrap().unix_time_ns, 0);
    }

    #[test]
    fn truncated_records_are_errors() {
        let rec = Record::new(Hook::SocketCreate, Verdict::Deny, 5);
        for len in 0..abi::EVENT_SIZE {
            assert_eq!(
                decode_event(&rec.0[..len], 0),
                Err(DecodeError::Truncated {
                    len,
                    need: abi::EVENT_SIZE
                })
            );
        }
        // Longer (a newer layout's tail) decodes the known fields.
        let mut long = rec.0.clone();
        long.extend_from_slice(&[0xaa; 16]);
        assert_eq!(decode_event(&long, 0), decode_event(&rec.0, 0));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut r = Record::new(Hook::ModuleRequest, Verdict::Deny, 2);
        r.u32(off::HOOK, 17);
        assert_eq!(
            decode_event(&r.0, 0),
            Err(DecodeError::UnknownHook { raw: 17 })
        );
        r.u32(off::HOOK, u32::MAX);
        assert_eq!(
            decode_event(&r.0, 0),
            Err(DecodeError::UnknownHook { raw: u32::MAX })
        );
        let mut r = Record::new(Hook::ModuleRequest, Verdict::Deny, 2);
        r.u32(off::VERDICT, 4);
        assert_eq!(
            decode_event(&r.0, 0),
            Err(DecodeError::UnknownVerdict { raw: 4 })
        );
        // All-ones: unknown hook, whatever the rest says.
        assert!(decode_event(&[0xff; abi::EVENT_SIZE], 0).is_err());
        // All-zero is a (meaningless) module request: no panic either.
        assert!(decode_event(&[0; abi::EVENT_SIZE], 0).is_ok());
    }
}
