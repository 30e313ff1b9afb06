//! `kgate freeze`: turn what a host uses now into a policy, or carry a
//! policy to another kernel.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use kgate_kernel::boot::{self, BootModule};
use kgate_kernel::tree::Facts;
use kgate_policy::{Carried, FreezeInput, FreezeReport, Policy};

use crate::inputs::loaded_modules;
use crate::output::{escape_text, Format, TextOut};
use crate::target::{Target, TargetArgs};

/// JSON schema identifier of `kgate freeze --format json`.
pub const SCHEMA: &str = "kgate.freeze/1";

/// Freeze what this host uses into a policy.
///
/// The module allowlist is the union of the modules loaded now, their full
/// dependency closure (softdeps included), the builtin modules, and what
/// boot needs: the modules of mounted filesystems, the drivers of the block
/// and network devices present, and every module in the initramfs. The
/// policy also sets hardened sysctls and limits unprivileged socket()
/// to unix, inet, inet6, netlink and the families of the allowed modules.
///
/// It prints what it allowed and why. A loaded module that any user can
/// get loaded (an unprivileged user may have loaded it before the freeze)
/// is flagged with its trigger, in the report and in the policy's reason;
/// --exclude-reachable leaves such modules out. Nothing on the host
/// changes: review the policy, then `kgate policy diff` and `kgate apply
/// --dry-run`.
///
/// With --from POLICY and --kernel NEWVER it carries an existing policy to
/// another kernel instead: it reports modules that vanished or are new, and
/// keeps new dependencies of allowed modules allowed.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    kgate freeze -o /etc/kgate/policy.toml
        Freeze this host.
    ssh web-01 lsmod > web-01.lsmod
    kgate freeze --root pkg --loaded web-01.lsmod -o web-01.toml
        Freeze another host's module set against an unpacked kernel package.
    kgate freeze --exclude-reachable -o /etc/kgate/policy.toml
        Freeze, leaving out loaded modules any user could have loaded.
    kgate freeze --from /etc/kgate/policy.toml --kernel 6.12.120+deb12-amd64 -o next.toml
        Carry a policy to a newly installed kernel before rebooting into it.")]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Loaded modules from FILE, in /proc/modules or lsmod format, instead
    /// of this host's /proc/modules.
    #[arg(long, value_name = "FILE")]
    pub loaded: Option<PathBuf>,

    /// Also allow every module in this initramfs image [default:
    /// /boot/initrd.img-RELEASE below the root, when it exists].
    #[arg(long, value_name = "FILE", conflicts_with = "no_initramfs")]
    pub initramfs: Option<PathBuf>,

    /// Do not look at any initramfs.
    #[arg(long)]
    pub no_initramfs: bool,

    /// Leave out loaded modules that any user can get loaded.
    ///
    /// A loaded module is not necessarily one the host uses: an
    /// unprivileged user may have made the kernel load it before the freeze
    /// (`socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)` loads sctp). kgate
    /// always lists such modules with the trigger that reaches them, judged
    /// on this kernel's settings as `kgate survey` judges them, and writes
    /// the warning into the entry's reason in the policy. With this flag
    /// they are left out of the allowlist, so the policy blocks them;
    /// modules boot needs, and dependencies of the modules that are kept,
    /// stay allowed, and the report says which were excluded and which
    /// were kept and why.
    #[arg(long, conflicts_with = "from")]
    pub exclude_reachable: bool,

    /// Carry this policy to the kernel given by --kernel/--root instead of
    /// freezing anew.
    #[arg(long, value_name = "POLICY")]
    pub from: Option<PathBuf>,

    /// Write the policy to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The policy's name (meta.name) [default: "HOSTNAME freeze"].
    #[arg(long)]
    pub name: Option<String>,

    /// Format of the report (the policy itself is always TOML).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Serialize)]
struct FreezeJson<'a> {
    schema: &'static str,
    policy_path: Option<&'a Path>,
    policy_hash: String,
    boot: &'a [BootModule],
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a FreezeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    carried: Option<CarriedJson<'a>>,
}

#[derive(Serialize)]
struct CarriedJson<'a> {
    from: &'a Path,
    vanished: &'a [String],
    new_in_kernel: &'a [String],
    new_dependencies: &'a [(String, String)],
    now_loadable: &'a [String],
}

/// Run `kgate freeze`.
pub fn run(args: &Args) -> Result<ExitCode> {
    if args.format == Format::Json && args.output.is_none() {
        // JSON on stdout leaves nowhere sensible for the policy itself.
        bail!("--format json prints the report on standard output; write the policy with -o FILE");
    }
    let t = Target::load_facts(&args.target, Facts::Depmod)?;
    let initramfs = initramfs_path(args, &t);
    let boot = boot::boot_modules(t.fs_root(), &t.tree, initramfs.as_deref())
        .context("failed to find the modules boot needs")?;

    let (policy, report, carried) = match &args.from {
        Some(from) => {
            let (policy, carried) = carry(from, &args.target, &t)?;
            (policy, None, Some(carried))
        }
        None => {
            let loaded = loaded_modules(args.loaded.as_deref(), &t)?;
            let boot_pairs: Vec<(String, String)> = boot
                .iter()
                .map(|b| (b.name.clone(), b.reason.clone()))
                .collect();
            let name = args.name.clone().or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
                Some(format!("{} freeze", host.trim()))
            });
            let frozen = kgate_policy::freeze(&FreezeInput {
                tree: &t.tree,
                release: &t.release,
                loaded: &loaded,
                boot: &boot_pairs,
                name,
                ctx: &t.ctx,
                exclude_reachable: args.exclude_reachable,
            });
            let mut report = frozen.report;
            if loaded.is_empty() && t.tree.modules.iter().any(|m| !m.builtin) {
                report.notes.push(
                    "no loaded modules were given: only boot needs, their dependencies and \
                     builtin modules are allowed; pass --loaded FILE (lsmod output of the host)"
                        .into(),
                );
            }
            (frozen.policy, Some(report), None)
        }
    };

    let text = policy.to_toml();
    if let Some(path) = &args.output {
        crate::output::write_file(path, text.as_bytes())?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            let json = FreezeJson {
                schema: SCHEMA,
                policy_path: args.output.as_deref(),
                policy_hash: policy.hash(),
                boot: &boot,
                report: report.as_ref(),
                carried: carried.as_ref().map(|(from, c)| CarriedJson {
                    from,
                    vanished: &c.vanished,
                    new_in_kernel: &c.new_in_kernel,
                    new_dependencies: &c.new_dependencies,
                    now_loadable: &c.now_loadable,
                }),
            };
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
        }
        Format::Text => {
            {
                // The report goes to stderr when the policy itself is on stdout.
                let mut err = std::io::stderr().lock();
                let report_out: &mut dyn Write = if args.output.is_some() {
                    &mut out
                } else {
                    &mut err
                };
                // Module names, reasons and paths come from files others
                // control: no terminal control gets through.
                let mut report_out = TextOut::new(report_out);
                let report_out: &mut dyn Write = &mut report_out;
                if let Some(report) = &report {
                    print_report(report_out, report, &boot, &t)?;
                }
                if let Some((from, c)) = &carried {
                    print_carried(report_out, from, c, &t.release)?;
                }
                if let Some(path) = &args.output {
                    writeln!(
                        report_out,
                        "\nWrote {} (sha256 {}).",
                        path.display(),
                        policy.hash()
                    )?;
                    writeln!(
                        report_out,
                        "Next: kgate policy diff {0}, then kgate apply {0} --dry-run.",
                        path.display()
                    )?;
                }
                report_out.flush()?;
            }
            if args.output.is_none() {
                // The policy itself, exact (TOML escapes its own strings).
                out.write_all(text.as_bytes())?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn initramfs_path(args: &Args, t: &Target) -> Option<PathBuf> {
    if args.no_initramfs {
        return None;
    }
    if let Some(p) = &args.initramfs {
        return Some(p.clone());
    }
    let default = t.fs_root().join(format!("boot/initrd.img-{}", t.release));
    default.is_file().then_some(default)
}

fn carry(from: &Path, args: &TargetArgs, t: &Target) -> Result<(Policy, (PathBuf, Carried))> {
    if args.kernel.is_none() && args.root.is_none() {
        bail!("--from carries a policy to another kernel: name it with --kernel VERSION (and --root DIR for an offline tree)");
    }
    let loaded = Policy::load(from).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The kernel the policy was made for, when it is installed next to the
    // new one, tells which dependencies are new.
    let old_tree = loaded
        .policy
        .meta
        .kernel
        .as_deref()
        .filter(|old| *old != t.release)
        .and_then(|old| {
            let old_args = TargetArgs {
                kernel: Some(old.to_owned()),
                ..args.clone()
            };
            Target::load_facts(&old_args, Facts::Depmod).ok()
        });
    let carried = kgate_policy::carry(&loaded.policy, old_tree.as_ref().map(|o| &o.tree), &t.tree);
    Ok((carried.policy.clone(), (from.to_owned(), carried)))
}

fn print_report(
    out: &mut dyn Write,
    report: &FreezeReport,
    boot: &[BootModule],
    t: &Target,
) -> Result<()> {
    let builtin = report
        .allowed
        .iter()
        .filter(|m| matches!(m.why, kgate_policy::Allowance::Builtin))
        .count();
    let loadable: Vec<_> = report
        .allowed
        .iter()
        .filter(|m| !matches!(m.why, kgate_policy::Allowance::Builtin))
        .collect();
    writeln!(
        out,
        "Froze kernel {}: {} loadable modules allowed ({} listed), {} builtin modules always allowed, {} loadable modules blocked.",
        report.release,
        loadable.len(),
        report.listed.len(),
        builtin,
        report.blocked
    )?;
    if !loadable.is_empty() {
        writeln!(out, "\n  {:<28} WHY", "ALLOWED MODULE")?;
        let boot_reason = |name: &str| {
            boot.iter()
                .find(|b| b.name == name)
                .map(|b| b.reason.as_str())
        };
        for m in loadable {
            let mut why = if m.loaded {
                "loaded".to_owned()
            } else {
                String::new()
            };
            if let Some(r) = boot_reason(&m.name) {
                if !why.is_empty() {
                    why.push_str("; ");
                }
                why.push_str(r);
            }
            if why.is_empty() {
                why = m.why.to_string();
            } else if !matches!(m.why, kgate_policy::Allowance::Listed { .. }) {
                why = format!("{why}; {}", m.why);
            }
            writeln!(out, "  {:<28} {}", m.name, why)?;
        }
    }
    writeln!(
        out,
        "\nUnprivileged socket families: {}",
        report.socket_families.join(", ")
    )?;
    print_reachable(out, report)?;
    if !report.not_in_tree.is_empty() {
        writeln!(
            out,
            "Loaded but not in this kernel's tree (kept in the allowlist): {}",
            report.not_in_tree.join(", ")
        )?;
    }
    if !t.host.modules.supported {
        writeln!(
            out,
            "This kernel cannot load modules: the module section changes nothing here."
        )?;
    }
    for note in &report.notes {
        writeln!(out, "Note: {note}")?;
    }
    Ok(())
}

/// Loaded modules any user can get loaded: each with its trigger, then
/// what `--exclude-reachable` left out and what it kept.
fn print_reachable(out: &mut dyn Write, report: &FreezeReport) -> Result<()> {
    let r = &report.reachable_loaded;
    if r.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nWarning: {} loaded module(s) can be loaded by any user, so an unprivileged user may have loaded them before this freeze:",
        r.len()
    )?;
    for m in r {
        writeln!(out, "  {}: loaded, and {}", m.name, escape_text(&m.how))?;
    }
    if !report.exclude_reachable {
        return Ok(());
    }
    let excluded: Vec<&str> = r
        .iter()
        .filter(|m| m.excluded)
        .map(|m| m.name.as_str())
        .collect();
    if excluded.is_empty() {
        writeln!(out, "Excluded none of them (--exclude-reachable).")?;
    } else {
        writeln!(
            out,
            "Excluded {} loaded module(s) that any user can get loaded: {} (the policy blocks them).",
            excluded.len(),
            excluded.join(", ")
        )?;
    }
    for m in r {
        if let Some(why) = &m.kept_because {
            writeln!(
                out,
                "Kept {} although any user can get it loaded: {}",
                m.name,
                escape_text(why)
            )?;
        }
    }
    Ok(())
}

fn print_carried(out: &mut dyn Write, from: &Path, c: &Carried, release: &str) -> Result<()> {
    writeln!(out, "Carried {} to kernel {release}.", from.display())?;
    let list = |out: &mut dyn Write, what: &str, names: &[String]| -> Result<()> {
        if names.is_empty() {
            writeln!(out, "  {what}: none")?;
        } else {
            writeln!(out, "  {what} ({}): {}", names.len(), names.join(", "))?;
        }
        Ok(())
    };
    list(
        out,
        "listed modules missing from the new kernel (kept listed)",
        &c.vanished,
    )?;
    list(
        out,
        "modules new in the new kernel (blocked)",
        &c.new_in_kernel,
    )?;
    let deps: Vec<String> = c
        .new_dependencies
        .iter()
        .map(|(m, of)| format!("{m} (needed by {of})"))
        .collect();
    list(out, "new dependencies of allowed modules (allowed)", &deps)?;
    list(
        out,
        "formerly builtin, now loadable (added to the allowlist)",
        &c.now_loadable,
    )?;
    Ok(())
}
