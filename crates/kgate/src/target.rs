//! The kernel a subcommand works on: the running one, another installed
//! one (`--kernel`), or an offline tree (`--root DIR`). Shared by every
//! subcommand that reads a kernel, so they all accept the same flags and
//! resolve them the same way. The reading itself is
//! [`kgate_kernel::inventory`]; this file turns the flags into its options.

use std::path::{Path, PathBuf};

use anyhow::Result;

use kgate_kernel::inventory::{Inventory, InventoryOptions};
use kgate_kernel::tree::{Facts, Progress};

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

/// A loaded kernel ([`Inventory`], whose fields it derefs to) and the
/// `--root` it was read below.
pub struct Target {
    inv: Inventory,
    /// `--root`, if given.
    pub root: Option<PathBuf>,
}

impl std::ops::Deref for Target {
    type Target = Inventory;
    fn deref(&self) -> &Inventory {
        &self.inv
    }
}

impl std::ops::DerefMut for Target {
    fn deref_mut(&mut self) -> &mut Inventory {
        &mut self.inv
    }
}

impl Target {
    /// The inventory, for a caller that takes its fields by value.
    pub fn into_inventory(self) -> Inventory {
        self.inv
    }

    /// The filesystem root files are read below: `/` or `--root`.
    pub fn fs_root(&self) -> &Path {
        &self.inv.root
    }

    /// Resolve the arguments and read the kernel
    /// ([`kgate_kernel::inventory::Inventory::load`]), every module file
    /// included ([`Facts::Full`]).
    pub fn load(args: &TargetArgs) -> Result<Target> {
        Target::load_facts(args, Facts::Full)
    }

    /// [`Target::load`], reading `facts` of each module: [`Facts::Depmod`]
    /// for commands that decide by names, aliases and dependencies only.
    pub fn load_facts(args: &TargetArgs, facts: Facts) -> Result<Target> {
        let cache_dir = if args.no_cache {
            None
        } else {
            args.cache_dir
                .clone()
                .or_else(kgate_kernel::cache::default_cache_dir)
        };
        let bar = std::sync::OnceLock::<Option<indicatif::ProgressBar>>::new();
        let progress = |p: Progress| {
            if let Some(bar) =
                bar.get_or_init(|| output::progress_bar(p.total as u64, "reading modules"))
            {
                bar.set_position(p.done as u64);
            }
        };
        let inv = Inventory::load(&InventoryOptions {
            root: args.root.clone().unwrap_or_else(|| PathBuf::from("/")),
            offline: args.root.is_some(),
            kernel: args.kernel.clone(),
            cache_dir,
            progress: Some(&progress),
            facts,
        });
        if let Some(Some(bar)) = bar.get() {
            bar.finish_and_clear();
        }
        Ok(Target {
            inv: inv?,
            root: args.root.clone(),
        })
    }
}
