//! The score: what unprivileged users can get loaded (modules, code bytes,
//! functions, CVEs), broken down by trigger kind, before and after a
//! policy's allowlist.
//!
//! Reachability comes from [`kgate_kernel::reach`]; a module's trigger kind
//! is the kind of the trigger that makes it reachable (its own, or the one
//! at the root of the dependency chain that pulls it in). CVEs come from an
//! [`Attribution`]: a CVE counts as reachable under "only" when its only
//! module is reachable, under "any" when one of its modules is. Builtin
//! modules are always present and never counted as autoload surface.

use std::collections::{BTreeMap, BTreeSet};

use kgate_kernel::reach::{Reach, Via};
use kgate_kernel::tree::KernelTree;
use kgate_kernel::trigger::TriggerKind;
use serde::Serialize;

use crate::attr::Attribution;
use crate::db::{date_from_days, days_from_date, today_utc, CveDb};

/// How the "recent" window's end was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WindowBasis {
    /// Given by the caller (`--as-of`).
    AsOf,
    /// The newest `published` date in the database (the default: a stale
    /// database then still has a full year of records).
    NewestRecord,
    /// Today (the database has no dates).
    Today,
}

impl WindowBasis {
    /// In words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            WindowBasis::AsOf => "--as-of",
            WindowBasis::NewestRecord => "the database's newest record",
            WindowBasis::Today => "today",
        }
    }
}

/// The "last 12 months" window: `published` in `(start, end]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Exclusive start (`end` minus 365 days).
    pub start: String,
    /// Inclusive end.
    pub end: String,
    /// How `end` was chosen.
    pub basis: WindowBasis,
}

impl Window {
    /// The 365 days ending at `as_of`, else at the database's newest
    /// record, else today.
    pub fn new(db: &CveDb, as_of: Option<&str>) -> Window {
        let (end, basis) = match (as_of, &db.meta.newest_published) {
            (Some(d), _) => (d.to_owned(), WindowBasis::AsOf),
            (None, Some(d)) => (d.clone(), WindowBasis::NewestRecord),
            (None, None) => (today_utc(), WindowBasis::Today),
        };
        let start = days_from_date(&end)
            .map(|d| date_from_days(d - 365))
            .unwrap_or_default();
        Window { start, end, basis }
    }

    /// `date` lies in the window.
    pub fn contains(&self, date: Option<&str>) -> bool {
        date.is_some_and(|d| {
            let d = d.get(..10).unwrap_or(d);
            d > self.start.as_str() && d <= self.end.as_str()
        })
    }
}

/// CVE counts of one slice of surface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CveCounts {
    /// All CVEs.
    pub all: usize,
    /// The CNA rated them HIGH or CRITICAL.
    pub high_critical: usize,
    /// Published in the window.
    pub last_12_months: usize,
}

impl CveCounts {
    fn of<'a>(ids: impl IntoIterator<Item = &'a usize>, db: &CveDb, w: &Window) -> CveCounts {
        let mut c = CveCounts::default();
        for &i in ids {
            let r = &db.cves[i];
            c.all += 1;
            if r.severity.is_some_and(|s| s.is_high_or_critical()) {
                c.high_critical += 1;
            }
            if w.contains(r.published.as_deref()) {
                c.last_12_months += 1;
            }
        }
        c
    }

    fn minus(self, o: CveCounts) -> CveCounts {
        CveCounts {
            all: self.all.saturating_sub(o.all),
            high_critical: self.high_critical.saturating_sub(o.high_critical),
            last_12_months: self.last_12_months.saturating_sub(o.last_12_months),
        }
    }
}

/// Reachable surface: module code and the CVEs attributed to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Surface {
    /// Loadable modules an unprivileged user can cause to load.
    pub modules: usize,
    /// Their executable code, bytes.
    pub text_bytes: u64,
    /// Their functions.
    pub functions: u64,
    /// CVEs whose every code file is in one of these modules ("only").
    pub cves_only: CveCounts,
    /// CVEs with a code file in one of these modules ("any").
    pub cves_any: CveCounts,
}

impl Surface {
    /// `self - other`, field by field (never below zero).
    pub fn minus(self, o: Surface) -> Surface {
        Surface {
            modules: self.modules.saturating_sub(o.modules),
            text_bytes: self.text_bytes.saturating_sub(o.text_bytes),
            functions: self.functions.saturating_sub(o.functions),
            cves_only: self.cves_only.minus(o.cves_only),
            cves_any: self.cves_any.minus(o.cves_any),
        }
    }
}

/// The surface in one situation (before or after), in total and by the
/// trigger kind that makes each module reachable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Side {
    /// Everything (CVEs counted once even when several modules hold them).
    pub total: Surface,
    /// Only through a user namespace.
    pub needs_userns: Surface,
    /// By trigger kind; kinds with no reachable module are left out.
    pub by_trigger_kind: BTreeMap<TriggerKind, Surface>,
}

/// One module with CVEs, for "top modules" tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleScore {
    /// Module name.
    pub name: String,
    /// Code bytes.
    pub text_bytes: u64,
    /// Functions.
    pub functions: u32,
    /// CVEs only in this module.
    pub cves_only: CveCounts,
    /// CVEs touching this module.
    pub cves_any: CveCounts,
    /// Reachable before the policy.
    pub reachable_before: bool,
    /// Reachable after (equals `reachable_before` without a policy).
    pub reachable_after: bool,
    /// The trigger kind it is reachable through (before), if reachable.
    pub kind: Option<TriggerKind>,
    /// Reachable only through a user namespace.
    pub needs_userns: bool,
}

/// The trigger kind a module is reachable through.
pub fn via_kind(r: &Reach) -> Option<TriggerKind> {
    match r.via.as_ref()? {
        Via::Trigger { kind, .. } | Via::Dependency { kind, .. } => Some(*kind),
    }
}

/// The surface of `reach` (one entry per tree module, in tree order).
/// `attr` must have been computed on a [`crate::attr::SourceMap`] of the
/// same tree (its first modules are the tree's, in order).
pub fn side(
    tree: &KernelTree,
    reach: &[Reach],
    attr: &Attribution,
    db: &CveDb,
    w: &Window,
) -> Side {
    #[derive(Default)]
    struct Acc {
        modules: usize,
        text_bytes: u64,
        functions: u64,
        only: BTreeSet<usize>,
        any: BTreeSet<usize>,
    }
    impl Acc {
        fn add(&mut self, m: &kgate_kernel::tree::Module, c: &crate::attr::ModuleCves) {
            self.modules += 1;
            self.text_bytes += m.text_bytes;
            self.functions += u64::from(m.functions);
            self.only.extend(&c.only);
            self.any.extend(&c.any);
        }
        fn surface(&self, db: &CveDb, w: &Window) -> Surface {
            Surface {
                modules: self.modules,
                text_bytes: self.text_bytes,
                functions: self.functions,
                cves_only: CveCounts::of(&self.only, db, w),
                cves_any: CveCounts::of(&self.any, db, w),
            }
        }
    }
    let mut total = Acc::default();
    let mut userns = Acc::default();
    let mut kinds: BTreeMap<TriggerKind, Acc> = BTreeMap::new();
    let empty = crate::attr::ModuleCves::default();
    for (i, (m, r)) in tree.modules.iter().zip(reach).enumerate() {
        if !r.unprivileged || m.builtin {
            continue;
        }
        let c = attr.modules.get(i).unwrap_or(&empty);
        total.add(m, c);
        if r.needs_userns {
            userns.add(m, c);
        }
        if let Some(k) = via_kind(r) {
            kinds.entry(k).or_default().add(m, c);
        }
    }
    Side {
        total: total.surface(db, w),
        needs_userns: userns.surface(db, w),
        by_trigger_kind: kinds
            .into_iter()
            .map(|(k, a)| (k, a.surface(db, w)))
            .collect(),
    }
}

/// CVEs that no policy can remove: attributed to builtin modules, or
/// touching code outside every module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotRemovable {
    /// CVEs whose only module is builtin.
    pub builtin_only: CveCounts,
    /// CVEs with no code file in any module (core kernel, ambiguous or
    /// other architectures).
    pub no_module: CveCounts,
}

/// Before and after a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Score {
    /// The "last 12 months" window.
    pub window: Window,
    /// Without the policy.
    pub before: Side,
    /// With the policy's allowlist (None without a policy).
    pub after: Option<Side>,
    /// `before.total - after.total`.
    pub removed: Option<Surface>,
    /// CVEs outside the autoload surface.
    pub not_removable: NotRemovable,
    /// Modules reachable before that carry at least one CVE, most CVEs
    /// ("any") first.
    pub modules: Vec<ModuleScore>,
}

impl Score {
    /// Score `tree`: `before` is the reachability without a policy, `after`
    /// the reachability under it (see
    /// [`kgate_kernel::reach::compute_filtered`]).
    pub fn compute(
        tree: &KernelTree,
        attr: &Attribution,
        db: &CveDb,
        window: Window,
        before: &[Reach],
        after: Option<&[Reach]>,
    ) -> Score {
        let b = side(tree, before, attr, db, &window);
        let a = after.map(|r| side(tree, r, attr, db, &window));
        let removed = a.as_ref().map(|a| b.total.minus(a.total));
        let builtin_only: Vec<usize> = attr
            .cves
            .iter()
            .filter(|c| {
                c.only
                    .is_some_and(|m| tree.modules.get(m).is_none_or(|x| x.builtin))
            })
            .map(|c| c.cve)
            .collect();
        let no_module: Vec<usize> = attr
            .cves
            .iter()
            .filter(|c| c.any.is_empty() && c.touches_core)
            .map(|c| c.cve)
            .collect();
        let mut modules: Vec<ModuleScore> = tree
            .modules
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                !m.builtin && before[*i].unprivileged && !attr.modules[*i].any.is_empty()
            })
            .map(|(i, m)| ModuleScore {
                name: m.name.clone(),
                text_bytes: m.text_bytes,
                functions: m.functions,
                cves_only: CveCounts::of(&attr.modules[i].only, db, &window),
                cves_any: CveCounts::of(&attr.modules[i].any, db, &window),
                reachable_before: true,
                reachable_after: after.is_none_or(|a| a[i].unprivileged),
                kind: via_kind(&before[i]),
                needs_userns: before[i].needs_userns,
            })
            .collect();
        modules.sort_by(|a, b| {
            b.cves_any
                .all
                .cmp(&a.cves_any.all)
                .then_with(|| a.name.cmp(&b.name))
        });
        Score {
            not_removable: NotRemovable {
                builtin_only: CveCounts::of(&builtin_only, db, &window),
                no_module: CveCounts::of(&no_module, db, &window),
            },
            window,
            before: b,
            after: a,
            removed,
            modules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{CveRecord, Severity, SourceKind, TermsOfUse};
    use kgate_kernel::reach::{self, ReachContext};
    use kgate_kernel::testutil::{elf_module, FixtureTree, TempDir};

    fn cve(id: &str, published: &str, severity: Option<Severity>, files: &[&str]) -> CveRecord {
        CveRecord {
            id: id.to_owned(),
            published: Some(published.to_owned()),
            severity,
            score: None,
            vector: None,
            files: files.iter().map(|f| f.to_string()).collect(),
            title: id.to_owned(),
            fix_commit: None,
        }
    }

    /// A tree where sctp (socket_protocol) and sctp_diag (sock_diag) are
    /// reachable and foo is not; foo's binary names net/sctp/auth.c.
    fn fixture(dir: &TempDir) -> KernelTree {
        let t = FixtureTree::new(dir.path(), "6.12.0-test");
        t.module("kernel/net/sctp/sctp.ko", &["net-pf-2-proto-132"], &[], "");
        t.module(
            "kernel/net/sctp/sctp_diag.ko",
            &["net-pf-16-proto-4-type-2-132"],
            &["sctp"],
            "",
        );
        let mut foo = elf_module("foo", &[], &[], "");
        foo.extend_from_slice(b"\0net/sctp/auth.c\0");
        t.write_bytes("kernel/net/foo/foo.ko", &foo);
        t.load()
    }

    #[test]
    fn counts_only_and_any_by_kind_once_per_total_and_after_a_block() {
        let dir = TempDir::new("score");
        let tree = fixture(&dir);
        let db = CveDb::new(
            SourceKind::Csv,
            "test".into(),
            vec![
                cve(
                    "CVE-2026-1",
                    "2026-05-01",
                    Some(Severity::High),
                    &["net/sctp/socket.c"],
                ),
                cve(
                    "CVE-2026-2",
                    "2026-05-02",
                    None,
                    &["net/sctp/diag.c", "net/core/sock.c"],
                ),
                cve(
                    "CVE-2025-3",
                    "2025-01-01",
                    Some(Severity::Critical),
                    &[
                        "net/sctp/socket.c",
                        "net/sctp/diag.c",
                        "include/net/sctp/sctp.h",
                    ],
                ),
                cve(
                    "CVE-2026-4",
                    "2026-05-03",
                    None,
                    &["include/net/sctp/sctp.h"],
                ),
                cve("CVE-2026-5", "2026-05-04", None, &["net/sctp/auth.c"]),
            ],
            TermsOfUse::default(),
        );
        let cache = TempDir::new("score-cache");
        let objects = crate::objects::ObjectIndex::scan(&tree, Some(cache.path()), None);
        assert_eq!(objects.read, 3);
        let again = crate::objects::ObjectIndex::scan(&tree, Some(cache.path()), None);
        assert_eq!((again.read, again.cached), (0, 3));
        assert_eq!(again.modules, objects.modules);
        let map = crate::attr::SourceMap::new(&tree, &objects);
        let attr = Attribution::compute(&db, &map);
        // The binary's own string beats the directory: auth.c is foo's.
        let foo = map.position("foo").unwrap();
        assert_eq!(attr.cves[4].only, Some(foo));
        assert_eq!(attr.summary.no_code_file, 1);

        let ctx = ReachContext::default();
        let before = reach::compute(&tree, &ctx);
        let sctp = tree.position("sctp").unwrap();
        let after = reach::compute_filtered(&tree, &ctx, |m| m.name != "sctp");
        assert!(before[sctp].unprivileged && !after[sctp].unprivileged);
        let window = Window::new(&db, None);
        assert_eq!(window.end, "2026-05-04");
        assert_eq!(window.basis, WindowBasis::NewestRecord);
        let s = Score::compute(&tree, &attr, &db, window, &before, Some(&after));

        let t = s.before.total;
        assert_eq!(t.modules, 2, "foo has no trigger");
        // only: CVE-1 (sctp). CVE-2 touches core, CVE-3 two modules,
        // CVE-5 is foo's (unreachable).
        assert_eq!(
            t.cves_only,
            CveCounts {
                all: 1,
                high_critical: 1,
                last_12_months: 1
            }
        );
        // any: CVE-1, 2, 3, once each although CVE-3 is in both modules.
        assert_eq!(
            t.cves_any,
            CveCounts {
                all: 3,
                high_critical: 2,
                last_12_months: 2
            }
        );
        let k = &s.before.by_trigger_kind;
        assert_eq!(k[&TriggerKind::SocketProtocol].cves_any.all, 2);
        assert_eq!(k[&TriggerKind::SockDiag].cves_any.all, 2);
        assert_eq!(k[&TriggerKind::SockDiag].cves_only.all, 0);

        let a = s.after.as_ref().unwrap().total;
        assert_eq!(a.modules, 1);
        assert_eq!(a.cves_only.all, 0);
        assert_eq!(a.cves_any.all, 2);
        let r = s.removed.unwrap();
        assert_eq!((r.modules, r.cves_only.all, r.cves_any.all), (1, 1, 1));
        assert_eq!(s.not_removable.no_module.all, 0);
        assert_eq!(s.modules.len(), 2);
        assert!(
            !s.modules
                .iter()
                .find(|m| m.name == "sctp")
                .unwrap()
                .reachable_after
        );
    }

    #[test]
    fn window_from_as_of_and_bounds() {
        let db = CveDb::new(
            SourceKind::Csv,
            "t".into(),
            Vec::new(),
            TermsOfUse::default(),
        );
        let w = Window::new(&db, Some("2026-03-01"));
        assert_eq!(
            (w.start.as_str(), w.basis),
            ("2025-03-01", WindowBasis::AsOf)
        );
        assert!(w.contains(Some("2026-03-01")));
        assert!(!w.contains(Some("2025-03-01")));
        assert!(w.contains(Some("2025-03-02T00:00:00Z")));
        assert!(!w.contains(None));
        assert_eq!(Window::new(&db, None).basis, WindowBasis::Today);
    }
}
