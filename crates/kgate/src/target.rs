//! The kernel a subcommand works on: the running one, another installed
//! one (`--kernel`), or an offline tree (`--root DIR`). Shared by every
//! subcommand that reads a kernel, so they all accept the same flags and
//! resolve them the same way.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use kgate_kernel::config::KernelConfig;
use kgate_kernel::host::{self, HostFacts};
use kgate_kernel::modprobe_conf::ModprobeConf;
use kgate_kernel::reach::ReachContext;
use kgate_kernel::tree::{KernelTree, LoadOptions, Progress};
use kgate_kernel::{depmod, sysctl};

use crate::output;

/// Which kernel to read.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct TargetArgs {
    /// Work on an offline kernel below DIR (an unpacked kernel package or a
    /// mounted image: DIR/lib/modules/VERSION, DIR/boot/config-VERSION)
    /// instead of the running one.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Kernel version: below DIR/lib/modules with --root (needed when DIR
    /// holds several), else an installed kernel in /lib/modules [default:
    /// the running kernel].
    #[arg(long, value_name = "VERSION")]
    pub kernel: Option<String>,

    /// Do not read or write the module fact cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Cache directory [default: $XDG_CACHE_HOME/kgate or ~/.cache/kgate;
    /// for root /var/cache/kgate]. Ignored unless owned by the user running
    /// kgate and not writable by group or others.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// A loaded kernel: its settings, modules and how reachability is judged.
pub struct Target {
    /// Host facts: live, or the kernel's build defaults offline.
    pub host: HostFacts,
    /// The kernel release.
    pub release: String,
    /// `lib/modules/RELEASE` below the root.
    pub modules_dir: PathBuf,
    /// The modules.
    pub tree: KernelTree,
    /// Modules loaded now (the running kernel only; empty otherwise).
    pub loaded: BTreeSet<String>,
    /// The target is the running kernel.
    pub live: bool,
    /// `--root`, if given.
    pub root: Option<PathBuf>,
    /// Where the kernel config came from.
    pub config_source: Option<String>,
    /// The settings reachability is judged against.
    pub ctx: ReachContext,
}

impl Target {
    /// The filesystem root files are read below: `/` or `--root`.
    pub fn fs_root(&self) -> &Path {
        self.root.as_deref().unwrap_or(Path::new("/"))
    }

    /// Resolve the arguments and read the kernel.
    pub fn load(args: &TargetArgs) -> Result<Target> {
        let cache_dir = if args.no_cache {
            None
        } else {
            args.cache_dir
                .clone()
                .or_else(kgate_kernel::cache::default_cache_dir)
        };
        let running = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let live = args.root.is_none() && args.kernel.as_deref().is_none_or(|k| k == running);
        let (host, release, modules_dir, config_source) = if live {
            let host = host::read_host(Path::new("/"));
            let release = host.release.clone();
            let dir = PathBuf::from("/lib/modules").join(&release);
            let config = host.config_source.clone();
            (host, release, dir, config)
        } else {
            let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
            if !root.is_dir() {
                bail!(
                    "{}: no such directory; --root takes an unpacked kernel package or a mounted image",
                    root.display()
                );
            }
            let release = match &args.kernel {
                Some(k) => k.clone(),
                None => only_kernel_below(&root)?,
            };
            let config = KernelConfig::load_offline(&root, &release)
                .with_context(|| format!("failed to read the kernel config of {release}"))?;
            let host = host::offline_facts(&release, config.as_ref().map(|(c, _)| c));
            let dir = root.join("lib/modules").join(&release);
            let source = config.map(|(_, p)| p.display().to_string());
            (host, release, dir, source)
        };
        let loaded = if live {
            std::fs::read_to_string("/proc/modules")
                .ok()
                .map(|t| depmod::parse_proc_modules(&t))
        } else {
            None
        };
        let tree = if host.modules.supported || modules_dir.is_dir() {
            load_tree(args.root.clone(), &modules_dir, loaded.clone(), cache_dir)?
        } else {
            KernelTree::empty(modules_dir.clone())
        };
        let fs_root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
        let mut ctx = reach_context(&host, &tree, live);
        let conf = ModprobeConf::read(&fs_root);
        ctx.install_blocked = conf.install_blocked.into_keys().collect();
        ctx.blacklisted = conf.blacklisted.into_keys().collect();
        Ok(Target {
            host,
            release,
            modules_dir,
            tree,
            loaded: loaded.unwrap_or_default(),
            live,
            root: args.root.clone(),
            config_source,
            ctx,
        })
    }
}

/// The single kernel version below `root/lib/modules`.
fn only_kernel_below(root: &Path) -> Result<String> {
    let dir = root.join("lib/modules");
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "{}: cannot list kernel versions; is {} an unpacked kernel package or a mounted image?",
            dir.display(),
            root.display()
        )
    })?;
    let mut versions: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("kernel").is_dir() || e.path().join("modules.builtin").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    match versions.len() {
        0 => bail!("{}: holds no kernel version directory", dir.display()),
        1 => Ok(versions.remove(0)),
        _ => bail!(
            "{} holds several kernels ({}); choose one with --kernel",
            dir.display(),
            versions.join(", ")
        ),
    }
}

fn load_tree(
    fs_root: Option<PathBuf>,
    modules_dir: &Path,
    loaded: Option<BTreeSet<String>>,
    cache_dir: Option<PathBuf>,
) -> Result<KernelTree> {
    let bar = std::sync::OnceLock::<Option<indicatif::ProgressBar>>::new();
    let progress = |p: Progress| {
        if let Some(bar) =
            bar.get_or_init(|| output::progress_bar(p.total as u64, "reading modules"))
        {
            bar.set_position(p.done as u64);
        }
    };
    let tree = KernelTree::load(&LoadOptions {
        modules_dir: modules_dir.to_owned(),
        fs_root,
        loaded,
        cache_dir,
        progress: Some(&progress),
    })
    .with_context(|| format!("failed to read the modules of {}", modules_dir.display()))?;
    if let Some(Some(bar)) = bar.get() {
        bar.finish_and_clear();
    }
    Ok(tree)
}

/// Judge reachability against the host's real settings (live) or the
/// kernel's defaults (offline).
fn reach_context(host: &HostFacts, tree: &KernelTree, live: bool) -> ReachContext {
    let modprobe_set = sysctl::find(&host.sysctls, "kernel.modprobe")
        .and_then(|r| r.value.as_deref())
        .is_none_or(|v| !v.trim().is_empty());
    let mut ctx = ReachContext {
        autoload: host.modules.supported && !host.modules_disabled() && modprobe_set,
        userns: host.unprivileged_userns(),
        ldisc_autoload: host.ldisc_autoload().unwrap_or(true),
        ..ReachContext::default()
    };
    if live {
        ctx.open_device_nodes = tree
            .modules
            .iter()
            .flat_map(|m| m.aliases.iter())
            .filter_map(|a| a.strip_prefix("devname:"))
            .filter(|node| world_accessible(&Path::new("/dev").join(node)))
            .map(str::to_owned)
            .collect();
    }
    ctx
}

fn world_accessible(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o006 != 0)
}
