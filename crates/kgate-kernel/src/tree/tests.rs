//! Tests of the module tree: loading, depmod facts, alias resolution.

use super::*;

/// The alias index answers exactly what a scan of every alias with
/// [`glob_match`] answers (the scan `resolve` did before the index).
#[test]
fn alias_index_matches_a_full_scan() {
    let dir = crate::testutil::TempDir::new("alias-index");
    let t = crate::testutil::FixtureTree::new(dir.path(), "6.1.0-t");
    let aliases: &[(&str, &[&str])] = &[
        ("vsock", &["net-pf-40", "vsock"]),
        (
            "e1000e",
            &[
                "pci:v00008086d000010D3sv*sd*bc*sc*i*",
                "pci:v00008086d*sv*sd*bc02sc00i*",
            ],
        ),
        ("any_fs", &["*-fs", "fs-*"]),
        (
            "classy",
            &["char-major-10-[0-9]", "net-pf-?", "tty-ldisc-[!0-9]x"],
        ),
        ("dashed", &["crypto-aes-x86_64", "crypto-aes"]),
        ("bracket", &["a[b", "[x"]),
    ];
    for (name, a) in aliases {
        t.module(&format!("kernel/{name}.ko"), a, &[], "");
    }
    let tree = t.load();
    let scan = |request: &str| -> Vec<String> {
        let r = crate::normalize_alias(request);
        tree.modules
            .iter()
            .filter(|m| {
                m.aliases
                    .iter()
                    .any(|a| glob_match(&crate::normalize_alias(a), &r))
            })
            .map(|m| m.name.clone())
            .collect()
    };
    let mut requests: Vec<String> = aliases
        .iter()
        .flat_map(|(_, a)| a.iter())
        .flat_map(|a| {
            [
                a.to_string(),
                a.replace('*', ""),
                a.replace(['*', '?'], "x9"),
            ]
        })
        .collect();
    requests.extend(
        [
            "net-pf-4",
            "net_pf_40",
            "net-pf-7",
            "ext4-fs",
            "fs-",
            "-fs",
            "char-major-10-7",
            "char-major-10-77",
            "tty-ldisc-ax",
            "tty-ldisc-1x",
            "crypto-aes",
            "a[b",
            "[x",
            "",
            "pci:v00008086d000010D3sv00001028sd0000040Bbc02sc00i00",
        ]
        .map(str::to_owned),
    );
    for r in &requests {
        if tree.get(&crate::canonical_name(r)).is_some() {
            continue; // a module name resolves to that module alone
        }
        let got: Vec<String> = tree
            .resolve(r)
            .into_iter()
            .map(|m| m.name.clone())
            .collect();
        assert_eq!(got, scan(r), "request {r:?}");
    }
    assert_eq!(tree.resolve("net-pf-7").len(), 1, "net-pf-? matches");
    assert_eq!(tree.resolve("ext4-fs").len(), 1, "*-fs matches");
}

/// `Facts::Depmod` takes what depmod lists from depmod's files without
/// reading them (a listed file here is not even a valid module), reads
/// the one it does not list, and says it checked nothing.
#[test]
fn depmod_facts_read_only_what_depmod_does_not_list() {
    let dir = crate::testutil::TempDir::new("depmod-facts");
    let t = crate::testutil::FixtureTree::new(dir.path(), "6.1.0-t");
    t.write("kernel/net/vsock.ko", "not an ELF file");
    t.module("kernel/fs/fresh.ko", &["fs-fresh"], &[], "");
    t.module("kernel/lib/dep.ko", &[], &[], "");
    t.write(
        "modules.dep",
        "kernel/net/vsock.ko: kernel/lib/dep.ko\nkernel/lib/dep.ko:\n",
    );
    t.write("modules.alias", "alias net-pf-40 vsock\n");
    t.write("modules.softdep", "softdep vsock pre: dep\n");
    let load = |facts| {
        KernelTree::load(&LoadOptions {
            modules_dir: t.path(""),
            fs_root: None,
            loaded: None,
            cache_dir: None,
            progress: None,
            facts,
        })
        .unwrap()
    };
    let tree = load(Facts::Depmod);
    let vsock = tree.get("vsock").unwrap();
    assert_eq!(vsock.aliases, ["net-pf-40"]);
    assert_eq!(vsock.depends, ["dep"]);
    assert_eq!(vsock.softdep_pre, ["dep"]);
    assert_eq!(vsock.text_bytes, 0);
    let fresh = tree.get("fresh").expect("the unlisted module is read");
    assert_eq!(fresh.aliases, ["fs-fresh"]);
    assert!(fresh.text_bytes > 0);
    assert_eq!(tree.dep_source, DepSource::Depmod);
    assert!(tree.depmod.present && !tree.depmod.checked && !tree.depmod.agrees);
    assert!(tree.problems.is_empty(), "{:?}", tree.problems);
    // A full load reads the broken file, and checks depmod.
    let full = load(Facts::Full);
    assert!(full.get("vsock").is_none());
    assert!(full
        .problems
        .iter()
        .any(|p| p.path == "kernel/net/vsock.ko"));
    assert!(full.depmod.checked);
    assert!(full
        .depmod
        .missing_from_depmod
        .contains(&"fresh".to_owned()));
}

#[test]
fn glob() {
    assert!(glob_match("net-pf-40", "net-pf-40"));
    assert!(!glob_match("net-pf-40", "net-pf-4"));
    assert!(glob_match(
        "pci:v00008086d*sv*",
        "pci:v00008086d00001572sv00001"
    ));
    assert!(glob_match("block-major-93-*", "block-major-93-0"));
    assert!(glob_match("a?c", "abc"));
    assert!(glob_match("x[0-9]y", "x5y"));
    assert!(!glob_match("x[!0-9]y", "x5y"));
    assert!(glob_match("*", ""));
    assert!(!glob_match("a*b", "acc"));
}
