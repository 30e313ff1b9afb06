//! The kernel a command works on, read in one call: its release, host
//! facts, modules, the modules loaded now and how reachability is judged.
//!
//! Everything is read below a filesystem root: `/` for the running system,
//! a fixture or a mounted image in tests and offline surveys. The running
//! system's own files (`/proc/sys/kernel/osrelease`, `/proc/modules`,
//! `/proc/kallsyms`, the nodes in `/dev`) are read here too, through
//! [`crate::bounded`], so that no command reads them directly.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::boot::{self, BootError, BootModule};
use crate::bounded::{self, Limit, ReadError};
use crate::config::{ConfigError, KernelConfig};
use crate::host::{self, HostFacts};
use crate::modprobe_conf::ModprobeConf;
use crate::reach::ReachContext;
use crate::tree::{Facts, KernelTree, LoadOptions, Progress, TreeError};
use crate::{depmod, sysctl};

/// Why the kernel could not be read. Each variant names the directory or
/// the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The offline root is not a directory.
    #[error("{}: no such directory; --root takes an unpacked kernel package or a mounted image", root.display())]
    NoRoot {
        /// The root given.
        root: PathBuf,
    },
    /// `ROOT/lib/modules` cannot be listed.
    #[error("{}: cannot list kernel versions; is {} an unpacked kernel package or a mounted image?", dir.display(), root.display())]
    ListVersions {
        /// `ROOT/lib/modules`.
        dir: PathBuf,
        /// The root.
        root: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `ROOT/lib/modules` holds no kernel.
    #[error("{}: holds no kernel version directory", dir.display())]
    NoKernel {
        /// `ROOT/lib/modules`.
        dir: PathBuf,
    },
    /// `ROOT/lib/modules` holds several kernels and none was chosen.
    #[error("{} holds several kernels ({}); choose one with --kernel", dir.display(), versions.join(", "))]
    SeveralKernels {
        /// `ROOT/lib/modules`.
        dir: PathBuf,
        /// The versions found, sorted.
        versions: Vec<String>,
    },
    /// The kernel config exists but cannot be read.
    #[error("failed to read the kernel config of {release}")]
    Config {
        /// The kernel.
        release: String,
        /// The cause.
        #[source]
        source: ConfigError,
    },
    /// The modules cannot be read.
    #[error("failed to read the modules of {}", modules_dir.display())]
    Tree {
        /// `ROOT/lib/modules/RELEASE`.
        modules_dir: PathBuf,
        /// The cause.
        #[source]
        source: TreeError,
    },
}

/// What to read.
pub struct InventoryOptions<'a> {
    /// The filesystem root: `/` for the running system, or the directory
    /// of an offline kernel.
    pub root: PathBuf,
    /// `root` is an offline kernel (`--root DIR`): no live facts are read
    /// below it, the kernel's build defaults stand in for them.
    pub offline: bool,
    /// The kernel version (`--kernel`): below `root/lib/modules`. `None`:
    /// the running kernel, or offline the only one below the root.
    pub kernel: Option<String>,
    /// Directory of the fact cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Called as module files are read.
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
    /// What is read of each module ([`Facts`]).
    pub facts: Facts,
}

/// A loaded kernel: its settings, modules and how reachability is judged.
#[derive(Debug)]
pub struct Inventory {
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
    /// The filesystem root the files were read below.
    pub root: PathBuf,
    /// Where the kernel config came from.
    pub config_source: Option<String>,
    /// The settings reachability is judged against.
    pub ctx: ReachContext,
}

impl Inventory {
    /// Reads the kernel `opts` names.
    ///
    /// The kernel is live when the root is not offline and `opts.kernel` is
    /// unset or the running release; otherwise the kernel's own config
    /// (`boot/config-RELEASE`) stands in for the host's settings.
    pub fn load(opts: &InventoryOptions<'_>) -> Result<Inventory, InventoryError> {
        let root = opts.root.as_path();
        let running = if opts.offline {
            String::new()
        } else {
            running_release(root).unwrap_or_default()
        };
        let live = !opts.offline && opts.kernel.as_deref().is_none_or(|k| k == running);
        let (host, release, config_source) = if live {
            let host = host::read_host(root);
            let release = host.release.clone();
            let config = host.config_source.clone();
            (host, release, config)
        } else {
            if !root.is_dir() {
                return Err(InventoryError::NoRoot {
                    root: root.to_owned(),
                });
            }
            let release = match &opts.kernel {
                Some(k) => k.clone(),
                None => only_kernel_below(root)?,
            };
            let config = KernelConfig::load_offline(root, &release).map_err(|source| {
                InventoryError::Config {
                    release: release.clone(),
                    source,
                }
            })?;
            let host = host::offline_facts(&release, config.as_ref().map(|(c, _)| c));
            let source = config.map(|(_, p)| p.display().to_string());
            (host, release, source)
        };
        let modules_dir = root.join("lib/modules").join(&release);
        let loaded = if live { loaded_modules(root) } else { None };
        let tree = if host.modules.supported || modules_dir.is_dir() {
            KernelTree::load(&LoadOptions {
                modules_dir: modules_dir.clone(),
                fs_root: Some(root.to_owned()),
                loaded: loaded.clone(),
                cache_dir: opts.cache_dir.clone(),
                progress: opts.progress,
                facts: opts.facts,
            })
            .map_err(|source| InventoryError::Tree {
                modules_dir: modules_dir.clone(),
                source,
            })?
        } else {
            KernelTree::empty(modules_dir.clone())
        };
        let mut ctx = reach_context(root, &host, &tree, live);
        let conf = ModprobeConf::read(root);
        ctx.install_blocked = conf.install_blocked.into_keys().collect();
        ctx.blacklisted = conf.blacklisted.into_keys().collect();
        Ok(Inventory {
            host,
            release,
            modules_dir,
            tree,
            loaded: loaded.unwrap_or_default(),
            live,
            root: root.to_owned(),
            config_source,
            ctx,
        })
    }

    /// The modules boot needs ([`boot::boot_modules`] below this root);
    /// `initramfs` adds the modules of that image.
    pub fn boot_modules(&self, initramfs: Option<&Path>) -> Result<Vec<BootModule>, BootError> {
        boot::boot_modules(&self.root, &self.tree, initramfs)
    }
}

/// The single kernel version below `root/lib/modules`: a directory with a
/// `kernel` directory or a `modules.builtin` file.
pub fn only_kernel_below(root: &Path) -> Result<String, InventoryError> {
    let dir = root.join("lib/modules");
    let entries = std::fs::read_dir(&dir).map_err(|source| InventoryError::ListVersions {
        dir: dir.clone(),
        root: root.to_owned(),
        source,
    })?;
    let mut versions: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("kernel").is_dir() || e.path().join("modules.builtin").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    match versions.len() {
        0 => Err(InventoryError::NoKernel { dir }),
        1 => Ok(versions.remove(0)),
        _ => Err(InventoryError::SeveralKernels { dir, versions }),
    }
}

/// Judges reachability against the host's real settings (live: the
/// world-accessible nodes in `root/dev` too) or the kernel's defaults
/// (offline).
pub fn reach_context(root: &Path, host: &HostFacts, tree: &KernelTree, live: bool) -> ReachContext {
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
        ctx.open_device_nodes = open_device_nodes(root, tree);
    }
    ctx
}

/// The `devname:` nodes of `tree`'s modules that exist in `root/dev` and
/// any user may open (read or write for others).
pub fn open_device_nodes(root: &Path, tree: &KernelTree) -> BTreeSet<String> {
    let dev = root.join("dev");
    tree.modules
        .iter()
        .flat_map(|m| m.aliases.iter())
        .filter_map(|a| a.strip_prefix("devname:"))
        .filter(|node| !node.split('/').any(|c| c == ".."))
        .filter(|node| world_accessible(&dev.join(node)))
        .map(str::to_owned)
        .collect()
}

fn world_accessible(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o006 != 0)
}

/// The running kernel's release (`uname -r`) from
/// `root/proc/sys/kernel/osrelease`; `None` when it cannot be read or is
/// empty.
pub fn running_release(root: &Path) -> Option<String> {
    let path = root.join("proc/sys/kernel/osrelease");
    let text = bounded::read_text(root, &path, Limit::HOST_FILE).ok()?;
    let release = text.trim();
    (!release.is_empty()).then(|| release.to_owned())
}

/// The modules loaded now, from `root/proc/modules`; `None` when it cannot
/// be read (no module support, or `/proc` not mounted).
pub fn loaded_modules(root: &Path) -> Option<BTreeSet<String>> {
    let path = root.join("proc/modules");
    bounded::read_text(root, &path, Limit::HOST_FILE)
        .ok()
        .map(|t| depmod::parse_proc_modules(&t))
}

/// The text of `root/proc/kallsyms`, capped at [`Limit::KALLSYMS`].
pub fn kallsyms(root: &Path) -> Result<String, ReadError> {
    bounded::read_text(root, &root.join("proc/kallsyms"), Limit::KALLSYMS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{FixtureTree, TempDir};

    fn offline(root: &Path, kernel: Option<&str>) -> InventoryOptions<'static> {
        InventoryOptions {
            root: root.to_owned(),
            offline: true,
            kernel: kernel.map(str::to_owned),
            cache_dir: None,
            progress: None,
            facts: Facts::Full,
        }
    }

    /// A fixture with one kernel: `ext4` (autoloads `fs-ext4`, needs
    /// `jbd2`), `fuse` (`devname:fuse`), a builtin `unix` and a config.
    fn one_kernel(dir: &TempDir, version: &str) -> FixtureTree {
        let t = FixtureTree::new(dir.path(), version);
        t.module("kernel/fs/ext4/ext4.ko.xz", &["fs-ext4"], &["jbd2"], "");
        t.module("kernel/fs/jbd2/jbd2.ko", &[], &[], "");
        t.module("kernel/fs/fuse/fuse.ko", &["devname:fuse"], &[], "");
        t.builtin(&["unix"]);
        dir.write(
            &format!("boot/config-{version}"),
            "CONFIG_MODULES=y\nCONFIG_USER_NS=y\n",
        );
        t
    }

    #[test]
    fn offline_root_with_one_kernel() {
        let dir = TempDir::new("inventory-one");
        one_kernel(&dir, "6.1.0-test");
        let inv = Inventory::load(&offline(dir.path(), None)).unwrap();
        assert_eq!(inv.release, "6.1.0-test");
        assert!(!inv.live);
        assert_eq!(inv.root, dir.path());
        assert_eq!(inv.modules_dir, dir.path().join("lib/modules/6.1.0-test"));
        assert!(inv.tree.get("ext4").is_some(), "ext4 missing");
        assert!(inv.tree.get("jbd2").is_some(), "jbd2 missing");
        assert!(inv.tree.get("unix").is_some_and(|m| m.builtin));
        assert!(inv.loaded.is_empty(), "offline: nothing is loaded");
        assert_eq!(
            inv.config_source.as_deref(),
            Some(dir.path().join("boot/config-6.1.0-test").to_str().unwrap())
        );
        // Offline: the stock device nodes, not the fixture's /dev.
        assert_eq!(
            inv.ctx.open_device_nodes,
            ReachContext::default().open_device_nodes
        );
        assert!(inv.ctx.autoload);
    }

    #[test]
    fn offline_root_reads_modprobe_conf() {
        let dir = TempDir::new("inventory-modprobe");
        one_kernel(&dir, "6.1.0-test");
        dir.write(
            "etc/modprobe.d/kgate.conf",
            "install fuse /bin/false\nblacklist ext4\n",
        );
        let inv = Inventory::load(&offline(dir.path(), None)).unwrap();
        assert_eq!(inv.ctx.install_blocked, BTreeSet::from(["fuse".to_owned()]));
        assert_eq!(inv.ctx.blacklisted, BTreeSet::from(["ext4".to_owned()]));
    }

    #[test]
    fn offline_root_without_a_kernel_is_an_error() {
        let dir = TempDir::new("inventory-none");
        std::fs::create_dir_all(dir.path().join("lib/modules/not-a-kernel")).unwrap();
        let err = Inventory::load(&offline(dir.path(), None)).unwrap_err();
        assert!(matches!(err, InventoryError::NoKernel { .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("holds no kernel version directory"),
            "{err}"
        );

        let empty = TempDir::new("inventory-empty");
        let err = Inventory::load(&offline(empty.path(), None)).unwrap_err();
        assert!(matches!(err, InventoryError::ListVersions { .. }), "{err}");
        assert!(
            err.to_string().contains("cannot list kernel versions"),
            "{err}"
        );
    }

    #[test]
    fn offline_root_that_does_not_exist_is_an_error() {
        let dir = TempDir::new("inventory-missing");
        let missing = dir.path().join("nonexistent");
        let err = Inventory::load(&offline(&missing, None)).unwrap_err();
        assert!(matches!(err, InventoryError::NoRoot { .. }), "{err}");
        assert!(
            err.to_string().contains("nonexistent: no such directory"),
            "{err}"
        );
    }

    #[test]
    fn several_kernels_need_kernel() {
        let dir = TempDir::new("inventory-several");
        one_kernel(&dir, "6.1.0-a");
        one_kernel(&dir, "6.1.0-b");
        let err = Inventory::load(&offline(dir.path(), None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} holds several kernels (6.1.0-a, 6.1.0-b); choose one with --kernel",
                dir.path().join("lib/modules").display()
            )
        );
        let inv = Inventory::load(&offline(dir.path(), Some("6.1.0-b"))).unwrap();
        assert_eq!(inv.release, "6.1.0-b");
    }

    #[test]
    fn missing_modules_dir_of_a_named_kernel_is_an_error() {
        let dir = TempDir::new("inventory-named");
        one_kernel(&dir, "6.1.0-a");
        dir.write("boot/config-6.1.0-z", "CONFIG_MODULES=y\n");
        let err = Inventory::load(&offline(dir.path(), Some("6.1.0-z"))).unwrap_err();
        assert!(matches!(err, InventoryError::Tree { .. }), "{err}");
    }

    /// A fake running system: `/proc` and `/dev` below the root.
    #[test]
    fn live_root_reads_proc_and_dev() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("inventory-live");
        one_kernel(&dir, "6.1.0-live");
        dir.write("proc/sys/kernel/osrelease", "6.1.0-live\n");
        dir.write(
            "proc/modules",
            "ext4 1000000 1 - Live 0x0\njbd2 200000 1 ext4, Live 0x0\n",
        );
        dir.write("dev/fuse", "");
        let fuse = dir.path().join("dev/fuse");
        std::fs::set_permissions(&fuse, std::fs::Permissions::from_mode(0o666)).unwrap();
        let opts = InventoryOptions {
            offline: false,
            ..offline(dir.path(), None)
        };
        let inv = Inventory::load(&opts).unwrap();
        assert!(inv.live);
        assert_eq!(inv.release, "6.1.0-live");
        assert_eq!(
            inv.loaded,
            BTreeSet::from(["ext4".to_owned(), "jbd2".to_owned()])
        );
        assert_eq!(
            inv.ctx.open_device_nodes,
            BTreeSet::from(["fuse".to_owned()])
        );
        assert!(inv.tree.get("fuse").is_some(), "fuse missing");

        // Only world-accessible nodes count.
        std::fs::set_permissions(&fuse, std::fs::Permissions::from_mode(0o600)).unwrap();
        let inv = Inventory::load(&opts).unwrap();
        assert!(inv.ctx.open_device_nodes.is_empty());

        // Another installed kernel of the running system is read offline.
        let err = Inventory::load(&InventoryOptions {
            kernel: Some("6.1.0-other".into()),
            ..opts
        })
        .unwrap_err();
        assert!(matches!(err, InventoryError::Tree { .. }), "{err}");
    }

    #[test]
    fn boot_modules_of_a_live_root() {
        let dir = TempDir::new("inventory-boot");
        one_kernel(&dir, "6.1.0-live");
        dir.write("proc/sys/kernel/osrelease", "6.1.0-live\n");
        dir.write(
            "proc/self/mountinfo",
            "21 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n",
        );
        let inv = Inventory::load(&InventoryOptions {
            offline: false,
            ..offline(dir.path(), None)
        })
        .unwrap();
        let names: Vec<String> = inv
            .boot_modules(None)
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["ext4", "jbd2"]);
    }

    #[test]
    fn live_reads_below_the_root() {
        let dir = TempDir::new("inventory-reads");
        assert_eq!(running_release(dir.path()), None);
        assert_eq!(loaded_modules(dir.path()), None);
        assert!(kallsyms(dir.path()).unwrap_err().is_not_found());
        dir.write("proc/sys/kernel/osrelease", "6.12.0-1-amd64\n");
        dir.write("proc/modules", "fuse 1 0 - Live 0x0\n");
        dir.write("proc/kallsyms", "0000000000000000 T __x64_sys_tee\n");
        assert_eq!(
            running_release(dir.path()).as_deref(),
            Some("6.12.0-1-amd64")
        );
        assert_eq!(
            loaded_modules(dir.path()),
            Some(BTreeSet::from(["fuse".to_owned()]))
        );
        assert!(kallsyms(dir.path()).unwrap().ends_with(" __x64_sys_tee\n"));
    }

    #[test]
    fn device_nodes_stay_below_dev() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("inventory-devdots");
        let t = FixtureTree::new(dir.path(), "6.1.0-x");
        t.module("kernel/evil.ko", &["devname:../outside"], &[], "");
        dir.write("outside", "");
        std::fs::set_permissions(
            dir.path().join("outside"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        let tree = t.load();
        assert!(open_device_nodes(dir.path(), &tree).is_empty());
    }
}
