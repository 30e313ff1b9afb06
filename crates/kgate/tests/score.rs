//! CLI tests of `kgate score` and `kgate explain` on the real Debian 6.12
//! generic kernel package (4,230 modules) with the real kernel CNA data
//! set, and a freeze policy built from a typical server's lsmod
//! (bench/server-lsmod.txt). Cross-checked against `kgate survey` and
//! `kgate policy diff`, which compute reachability on their own paths.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

mod common;
use common::*;

const GENERIC: &str = "linux-image-6.12.113+deb12-amd64-unsigned";

/// One imported database, kernel cache and server policy for every test
/// of this binary (reading 4,230 module files is the slow part).
struct Fixture {
    _dir: TempDir,
    data: PathBuf,
    cache: PathBuf,
    root: PathBuf,
    policy: PathBuf,
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let shared = shared_data()?;
        let root = debian_kernel(GENERIC)?;
        let dir = TempDir::new("score");
        let data = dir.path().join("data");
        let cache = dir.path().join("cache");
        run(
            kgate(&data)
                .args(["cve", "import"])
                .arg(shared.join("kernel-cve-files.csv.gz")),
            true,
        );
        let lsmod = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/server-lsmod.txt");
        let policy = dir.path().join("server.toml");
        run(
            kgate(&data)
                .args(["freeze", "--name", "server", "--cache-dir"])
                .arg(&cache)
                .arg("--root")
                .arg(&root)
                .arg("--loaded")
                .arg(&lsmod)
                .arg("-o")
                .arg(&policy),
            true,
        );
        Some(Fixture {
            _dir: dir,
            data,
            cache,
            root,
            policy,
        })
    })
    .as_ref()
}

fn on_generic(f: &Fixture, args: &[&str]) -> Command {
    let mut c = kgate(&f.data);
    c.args(args)
        .arg("--root")
        .arg(&f.root)
        .arg("--cache-dir")
        .arg(&f.cache);
    c
}

#[track_caller]
fn module<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

/// Before/after a server freeze: the module figures agree with `survey`
/// and `policy diff`, the trigger-kind breakdown adds up, CVE counts are
/// consistent, and the famous modules land where they should.
#[test]
fn score_of_a_server_freeze_on_debian_generic() {
    let Some(f) = fixture() else { return };
    let s = json_of(&run(
        on_generic(f, &["score", "--format", "json"])
            .arg("--policy")
            .arg(&f.policy),
        true,
    ));
    assert_eq!(s["schema"], "kgate.score/1");
    assert_eq!(s["kernel"]["release"], "6.12.113+deb12-amd64");
    assert_eq!(s["database"]["records"], 14626);
    assert_eq!(s["window"]["end"], "2026-08-21");
    assert_eq!(s["window"]["start"], "2025-08-21");
    assert_eq!(s["window"]["basis"], "newest_record");

    // Module figures: the same reachability as survey and policy diff.
    let survey = json_of(&run(
        &mut on_generic(f, &["survey", "--format", "json"]),
        true,
    ));
    let diff = json_of(&run(
        on_generic(f, &["policy", "diff", "--format", "json"])
            .arg(&f.policy)
            .arg("--loaded")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/server-lsmod.txt")),
        true,
    ));
    let before = &s["before"]["total"];
    let after = &s["after"]["total"];
    assert_eq!(
        before["modules"],
        survey["summary"]["modules_unprivileged_reachable"]
    );
    assert_eq!(
        before["text_bytes"],
        survey["summary"]["reachable_text_bytes"]
    );
    assert_eq!(
        before["functions"],
        survey["summary"]["reachable_functions"]
    );
    for k in ["modules", "text_bytes", "functions"] {
        assert_eq!(before[k], diff["before"][k], "{k}");
        assert_eq!(after[k], diff["after"][k], "{k}");
        assert_eq!(
            s["after_with_settings"]["total"][k], diff["after_with_settings"][k],
            "{k}"
        );
        let sum: u64 = s["before"]["by_trigger_kind"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v[k].as_u64().unwrap())
            .sum();
        assert_eq!(
            sum,
            before[k].as_u64().unwrap(),
            "by_trigger_kind sums to total: {k}"
        );
    }
    assert!(before["modules"].as_u64().unwrap() > 600, "{before}");
    assert!(after["modules"].as_u64().unwrap() < 100, "{after}");

    // CVEs: "only" within "any", HIGH+ and 12 months within all, after
    // within before, removed = before - after.
    for side in [before, after] {
        for c in ["cves_only", "cves_any"] {
            let all = side[c]["all"].as_u64().unwrap();
            assert!(side[c]["high_critical"].as_u64().unwrap() <= all);
            assert!(side[c]["last_12_months"].as_u64().unwrap() <= all);
        }
        assert!(side["cves_only"]["all"].as_u64() <= side["cves_any"]["all"].as_u64());
    }
    let b = before["cves_only"]["all"].as_u64().unwrap();
    let a = after["cves_only"]["all"].as_u64().unwrap();
    assert!(b > 2000, "{before}");
    assert!(
        a < b / 4,
        "a server freeze removes most module CVEs: {a} of {b}"
    );
    assert_eq!(s["removed"]["cves_only"]["all"].as_u64().unwrap(), b - a);
    let attr = &s["attribution"];
    assert_eq!(attr["cves"], 14626);
    assert!(attr["only_one_module"].as_u64().unwrap() > 5000, "{attr}");

    // Famous modules: reachable before; sctp and bluetooth blocked by the
    // freeze, ext4 and nf_tables (the server uses them) still there.
    let mods = &s["modules"];
    for (name, after) in [
        ("sctp", false),
        ("bluetooth", false),
        ("ext4", true),
        ("nf_tables", true),
    ] {
        let m = module(mods, name);
        assert_eq!(m["reachable_before"], true, "{name}");
        assert_eq!(m["reachable_after"], after, "{name}");
        assert!(m["cves_any"]["all"].as_u64().unwrap() >= 20, "{name}: {m}");
    }
    assert_eq!(module(mods, "sctp")["kind"], "socket_protocol");
    assert_eq!(module(mods, "nf_tables")["needs_userns"], true);
}

/// Without a policy, text for people: the table, the window's basis and
/// the data's provenance with its terms-of-use pointer.
#[test]
fn score_text_without_policy() {
    let Some(f) = fixture() else { return };
    let out = run(
        &mut on_generic(f, &["score", "--as-of", "2026-01-01"]),
        true,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("published after 2025-01-01 up to 2026-01-01 (--as-of)"),
        "{text}"
    );
    assert!(text.contains("socket_family"), "{text}");
    assert!(text.contains("TOTAL"), "{text}");
    assert!(text.contains("CVE Terms of Use"), "{text}");
    assert!(!text.contains("→"), "no policy, no after column: {text}");
    let out = run(
        &mut on_generic(f, &["score", "--as-of", "2026-13-01"]),
        false,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// `explain sctp`: the CVEs the sample records name, placed by the right
/// rule, with the module's trigger and reachability.
#[test]
fn explain_sctp_and_nf_tables() {
    let Some(f) = fixture() else { return };
    let e = json_of(&run(
        &mut on_generic(f, &["explain", "sctp", "--format", "json"]),
        true,
    ));
    assert_eq!(e["schema"], "kgate.explain/1");
    assert_eq!(e["module"], "sctp");
    assert_eq!(e["source_dir"], "net/sctp");
    assert_eq!(e["builtin"], false);
    assert_eq!(e["reach"]["unprivileged"], true);
    assert!(e["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["alias"] == "net-pf-2-proto-132"));
    // Its binary names its own files.
    assert!(e["object_files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "net/sctp/socket.c"));
    let cve = e["cves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "CVE-2021-46999")
        .expect("CVE-2021-46999 (net/sctp/sm_statefuns.c) is sctp's");
    assert_eq!(cve["attribution"], "only");
    assert_eq!(cve["files_here"][0][0], "net/sctp/sm_statefuns.c");
    assert_eq!(
        e["cves_only"].as_u64().unwrap(),
        e["cves"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["attribution"] == "only")
            .count() as u64
    );

    // nf_tables: net/netfilter/nft_set_rbtree.c is linked into nf_tables.ko
    // (a directory of 200+ modules; the file names no module).
    let e = json_of(&run(
        &mut on_generic(f, &["explain", "nf-tables", "--format", "json"]),
        true,
    ));
    assert_eq!(e["module"], "nf_tables");
    assert_eq!(e["reach"]["needs_userns"], true);
    for id in ["CVE-2024-26581", "CVE-2023-52433"] {
        let c = e["cves"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} is nf_tables'"));
        assert_eq!(c["attribution"], "only", "{id}");
    }
    // sctp_diag is sctp's neighbour; sctp's own CVEs are not its.
    let d = json_of(&run(
        &mut on_generic(f, &["explain", "sctp_diag", "--format", "json"]),
        true,
    ));
    assert!(d["cves"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != "CVE-2021-46999"));

    let text = String::from_utf8_lossy(&run(&mut on_generic(f, &["explain", "sctp"]), true).stdout)
        .into_owned();
    assert!(text.contains("CVE-2021-46999"), "{text}");
    assert!(text.contains("CAN get it loaded"), "{text}");
}

/// Errors: an unknown module (with a suggestion), and no database.
#[test]
fn explain_and_score_errors() {
    let Some(f) = fixture() else { return };
    let out = run(&mut on_generic(f, &["explain", "sctpp"]), false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has no module sctpp; did you mean sctp?"),
        "{err}"
    );
    let empty = TempDir::new("no-db");
    let out = run(
        kgate(empty.path())
            .args(["score", "--root"])
            .arg(&f.root)
            .arg("--cache-dir")
            .arg(&f.cache),
        false,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no CVE database; run `kgate cve import PATH`"),
        "{err}"
    );
}
