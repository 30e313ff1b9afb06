//! The real-system lab's scenarios: one chain of boots of one disk, as an
//! administrator lives it. Install the package, freeze, audit, enforce,
//! reboot; use the services; let an unprivileged user try the exploit
//! entry points; upgrade the kernel; corrupt the policy; boot with
//! `kgate=off`; purge. Each step reports named results ([`RESULTS`]); a
//! step that cannot run fails the results it and the later steps owed,
//! saying why.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::system::{BootSpec, Guest, Image, KERNEL, UPGRADE_KERNEL};
use crate::Outcome;

/// Every result of the chain, in the order the chain reports them.
pub const RESULTS: &[&str] = &[
    "system_deb_install",
    "system_audit_logs",
    "system_enforced_after_reboot",
    "system_boot_order",
    "system_services_work",
    "system_workload_no_denials",
    "system_unprivileged_denied",
    "system_journal_events",
    "system_kernel_hook",
    "system_kernel_upgrade",
    "system_corrupt_policy",
    "system_kgate_off",
    "system_purge_stock",
];

/// The exploit entry points an unprivileged user tries: (name, probe
/// arguments). On stock Debian 12 each one works (a module is autoloaded,
/// or a user namespace made); under a frozen policy each is denied.
pub const PROBES: &[(&str, &str)] = &[
    ("vsock", "socket 40 1 0"),
    ("sctp", "socket 2 1 132"),
    ("rxrpc", "socket 33 2 2"),
    ("kcm", "socket 41 5 0"),
    (
        "af_alg authencesn",
        "alg-bind aead 'authencesn(hmac(sha256),cbc(aes))'",
    ),
    ("user namespace", "unshare-user"),
];

/// What a run needs from the host.
pub struct SystemOptions {
    /// The image.
    pub image: Image,
    /// The kgate package to install.
    pub deb: PathBuf,
    /// The lab's static probe helper.
    pub probe: PathBuf,
    /// Where the run's disk copy and consoles go (emptied first).
    pub work: PathBuf,
}

/// The chain's outcome.
#[derive(Debug, Default)]
pub struct SystemRun {
    /// Result name → outcome and detail.
    pub results: BTreeMap<String, (Outcome, String)>,
    /// Measurements for bench/RESULTS.md: name → seconds.
    pub timings: BTreeMap<String, f64>,
    /// Console files, one per boot.
    pub consoles: Vec<PathBuf>,
}

impl SystemRun {
    /// `name`'s detail if it passed, else why not.
    pub fn check(&self, name: &str) -> std::result::Result<String, String> {
        match self.results.get(name) {
            Some((Outcome::Pass, d)) => Ok(d.clone()),
            Some((o, d)) => Err(format!("system lab {name}: {o}: {d}")),
            None => Err(format!("system lab {name}: never reported")),
        }
    }

    fn record(&mut self, name: &str, r: Result<String>) {
        debug_assert!(RESULTS.contains(&name), "{name} is not in RESULTS");
        let v = match r {
            Ok(d) => (Outcome::Pass, d),
            Err(e) => (Outcome::Fail, format!("{e:#}")),
        };
        eprintln!("system lab: {name}: {} {}", v.0, first_line(&v.1));
        self.results.insert(name.to_owned(), v);
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(180);

struct Chain<'a> {
    opts: &'a SystemOptions,
    disk: PathBuf,
    run: SystemRun,
    boots: usize,
}

impl Chain<'_> {
    fn boot(&mut self, release: &str, cmdline: &str) -> Result<Guest> {
        self.boots += 1;
        let console = self
            .opts
            .work
            .join(format!("console-{}-{release}.log", self.boots));
        self.run.consoles.push(console.clone());
        let g = Guest::boot(
            &BootSpec {
                disk: &self.disk,
                key: &self.opts.image.key(),
                release,
                cmdline,
                console: &console,
                work: &self.opts.work,
            },
            BOOT_TIMEOUT,
        )?;
        eprintln!(
            "system lab: boot {} ({release} {cmdline}): ssh after {:.0}s",
            self.boots, g.boot_seconds
        );
        self.run
            .timings
            .insert(format!("boot{}_ssh_seconds", self.boots), g.boot_seconds);
        Ok(g)
    }
}

/// Run the chain. Never fails: what cannot run is a failed result.
pub fn run(opts: &SystemOptions) -> SystemRun {
    let mut chain = Chain {
        opts,
        disk: opts.work.join("disk.raw"),
        run: SystemRun::default(),
        boots: 0,
    };
    if let Err(e) = steps(&mut chain) {
        let why = format!("not reached: the chain stopped: {e:#}");
        for name in RESULTS {
            if !chain.run.results.contains_key(*name) {
                chain.run.record(name, Err(anyhow::anyhow!("{why}")));
            }
        }
    }
    chain.run
}

fn steps(c: &mut Chain<'_>) -> Result<()> {
    let _ = std::fs::remove_dir_all(&c.opts.work);
    std::fs::create_dir_all(&c.opts.work)?;
    let copy = std::process::Command::new("cp")
        .arg("--sparse=always")
        .arg(c.opts.image.disk())
        .arg(&c.disk)
        .status()?;
    ensure!(copy.success(), "copying the stock disk failed");

    // Boot 1: stock. Install, freeze, audit, enforce.
    let g = c.boot(KERNEL, "")?;
    g.copy_in(&c.opts.deb, "/tmp/kgate.deb")?;
    g.copy_in(&c.opts.probe, "/usr/local/bin/kgate-probe")?;
    g.root("chmod 755 /usr/local/bin/kgate-probe")?;
    let r = (|| {
        let out = g.root("dpkg -i /tmp/kgate.deb 2>&1")?;
        let enabled = g.root("systemctl is-enabled kgate.service kgate-events.service")?;
        ensure!(
            enabled.lines().all(|l| l == "enabled"),
            "units not enabled: {enabled}"
        );
        Ok(format!("{}; units enabled", last_line(&out)))
    })();
    let installed = r.is_ok();
    c.run.record("system_deb_install", r);
    ensure!(installed, "the package did not install");

    let t = Instant::now();
    g.root("kgate freeze -o /etc/kgate/policy.toml >/tmp/freeze.log 2>&1")?;
    // freeze leaves user namespaces in audit (the host's sandboxes are
    // not known yet); this host has none, so the administrator denies them.
    g.root(
        "sed -i 's/^unprivileged = \"audit\"$/unprivileged = \"deny\"/' /etc/kgate/policy.toml \
         && grep -qx 'unprivileged = \"deny\"' /etc/kgate/policy.toml \
         && kgate policy check /etc/kgate/policy.toml >/dev/null",
    )?;
    c.run
        .timings
        .insert("freeze_seconds".into(), t.elapsed().as_secs_f64());
    let r = (|| {
        g.root("kgate apply /etc/kgate/policy.toml --mode audit >/tmp/audit.log 2>&1")?;
        let status = g.root("kgate status")?;
        ensure!(
            status.contains("modules=Audit") && status.contains("sockets=Audit"),
            "kgate status does not show audit:\n{status}"
        );
        let worked = probes_as_alice(&g)?;
        let refused: Vec<_> = worked.iter().filter(|(_, ok, _)| !ok).collect();
        ensure!(
            refused.is_empty(),
            "audit mode refused {refused:?}: audit must deny nothing"
        );
        // The follower writes the events to the journal as they come.
        let log = wait_for(
            &g,
            "journalctl -u kgate -g 'would deny' --no-pager -o cat",
            |s| s.contains("socket:40/"),
        )?;
        Ok(format!(
            "every probe worked under audit; journalctl -u kgate -g 'would deny': {}",
            log.lines().take(3).collect::<Vec<_>>().join(" | ")
        ))
    })();
    c.run.record("system_audit_logs", r);

    let t = Instant::now();
    g.root("kgate apply /etc/kgate/policy.toml >/tmp/enforce.log 2>&1")?;
    c.run
        .timings
        .insert("apply_enforce_seconds".into(), t.elapsed().as_secs_f64());
    g.shutdown(SHUTDOWN_TIMEOUT)?;

    // Boot 2: enforced by kgate.service, nothing run by hand.
    let g = c.boot(KERNEL, "")?;
    let r = enforced(&g, "/etc/kgate/policy.toml");
    c.run.record("system_enforced_after_reboot", r);
    let r = boot_order(&g);
    c.run.record("system_boot_order", r);
    let r = boot_timings(&g, &mut c.run.timings);
    if let Err(e) = r {
        eprintln!("system lab: boot timings: {e:#}");
    }
    let r = services(&g);
    c.run.record("system_services_work", r);
    let r = workload(&g, Duration::from_secs(60));
    c.run.record("system_workload_no_denials", r);
    let r = denied_as_alice(&g);
    c.run.record("system_unprivileged_denied", r);
    let r = journal_events(&g);
    c.run.record("system_journal_events", r);

    let r = (|| {
        g.copy_in(&c.opts.image.upgrade_deb()?, "/tmp/linux.deb")?;
        // Under TCG, initramfs-tools and the hook's freeze --from take
        // many minutes.
        let o = g.ssh_as(
            "root",
            "dpkg -i /tmp/linux.deb 2>&1",
            Duration::from_secs(2400),
        )?;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        ensure!(
            o.status.success(),
            "dpkg -i of the new kernel failed:\n{out}"
        );
        ensure!(
            out.contains(&format!("carried to {UPGRADE_KERNEL}")),
            "the kernel hook did not carry the policy:\n{out}"
        );
        g.root(&format!(
            "test -s /var/lib/kgate/kernels/{UPGRADE_KERNEL}.toml"
        ))?;
        // The initramfs holds no kgate rule: modules needed to boot load.
        let listing = g.root(&format!(
            "lsinitramfs /boot/initrd.img-{UPGRADE_KERNEL} | grep -c 'modprobe.d/kgate' || true"
        ))?;
        ensure!(
            listing.trim() == "0",
            "the new initramfs holds kgate's modprobe.d rules"
        );
        let report: String = out
            .lines()
            .filter(|l| l.contains("kgate"))
            .take(4)
            .collect::<Vec<_>>()
            .join(" | ");
        Ok(format!("{report}; initramfs free of kgate rules"))
    })();
    let hooked = r.is_ok();
    c.run.record("system_kernel_hook", r);
    ensure!(hooked, "the upgrade kernel did not install");
    g.shutdown(SHUTDOWN_TIMEOUT)?;

    // Boot 3: the new kernel.
    let g = c.boot(UPGRADE_KERNEL, "")?;
    let r = (|| {
        let release = g.root("uname -r")?;
        ensure!(
            release.trim() == UPGRADE_KERNEL,
            "booted {release}, not {UPGRADE_KERNEL}"
        );
        let e = enforced(&g, "/etc/kgate/policy.toml")?;
        let s = services(&g)?;
        let d = denied_as_alice(&g)?;
        Ok(format!("{UPGRADE_KERNEL}: {e}; {s}; {d}"))
    })();
    c.run.record("system_kernel_upgrade", r);
    // A broken policy: half a file, as after a bad edit.
    g.root(
        "truncate -s 200 /etc/kgate/policy.toml && echo 'modules = [' >> /etc/kgate/policy.toml",
    )?;
    g.shutdown(SHUTDOWN_TIMEOUT)?;

    // Boot 4: the policy cannot apply; the last good one does.
    let g = c.boot(UPGRADE_KERNEL, "")?;
    let r = (|| {
        let failed = g.root("systemctl --failed --no-legend --plain")?;
        ensure!(
            failed.contains("kgate.service"),
            "systemctl --failed does not list kgate: {failed:?}"
        );
        let log = g.root("journalctl -b -u kgate --no-pager -o cat")?;
        let msg = log
            .lines()
            .find(|l| l.contains("/etc/kgate/policy.toml") && l.contains("last good"))
            .with_context(|| format!("no clear journal message about the fallback:\n{log}"))?
            .to_owned();
        let status = g.root("kgate status")?;
        ensure!(
            status.contains("last good"),
            "kgate status does not say the last good policy is enforced:\n{status}"
        );
        let d = denied_as_alice(&g)?;
        Ok(format!(
            "boot completed, ssh works; failed: {}; journal: {msg}; {d}",
            failed.trim()
        ))
    })();
    c.run.record("system_corrupt_policy", r);
    g.shutdown(SHUTDOWN_TIMEOUT)?;

    // Boot 5: kgate=off.
    let g = c.boot(UPGRADE_KERNEL, "kgate=off")?;
    let r = (|| {
        let status = g.root("kgate status")?;
        let boot = status
            .lines()
            .find(|l| l.starts_with("boot:"))
            .context("kgate status has no boot: line")?;
        ensure!(boot.contains("kgate=off"), "boot line: {boot}");
        let pinned = g.root("ls /sys/fs/bpf/kgate 2>/dev/null | wc -l")?;
        ensure!(pinned.trim() == "0", "something is pinned under kgate=off");
        let log = g.root("journalctl -b -u kgate --no-pager -o cat")?;
        ensure!(
            log.contains("kgate=off"),
            "the journal does not log kgate=off:\n{log}"
        );
        let worked = probes_as_alice(&g)?;
        ensure!(
            worked.iter().all(|(_, ok, _)| *ok),
            "with kgate=off a probe was refused: {worked:?}"
        );
        Ok(format!("{boot}; nothing pinned; every probe works"))
    })();
    c.run.record("system_kgate_off", r);
    g.root("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kgate >/tmp/purge.log 2>&1")?;
    g.shutdown(SHUTDOWN_TIMEOUT)?;

    // Boot 6: stock again.
    let g = c.boot(UPGRADE_KERNEL, "")?;
    let r = (|| {
        let left = g.root(
            "ls -d /etc/kgate /var/lib/kgate /var/cache/kgate /run/kgate /sys/fs/bpf/kgate \
             /usr/sbin/kgate /lib/systemd/system/kgate.service /etc/kernel/postinst.d/zz-kgate \
             /etc/sysctl.d/90-kgate.conf /etc/modprobe.d/kgate.conf 2>/dev/null || true",
        )?;
        ensure!(left.trim().is_empty(), "left behind: {left}");
        let worked = probes_as_alice(&g)?;
        let refused: Vec<_> = worked.iter().filter(|(_, ok, _)| !ok).collect();
        ensure!(refused.is_empty(), "stock host refused {refused:?}");
        let s = services(&g)?;
        Ok(format!(
            "no kgate file left; on stock every exploit entry works ({}); {s}",
            worked
                .iter()
                .map(|(n, _, out)| format!("{n}: {out}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })();
    c.run.record("system_purge_stock", r);
    g.shutdown(SHUTDOWN_TIMEOUT)?;
    Ok(())
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

/// Poll `cmd` (as root) for up to 30 s until `done` holds on its output.
fn wait_for(g: &Guest, cmd: &str, done: impl Fn(&str) -> bool) -> Result<String> {
    let started = Instant::now();
    loop {
        let out = g.root(cmd).unwrap_or_default();
        if done(&out) {
            return Ok(out);
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("`{cmd}` did not show what was expected within 30 s:\n{out}");
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Each probe run by alice over ssh: (name, worked, output).
fn probes_as_alice(g: &Guest) -> Result<Vec<(String, bool, String)>> {
    let mut script = String::new();
    for (name, args) in PROBES {
        let _ = writeln!(script, "echo \"{name}: $(kgate-probe {args} 2>&1)\"");
    }
    let o = g.ssh_as("alice", &script, Duration::from_secs(300))?;
    ensure!(
        o.status.success(),
        "alice's ssh session failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let mut v = Vec::new();
    for (name, _) in PROBES {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .with_context(|| format!("no output for {name}:\n{out}"))?;
        v.push(((*name).to_owned(), line.starts_with("ok"), line.to_owned()));
    }
    Ok(v)
}

fn denied_as_alice(g: &Guest) -> Result<String> {
    let res = probes_as_alice(g)?;
    let worked: Vec<_> = res.iter().filter(|(_, ok, _)| *ok).collect();
    ensure!(worked.is_empty(), "not denied: {worked:?}");
    Ok(format!(
        "alice over ssh: every exploit entry denied ({})",
        res.iter()
            .map(|(n, _, o)| format!("{n}: {o}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// `kgate status` shows `policy` enforced, put in force by kgate.service.
fn enforced(g: &Guest, policy: &str) -> Result<String> {
    let status = g.root("kgate status")?;
    let first = status
        .lines()
        .find(|l| l.starts_with("status:"))
        .unwrap_or("");
    ensure!(
        first.contains("modules=Enforce") && first.contains("sockets=Enforce"),
        "not enforced:\n{status}"
    );
    let boot = status
        .lines()
        .find(|l| l.starts_with("boot:"))
        .context("kgate status has no boot: line")?;
    ensure!(
        boot.contains("enforced") && boot.contains(policy),
        "boot line: {boot}"
    );
    let active = g.root("systemctl is-active kgate.service")?;
    ensure!(active.trim() == "active", "kgate.service is {active}");
    Ok(format!("{}; {boot}", first.trim()))
}

/// kgate.service became active before ssh, nginx, postgresql and
/// systemd-user-sessions started (systemd's monotonic timestamps).
fn boot_order(g: &Guest) -> Result<String> {
    let stamp = |unit: &str, prop: &str| -> Result<u64> {
        let v = g.root(&format!("systemctl show -P {prop} {unit}"))?;
        v.trim()
            .parse::<u64>()
            .with_context(|| format!("{unit} {prop}={v:?}"))
    };
    let ready = stamp("kgate.service", "ActiveEnterTimestampMonotonic")?;
    ensure!(ready > 0, "kgate.service never became active");
    let mut out = vec![format!(
        "kgate.service active at {:.1}s",
        ready as f64 / 1e6
    )];
    for unit in [
        "ssh.service",
        "nginx.service",
        "postgresql@15-main.service",
        "systemd-user-sessions.service",
    ] {
        let start = stamp(unit, "InactiveExitTimestampMonotonic")?;
        ensure!(start > 0, "{unit} never started");
        ensure!(
            start >= ready,
            "{unit} started at {:.3}s, before kgate.service was active at {:.3}s",
            start as f64 / 1e6,
            ready as f64 / 1e6
        );
        out.push(format!("{unit} started at {:.1}s", start as f64 / 1e6));
    }
    Ok(out.join(", "))
}

/// What kgate.service and systemd-modules-load.service took this boot.
fn boot_timings(g: &Guest, timings: &mut BTreeMap<String, f64>) -> Result<()> {
    for unit in ["kgate.service", "systemd-modules-load.service"] {
        let start = g.root(&format!(
            "systemctl show -P ExecMainStartTimestampMonotonic {unit}"
        ))?;
        let end = g.root(&format!(
            "systemctl show -P ExecMainExitTimestampMonotonic {unit}"
        ))?;
        let (s, e): (u64, u64) = (start.trim().parse()?, end.trim().parse()?);
        if e > s {
            timings.insert(format!("{unit}_seconds"), (e - s) as f64 / 1e6);
        }
    }
    Ok(())
}

/// ssh login with a key running a command, an HTTP GET through nginx, a
/// psql query: all from the host.
fn services(g: &Guest) -> Result<String> {
    let o = g.ssh_as("alice", "id -un", Duration::from_secs(60))?;
    ensure!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "alice",
        "ssh as alice failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let body = http_get(g.http_port)?;
    ensure!(body.contains("kgate-lab"), "nginx answered {body:?}");
    let q = psql(g.pg_port, "select 6*7")?;
    ensure!(q.trim() == "42", "psql answered {q:?}");
    Ok("ssh (key) ran a command, nginx served the page, psql answered 42".into())
}

fn http_get(port: u16) -> Result<String> {
    let mut c = std::process::Command::new("curl");
    c.args(["-fsS", "--max-time", "30"])
        .arg(format!("http://127.0.0.1:{port}/"));
    host_client(c, "curl", Duration::from_secs(40))
}

fn psql(port: u16, sql: &str) -> Result<String> {
    let mut c = std::process::Command::new("psql");
    c.args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-tA"])
        .args(["-p", &port.to_string(), "-c", sql])
        .env("PGCONNECT_TIMEOUT", "30");
    host_client(c, "psql", Duration::from_secs(60))
}

/// Run a client on the host; its stdout, or an error with its stderr.
fn host_client(c: std::process::Command, what: &str, timeout: Duration) -> Result<String> {
    let o = crate::system::run_with_timeout(c, timeout)?;
    ensure!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The deny counters of `kgate status` summed.
fn denies(g: &Guest) -> Result<u64> {
    let status = g.root("kgate status")?;
    Ok(status
        .lines()
        .filter(|l| l.starts_with("hook "))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("deny="))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum())
}

/// ssh commands, HTTP GETs and psql queries, mixed, for `length`; no deny
/// counted meanwhile.
fn workload(g: &Guest, length: Duration) -> Result<String> {
    let before = denies(g)?;
    let started = Instant::now();
    let (mut ssh, mut http, mut sql) = (0, 0, 0);
    g.root("su postgres -c \"psql -qc 'create table if not exists w(n int)'\"")?;
    while started.elapsed() < length {
        let o = g.ssh_as(
            "alice",
            "ls /usr/bin | wc -l; cat /proc/loadavg; ps ax | wc -l",
            Duration::from_secs(60),
        )?;
        ensure!(o.status.success(), "ssh command failed in the workload");
        ssh += 1;
        for _ in 0..5 {
            ensure!(http_get(g.http_port)?.contains("kgate-lab"));
            http += 1;
        }
        psql(
            g.pg_port,
            "insert into w values (1); select count(*) from w",
        )?;
        sql += 1;
    }
    let after = denies(g)?;
    ensure!(
        after == before,
        "{} denials during the workload: {}",
        after - before,
        g.root("kgate events | tail -20").unwrap_or_default()
    );
    Ok(format!(
        "{:.0}s: {ssh} ssh commands, {http} HTTP GETs, {sql} psql transactions; deny counters unchanged ({before})",
        started.elapsed().as_secs_f64()
    ))
}

/// The denials are in the journal under kgate.service, with their fields.
fn journal_events(g: &Guest) -> Result<String> {
    let out = wait_for(
        g,
        "journalctl -b -u kgate -o json --no-pager KGATE_VERDICT=deny",
        |s| s.contains("\"KGATE_REQUEST\""),
    )?;
    let line = out
        .lines()
        .find(|l| l.contains("socket:40/"))
        .context("no journal entry for alice's vsock socket")?;
    for field in [
        "\"MESSAGE\"",
        "\"KGATE_HOOK\"",
        "\"KGATE_REQUEST\"",
        "\"KGATE_RULE\"",
        "\"KGATE_UID\":\"1000\"",
        "\"KGATE_PID\"",
        "\"KGATE_COMM\"",
        "\"KGATE_EXE\"",
        "\"KGATE_CGROUP\"",
    ] {
        ensure!(line.contains(field), "the entry lacks {field}: {line}");
    }
    let msg =
        g.root("journalctl -b -u kgate -g deny --no-pager -o cat | grep 'socket:40/' | head -1")?;
    Ok(format!("journalctl -u kgate: {}", msg.trim()))
}

/// Where a run keeps its disk and consoles.
pub fn work_dir(lab: &Path) -> PathBuf {
    lab.join("runs").join("system")
}
