//! Attribution: which module holds the code a CVE's fix touched.
//!
//! A CVE record names the source files its fix changes. A module binary
//! does not name its sources completely, so each file is matched to modules
//! by the rules below, strongest first; the first rule that answers wins.
//! docs/cve.md explains each rule with examples and its limits.
//!
//! 1. **header** — `.h` files are compiled into many objects; they never
//!    attribute a CVE. Files that are not code (`Makefile`, `Kconfig`,
//!    documentation) neither.
//! 2. **object** — module binaries whose strings name the file
//!    ([`crate::objects`]).
//! 3. **name** — a module in the file's directory named like the file
//!    (`net/ipv4/tcp_bbr.c` → `tcp_bbr`).
//! 4. **directory** — among the modules of the file's directory: one whose
//!    name minus the directory prefix starts the file name, or ends with
//!    the file name (`net/rds/tcp_send.c` → `rds_tcp`,
//!    `drivers/nvme/host/rdma.c` → `nvme_rdma`), when exactly one does; else
//!    the module named after the directory (`net/sctp/*.c` → `sctp`; in a
//!    directory of more than [`COLLECTION_DIR_MODULES`] modules only for
//!    files that start with its name); else
//!    the directory's only module, when its binary names at least two `.c`
//!    files of that directory (a multi-file module living there, not a
//!    one-file helper next to core code such as `net/mptcp/mptcp_diag`).
//! 5. **object_directory** — a directory without modules of its own whose
//!    files only one module binary names (`arch/x86/kvm/vmx/` → `kvm_intel`).
//! 6. **parent_directory** — else the nearest ancestor directory holding
//!    modules, when it holds exactly one, named after it, whose binary
//!    names files below the ancestor (`fs/xfs/scrub/*.c` → `xfs`);
//!    top-level directories (`fs`, `net`, `drivers`, ...) never count.
//!
//! A file no rule places is core kernel code or unknown: it is never
//! counted as removable. A module can be builtin (`modules.builtin`): its
//! CVEs are then always present.
//!
//! "only" attribution: every non-header code file of the CVE is placed in
//! one and the same module. "any": at least one is.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use kgate_kernel::tree::KernelTree;
use serde::Serialize;

use crate::db::CveDb;
use crate::objects::ObjectIndex;

/// How a file was placed in a module (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Evidence {
    /// The module binary names the file.
    Object,
    /// The module is named like the file, in the file's directory.
    Name,
    /// The file's directory and the module's name.
    Directory,
    /// The only module whose binary names files of this directory.
    ObjectDirectory,
    /// A module named after an ancestor directory.
    ParentDirectory,
}

impl Evidence {
    /// Name as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Object => "object",
            Evidence::Name => "name",
            Evidence::Directory => "directory",
            Evidence::ObjectDirectory => "object_directory",
            Evidence::ParentDirectory => "parent_directory",
        }
    }
}

/// Where one source file of a CVE lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileOwner {
    /// In these modules (indices into [`SourceMap::modules`]).
    Modules {
        /// Module indices, sorted.
        modules: Vec<usize>,
        /// The rule that placed it.
        evidence: Evidence,
    },
    /// A header: compiled into many objects, never attributed.
    Header,
    /// Not code (Makefile, Kconfig, documentation, ...).
    NotCode,
    /// Several modules of its directory could hold it; none is chosen.
    Ambiguous {
        /// Module indices of the directory.
        candidates: Vec<usize>,
    },
    /// No module: core kernel code (or a file of another architecture, or
    /// of a module this kernel does not build).
    Unattributed,
}

impl FileOwner {
    /// Short name of the kind of place, as in JSON (`modules`, `header`,
    /// `not_code`, `ambiguous`, `unattributed`).
    pub fn kind(&self) -> &'static str {
        match self {
            FileOwner::Modules { .. } => "modules",
            FileOwner::Header => "header",
            FileOwner::NotCode => "not_code",
            FileOwner::Ambiguous { .. } => "ambiguous",
            FileOwner::Unattributed => "unattributed",
        }
    }
}

/// One module's place in the source tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleSource {
    /// Module name.
    pub name: String,
    /// Source directory: its path below `kernel/` in the package, without
    /// the file name (`net/sctp`). `None` for modules outside `kernel/`
    /// (`updates/`, `extra/`) and builtin modules `modules.builtin` does not
    /// list.
    pub dir: Option<String>,
    /// Compiled into the kernel image.
    pub builtin: bool,
}

/// Modules by source directory, with their object evidence.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// Every module of the tree, in tree order, plus builtin modules that
    /// `modules.builtin` lists but the tree lacks.
    pub modules: Vec<ModuleSource>,
    by_name: HashMap<String, usize>,
    by_dir: HashMap<String, Vec<usize>>,
    object_files: HashMap<String, Vec<usize>>,
    object_dirs: HashMap<String, BTreeSet<usize>>,
    /// (module, dir) → distinct `.c` files of dir its binary names.
    object_count: HashMap<(usize, String), usize>,
    /// Module → directories of the files its binary names.
    object_dirs_of: HashMap<usize, BTreeSet<String>>,
}

/// A directory with more modules than this is a collection of drivers
/// (drivers/hwmon, drivers/gpu/drm): see rule 4 in the module docs.
pub const COLLECTION_DIR_MODULES: usize = 5;

/// The directory part of a source path (`net/sctp/socket.c` → `net/sctp`).
fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn base_of(dir: &str) -> String {
    kgate_kernel::canonical_name(dir.rsplit('/').next().unwrap_or(dir))
}

/// A module path below the modules directory → its source directory.
fn module_dir(rel: &str) -> Option<String> {
    let below = rel.strip_prefix("kernel/")?;
    Some(dir_of(below).to_owned())
}

impl SourceMap {
    /// Build the map of `tree`: loadable modules from their paths, builtin
    /// ones from `modules.builtin` in the tree's modules directory, object
    /// evidence from `objects` (may be empty: then rules 2 and 5 never
    /// fire and rule 4's single-module case does not either).
    pub fn new(tree: &KernelTree, objects: &ObjectIndex) -> SourceMap {
        let builtin_dirs = read_builtin_dirs(&tree.modules_dir);
        let mut map = SourceMap::default();
        for m in &tree.modules {
            let dir = match &m.path {
                Some(p) => module_dir(p),
                None => builtin_dirs.get(&m.name).cloned(),
            };
            map.push(ModuleSource {
                name: m.name.clone(),
                dir,
                builtin: m.builtin,
            });
        }
        let mut extra: Vec<(&String, &String)> = builtin_dirs
            .iter()
            .filter(|(n, _)| !map.by_name.contains_key(*n))
            .collect();
        extra.sort();
        for (name, dir) in extra {
            map.push(ModuleSource {
                name: name.clone(),
                dir: Some(dir.clone()),
                builtin: true,
            });
        }
        for (name, files) in &objects.modules {
            let Some(&i) = map.by_name.get(name) else {
                continue;
            };
            for f in files {
                map.object_files.entry(f.clone()).or_default().push(i);
                let d = dir_of(f).to_owned();
                map.object_dirs.entry(d.clone()).or_default().insert(i);
                map.object_dirs_of.entry(i).or_default().insert(d.clone());
                *map.object_count.entry((i, d)).or_default() += 1;
            }
        }
        map
    }

    fn push(&mut self, m: ModuleSource) {
        let i = self.modules.len();
        if let Some(d) = &m.dir {
            self.by_dir.entry(d.clone()).or_default().push(i);
        }
        self.by_name.insert(m.name.clone(), i);
        self.modules.push(m);
    }

    /// Index of a module by name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.by_name
            .get(&kgate_kernel::canonical_name(name))
            .copied()
    }

    /// Modules whose source directory is `dir`.
    pub fn modules_in(&self, dir: &str) -> &[usize] {
        self.by_dir.get(dir).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Place one source file (see the module docs for the rules).
    pub fn owner(&self, file: &str) -> FileOwner {
        let name = file.rsplit('/').next().unwrap_or(file);
        let Some((stem, ext)) = name.rsplit_once('.') else {
            return FileOwner::NotCode;
        };
        match ext {
            "h" => return FileOwner::Header,
            "c" | "S" | "s" | "rs" => {}
            _ => return FileOwner::NotCode,
        }
        if let Some(ms) = self.object_files.get(file) {
            let mut modules = ms.clone();
            modules.sort_unstable();
            modules.dedup();
            return FileOwner::Modules {
                modules,
                evidence: Evidence::Object,
            };
        }
        let one = |i: usize, evidence| FileOwner::Modules {
            modules: vec![i],
            evidence,
        };
        let dir = dir_of(file);
        let stem = kgate_kernel::canonical_name(stem);
        let here = self.modules_in(dir);
        if !here.is_empty() {
            if let Some(&i) = here.iter().find(|&&i| self.modules[i].name == stem) {
                return one(i, Evidence::Name);
            }
            let base = base_of(dir);
            let specific: Vec<usize> = here
                .iter()
                .copied()
                .filter(|&i| {
                    let n = &self.modules[i].name;
                    let rest = n.strip_prefix(&format!("{base}_"));
                    rest.is_some_and(|r| r.len() >= 3 && stem.starts_with(r))
                        // drivers/iommu/iommu.c is the core, not virtio_iommu.
                        || (stem.len() >= 3 && stem != base && n.ends_with(&format!("_{stem}")))
                })
                .collect();
            if let [i] = specific[..] {
                return one(i, Evidence::Directory);
            }
            // In a directory of many modules (a driver collection such as
            // drivers/hwmon) the module named after it is the subsystem
            // core; files there that no other rule places are mostly
            // drivers this kernel does not build, so it takes only files
            // that carry its name (drm_gem.c in drivers/gpu/drm).
            if let Some(&i) = here.iter().find(|&&i| self.modules[i].name == base) {
                if here.len() <= COLLECTION_DIR_MODULES || stem.starts_with(&base) {
                    return one(i, Evidence::Directory);
                }
            }
            if let [i] = here[..] {
                let files = self
                    .object_count
                    .get(&(i, dir.to_owned()))
                    .copied()
                    .unwrap_or(0);
                if files >= 2 {
                    return one(i, Evidence::Directory);
                }
            }
            return FileOwner::Ambiguous {
                candidates: here.to_vec(),
            };
        }
        if let Some(ms) = self.object_dirs.get(dir) {
            if ms.len() == 1 {
                let i = *ms.iter().next().expect("one element");
                return one(i, Evidence::ObjectDirectory);
            }
        }
        let mut anc = dir;
        while let Some((parent, _)) = anc.rsplit_once('/') {
            anc = parent;
            if !anc.contains('/') {
                break;
            }
            let mods = self.modules_in(anc);
            if mods.is_empty() {
                continue;
            }
            // Only a module that spans subdirectories (its binary names a
            // file below `anc`) and is alone there: a subdirectory of a
            // collection is usually a separate driver (drivers/gpu/drm/msm
            // is not part of drm.ko, and is not built on x86).
            let base = base_of(anc);
            if let [i] = mods[..] {
                let spans = self.object_dirs_of.get(&i).is_some_and(|ds| {
                    ds.iter().any(|d| {
                        d.len() > anc.len() && d.starts_with(anc) && d.as_bytes()[anc.len()] == b'/'
                    })
                });
                if self.modules[i].name == base && spans {
                    return one(i, Evidence::ParentDirectory);
                }
            }
            break;
        }
        FileOwner::Unattributed
    }
}

/// `modules.builtin` of a modules directory: name → source directory.
fn read_builtin_dirs(modules_dir: &Path) -> HashMap<String, String> {
    let Ok(text) = kgate_kernel::bounded::read_text(
        Path::new("/"),
        &modules_dir.join("modules.builtin"),
        kgate_kernel::bounded::Limit::DEPMOD,
    ) else {
        return HashMap::new();
    };
    parse_builtin_dirs(&text)
}

/// The text of `modules.builtin` as module name → source directory
/// (`kernel/net/sctp/sctp.ko` → `sctp` → `net/sctp`).
pub fn parse_builtin_dirs(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let name = kgate_kernel::ko::module_name_from_path(Path::new(l))?;
            Some((name, module_dir(l)?))
        })
        .collect()
}

/// One source file of a CVE and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileAttribution {
    /// The source path.
    pub file: String,
    /// Where it lives.
    pub owner: FileOwner,
}

/// Attribution of one CVE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CveAttribution {
    /// Index into [`CveDb::cves`].
    pub cve: usize,
    /// Each file of the record.
    pub files: Vec<FileAttribution>,
    /// Modules holding at least one of its code files ("any"), sorted.
    pub any: Vec<usize>,
    /// The module holding every one of its code files ("only"), if one
    /// does.
    pub only: Option<usize>,
    /// Some code file lies outside every module (core kernel or unknown).
    pub touches_core: bool,
}

/// The CVEs of one module.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModuleCves {
    /// CVEs (indices into [`CveDb::cves`]) whose every code file is in
    /// this module.
    pub only: Vec<usize>,
    /// CVEs with at least one code file in this module (a superset of
    /// `only`).
    pub any: Vec<usize>,
}

/// Counts over a whole database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AttributionSummary {
    /// Records in the database.
    pub cves: usize,
    /// Records with an "only" module.
    pub only_one_module: usize,
    /// Records with at least one file in a module.
    pub any_module: usize,
    /// ... of which in a builtin module (only attribution).
    pub only_builtin: usize,
    /// Records whose code files are all unattributed or ambiguous.
    pub no_module: usize,
    /// Records with no code file (headers only, or no files).
    pub no_code_file: usize,
    /// Code files by how they were placed: object, name, directory,
    /// object_directory, parent_directory, ambiguous, unattributed.
    pub files_by_rule: [usize; 7],
}

/// All CVEs of a database placed in the modules of one kernel.
#[derive(Debug, Clone)]
pub struct Attribution {
    /// Per CVE, in database order.
    pub cves: Vec<CveAttribution>,
    /// Per module, in [`SourceMap::modules`] order.
    pub modules: Vec<ModuleCves>,
    /// Totals.
    pub summary: AttributionSummary,
}

impl Attribution {
    /// Attribute every CVE of `db` on `map`.
    pub fn compute(db: &CveDb, map: &SourceMap) -> Attribution {
        let mut modules = vec![ModuleCves::default(); map.modules.len()];
        let mut summary = AttributionSummary {
            cves: db.cves.len(),
            ..AttributionSummary::default()
        };
        let mut cache: HashMap<&str, FileOwner> = HashMap::new();
        let mut cves = Vec::with_capacity(db.cves.len());
        for (ci, c) in db.cves.iter().enumerate() {
            let files: Vec<FileAttribution> = c
                .files
                .iter()
                .map(|f| FileAttribution {
                    file: f.clone(),
                    owner: cache
                        .entry(f.as_str())
                        .or_insert_with(|| map.owner(f))
                        .clone(),
                })
                .collect();
            let mut any = BTreeSet::new();
            let mut code = 0;
            let mut only_candidate: Option<Option<usize>> = None;
            let mut touches_core = false;
            for fa in &files {
                let rule = match &fa.owner {
                    FileOwner::Header | FileOwner::NotCode => continue,
                    FileOwner::Modules { modules, evidence } => {
                        any.extend(modules.iter().copied());
                        let single = (modules.len() == 1).then(|| modules[0]);
                        only_candidate = Some(match only_candidate {
                            None => single,
                            Some(prev) if prev == single => prev,
                            Some(_) => None,
                        });
                        *evidence as usize
                    }
                    FileOwner::Ambiguous { .. } => {
                        touches_core = true;
                        only_candidate = Some(None);
                        5
                    }
                    FileOwner::Unattributed => {
                        touches_core = true;
                        only_candidate = Some(None);
                        6
                    }
                };
                code += 1;
                summary.files_by_rule[rule] += 1;
            }
            let only = only_candidate.flatten();
            if code == 0 {
                summary.no_code_file += 1;
            } else if any.is_empty() {
                summary.no_module += 1;
            }
            if !any.is_empty() {
                summary.any_module += 1;
            }
            if let Some(m) = only {
                summary.only_one_module += 1;
                if map.modules[m].builtin {
                    summary.only_builtin += 1;
                }
                modules[m].only.push(ci);
            }
            for &m in &any {
                modules[m].any.push(ci);
            }
            cves.push(CveAttribution {
                cve: ci,
                files,
                any: any.into_iter().collect(),
                only,
                touches_core,
            });
        }
        Attribution {
            cves,
            modules,
            summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(mods: &[(&str, &str, bool)], objects: &[(&str, &[&str])]) -> SourceMap {
        let mut m = SourceMap::default();
        for (name, dir, builtin) in mods {
            m.push(ModuleSource {
                name: name.to_string(),
                dir: Some(dir.to_string()),
                builtin: *builtin,
            });
        }
        for (name, files) in objects {
            let i = m.position(name).unwrap();
            for f in *files {
                m.object_files.entry(f.to_string()).or_default().push(i);
                let d = dir_of(f).to_owned();
                m.object_dirs.entry(d.clone()).or_default().insert(i);
                m.object_dirs_of.entry(i).or_default().insert(d.clone());
                *m.object_count.entry((i, d)).or_default() += 1;
            }
        }
        m
    }

    #[track_caller]
    fn owned_by(m: &SourceMap, file: &str, module: &str, evidence: Evidence) {
        let want = FileOwner::Modules {
            modules: vec![m.position(module).unwrap()],
            evidence,
        };
        assert_eq!(m.owner(file), want, "{file}");
    }

    #[test]
    fn rules_in_order() {
        let m = map(
            &[
                ("sctp", "net/sctp", false),
                ("sctp_diag", "net/sctp", false),
                ("rds", "net/rds", false),
                ("rds_tcp", "net/rds", false),
                ("tcp_bbr", "net/ipv4", false),
                ("udp_tunnel", "net/ipv4", false),
                ("mptcp_diag", "net/mptcp", false),
                ("ext4", "fs/ext4", false),
                ("xfs", "fs/xfs", false),
                ("kvm", "arch/x86/kvm", false),
                ("kvm_intel", "arch/x86/kvm", false),
                ("nvme_rdma", "drivers/nvme/host", false),
                ("nvme_tcp", "drivers/nvme/host", false),
                ("cifs", "fs/smb/client", false),
                ("binfmt_misc", "fs", false),
                ("virtio_iommu", "drivers/iommu", false),
                ("iommufd", "drivers/iommu", false),
                ("vdpa", "drivers/vdpa", false),
                ("hwmon", "drivers/hwmon", true),
                ("k10temp", "drivers/hwmon", false),
                ("coretemp", "drivers/hwmon", false),
                ("it87", "drivers/hwmon", false),
                ("lm75", "drivers/hwmon", false),
                ("lm90", "drivers/hwmon", false),
            ],
            &[
                ("sctp", &["net/sctp/socket.c"]),
                ("kvm_intel", &["arch/x86/kvm/vmx/vmx.c"]),
                (
                    "udp_tunnel",
                    &["net/ipv4/udp_tunnel_core.c", "net/ipv4/udp_tunnel_nic.c"],
                ),
                ("cifs", &["fs/smb/client/connect.c", "fs/smb/client/file.c"]),
                ("xfs", &["fs/xfs/libxfs/xfs_bmap.c"]),
                ("vdpa", &["drivers/vdpa/vdpa.c"]),
            ],
        );
        owned_by(&m, "net/sctp/socket.c", "sctp", Evidence::Object);
        owned_by(&m, "net/ipv4/tcp_bbr.c", "tcp_bbr", Evidence::Name);
        owned_by(&m, "net/sctp/diag.c", "sctp_diag", Evidence::Directory);
        owned_by(&m, "net/sctp/sm_statefuns.c", "sctp", Evidence::Directory);
        owned_by(&m, "net/rds/tcp_send.c", "rds_tcp", Evidence::Directory);
        owned_by(&m, "net/rds/send.c", "rds", Evidence::Directory);
        owned_by(
            &m,
            "drivers/nvme/host/rdma.c",
            "nvme_rdma",
            Evidence::Directory,
        );
        owned_by(&m, "fs/smb/client/inode.c", "cifs", Evidence::Directory);
        owned_by(
            &m,
            "arch/x86/kvm/vmx/nested.c",
            "kvm_intel",
            Evidence::ObjectDirectory,
        );
        owned_by(&m, "fs/xfs/scrub/bmap.c", "xfs", Evidence::ParentDirectory);
        // A subdirectory of a single-directory module is another driver.
        assert_eq!(
            m.owner("drivers/vdpa/vdpa_sim/vdpa_sim.c"),
            FileOwner::Unattributed
        );
        // The core module of a driver collection takes only its own files.
        owned_by(
            &m,
            "drivers/hwmon/hwmon_core.c",
            "hwmon",
            Evidence::Directory,
        );
        assert!(matches!(
            m.owner("drivers/hwmon/nct6775.c"),
            FileOwner::Ambiguous { .. }
        ));
        owned_by(&m, "fs/ext4/inode.c", "ext4", Evidence::Directory);
        // A core file named after its directory is not a suffix match.
        assert!(matches!(
            m.owner("drivers/iommu/iommu.c"),
            FileOwner::Ambiguous { .. }
        ));
        // Core code next to modules is not given to them.
        assert!(matches!(
            m.owner("net/ipv4/tcp_input.c"),
            FileOwner::Ambiguous { .. }
        ));
        assert!(matches!(
            m.owner("net/mptcp/protocol.c"),
            FileOwner::Ambiguous { .. }
        ));
        assert!(matches!(
            m.owner("drivers/nvme/host/core.c"),
            FileOwner::Ambiguous { .. }
        ));
        assert_eq!(m.owner("fs/namei/x.c"), FileOwner::Unattributed);
        assert_eq!(m.owner("kernel/bpf/verifier.c"), FileOwner::Unattributed);
        assert_eq!(m.owner("include/net/sctp/sctp.h"), FileOwner::Header);
        assert_eq!(m.owner("net/sctp/Kconfig"), FileOwner::NotCode);
    }
}
