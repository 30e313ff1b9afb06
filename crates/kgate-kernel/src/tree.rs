//! A kernel's module tree: every module of `/lib/modules/VER` with its
//! facts, dependencies, aliases and triggers, plus the builtin modules.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::bounded::{self, Limit};
use crate::cache::{FactCache, FileStamp};
use crate::depmod::{self, SoftDep};
use crate::ko::{self, Compression, KoFacts};
use crate::modinfo::{self, ModInfo};
use crate::name::ModuleName;
use crate::trigger::{self, Trigger};

mod alias;

pub use alias::glob_match;
use alias::AliasIndex;

/// Errors that stop a whole tree from loading. One bad module never does:
/// it becomes a [`ModuleProblem`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The modules directory does not exist.
    #[error("{path}: no such modules directory; check --root and --kernel (kgate looks for DIR/lib/modules/VERSION)")]
    MissingDir {
        /// The directory looked for.
        path: PathBuf,
    },
    /// The modules directory could not be read.
    #[error("{path}: cannot read the modules directory: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// One module, loadable or builtin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Module {
    /// Canonical name (`-` written as `_`).
    pub name: String,
    /// Path relative to the modules directory; `None` for builtin modules.
    pub path: Option<String>,
    /// Compiled into the kernel image.
    pub builtin: bool,
    /// Loaded right now (live host only).
    pub loaded: bool,
    /// Bytes of executable code (all `SHF_EXECINSTR` sections).
    pub text_bytes: u64,
    /// Defined functions in the symbol table.
    pub functions: u32,
    /// Size of the module file on disk.
    pub file_bytes: u64,
    /// Alias patterns.
    pub aliases: Vec<String>,
    /// Direct hard dependencies (from `.modinfo`, or depmod's list).
    pub depends: Vec<String>,
    /// Soft dependencies.
    pub softdep_pre: Vec<String>,
    /// Soft dependencies loaded after the module.
    pub softdep_post: Vec<String>,
    /// Weak dependencies (not loaded by modprobe; kept for initramfs tools).
    pub weakdeps: Vec<String>,
    /// Triggers classified from the aliases and the name.
    pub triggers: Vec<Trigger>,
}

/// A module file that could not be read; the survey skips it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleProblem {
    /// Path relative to the modules directory.
    pub path: String,
    /// What went wrong, in words.
    pub error: String,
}

/// Where the dependency and alias data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DepSource {
    /// depmod's `modules.dep` / `modules.alias`, checked against `.modinfo`.
    Depmod,
    /// Computed from each module's `.modinfo` (no depmod output present).
    Modinfo,
}

/// How depmod's output compares with the modules' own `.modinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DepmodCheck {
    /// `modules.dep` exists.
    pub present: bool,
    /// depmod's output was compared with the modules' `.modinfo` (false
    /// under [`Facts::Depmod`], which does not read it; then `agrees` is
    /// false too, as nothing was shown to agree).
    pub checked: bool,
    /// Everything matched.
    pub agrees: bool,
    /// Modules listed by depmod but not found on disk.
    pub only_in_depmod: Vec<String>,
    /// Modules on disk that depmod does not list (depmod is stale).
    pub missing_from_depmod: Vec<String>,
    /// Modules whose dependency closure differs.
    pub dep_mismatches: Vec<String>,
    /// Modules whose alias set differs.
    pub alias_mismatches: Vec<String>,
}

/// Progress report while module files are read.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Files read so far (cache misses only).
    pub done: usize,
    /// Files to read.
    pub total: usize,
}

/// How to load a tree.
pub struct LoadOptions<'a> {
    /// `/lib/modules/VER` or `DIR/lib/modules/VER`.
    pub modules_dir: PathBuf,
    /// The filesystem root the tree belongs to (`--root DIR`); symlinks
    /// resolve inside it ([`crate::bounded::open`]). `None` is `/`.
    pub fs_root: Option<PathBuf>,
    /// Modules loaded right now, if known.
    pub loaded: Option<BTreeSet<String>>,
    /// Directory of the fact cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Called as files are read.
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
    /// What is read of each module.
    pub facts: Facts,
}

/// What a load reads of each module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Facts {
    /// Every module file is read (decompressed and parsed, or taken from
    /// the fact cache) for its code size, functions and `.modinfo`, and
    /// depmod's output is checked against them: what `survey`, `score`
    /// and `report` show.
    #[default]
    Full,
    /// depmod's output (`modules.dep`, `modules.alias`,
    /// `modules.softdep`) stands in for each file's `.modinfo`: it is what
    /// modprobe resolves requests with. Only files depmod does not list
    /// are read. Code sizes are 0 and [`DepmodCheck::checked`] is false.
    /// For commands that decide by names, aliases and dependencies
    /// (`apply`, `boot`, `freeze`): a cold load of Debian's 4,000
    /// compressed modules costs seconds natively and minutes under
    /// emulation, which boot cannot afford. Without `modules.dep` this is
    /// [`Facts::Full`].
    Depmod,
}

/// Cache statistics of one load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Module facts served from the cache.
    pub hits: usize,
    /// Module files read and parsed.
    pub misses: usize,
}

/// A kernel's modules.
#[derive(Debug, Clone, Serialize)]
pub struct KernelTree {
    /// The modules directory read.
    pub modules_dir: PathBuf,
    /// Modules, sorted by name: loadable ones and builtin ones.
    pub modules: Vec<Module>,
    /// Files that could not be read.
    pub problems: Vec<ModuleProblem>,
    /// Where dependencies and aliases came from.
    pub dep_source: DepSource,
    /// depmod output versus `.modinfo`.
    pub depmod: DepmodCheck,
    /// Cache use.
    pub cache: CacheStats,
    /// The filesystem root the modules are read in (`/`, or `--root DIR`).
    #[serde(skip)]
    pub fs_root: PathBuf,
    #[serde(skip)]
    index: HashMap<String, usize>,
    #[serde(skip)]
    aliases: AliasIndex,
}

struct Found {
    rel: String,
    stamp: FileStamp,
}

impl KernelTree {
    /// An empty tree, for kernels without module support.
    pub fn empty(modules_dir: PathBuf) -> KernelTree {
        KernelTree {
            modules_dir,
            modules: Vec::new(),
            problems: Vec::new(),
            dep_source: DepSource::Modinfo,
            depmod: DepmodCheck::default(),
            cache: CacheStats::default(),
            fs_root: PathBuf::from("/"),
            index: HashMap::new(),
            aliases: AliasIndex::default(),
        }
    }

    /// Read every module of `opts.modules_dir`.
    pub fn load(opts: &LoadOptions<'_>) -> Result<KernelTree, TreeError> {
        let dir = &opts.modules_dir;
        let fs_root = opts.fs_root.as_deref().unwrap_or(Path::new("/"));
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(TreeError::MissingDir { path: dir.clone() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TreeError::MissingDir { path: dir.clone() })
            }
            Err(source) => {
                return Err(TreeError::ReadDir {
                    path: dir.clone(),
                    source,
                })
            }
        }
        let mut problems = Vec::new();
        let mut files = Vec::new();
        walk(fs_root, dir, "", &mut files, &mut problems).map_err(|source| TreeError::ReadDir {
            path: dir.clone(),
            source,
        })?;
        files.sort_by(|a, b| a.rel.cmp(&b.rel));

        // Read once: Facts::Depmod skips the files it lists, and
        // apply_depmod uses it either way.
        let dep = read_depmod(fs_root, dir, "modules.dep", &mut problems)
            .map(|t| depmod::parse_modules_dep(&String::from_utf8_lossy(&t)));
        let listed: Option<BTreeSet<&String>> = dep
            .as_ref()
            .filter(|_| opts.facts == Facts::Depmod)
            .map(|d| d.paths.values().collect());
        let mut facts: Vec<Option<Result<KoFacts, String>>> = files
            .iter()
            .map(|f| {
                listed
                    .as_ref()
                    .is_some_and(|l| l.contains(&f.rel))
                    .then(|| Ok(KoFacts::default()))
            })
            .collect();
        let mut cache = match &opts.cache_dir {
            Some(d) if facts.iter().any(Option::is_none) => Some(FactCache::open(d, dir)),
            _ => None,
        };
        for (f, fact) in files.iter().zip(facts.iter_mut()) {
            if fact.is_none() {
                *fact = cache
                    .as_ref()
                    .and_then(|c| c.get(&f.rel, f.stamp))
                    .map(|k| Ok(k.clone()));
            }
        }
        let todo: Vec<usize> = (0..files.len()).filter(|i| facts[*i].is_none()).collect();
        let stats = CacheStats {
            hits: files.len() - todo.len(),
            misses: todo.len(),
        };
        let done = AtomicUsize::new(0);
        let total = todo.len();
        let paths: Vec<PathBuf> = todo.iter().map(|&i| dir.join(&files[i].rel)).collect();
        let fresh: Vec<(usize, Result<KoFacts, String>)> =
            ko::read_modules(fs_root, &paths, |n, result, _bytes| {
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(progress) = opts.progress {
                    progress(Progress { done: d, total });
                }
                (todo[n], result.map_err(|e| e.to_string()))
            });
        for (i, result) in fresh {
            if let (Some(cache), Ok(f)) = (cache.as_mut(), &result) {
                cache.insert(files[i].rel.clone(), files[i].stamp, f.clone());
            }
            facts[i] = Some(result);
        }
        if let Some(cache) = cache.as_mut() {
            // Under Facts::Depmod only the unlisted files were looked up:
            // nothing is forgotten, so that a full load stays warm.
            if listed.is_none() {
                let present: BTreeSet<&str> = files.iter().map(|f| f.rel.as_str()).collect();
                cache.retain(|k| present.contains(k));
            }
            // A cache that cannot be written only costs speed next time.
            let _ = cache.save();
        }

        let mut modules: BTreeMap<String, Module> = BTreeMap::new();
        for (file, result) in files.iter().zip(facts) {
            let facts = match result {
                Some(Ok(f)) => f,
                Some(Err(error)) => {
                    problems.push(ModuleProblem {
                        path: file.rel.clone(),
                        error,
                    });
                    continue;
                }
                None => continue,
            };
            let Some(file_name) = ko::module_name_from_path(Path::new(&file.rel)) else {
                continue;
            };
            // Names end up in modprobe.d and on terminals: one that is not
            // a module name drops the module, with a problem (issue 19).
            let checked = ModuleName::new(&file_name)
                .map_err(|e| format!("the file name is not a module name: {e}"))
                .and_then(|from_file| match facts.modinfo.name.as_deref() {
                    Some(n) => ModuleName::new(n)
                        .map_err(|e| format!(".modinfo name= is not a module name: {e}")),
                    None => Ok(from_file),
                });
            let name = match checked {
                Ok(name) => name.as_str().to_owned(),
                Err(error) => {
                    problems.push(ModuleProblem {
                        path: file.rel.clone(),
                        error: format!("{error}; module skipped"),
                    });
                    continue;
                }
            };
            let module = module_from(
                name.clone(),
                Some(file.rel.clone()),
                file.stamp.size,
                &facts,
            );
            if let Some(previous) = modules.get(&name) {
                // depmod's search order: updates/ and extra/ override kernel/.
                let keep_new = previous
                    .path
                    .as_deref()
                    .is_some_and(|p| p.starts_with("kernel/"))
                    && !file.rel.starts_with("kernel/");
                problems.push(ModuleProblem {
                    path: file.rel.clone(),
                    error: format!(
                        "duplicate module {name} (also {}); using {}",
                        previous.path.as_deref().unwrap_or("?"),
                        if keep_new {
                            file.rel.as_str()
                        } else {
                            previous.path.as_deref().unwrap_or("?")
                        }
                    ),
                });
                if !keep_new {
                    continue;
                }
            }
            modules.insert(name, module);
        }

        // Builtin modules: names from modules.builtin, facts (aliases) from
        // modules.builtin.modinfo.
        let builtin_names = read_depmod(fs_root, dir, "modules.builtin", &mut problems)
            .map(|t| depmod::parse_modules_builtin(&String::from_utf8_lossy(&t)))
            .unwrap_or_default();
        let builtin_info = read_depmod(fs_root, dir, "modules.builtin.modinfo", &mut problems)
            .map(|b| modinfo::parse_builtin_modinfo(&b))
            .unwrap_or_default();
        let all_builtin: BTreeSet<&String> =
            builtin_names.iter().chain(builtin_info.keys()).collect();
        for name in all_builtin {
            if let Err(e) = ModuleName::new(name) {
                let source = if builtin_names.contains(name) {
                    "modules.builtin"
                } else {
                    "modules.builtin.modinfo"
                };
                problems.push(ModuleProblem {
                    path: source.to_owned(),
                    error: format!("{e}; builtin module skipped"),
                });
                continue;
            }
            if modules.contains_key(name) {
                continue;
            }
            let info = builtin_info.get(name).cloned().unwrap_or_default();
            let mut m = module_from(
                name.clone(),
                None,
                0,
                &KoFacts {
                    modinfo: info,
                    ..KoFacts::default()
                },
            );
            m.builtin = true;
            modules.insert(name.clone(), m);
        }

        if let Some(loaded) = &opts.loaded {
            for m in modules.values_mut() {
                m.loaded = loaded.contains(&m.name);
            }
        }

        let mut tree = KernelTree {
            modules_dir: dir.clone(),
            modules: modules.into_values().collect(),
            problems,
            dep_source: DepSource::Modinfo,
            depmod: DepmodCheck::default(),
            cache: stats,
            fs_root: fs_root.to_owned(),
            index: HashMap::new(),
            aliases: AliasIndex::default(),
        };
        tree.reindex();
        let check_modinfo = listed.is_none();
        if let Some(dep) = dep {
            tree.apply_depmod(fs_root, dir, dep, check_modinfo);
        }
        tree.aliases = AliasIndex::build(&tree.modules);
        Ok(tree)
    }

    fn reindex(&mut self) {
        self.index = self
            .modules
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
    }

    /// Use depmod's output (`dep`, the parsed `modules.dep`, and the
    /// `modules.alias` and `modules.softdep` beside it), after checking it
    /// against the modules' own `.modinfo` when `check_modinfo` (not under
    /// [`Facts::Depmod`], which did not read it).
    fn apply_depmod(
        &mut self,
        fs_root: &Path,
        dir: &Path,
        dep: depmod::DepFile,
        check_modinfo: bool,
    ) {
        let problems = &mut self.problems;
        let mut text = |name| {
            read_depmod(fs_root, dir, name, problems)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let alias = text("modules.alias");
        let softdep = text("modules.softdep");
        let alias = alias.map(|t| depmod::parse_modules_alias(&t));
        let softdep = softdep
            .map(|t| depmod::parse_modules_softdep(&t))
            .unwrap_or_default();

        let check = if check_modinfo {
            self.check_depmod(&dep, alias.as_ref())
        } else {
            DepmodCheck {
                present: true,
                ..DepmodCheck::default()
            }
        };

        // depmod is what modprobe will actually use, so it wins.
        for m in self.modules.iter_mut().filter(|m| !m.builtin) {
            if let Some(listed) = dep.deps.get(&m.name) {
                m.depends = listed.clone();
            }
            if let Some(aliases) = alias.as_ref().and_then(|a| a.get(&m.name)) {
                if *aliases != m.aliases {
                    m.aliases = aliases.clone();
                    m.triggers = trigger::module_triggers(&m.name, &m.aliases);
                }
            }
            if let Some(sd) = softdep.get(&m.name) {
                merge_unique(&mut m.softdep_pre, &sd.pre);
                merge_unique(&mut m.softdep_post, &sd.post);
            }
        }
        self.dep_source = DepSource::Depmod;
        self.depmod = check;
    }

    /// Compare depmod's `dep` and `alias` with what the modules' own
    /// `.modinfo` says.
    fn check_depmod(
        &self,
        dep: &depmod::DepFile,
        alias: Option<&BTreeMap<String, Vec<String>>>,
    ) -> DepmodCheck {
        let mut check = DepmodCheck {
            present: true,
            checked: true,
            ..DepmodCheck::default()
        };
        for name in dep.deps.keys() {
            if !self.index.contains_key(name) {
                check.only_in_depmod.push(name.clone());
            }
        }
        for m in self.modules.iter().filter(|m| !m.builtin) {
            match dep.deps.get(&m.name) {
                None => check.missing_from_depmod.push(m.name.clone()),
                Some(listed) => {
                    let ours = self.hard_closure(&m.name);
                    let theirs: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
                    if ours.iter().map(String::as_str).collect::<BTreeSet<_>>() != theirs {
                        check.dep_mismatches.push(m.name.clone());
                    }
                }
            }
            if let Some(alias) = alias {
                let theirs: BTreeSet<&String> = alias.get(&m.name).into_iter().flatten().collect();
                let ours: BTreeSet<&String> = m.aliases.iter().collect();
                if theirs != ours {
                    check.alias_mismatches.push(m.name.clone());
                }
            }
        }
        check.agrees = check.only_in_depmod.is_empty()
            && check.missing_from_depmod.is_empty()
            && check.dep_mismatches.is_empty()
            && check.alias_mismatches.is_empty();
        check
    }

    /// Look a module up by canonical name.
    pub fn get(&self, name: &str) -> Option<&Module> {
        self.position(name).map(|i| &self.modules[i])
    }

    /// Index of a module in [`KernelTree::modules`].
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The hard dependencies of `name`, transitively, without `name` itself.
    pub fn hard_closure(&self, name: &str) -> BTreeSet<String> {
        self.closure_with(std::iter::once(name), false)
            .into_iter()
            .filter(|n| n != name)
            .collect()
    }

    /// Everything modprobe loads for `roots`: the modules themselves, their
    /// hard dependencies and their soft dependencies (pre and post),
    /// transitively. Names not in the tree are kept (they may be builtin
    /// modules missing from `modules.builtin`) so callers can report them.
    pub fn load_closure<'n>(&self, roots: impl IntoIterator<Item = &'n str>) -> BTreeSet<String> {
        self.closure_with(roots, true)
    }

    fn closure_with<'n>(
        &self,
        roots: impl IntoIterator<Item = &'n str>,
        soft: bool,
    ) -> BTreeSet<String> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut queue: VecDeque<String> = roots.into_iter().map(str::to_owned).collect();
        while let Some(name) = queue.pop_front() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(m) = self.get(&name) else { continue };
            let soft_deps = if soft {
                Some(m.softdep_pre.iter().chain(m.softdep_post.iter()))
            } else {
                None
            };
            for dep in m.depends.iter().chain(soft_deps.into_iter().flatten()) {
                for target in self.dependency_targets(dep) {
                    if !seen.contains(&target) {
                        queue.push_back(target);
                    }
                }
            }
        }
        seen
    }

    /// The modules a dependency name stands for. Hard dependencies are
    /// module names; a softdep may name an alias instead (Debian 6.12's
    /// libcrc32c has `softdep pre: crc32c`, an alias of `crc32c_intel` and
    /// `crc32c_generic`), which modprobe resolves like any request. A name
    /// nothing matches is returned as is (an unknown or builtin module).
    pub fn dependency_targets(&self, dep: &str) -> Vec<String> {
        let canonical = crate::canonical_name(dep);
        if self.get(&canonical).is_some() {
            return vec![canonical];
        }
        let matched: Vec<String> = self
            .resolve(dep)
            .into_iter()
            .map(|m| m.name.clone())
            .collect();
        if matched.is_empty() {
            vec![canonical]
        } else {
            matched
        }
    }
    /// Names in `allowed` that are not module names of this tree but that
    /// modprobe resolves ([`KernelTree::resolve`], through the aliases of
    /// modules.alias, globs included) to a module outside `allowed`: each
    /// with those modules, sorted. Allowing such a name (`net-pf-40`,
    /// `fs-xfs`) would let modprobe load the blocked module it names.
    /// Names resolving to nothing, or only to allowed modules, are fine.
    pub fn aliases_of_unallowed(&self, allowed: &BTreeSet<String>) -> Vec<(String, Vec<String>)> {
        let allowed_canon: BTreeSet<String> =
            allowed.iter().map(|a| crate::canonical_name(a)).collect();
        let mut out = Vec::new();
        for name in allowed {
            if self.get(&crate::canonical_name(name)).is_some() {
                continue;
            }
            let mut blocked: Vec<String> = self
                .resolve(name)
                .into_iter()
                .map(|m| m.name.clone())
                .filter(|m| !allowed_canon.contains(&crate::canonical_name(m)))
                .collect();
            blocked.sort();
            blocked.dedup();
            if !blocked.is_empty() {
                out.push((name.clone(), blocked));
            }
        }
        out
    }

    /// The modules whose aliases (or name) match a request string, the way
    /// modprobe resolves it: an exact module name first, else every alias
    /// pattern that matches (shell glob).
    pub fn resolve(&self, request: &str) -> Vec<&Module> {
        let canonical = crate::canonical_name(request);
        if let Some(m) = self.get(&canonical) {
            return vec![m];
        }
        // kmod normalizes `-` to `_` in both the request and the aliases.
        let request = crate::normalize_alias(request);
        self.aliases
            .matches(&request)
            .into_iter()
            .map(|i| &self.modules[i])
            .collect()
    }
}

fn module_from(name: String, path: Option<String>, file_bytes: u64, facts: &KoFacts) -> Module {
    let info: &ModInfo = &facts.modinfo;
    let mut softdep = SoftDep::default();
    merge_unique(&mut softdep.pre, &info.softdep_pre);
    merge_unique(&mut softdep.post, &info.softdep_post);
    let triggers = trigger::module_triggers(&name, &info.aliases);
    Module {
        triggers,
        name,
        path,
        builtin: false,
        loaded: false,
        text_bytes: facts.text_bytes,
        functions: facts.functions,
        file_bytes,
        aliases: info.aliases.clone(),
        depends: info.depends.clone(),
        softdep_pre: softdep.pre,
        softdep_post: softdep.post,
        weakdeps: info.weakdeps.clone(),
    }
}

fn merge_unique(into: &mut Vec<String>, from: &[String]) {
    for f in from {
        if !into.contains(f) {
            into.push(f.clone());
        }
    }
}

/// One depmod file of `dir`, capped at [`Limit::DEPMOD`]; `None` when it
/// is absent, and a problem (named by the file) when it cannot be used.
fn read_depmod(
    fs_root: &Path,
    dir: &Path,
    name: &str,
    problems: &mut Vec<ModuleProblem>,
) -> Option<Vec<u8>> {
    let path = dir.join(name);
    match bounded::read(fs_root, &path, Limit::DEPMOD) {
        Ok(b) => Some(b),
        // Absent is normal (an unpacked package); a dangling link is not.
        Err(e) if e.is_not_found() && fs::symlink_metadata(&path).is_err() => None,
        Err(e) => {
            problems.push(ModuleProblem {
                path: name.to_owned(),
                error: format!("{e}; ignored"),
            });
            None
        }
    }
}

/// Collect module files below `dir`. Symlinked directories (`build`,
/// `source`) are not followed; a symlinked module file is stamped by what
/// it resolves to inside `fs_root`.
fn walk(
    fs_root: &Path,
    root: &Path,
    rel: &str,
    out: &mut Vec<Found>,
    problems: &mut Vec<ModuleProblem>,
) -> std::io::Result<()> {
    let dir = if rel.is_empty() {
        root.to_owned()
    } else {
        root.join(rel)
    };
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if let Err(e) = walk(fs_root, root, &child, out, problems) {
                problems.push(ModuleProblem {
                    path: child,
                    error: format!("cannot read directory: {e}"),
                });
            }
        } else if Compression::from_path(Path::new(&*name)).is_some() {
            let meta = if file_type.is_symlink() {
                bounded::open(fs_root, &root.join(&child))
                    .and_then(|f| {
                        f.metadata().map_err(|source| bounded::ReadError::Io {
                            path: root.join(&child),
                            source,
                        })
                    })
                    .map_err(|e| e.to_string())
            } else {
                entry.metadata().map_err(|e| format!("cannot stat: {e}"))
            };
            match meta {
                Ok(meta) if meta.is_file() => out.push(Found {
                    rel: child,
                    stamp: FileStamp::of(&meta),
                }),
                Ok(_) => {}
                Err(error) => problems.push(ModuleProblem { path: child, error }),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
