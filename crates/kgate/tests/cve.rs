//! CLI tests of `kgate cve`: importing the real kernel CNA data set
//! (`../shared/data`, never committed), the CNA's JSON records as a vulns
//! checkout, a bare clone and a cvelistV5 tree, the update path with and
//! without a reachable repository, and bad input that must change nothing.
//!
//! The data set is found at `$KGATE_SHARED_DATA`, else `../shared/data`
//! next to the repository. Tests skip loudly without it, and fail instead
//! when `KGATE_REQUIRE_SHARED_DATA=1` (set by `scripts/test.sh`, hence CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn info(data: &Path) -> Value {
    json_of(&run(
        kgate(data).args(["cve", "info", "--format", "json"]),
        true,
    ))
}

/// A vulns-repository working tree holding the sample CNA records, in
/// two commits with known dates.
fn vulns_checkout(samples: &Path, dir: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    git(dir, &["init", "-q", "-b", "main"]);
    for (n, f) in files.iter().enumerate() {
        let id = f.file_stem().unwrap().to_str().unwrap().to_owned();
        let year = id.split('-').nth(1).unwrap();
        let rel = format!("cve/published/{year}/{id}.json");
        std::fs::create_dir_all(dir.join(format!("cve/published/{year}"))).unwrap();
        std::fs::copy(f, dir.join(&rel)).unwrap();
        git(dir, &["add", &rel]);
        // The first half "appears" on 2024-03-01, the rest on 2025-01-15.
        let date = if n < files.len() / 2 {
            "2024-03-01T12:00:00Z"
        } else {
            "2025-01-15T12:00:00Z"
        };
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["commit", "-q", "-m", &id])
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        ids.push(id);
    }
    ids
}

#[track_caller]
fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["cves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing"))
}

/// The whole kernel CNA data set from the CSV: every record, the dates,
/// the terms of use, and records that match the CSV's own fields.
#[test]
fn imports_the_real_csv() {
    let Some(data) = shared_data() else { return };
    let home = TempDir::new("cve-home");
    let out = run(
        kgate(home.path())
            .args(["cve", "import"])
            .arg(data.join("kernel-cve-files.csv.gz")),
        true,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("imported 14626 CVE records"), "{text}");
    // The notice is shown on import and kept.
    assert!(text.contains("MITRE"), "{text}");
    let i = info(home.path());
    assert_eq!(i["schema"], "kgate.cve-info/1");
    assert_eq!(i["records"], 14626);
    assert_eq!(i["source_kind"], "csv");
    assert_eq!(i["oldest_published"], "2024-02-12");
    assert_eq!(i["newest_published"], "2026-08-21");
    assert!(i["terms_of_use"]["from"]
        .as_str()
        .unwrap()
        .ends_with("CVE-TERMS-OF-USE.txt"));
    let terms = std::fs::read_to_string(data.join("CVE-TERMS-OF-USE.txt")).unwrap();
    assert_eq!(i["terms_of_use"]["text"], terms.as_str());
    assert!(home.exists("kgate/cve-db.json"));
    // No temp file left next to the database.
    assert_eq!(
        home.listing().iter().filter(|f| f.contains(".tmp")).count(),
        0
    );

    let list = json_of(&run(
        kgate(home.path()).args(["cve", "list", "--path", "net/sctp", "--format", "json"]),
        true,
    ));
    assert_eq!(list["schema"], "kgate.cve-list/1");
    let c = find(&list, "CVE-2021-46999");
    assert_eq!(c["severity"], "CRITICAL");
    assert_eq!(c["published"], "2024-02-28");
    assert_eq!(c["files"], serde_json::json!(["net/sctp/sm_statefuns.c"]));
    assert_eq!(c["fix_commit"], "35b4f24415c854cd718ccdf38dbea6297f010aae");
    // Every listed record touches net/sctp/ and none below a look-alike
    // directory sneaks in.
    for c in list["cves"].as_array().unwrap() {
        assert!(
            c["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f.as_str().unwrap().starts_with("net/sctp/")),
            "{c}"
        );
    }
    assert!(list["count"].as_u64().unwrap() > 40, "{}", list["count"]);
}

/// The CNA's JSON records as a checkout (dates from git history), a bare
/// clone read through git, and a cvelistV5 tree agree with the CSV on
/// every field the CSV has.
#[test]
fn imports_cna_json_records_in_every_layout() {
    let Some(data) = shared_data() else { return };
    let work = TempDir::new("cve-json");
    let checkout = work.path().join("vulns");
    std::fs::create_dir_all(&checkout).unwrap();
    let ids = vulns_checkout(&data.join("cve-sample"), &checkout);
    assert_eq!(ids.len(), 8);

    // The CSV is the reference: the same records, reduced the same way.
    let reference = TempDir::new("cve-ref");
    run(
        kgate(reference.path())
            .args(["cve", "import"])
            .arg(data.join("kernel-cve-files.csv.gz")),
        true,
    );
    let all = json_of(&run(
        kgate(reference.path()).args(["cve", "list", "--format", "json"]),
        true,
    ));

    let bare = work.path().join("vulns.git");
    let out = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&checkout)
        .arg(&bare)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    for (src, kind) in [(&checkout, "vulns_checkout"), (&bare, "vulns_bare")] {
        let home = TempDir::new("cve-home");
        run(kgate(home.path()).args(["cve", "import"]).arg(src), true);
        let i = info(home.path());
        assert_eq!(i["records"], 8, "{kind}");
        assert_eq!(i["source_kind"], kind);
        assert_eq!(i["source_commit"].as_str().unwrap().len(), 40, "{kind}");
        // No terms file in the repository: the pointer is kept.
        assert!(i["terms_of_use"]["from"].is_null());
        assert!(i["terms_of_use"]["text"]
            .as_str()
            .unwrap()
            .contains("https://www.cve.org/Legal/TermsOfUse"));
        let list = json_of(&run(
            kgate(home.path()).args(["cve", "list", "--format", "json"]),
            true,
        ));
        for (n, id) in ids.iter().enumerate() {
            let got = find(&list, id);
            let want = find(&all, id);
            for field in [
                "files",
                "fix_commit",
                "title",
                "severity",
                "score",
                "vector",
            ] {
                assert_eq!(got[field], want[field], "{kind} {id} {field}");
            }
            let date = if n < ids.len() / 2 {
                "2024-03-01"
            } else {
                "2025-01-15"
            };
            assert_eq!(got["published"], date, "{kind} {id}");
        }
    }

    // cvelistV5: cves/YEAR/NNxxx/CVE-*.json, dates from datePublished, and
    // records of other CNAs skipped.
    let cvelist = work.path().join("cvelistV5");
    for id in &ids {
        let mut rec: Value = serde_json::from_slice(
            &std::fs::read(data.join("cve-sample").join(format!("{id}.json"))).unwrap(),
        )
        .unwrap();
        rec["cveMetadata"]["assignerShortName"] = "Linux".into();
        rec["cveMetadata"]["assignerOrgId"] = "416baaa9-dc9f-4396-8d5f-8c081fb06d67".into();
        rec["cveMetadata"]["datePublished"] = "2024-06-30T08:00:00.000Z".into();
        let year = id.split('-').nth(1).unwrap();
        let dir = cvelist.join(format!("cves/{year}/1xxx"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{id}.json")), rec.to_string()).unwrap();
    }
    let other = serde_json::json!({
        "cveMetadata": {"cveId": "CVE-2024-0001", "state": "PUBLISHED",
                        "assignerShortName": "other", "assignerOrgId": "00000000-0000-0000-0000-000000000000"},
        "containers": {"cna": {"affected": [{"programFiles": ["x/y.c"]}]}}
    });
    std::fs::write(
        cvelist.join("cves/2024/1xxx/CVE-2024-0001.json"),
        other.to_string(),
    )
    .unwrap();
    let home = TempDir::new("cve-home");
    run(
        kgate(home.path()).args(["cve", "import"]).arg(&cvelist),
        true,
    );
    let i = info(home.path());
    assert_eq!(i["records"], 8);
    assert_eq!(i["source_kind"], "cvelist");
    assert_eq!(i["newest_published"], "2024-06-30");
    assert_eq!(
        i["skipped"],
        serde_json::json!([["records of other CNAs", 1]])
    );
}

/// `update` without a reachable repository says so, and changes nothing:
/// the database stays, and no half-cloned directory is left behind.
#[test]
fn update_offline_says_so_and_changes_nothing() {
    let Some(data) = shared_data() else { return };
    let home = TempDir::new("cve-home");
    run(
        kgate(home.path())
            .args(["cve", "import"])
            .arg(data.join("kernel-cve-files.csv.gz")),
        true,
    );
    let before = std::fs::read(home.path().join("kgate/cve-db.json")).unwrap();
    // Port 9 (discard) on loopback refuses connections everywhere.
    let out = run(
        kgate(home.path()).args(["cve", "update", "--url", "http://127.0.0.1:9/vulns.git"]),
        false,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot clone http://127.0.0.1:9/vulns.git"),
        "{err}"
    );
    assert!(err.contains("needs network access"), "{err}");
    assert!(err.contains("The database was not changed"), "{err}");
    assert!(err.contains("kgate cve import PATH"), "{err}");
    assert_eq!(
        std::fs::read(home.path().join("kgate/cve-db.json")).unwrap(),
        before
    );
    assert_eq!(home.listing().len(), 2, "{:?}", home.listing());
}

/// `update` from a reachable repository (a local one here) clones it into
/// the data directory, imports it, and fetches on the next run.
#[test]
fn update_clones_then_fetches() {
    let Some(data) = shared_data() else { return };
    let work = TempDir::new("cve-upd");
    let upstream = work.path().join("upstream");
    std::fs::create_dir_all(&upstream).unwrap();
    vulns_checkout(&data.join("cve-sample"), &upstream);
    let url = upstream.display().to_string();
    let home = TempDir::new("cve-home");
    let out = run(
        kgate(home.path()).args(["cve", "update", "--url", &url]),
        true,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("updated 8 CVE records"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(home.exists("kgate/vulns.git/HEAD"));
    let i = info(home.path());
    assert_eq!(i["source"], url.as_str());
    assert_eq!(i["source_kind"], "vulns_bare");
    // Upstream removes a record: the next update sees it.
    git(
        &upstream,
        &["rm", "-q", "cve/published/2021/CVE-2021-46999.json"],
    );
    git(&upstream, &["commit", "-q", "-m", "reject"]);
    run(
        kgate(home.path()).args(["cve", "update", "--url", &url]),
        true,
    );
    assert_eq!(info(home.path())["records"], 7);
}

/// Bad input is refused with a clear message and leaves the database as
/// it was.
#[test]
fn bad_input_changes_nothing() {
    let home = TempDir::new("cve-home");
    let out = run(
        kgate(home.path()).args(["cve", "import", "/nonexistent/vulns"]),
        false,
    );
    assert!(
        stderr(&out).contains("no such file or directory"),
        "{}",
        stderr(&out)
    );
    let out = run(kgate(home.path()).args(["cve", "info"]), false);
    assert!(
        stderr(&out).contains("kgate cve import"),
        "{}",
        stderr(&out)
    );

    home.write("bad.csv", "cve_id,title\nCVE-2024-1,x\n");
    let out = run(
        kgate(home.path())
            .args(["cve", "import"])
            .arg(home.path().join("bad.csv")),
        false,
    );
    let err = stderr(&out);
    assert!(err.contains("lacks column(s)"), "{err}");
    assert!(err.contains("the database was not changed"), "{err}");
    assert!(!home.exists("kgate/cve-db.json"));

    home.write("dir/README", "not a repository");
    let out = run(
        kgate(home.path())
            .args(["cve", "import"])
            .arg(home.path().join("dir")),
        false,
    );
    assert!(
        stderr(&out).contains("not a CVE source"),
        "{}",
        stderr(&out)
    );
}
