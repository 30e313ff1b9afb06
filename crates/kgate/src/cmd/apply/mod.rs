//! `kgate apply` and `kgate revert`: put a policy in force on a host, or
//! take back exactly what kgate put there.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use kgate_apply::{ApplyError, ModprobeInput};
use kgate_kernel::boot::{self as boot_modules_of, BootError};
use kgate_kernel::tree::Facts;
use kgate_policy::Mode;

pub mod boot;

use crate::backend::bpf_lsm;
use crate::backend::sections::{print_sections, row, seccomp_row, sysctl_row, SectionRow};
use crate::inputs::load_policy;
use crate::output::{Format, TextOut};
use crate::target::{Target, TargetArgs};

/// Enforcement backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// BPF-LSM programs on kernel_module_request, socket_create,
    /// userns_create, and (for root's explicit modprobe/insmod)
    /// kernel_read_file and kernel_post_load_data, pinned under
    /// /sys/fs/bpf/kgate: decides per request,
    /// tells unprivileged users from root, audits, and logs events. Needs
    /// `bpf` in the kernel's active LSMs (see `kgate survey`).
    BpfLsm,
    /// /etc/modprobe.d/kgate.conf (`install M /bin/false` for every module
    /// outside the allowlist) and /etc/sysctl.d/90-kgate.conf. Works on
    /// every kernel; blocks root too; `insmod FILE` bypasses it; cannot
    /// enforce `[sockets]` or `[userns]`.
    Modprobe,
}

/// Put a policy in force.
///
/// With the modprobe backend kgate writes /etc/modprobe.d/kgate.conf
/// (`install <m> /bin/false` for every loadable module outside the
/// allowlist, which stops alias, name and dependency loads alike) and
/// /etc/sysctl.d/90-kgate.conf, and sets the sysctls now. Every check runs
/// before the first write: a policy that is invalid, or that would block a
/// module loaded right now or needed to boot, changes nothing (unless
/// --force). Writes are atomic and never follow symlinks; a second apply of
/// the same policy changes nothing. `kgate revert` undoes it exactly.
///
/// One apply or revert runs on a root at a time: each holds a lock on
/// ROOT/var/lib/kgate, and a second one fails at once, changing nothing. A
/// kill -9 at any point leaves a state the next apply or revert completes.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    kgate apply policy.toml --dry-run
        Show the exact diff of every file and sysctl; change nothing.
    kgate apply policy.toml
        Apply it, then regenerate the initramfs (update-initramfs -u -k all).
    kgate apply policy.toml --mode audit
        Report what the policy would deny, deny nothing (then: kgate events).
    kgate apply policy.toml --root /mnt/image --dry-run
        The same for a mounted image.

EXIT STATUS:
    0 applied (or nothing to change, or --dry-run); 1 error or refusal: nothing
    was changed.")]
pub struct ApplyArgs {
    /// The policy file.
    pub policy: PathBuf,

    /// Enforcement backend [default: bpf-lsm when BPF-LSM is active here,
    /// modprobe with --root].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,

    /// Print the exact diff and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Block modules even when they are loaded now or needed to boot.
    #[arg(long)]
    pub force: bool,

    /// Put every section that is on in this mode, whatever the file says:
    /// `audit` reports what enforce would deny and denies nothing (a week
    /// of it shows what enforcing would break: `kgate events`); `enforce`
    /// denies. Sections that are off stay off; the file is not changed.
    /// `kgate status` shows the mode in force per section.
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<ApplyModeArg>,

    /// Initramfs whose modules count as needed to boot [default:
    /// /boot/initrd.img-RELEASE below the root, when it exists].
    #[arg(long, value_name = "FILE", conflicts_with = "no_initramfs")]
    pub initramfs: Option<PathBuf>,

    /// Do not look at any initramfs.
    #[arg(long)]
    pub no_initramfs: bool,

    /// Output format: text, or one JSON object (schema kgate.apply/1: the
    /// section table, warnings and the text log).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub target: TargetArgs,

    /// Do not record this apply as the last good policy (`kgate boot`'s
    /// fallback, which must not replace the record with itself).
    #[arg(skip)]
    pub no_record: bool,
}

/// `kgate apply --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyModeArg {
    /// Every section that is on denies what it does not allow.
    Enforce,
    /// Every section that is on only reports.
    Audit,
}

impl ApplyModeArg {
    /// The name on the command line and in the last-good record.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyModeArg::Enforce => "enforce",
            ApplyModeArg::Audit => "audit",
        }
    }

    /// The mode named `s` ([`ApplyModeArg::as_str`]), if any.
    pub fn parse(s: &str) -> Option<ApplyModeArg> {
        [ApplyModeArg::Enforce, ApplyModeArg::Audit]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

impl From<ApplyModeArg> for kgate_policy::ApplyMode {
    fn from(m: ApplyModeArg) -> Self {
        match m {
            ApplyModeArg::Enforce => kgate_policy::ApplyMode::Enforce,
            ApplyModeArg::Audit => kgate_policy::ApplyMode::Audit,
        }
    }
}

/// Take back what `kgate apply` wrote.
///
/// Removes the files listed in kgate's state manifest
/// (ROOT/var/lib/kgate/state.json) when their content is still what kgate
/// wrote, restores the sysctl values kgate changed, and removes the
/// manifest. A file edited since kgate wrote it is left in place and
/// reported. Nothing else is touched.
#[derive(Debug, clap::Args)]
pub struct RevertArgs {
    /// Revert only this backend [default: every backend kgate applied].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,

    /// Say what would be removed and restored; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Revert below DIR (a mounted image) instead of this host.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Run `kgate apply`.
pub fn run_apply(args: &ApplyArgs) -> Result<ExitCode> {
    if args.format == Format::Text {
        let mut out = TextOut::new(std::io::stdout().lock());
        let (code, rows) = apply_to(args, &mut out)?;
        print_sections(&mut out, &rows)?;
        return Ok(code);
    }
    let mut log = Vec::new();
    let result = apply_to(args, &mut log);
    let text = String::from_utf8_lossy(&log);
    let lines: Vec<&str> = text.lines().collect();
    let (code, rows, error) = match result {
        Ok((code, rows)) => (code, rows, None),
        Err(e) => (ExitCode::from(1), Vec::new(), Some(format!("{e:#}"))),
    };
    let json = serde_json::json!({
        "schema": "kgate.apply/1",
        "dry_run": args.dry_run,
        "sections": rows,
        "warnings": lines.iter().filter_map(|l| l.strip_prefix("warning: ")).collect::<Vec<_>>(),
        "error": error,
        "log": lines,
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &json)?;
    writeln!(out)?;
    Ok(code)
}

/// Rows of the section table for the modprobe backend; `set`: the
/// sysctls changed now, `None` in a dry run.
fn modprobe_rows(
    policy: &kgate_policy::Policy,
    plan: &kgate_apply::Plan,
    set: Option<&[kgate_apply::SysctlChange]>,
) -> Vec<SectionRow> {
    let would = if set.is_some() { "" } else { "would be " };
    let modules = match policy.modules.mode {
        Mode::Enforce if plan.modules_supported() => {
            format!(
                "{would}enforced ({} modules blocked, root included; insmod FILE bypasses it)",
                plan.blocked().len()
            )
        }
        Mode::Enforce => "nothing to block: this kernel has no loadable modules".to_owned(),
        m => format!(
            "NOT enforced: modules.mode = {} (modprobe.d cannot audit)",
            m.as_str()
        ),
    };
    const NO_HOOK: &str = "NOT enforced: no hook with the modprobe backend (use --backend bpf-lsm)";
    let no_hook = |m: Mode| {
        if m == Mode::Off {
            "off (mode = \"off\" in the policy)".to_owned()
        } else {
            NO_HOOK.to_owned()
        }
    };
    let userns = if policy.userns.unprivileged == kgate_policy::UsernsMode::Allow {
        "off (unprivileged = \"allow\")".to_owned()
    } else {
        NO_HOOK.to_owned()
    };
    vec![
        row("modules", "modprobe.d (install M /bin/false)", modules),
        row("sockets", "none", no_hook(policy.sockets.mode)),
        row("splice", "none", no_hook(policy.splice.mode)),
        row("userns", "none", userns),
        sysctl_row(policy, plan, set),
        seccomp_row(policy),
    ]
}

pub(crate) fn apply_to(
    args: &ApplyArgs,
    out: &mut dyn Write,
) -> Result<(ExitCode, Vec<SectionRow>)> {
    // A bad policy is rejected before anything else happens.
    let mut loaded_policy = load_policy(&args.policy)?;
    if let Some(mode) = args.mode {
        loaded_policy.policy = loaded_policy.policy.with_mode(mode.into());
        writeln!(
            out,
            "mode: every section that is on is put in {} (--mode); {} is unchanged",
            mode.as_str(),
            args.policy.display()
        )?;
    }
    let policy = &loaded_policy.policy;
    let backend = match (args.backend, &args.target.root) {
        (Some(b), _) => b,
        (None, Some(_)) => Backend::Modprobe,
        (None, None) => Backend::BpfLsm,
    };
    if backend == Backend::BpfLsm {
        if args.target.root.is_some() {
            bail!("--backend bpf-lsm enforces on the running kernel; --root only works with --backend modprobe");
        }
        // Never silently do nothing: say why BPF-LSM cannot work and what to use.
        kgate_bpf::probe().map_err(|e| {
            anyhow::anyhow!(
                "{e}\nTo enforce with modprobe.d and sysctl.d instead (works on every kernel; blocks root too; \
                 cannot enforce [sockets] or [userns]): kgate apply {} --backend modprobe",
                args.policy.display()
            )
        })?;
    }
    // One kgate changes a root at a time: held from before the current
    // state is read until this command exits (kgate_apply::lock).
    let lock_root = args
        .target
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from("/"));
    let _lock = kgate_apply::lock(&lock_root, !args.dry_run)?;
    let t = Target::load_facts(&args.target, Facts::Depmod)?;
    for w in &loaded_policy.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let sysctls: Vec<(String, String)> = policy
        .sysctl
        .iter()
        .map(|(name, entry)| (name.clone(), entry.value.to_proc_string()))
        .collect();
    let hash = policy.hash();
    let policy_path = args.policy.display().to_string();
    if backend == Backend::BpfLsm {
        // [sysctl] goes to sysctl.d and /proc/sys whatever the backend:
        // planned (and checked) here, before anything changes.
        let none = BTreeSet::new();
        let input = ModprobeInput {
            tree: &t.tree,
            allowed: &none,
            sysctls: &sysctls,
            policy_hash: &hash,
            policy_path: &policy_path,
            loaded: &none,
            boot: &[],
            kernel_release: &t.release,
        };
        let plan = kgate_apply::plan_sysctls(&input, t.fs_root())?;
        let rows = bpf_lsm::apply(&loaded_policy, &t, args.dry_run, &plan, out)?;
        if !args.dry_run {
            record_last_good(args, policy, "bpf-lsm", &lock_root, out)?;
        }
        return Ok((ExitCode::SUCCESS, rows));
    }

    let allowed: BTreeSet<String> = match policy.modules.mode {
        Mode::Enforce => policy.effective_modules(&t.tree).into_keys().collect(),
        mode => {
            writeln!(
                out,
                "note: modules.mode = {}: the modprobe backend cannot audit, so it blocks no module; \
                 only the sysctls apply",
                mode.as_str()
            )?;
            t.tree.modules.iter().map(|m| m.name.clone()).collect()
        }
    };
    let initramfs = if args.no_initramfs {
        None
    } else {
        args.initramfs.clone().or_else(|| {
            let p = t.fs_root().join(format!("boot/initrd.img-{}", t.release));
            p.is_file().then_some(p)
        })
    };
    let boot = match boot_modules_of::boot_modules(t.fs_root(), &t.tree, initramfs.as_deref()) {
        Ok(b) => b,
        Err(e @ BootError::UnsupportedCompression { .. }) => {
            writeln!(out, "warning: {e}")?;
            boot_modules_of::boot_modules(t.fs_root(), &t.tree, None)?
        }
        Err(e) => return Err(e).context("failed to find the modules boot needs"),
    };
    let input = ModprobeInput {
        tree: &t.tree,
        allowed: &allowed,
        sysctls: &sysctls,
        policy_hash: &hash,
        policy_path: &policy_path,
        loaded: &t.loaded,
        boot: &boot,
        kernel_release: &t.release,
    };
    let plan = kgate_apply::plan(&input, t.fs_root())?;
    for w in plan.warnings() {
        writeln!(out, "warning: {w}")?;
    }
    if plan.is_noop() {
        writeln!(
            out,
            "Nothing to change: {} is already in force ({} modules blocked).",
            args.policy.display(),
            plan.blocked().len()
        )?;
        if !args.dry_run {
            record_last_good(args, policy, "modprobe", &lock_root, out)?;
        }
        return Ok((ExitCode::SUCCESS, modprobe_rows(policy, &plan, Some(&[]))));
    }
    write!(out, "{}", plan.diff())?;
    writeln!(
        out,
        "\n{} of {} loadable modules would be blocked; {} sysctl(s) set.",
        plan.blocked().len(),
        t.tree.modules.iter().filter(|m| !m.builtin).count(),
        sysctls.len()
    )?;
    if !plan.refusals().is_empty() {
        writeln!(out, "\nThe policy blocks modules this host needs:")?;
        for r in plan.refusals() {
            writeln!(out, "  {}: {}", r.module, r.why)?;
        }
    }
    if args.dry_run {
        writeln!(out, "\nDry run: nothing was changed.")?;
        return Ok((ExitCode::SUCCESS, modprobe_rows(policy, &plan, None)));
    }
    if !plan.refusals().is_empty() && !args.force {
        bail!(
            "refusing to block {} module(s) that are loaded now or needed to boot; nothing was changed. \
             Allow them in the policy (kgate freeze does), or pass --force",
            plan.refusals().len()
        );
    }
    let report = match kgate_apply::apply(&plan, t.fs_root(), args.force) {
        Ok(r) => r,
        Err(e @ ApplyError::RolledBack { .. }) => {
            return Err(e).context("apply failed and was rolled back")
        }
        Err(e) => return Err(e.into()),
    };
    writeln!(out)?;
    for p in &report.leftovers_removed {
        writeln!(
            out,
            "removed {}, a temporary file of an interrupted kgate",
            p.display()
        )?;
    }
    for p in &report.written {
        writeln!(out, "wrote {}", p.display())?;
    }
    if report.manifest_written {
        writeln!(
            out,
            "recorded {}",
            t.fs_root().join(kgate_apply::STATE_FILE).display()
        )?;
    }
    for s in &report.sysctls_set {
        writeln!(out, "set {} = {} (was {})", s.name, s.new, s.old)?;
    }
    if report
        .written
        .iter()
        .any(|p| p.ends_with(kgate_apply::MODPROBE_CONF))
    {
        writeln!(out, "\n{}", kgate_apply::initramfs_warning())?;
    }
    record_last_good(args, policy, "modprobe", &lock_root, out)?;
    writeln!(out, "Undo with: kgate revert --backend modprobe")?;
    Ok((
        ExitCode::SUCCESS,
        modprobe_rows(policy, &plan, Some(&report.sysctls_set)),
    ))
}

/// Record `policy`, as just enforced, as the last good one below `root`
/// (`kgate_apply::last_good`: what `kgate boot` falls back to). A failure
/// to record is a warning: the policy is in force either way.
fn record_last_good(
    args: &ApplyArgs,
    policy: &kgate_policy::Policy,
    backend: &str,
    root: &std::path::Path,
    out: &mut dyn Write,
) -> Result<()> {
    if args.no_record {
        return Ok(());
    }
    let meta = kgate_apply::last_good::LastGood {
        schema: kgate_apply::last_good::SCHEMA.into(),
        source: args.policy.display().to_string(),
        mode: args.mode.map(|m| m.as_str().to_owned()),
        backend: backend.into(),
        hash: policy.hash(),
    };
    match kgate_apply::last_good::save(root, &policy.to_toml(), &meta) {
        Ok(()) => writeln!(
            out,
            "recorded {} (enforced at boot if the policy file cannot be)",
            root.join(kgate_apply::last_good::LAST_GOOD).display()
        )?,
        Err(e) => writeln!(out, "warning: cannot record the last good policy: {e}")?,
    }
    Ok(())
}

/// Run `kgate revert`.
pub fn run_revert(args: &RevertArgs) -> Result<ExitCode> {
    let mut out = TextOut::new(std::io::stdout().lock());
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let _lock = kgate_apply::lock(&root, false)?;
    if args.root.is_none() && args.backend != Some(Backend::Modprobe) {
        bpf_lsm::revert(args.dry_run, &mut out)?;
    }
    // The bpf-lsm backend's [sysctl] part is in the manifest too.
    if args.backend == Some(Backend::BpfLsm)
        && kgate_apply::manifest_backend(&root)?.as_deref() != Some("bpf-lsm")
    {
        return Ok(ExitCode::SUCCESS);
    }
    let report = kgate_apply::revert(&root, args.dry_run)?;
    for m in &report.messages {
        writeln!(out, "{m}")?;
    }
    if args.backend.is_none() {
        let rel = kgate_apply::last_good::LAST_GOOD;
        if args.dry_run {
            if root.join(rel).exists() {
                writeln!(out, "would remove {}", root.join(rel).display())?;
            }
        } else if kgate_apply::last_good::remove(&root)? {
            writeln!(
                out,
                "removed {} (the boot fallback)",
                root.join(rel).display()
            )?;
        }
    }
    if report.had_manifest && !report.removed.is_empty() && !args.dry_run {
        writeln!(out, "\n{}", kgate_apply::initramfs_warning())?;
    }
    if !report.problems.is_empty() || !report.modified.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
