//! Events to the systemd journal, as structured entries over the native
//! protocol (`/run/systemd/journal/socket`, one datagram per entry; see
//! systemd's `systemd.journal-fields(7)` and the protocol note in
//! `sd_journal_sendv(3)`).
//!
//! Each entry carries `MESSAGE` (the event as `kgate events` prints it,
//! with `would deny` for audits so that `journalctl -g deny` finds both),
//! `PRIORITY` (warning for denials, notice for audits), `SYSLOG_IDENTIFIER=kgate`,
//! `OBJECT_SYSTEMD_UNIT=kgate.service` (journald accepts it from root, and
//! `journalctl -u kgate` then shows the entry beside the unit's own
//! messages), and one `KGATE_*` field per event attribute.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kgate_bpf::{Event, Verdict};

/// journald's native socket.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// An open connection to journald.
pub struct Journal {
    sock: UnixDatagram,
    cgroups: CgroupNames,
}

impl Journal {
    /// Connect to journald's socket.
    pub fn open() -> io::Result<Journal> {
        let sock = UnixDatagram::unbound()?;
        sock.connect(SOCKET)?;
        Ok(Journal {
            sock,
            cgroups: CgroupNames::new(PathBuf::from("/sys/fs/cgroup")),
        })
    }

    /// Send one event; `message` is its text line.
    pub fn send(&mut self, e: &Event, message: &str) -> io::Result<()> {
        let cgroup = self.cgroups.name(e.cgroup_id);
        let entry = entry(e, message, cgroup.as_deref());
        self.sock.send(&entry).map(|_| ())
    }
}

/// The datagram of one event (pure, for tests).
pub fn entry(e: &Event, message: &str, cgroup: Option<&str>) -> Vec<u8> {
    let (priority, message) = match e.verdict {
        Verdict::Deny => ("4", format!("kgate: {message}")),
        Verdict::Audit => ("5", format!("kgate: would deny (audit): {message}")),
        _ => ("6", format!("kgate: {message}")),
    };
    let mut out = Vec::with_capacity(512);
    let mut field = |name: &str, value: &str| put(&mut out, name, value.as_bytes());
    field("MESSAGE", &message);
    field("PRIORITY", priority);
    field("SYSLOG_IDENTIFIER", "kgate");
    field("OBJECT_SYSTEMD_UNIT", "kgate.service");
    field("KGATE_VERDICT", e.verdict.as_str());
    field("KGATE_HOOK", &e.hook.attach_point());
    // Unescaped: the journal keeps bytes exactly, and a newline goes
    // through the length-prefixed form.
    field("KGATE_REQUEST", &e.request.describe(str::to_owned));
    field("KGATE_RULE", &e.rule.describe());
    field("KGATE_UID", &e.uid.to_string());
    field("KGATE_PID", &e.tgid.to_string());
    field("KGATE_TID", &e.pid.to_string());
    field("KGATE_COMM", &e.comm);
    field("KGATE_EXE", &e.exe);
    field("KGATE_CGROUP_ID", &e.cgroup_id.to_string());
    field("KGATE_CGROUP", cgroup.unwrap_or(""));
    out
}

/// One field in the native format: `NAME=value\n`, or, when the value
/// holds a newline, `NAME\n` + little-endian u64 length + value + `\n`.
fn put(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// cgroup v2 ids (the directory's inode number) to paths, found by
/// walking the cgroup file system and kept, so that a busy follower walks
/// it once per new cgroup, not per event.
struct CgroupNames {
    root: PathBuf,
    known: HashMap<u64, String>,
    /// When the file system was last walked: an id that is not there (a
    /// cgroup removed since the event) walks it again at most once a
    /// second, not once per event of a flood.
    walked: Option<Instant>,
}

impl CgroupNames {
    fn new(root: PathBuf) -> Self {
        CgroupNames {
            root,
            known: HashMap::new(),
            walked: None,
        }
    }

    fn name(&mut self, id: u64) -> Option<String> {
        if let Some(n) = self.known.get(&id) {
            return Some(n.clone());
        }
        if self
            .walked
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return None;
        }
        self.known.clear();
        walk(&self.root, &self.root, 0, &mut self.known);
        self.walked = Some(Instant::now());
        self.known.get(&id).cloned()
    }
}

fn walk(root: &Path, dir: &Path, depth: usize, known: &mut HashMap<u64, String>) {
    if depth > 16 || known.len() > 100_000 {
        return;
    }
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        let rel = dir.strip_prefix(root).unwrap_or(dir);
        known.insert(meta.ino(), format!("/{}", rel.display()));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &e.path(), depth + 1, known);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kgate_bpf::{Hook, Request, Rule};

    fn event(verdict: Verdict, comm: &str) -> Event {
        Event {
            time_ns: 1,
            unix_time_ns: 2,
            pid: 8,
            tgid: 7,
            uid: 1000,
            cgroup_id: 42,
            comm: comm.into(),
            exe: "kgate-probe".into(),
            hook: Hook::SocketCreate,
            request: Request::Socket {
                family: 40,
                sock_type: 1,
                protocol: 0,
            },
            rule: Rule::ModuleNotListed,
            verdict,
        }
    }

    fn fields(d: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        let mut i = 0;
        while i < d.len() {
            let end = i + d[i..]
                .iter()
                .position(|b| *b == b'\n' || *b == b'=')
                .unwrap();
            let name = String::from_utf8(d[i..end].to_vec()).unwrap();
            if d[end] == b'=' {
                let nl = end + 1 + d[end + 1..].iter().position(|b| *b == b'\n').unwrap();
                v.push((name, d[end + 1..nl].to_vec()));
                i = nl + 1;
            } else {
                let len = u64::from_le_bytes(d[end + 1..end + 9].try_into().unwrap()) as usize;
                v.push((name, d[end + 9..end + 9 + len].to_vec()));
                assert_eq!(d[end + 9 + len], b'\n');
                i = end + 10 + len;
            }
        }
        v
    }

    #[test]
    fn deny_entry_has_every_field() {
        let d = entry(
            &event(Verdict::Deny, "probe"),
            "event deny socket:40/1/0",
            Some("/user.slice"),
        );
        let f = fields(&d);
        let get = |n: &str| {
            f.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_else(|| panic!("no {n}"))
        };
        assert_eq!(get("MESSAGE"), "kgate: event deny socket:40/1/0");
        assert_eq!(get("PRIORITY"), "4");
        assert_eq!(get("KGATE_HOOK"), "lsm/socket_create");
        assert_eq!(get("KGATE_REQUEST"), "socket:40/1/0");
        assert_eq!(get("KGATE_UID"), "1000");
        assert_eq!(get("KGATE_PID"), "7");
        assert_eq!(get("KGATE_COMM"), "probe");
        assert_eq!(get("KGATE_EXE"), "kgate-probe");
        assert_eq!(get("KGATE_CGROUP"), "/user.slice");
        assert_eq!(get("KGATE_RULE"), "not in modules.allow");
        assert_eq!(get("OBJECT_SYSTEMD_UNIT"), "kgate.service");
    }

    #[test]
    fn audit_says_would_deny() {
        let d = entry(&event(Verdict::Audit, "p"), "event audit x", None);
        let f = fields(&d);
        let msg = &f.iter().find(|(k, _)| k == "MESSAGE").unwrap().1;
        assert!(String::from_utf8_lossy(msg).contains("would deny"));
    }

    /// A comm with a newline cannot forge a field: it goes length-prefixed.
    #[test]
    fn newline_is_length_prefixed() {
        let d = entry(&event(Verdict::Deny, "a\nPRIORITY=0"), "m", None);
        let f = fields(&d);
        let comm = &f.iter().find(|(k, _)| k == "KGATE_COMM").unwrap().1;
        assert_eq!(comm, b"a\nPRIORITY=0");
        assert_eq!(f.iter().filter(|(k, _)| k == "PRIORITY").count(), 1);
    }

    #[test]
    fn cgroup_ids_resolve_to_paths() {
        let dir = kgate_kernel::testutil::TempDir::new("cgroup");
        std::fs::create_dir_all(dir.path().join("system.slice/ssh.service")).unwrap();
        let ino = std::fs::metadata(dir.path().join("system.slice/ssh.service"))
            .unwrap()
            .ino();
        let mut names = CgroupNames::new(dir.path().to_owned());
        assert_eq!(
            names.name(ino).as_deref(),
            Some("/system.slice/ssh.service")
        );
        assert_eq!(names.name(u64::MAX), None);
    }
}
