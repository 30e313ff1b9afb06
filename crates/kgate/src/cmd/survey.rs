//! `kgate survey`: what kernel code can an unprivileged user get loaded on
//! this host (or in an offline kernel), how much is it, and through which
//! trigger.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;

use kgate_kernel::host::HostFacts;
use kgate_kernel::reach::{self, Reach, ReachContext, Via};
use kgate_kernel::sysctl;
use kgate_kernel::tree::KernelTree;
use kgate_kernel::trigger::{Trigger, TriggerKind};

use crate::output::{escape_text, human_bytes, Format, TextOut};
use crate::target::{Target, TargetArgs};

/// JSON schema identifier of `kgate survey --format json`.
pub const SCHEMA: &str = "kgate.survey/1";

/// Survey the kernel attack surface reachable by unprivileged users.
///
/// Without --root, surveys the running kernel: /proc, /sys and
/// /lib/modules/$(uname -r). With --root DIR, surveys an offline kernel: an
/// unpacked kernel package or a mounted image (DIR/lib/modules/VERSION and
/// DIR/boot/config-VERSION). Offline, the host settings are the kernel's
/// build defaults.
///
/// Module facts are cached under $XDG_CACHE_HOME/kgate (root: always
/// /var/cache/kgate), keyed by path, size and mtime, so a second survey of
/// the same tree is fast. A cache not owned by the user running kgate, or
/// writable by others, is ignored with a warning.
#[derive(Debug, Default, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    kgate survey
        This host: settings, sysctls, and the modules any user can get loaded.
    kgate survey --format json | jq '.modules[] | select(.unprivileged_reachable) | .name'
        Names of every module an unprivileged user can load.
    apt-get download linux-image-6.12.113+deb12-cloud-amd64-unsigned
    dpkg-deb -x linux-image-6.12.113+deb12-cloud-amd64-unsigned_*.deb pkg
    kgate survey --root pkg
        A kernel package before it is installed (no depmod needed).

EXIT STATUS:
    0 success; 1 error; 2 usage error; 3 some module files could not be read
    (each is listed, the rest of the survey is complete).

The JSON schema (kgate.survey/1) is documented in docs/json.md; fields are only
ever added within a schema version.")]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Rows in the "top reachable modules" table (text output).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
}

/// Everything the survey found, as serialized by `--format json`.
#[derive(Debug, Serialize)]
pub struct Survey {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The kernel surveyed.
    pub kernel: KernelInfo,
    /// LSMs, lockdown, seccomp, user namespaces, sysctls.
    pub host: HostFacts,
    /// The settings reachability was judged against.
    pub reach_context: ReachContext,
    /// Totals.
    pub summary: Summary,
    /// depmod output versus `.modinfo`, and where dependencies came from.
    pub depmod: DepmodInfo,
    /// Module files that could not be read (skipped).
    pub problems: Vec<kgate_kernel::tree::ModuleProblem>,
    /// Splice-family paths and what can gate each here (live: including
    /// kgate's enforcement in force).
    pub splice_paths: Vec<kgate_bpf::splice::SplicePath>,
    /// Every module, loadable and builtin.
    pub modules: Vec<ModuleReport>,
    /// Paths kgate does not stop that apply to this host
    /// (docs/policy.md, "What kgate does not stop").
    pub not_stopped: NotStopped,
    /// The bpffs mount kgate pins under (live only; `null` offline or when
    /// /sys/fs/bpf is missing).
    pub bpffs: Option<BpffsInfo>,
}

/// The bpffs mount holding kgate's pin directory.
#[derive(Debug, Serialize)]
pub struct BpffsInfo {
    /// The mount point (`/sys/fs/bpf`).
    pub path: PathBuf,
    /// Its mode, as an octal string (`"1777"`, the kernel's default).
    pub mode: String,
    /// What to do when the mode is not 0700.
    pub recommendation: Option<String>,
}

/// What kgate's enforcement leaves open on this host.
#[derive(Debug, Serialize)]
pub struct NotStopped {
    /// Installed root daemons that request modules on users' behalf: their
    /// requests pass as privileged.
    pub root_daemons: Vec<RootDaemon>,
    /// Processes in a user namespace other than the initial one (live
    /// only): they keep their namespace capabilities.
    pub namespaced_processes: usize,
}

/// A root daemon that acts for users.
#[derive(Debug, Serialize)]
pub struct RootDaemon {
    /// Package-style name.
    pub name: &'static str,
    /// The executable found.
    pub path: PathBuf,
    /// What it loads for users.
    pub requests: &'static str,
}

/// Root daemons known to make the kernel load modules for unprivileged
/// users: (name, executables, what they request).
const ROOT_DAEMONS: &[(&str, &[&str], &str)] = &[
    (
        "udisks2",
        &["usr/libexec/udisks2/udisksd", "usr/lib/udisks2/udisksd"],
        "fs-* when it loop-mounts a user's image or a removable disk",
    ),
    (
        "NetworkManager",
        &["usr/sbin/NetworkManager"],
        "rtnl-link-*, ppp, VPN and Wi-Fi modules for user-configured connections",
    ),
    (
        "ModemManager",
        &["usr/sbin/ModemManager"],
        "tty and USB serial modules",
    ),
    (
        "bluetoothd",
        &[
            "usr/libexec/bluetooth/bluetoothd",
            "usr/lib/bluetooth/bluetoothd",
        ],
        "bt-proto-* and profile modules for paired devices",
    ),
    (
        "cupsd",
        &["usr/sbin/cupsd"],
        "usblp and parport modules for printers",
    ),
    (
        "libvirtd",
        &["usr/sbin/libvirtd"],
        "tun, bridge, vhost and netfilter modules for users' virtual machines",
    ),
    (
        "systemd-machined",
        &[
            "usr/lib/systemd/systemd-machined",
            "lib/systemd/systemd-machined",
        ],
        "loop and filesystem modules for user-started machine images",
    ),
];

fn not_stopped(root: &Path, live: bool) -> NotStopped {
    let root_daemons = ROOT_DAEMONS
        .iter()
        .filter_map(|(name, paths, requests)| {
            paths
                .iter()
                .map(|p| root.join(p))
                .find(|p| p.is_file())
                .map(|path| RootDaemon {
                    name,
                    path,
                    requests,
                })
        })
        .collect();
    NotStopped {
        root_daemons,
        namespaced_processes: if live {
            crate::backend::bpf_lsm::namespaced_processes().len()
        } else {
            0
        },
    }
}

/// The kernel surveyed.
#[derive(Debug, Serialize)]
pub struct KernelInfo {
    /// `uname -r` of the kernel.
    pub release: String,
    /// `live` or `offline`.
    pub source: &'static str,
    /// The `--root` directory, offline.
    pub root: Option<PathBuf>,
    /// The modules directory read, if any.
    pub modules_dir: Option<PathBuf>,
    /// The kernel supports loadable modules.
    pub modules_supported: bool,
    /// Where the kernel config came from.
    pub config: Option<String>,
}

/// depmod information.
#[derive(Debug, Serialize)]
pub struct DepmodInfo {
    /// `depmod` or `modinfo`.
    pub dep_source: kgate_kernel::tree::DepSource,
    /// The comparison.
    #[serde(flatten)]
    pub check: kgate_kernel::tree::DepmodCheck,
}

/// Totals of the survey.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Loadable plus builtin modules.
    pub modules_total: usize,
    /// Loadable (`.ko`) modules.
    pub modules_loadable: usize,
    /// Builtin modules.
    pub modules_builtin: usize,
    /// Loaded now (live only).
    pub modules_loaded: usize,
    /// Loadable modules an unprivileged user can get loaded.
    pub modules_unprivileged_reachable: usize,
    /// ... of which only through a user namespace.
    pub modules_reachable_only_via_userns: usize,
    /// ... of which not loaded right now (live only; equals the reachable
    /// count offline).
    pub modules_reachable_not_loaded: usize,
    /// Code bytes in reachable modules.
    pub reachable_text_bytes: u64,
    /// Functions in reachable modules.
    pub reachable_functions: u64,
    /// Code bytes in all loadable modules.
    pub loadable_text_bytes: u64,
    /// Reachable modules by the trigger kind that reaches them first
    /// (modules reached as dependencies count under their root's kind).
    pub by_trigger_kind: BTreeMap<String, KindTotal>,
    /// Loadable modules that modprobe configuration stops from loading at
    /// all (`install M /bin/false`), e.g. after `kgate apply --backend modprobe`.
    pub modules_blocked_by_modprobe_conf: usize,
    /// Module files that could not be read.
    pub problems: usize,
}

/// Reachable modules of one trigger kind.
#[derive(Debug, Default, Serialize)]
pub struct KindTotal {
    /// Modules.
    pub modules: usize,
    /// Code bytes.
    pub text_bytes: u64,
    /// Functions.
    pub functions: u64,
}

/// One module in the report.
#[derive(Debug, Serialize)]
pub struct ModuleReport {
    /// Canonical name.
    pub name: String,
    /// Path relative to the modules directory (`null` for builtin).
    pub path: Option<String>,
    /// Loaded now.
    pub loaded: bool,
    /// Compiled into the kernel.
    pub builtin: bool,
    /// Bytes of executable code.
    pub text_bytes: u64,
    /// Defined functions.
    pub functions: u32,
    /// Alias patterns.
    pub aliases: Vec<String>,
    /// Direct hard dependencies.
    pub depends: Vec<String>,
    /// Soft dependencies (`pre` and `post`).
    pub softdeps: Vec<String>,
    /// Every module modprobe loads with this one (hard and soft, transitive).
    pub dependency_closure: Vec<String>,
    /// Classified triggers.
    pub triggers: Vec<Trigger>,
    /// An unprivileged user can get this module loaded.
    pub unprivileged_reachable: bool,
    /// ... only through a user namespace.
    pub needs_userns: bool,
    /// Why it is reachable.
    pub via: Option<Via>,
}

/// Run the survey and print it.
pub fn run(args: &Args) -> Result<ExitCode> {
    let survey = collect(args)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &survey).context("failed to write JSON")?;
            writeln!(out)?;
        }
        Format::Text => print_text(&mut TextOut::new(&mut out), &survey, args.top)?,
    }
    out.flush()?;
    if survey.problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(3))
    }
}

/// Gather the survey without printing it.
pub fn collect(args: &Args) -> Result<Survey> {
    let t = Target::load(&args.target)?;
    let reach = reach::compute(&t.tree, &t.ctx);
    let modules = module_reports(&t.tree, &reach);
    let mut summary = summarize(&t.tree, &reach);
    summary.modules_blocked_by_modprobe_conf = t
        .tree
        .modules
        .iter()
        .filter(|m| !m.builtin && t.ctx.install_blocked.contains(&m.name))
        .count();
    let applied = if t.live {
        crate::backend::bpf_lsm::applied_splice()
    } else {
        None
    };
    let splice_paths = kgate_bpf::splice::paths(&t.host, applied);
    let root = t.root.clone();
    let inv = t.into_inventory();
    Ok(Survey {
        schema: SCHEMA,
        kernel: KernelInfo {
            source: if inv.live { "live" } else { "offline" },
            root: root.clone(),
            modules_dir: inv.modules_dir.is_dir().then(|| inv.modules_dir.clone()),
            modules_supported: inv.host.modules.supported,
            config: inv.config_source.clone(),
            release: inv.release,
        },
        host: inv.host,
        reach_context: inv.ctx,
        summary,
        depmod: DepmodInfo {
            dep_source: inv.tree.dep_source,
            check: inv.tree.depmod.clone(),
        },
        problems: inv.tree.problems.clone(),
        splice_paths,
        modules,
        not_stopped: not_stopped(root.as_deref().unwrap_or(Path::new("/")), inv.live),
        bpffs: if inv.live { bpffs_info() } else { None },
    })
}

fn bpffs_info() -> Option<BpffsInfo> {
    let pins = crate::backend::bpf_lsm::pin_dir();
    let path = pins.parent()?.to_owned();
    let mode = kgate_bpf::bpffs_mode(&path)?;
    Some(BpffsInfo {
        recommendation: kgate_bpf::bpffs_recommendation(&path, mode),
        mode: format!("{mode:04o}"),
        path,
    })
}

fn module_reports(tree: &KernelTree, reach: &[Reach]) -> Vec<ModuleReport> {
    tree.modules
        .iter()
        .zip(reach)
        .map(|(m, r)| {
            let closure = tree
                .load_closure([m.name.as_str()])
                .into_iter()
                .filter(|n| *n != m.name)
                .collect();
            ModuleReport {
                name: m.name.clone(),
                path: m.path.clone(),
                loaded: m.loaded,
                builtin: m.builtin,
                text_bytes: m.text_bytes,
                functions: m.functions,
                aliases: m.aliases.clone(),
                depends: m.depends.clone(),
                softdeps: m
                    .softdep_pre
                    .iter()
                    .chain(&m.softdep_post)
                    .cloned()
                    .collect(),
                dependency_closure: closure,
                triggers: m.triggers.clone(),
                unprivileged_reachable: r.unprivileged,
                needs_userns: r.needs_userns,
                via: r.via.clone(),
            }
        })
        .collect()
}

/// The trigger kind at the root of a module's reachability chain.
fn root_kind(reach: &Reach) -> Option<TriggerKind> {
    match &reach.via {
        Some(Via::Trigger { kind, .. } | Via::Dependency { kind, .. }) => Some(*kind),
        _ => None,
    }
}

fn summarize(tree: &KernelTree, reach: &[Reach]) -> Summary {
    let mut s = Summary {
        modules_total: tree.modules.len(),
        problems: tree.problems.len(),
        ..Summary::default()
    };
    for (m, r) in tree.modules.iter().zip(reach) {
        if m.builtin {
            s.modules_builtin += 1;
            continue;
        }
        s.modules_loadable += 1;
        s.loadable_text_bytes += m.text_bytes;
        s.modules_loaded += usize::from(m.loaded);
        if !r.unprivileged {
            continue;
        }
        s.modules_unprivileged_reachable += 1;
        s.modules_reachable_only_via_userns += usize::from(r.needs_userns);
        s.modules_reachable_not_loaded += usize::from(!m.loaded);
        s.reachable_text_bytes += m.text_bytes;
        s.reachable_functions += u64::from(m.functions);
        if let Some(kind) = root_kind(r) {
            let t = s.by_trigger_kind.entry(kind.to_string()).or_default();
            t.modules += 1;
            t.text_bytes += m.text_bytes;
            t.functions += u64::from(m.functions);
        }
    }
    s
}

fn print_text(out: &mut impl Write, s: &Survey, top: usize) -> Result<()> {
    let k = &s.kernel;
    let h = &s.host;
    match &k.root {
        Some(root) => writeln!(
            out,
            "kgate survey of kernel {} (offline, {}; host settings are the kernel's build defaults)",
            k.release,
            root.display()
        )?,
        None if k.source == "live" => {
            writeln!(out, "kgate survey of this host, kernel {}", k.release)?
        }
        None => writeln!(
            out,
            "kgate survey of installed kernel {} (not running; host settings are the kernel's build defaults)",
            k.release
        )?,
    }
    writeln!(out)?;
    writeln!(out, "Kernel")?;
    let modules = if k.modules_supported {
        format!(
            "supported: {} loadable, {} builtin{}",
            s.summary.modules_loadable,
            s.summary.modules_builtin,
            if k.source == "live" {
                format!(", {} loaded", s.summary.modules_loaded)
            } else {
                String::new()
            }
        )
    } else {
        format!("not supported ({})", h.modules.evidence)
    };
    row(out, "modules", &modules)?;
    row(out, "LSMs", &lsm_summary(h))?;
    let mut bpf_lsm = h.bpf_lsm.explain();
    if h.lsm.active.is_none() && h.bpf_lsm.is_active() {
        bpf_lsm
            .push_str(" (judged from the derived LSM list; `kgate apply` proves it by attaching)");
    }
    row(out, "BPF-LSM", &bpf_lsm)?;
    if let Some(b) = &s.bpffs {
        let ok = if b.recommendation.is_none() {
            " (root only)"
        } else {
            ""
        };
        row(
            out,
            "bpffs",
            &format!("{} mode {}{ok}", b.path.display(), b.mode),
        )?;
        if let Some(r) = &b.recommendation {
            row(out, "", &format!("recommendation: {r}"))?;
        }
    }
    row(
        out,
        "lockdown",
        h.lockdown
            .as_deref()
            .unwrap_or("unknown (securityfs not mounted or no lockdown LSM)"),
    )?;
    row(out, "seccomp", &seccomp_summary(h))?;
    row(out, "user namespaces", &userns_summary(h))?;
    writeln!(out)?;

    writeln!(out, "Attack-surface sysctls")?;
    let width = h.sysctls.iter().map(|r| r.name.len()).max().unwrap_or(10);
    let default_note = if k.source == "offline" {
        " (NOW = kernel default)"
    } else {
        ""
    };
    writeln!(
        out,
        "  {:width$}  {:>10}  {:>10}  {:<12}  WHY IT MATTERS{default_note}",
        "SYSCTL", "NOW", "HARDENED", "STATUS"
    )?;
    for r in &h.sysctls {
        writeln!(
            out,
            "  {:width$}  {:>10}  {:>10}  {:<12}  {}",
            r.name,
            r.value
                .as_deref()
                .map(|v| truncate(v, 10))
                .unwrap_or_else(|| "absent".into()),
            r.hardened,
            status_str(r.status),
            r.summary
        )?;
    }
    writeln!(out)?;

    crate::backend::bpf_lsm::print_splice_paths(out, &s.splice_paths)?;
    writeln!(out)?;

    writeln!(out, "Module surface")?;
    let sum = &s.summary;
    if !k.modules_supported {
        writeln!(
            out,
            "  empty: this kernel cannot load modules ({}), so no user can autoload kernel code",
            h.modules.evidence
        )?;
    } else if !s.reach_context.autoload {
        writeln!(
            out,
            "  empty: module autoload is off (kernel.modules_disabled=1 or kernel.modprobe is empty)"
        )?;
    } else {
        writeln!(
            out,
            "  {} of {} loadable modules can be loaded by an unprivileged user ({} only through a user namespace{})",
            sum.modules_unprivileged_reachable,
            sum.modules_loadable,
            sum.modules_reachable_only_via_userns,
            if s.reach_context.userns { "" } else { "; user namespaces are off" },
        )?;
        if sum.modules_blocked_by_modprobe_conf > 0 {
            writeln!(
                out,
                "  {} loadable modules are blocked by modprobe.d install rules and not counted",
                sum.modules_blocked_by_modprobe_conf
            )?;
        }
        writeln!(
            out,
            "  {} of code in {} functions ({:.0}% of all loadable module code)",
            human_bytes(sum.reachable_text_bytes),
            sum.reachable_functions,
            percent(sum.reachable_text_bytes, sum.loadable_text_bytes)
        )?;
        if !sum.by_trigger_kind.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "  {:<16} {:>7} {:>10} {:>9}",
                "REACHED VIA", "MODULES", "CODE", "FUNCTIONS"
            )?;
            let mut kinds: Vec<_> = sum.by_trigger_kind.iter().collect();
            kinds.sort_by_key(|k| std::cmp::Reverse(k.1.text_bytes));
            for (kind, t) in kinds {
                writeln!(
                    out,
                    "  {:<16} {:>7} {:>10} {:>9}",
                    kind,
                    t.modules,
                    human_bytes(t.text_bytes),
                    t.functions
                )?;
            }
        }
        let mut top_modules: Vec<&ModuleReport> = s
            .modules
            .iter()
            .filter(|m| m.unprivileged_reachable)
            .collect();
        top_modules.sort_by(|a, b| b.text_bytes.cmp(&a.text_bytes).then(a.name.cmp(&b.name)));
        if !top_modules.is_empty() && top > 0 {
            writeln!(out)?;
            writeln!(out, "Top reachable modules by code size")?;
            writeln!(
                out,
                "  {:<24} {:>10} {:>6}  {:<6} REACHED VIA",
                "MODULE", "CODE", "FUNCS", "LOADED"
            )?;
            for m in top_modules.into_iter().take(top) {
                let via = match &m.via {
                    Some(Via::Trigger { kind, alias }) => format!("{kind} {}", escape_text(alias)),
                    Some(Via::Dependency { of, alias, .. }) => {
                        format!("dependency of {of} ({})", escape_text(alias))
                    }
                    None => String::new(),
                };
                writeln!(
                    out,
                    "  {:<24} {:>10} {:>6}  {:<6} {}{}",
                    m.name,
                    human_bytes(m.text_bytes),
                    m.functions,
                    if m.loaded { "yes" } else { "no" },
                    via,
                    if m.needs_userns {
                        " (user namespace)"
                    } else {
                        ""
                    }
                )?;
            }
        }
    }
    if s.depmod.check.present && !s.depmod.check.agrees {
        let c = &s.depmod.check;
        writeln!(out)?;
        writeln!(
            out,
            "Warning: depmod output disagrees with the modules' .modinfo ({} missing from modules.dep, {} only in it, {} dependency and {} alias mismatches); run depmod -a {}",
            c.missing_from_depmod.len(),
            c.only_in_depmod.len(),
            c.dep_mismatches.len(),
            c.alias_mismatches.len(),
            k.release
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "What kgate does not stop here (docs/policy.md, \"What kgate does not stop\")"
    )?;
    row(
        out,
        "privileged",
        "tasks with CAP_SYS_MODULE / CAP_NET_ADMIN / CAP_SYS_ADMIN in the initial user namespace (uid 0 alone is not privileged)",
    )?;
    for d in &s.not_stopped.root_daemons {
        row(
            out,
            "root daemon",
            &format!(
                "{} ({}): {}; its requests pass as root's",
                d.name,
                d.path.display(),
                d.requests
            ),
        )?;
    }
    if s.not_stopped.namespaced_processes > 0 {
        row(
            out,
            "user namespaces",
            &format!(
                "{} processes live in user namespaces created before or outside kgate's checks: they keep their namespace capabilities",
                s.not_stopped.namespaced_processes
            ),
        )?;
    }
    row(
        out,
        "splice",
        "tee, vmsplice and pipe -> pipe splice reach no LSM hook without CONFIG_FUNCTION_ERROR_INJECTION (see Splice paths)",
    )?;
    row(
        out,
        "io_uring",
        "IORING_OP_SOCKET/SPLICE/TEE skip per-workload seccomp filters",
    )?;
    if !s.problems.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Skipped {} unreadable module file(s):",
            s.problems.len()
        )?;
        for p in &s.problems {
            writeln!(out, "  {}: {}", escape_text(&p.path), escape_text(&p.error))?;
        }
    }
    Ok(())
}

fn lsm_summary(h: &HostFacts) -> String {
    match (&h.lsm.active, &h.lsm.derived) {
        (Some(active), _) => active.join(","),
        (None, Some(derived)) => format!(
            "{} ({}; to read the real list: {})",
            derived.join(","),
            h.lsm
                .derived_from
                .as_deref()
                .unwrap_or("derived from the defaults"),
            kgate_kernel::host::MOUNT_SECURITYFS
        ),
        (None, None) => format!(
            "unknown ({})",
            h.lsm
                .why
                .as_deref()
                .unwrap_or("the active list is not readable")
        ),
    }
}

fn seccomp_summary(h: &HostFacts) -> String {
    let s = &h.seccomp;
    match (s.available, s.actions.is_empty()) {
        (true, false) => format!("available (actions: {})", s.actions.join(" ")),
        (true, true) => format!("available ({})", s.evidence),
        (false, _) => format!("not available ({})", s.evidence),
    }
}

fn userns_summary(h: &HostFacts) -> String {
    let u = &h.userns;
    format!(
        "{} ({})",
        if u.unprivileged_allowed {
            "unprivileged users may create them"
        } else {
            "unprivileged users may not create them"
        },
        u.reason
    )
}

fn status_str(status: sysctl::SysctlStatus) -> &'static str {
    match status {
        sysctl::SysctlStatus::Hardened => "hardened",
        sysctl::SysctlStatus::NotHardened => "NOT hardened",
        sysctl::SysctlStatus::Absent => "absent",
        sysctl::SysctlStatus::Unreadable => "unreadable",
    }
}

fn row(out: &mut impl Write, key: &str, value: &str) -> std::io::Result<()> {
    writeln!(out, "  {key:<16} {value}")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
