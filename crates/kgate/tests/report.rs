//! CLI test of `kgate report --html`: a report on the Debian 6.12 cloud
//! kernel package with a policy, a HAP profile and the CVE database
//! imported from the kernel CNA data (`../shared/data`), checked as text (nothing
//! in it may load anything from the network) and rendered in headless
//! Chromium (Debian's `chromium` package): the key figures must be in the
//! rendered DOM, and a screenshot is saved for people to look at
//! (`target/kgate-report.png`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::*;

fn kgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
}

/// kgate with its CVE database in `data`.
fn kgate_data(data: &Path) -> Command {
    let mut c = kgate();
    c.env("XDG_DATA_HOME", data);
    c
}

#[track_caller]
fn ok(cmd: &mut Command) -> String {
    let out: Output = cmd.output().expect("failed to start kgate");
    assert!(
        out.status.success(),
        "kgate failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// Whether `dom` shows `n` between `before` and `after`, written with
/// comma thousands separators (1,234,567). Found by value, so that the
/// test does not carry its own copy of the page's number formatting.
fn shows_number(dom: &str, before: &str, n: u64, after: &str) -> bool {
    dom.match_indices(before).any(|(i, _)| {
        let rest = &dom[i + before.len()..];
        let Some(end) = rest.find(after) else {
            return false;
        };
        let text = &rest[..end];
        let groups: Vec<&str> = text.split(',').collect();
        (1..=3).contains(&groups[0].len())
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
            && text.replace(',', "").parse::<u64>() == Ok(n)
    })
}

#[test]
fn shows_number_reads_grouped_figures() {
    let dom = "<div class=\"n\">1,234,567</div> <div class=\"n\">42</div>";
    assert!(shows_number(dom, "<div class=\"n\">", 1_234_567, "</div>"));
    assert!(shows_number(dom, "<div class=\"n\">", 42, "</div>"));
    assert!(!shows_number(dom, "<div class=\"n\">", 1_234, "</div>"));
    assert!(!shows_number("<b>1234567</b>", "<b>", 1_234_567, "</b>"));
    assert!(!shows_number("<b>12,34,567</b>", "<b>", 1_234_567, "</b>"));
}

/// Run headless Chromium on `html`: the DOM after rendering, and a
/// screenshot in `png`. Any host name resolves to nothing, so a page that
/// tried to fetch something would render without it.
fn render(chromium: &Path, html: &Path, png: &Path, profile: &Path) -> String {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--window-size=1100,3000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    let shot = cmd
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("failed to run chromium");
    assert!(
        shot.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("file://{}", html.display()));
    let dom = cmd.output().expect("failed to run chromium");
    assert!(
        dom.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[test]
fn html_report_renders_in_chromium_with_its_figures() {
    let Some(root) = debian_kernel("linux-image-6.12.113+deb12-cloud-amd64-unsigned") else {
        return;
    };
    let Some(chromium) = chromium() else {
        if std::env::var("KGATE_REQUIRE_KERNELS").as_deref() == Ok("1") {
            panic!("chromium is not installed and KGATE_REQUIRE_KERNELS=1: scripts/deps.sh installs it");
        }
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
        return;
    };
    let Some(shared) = shared_data() else {
        return;
    };
    let dir = TempDir::new("report");
    let xdg = dir.path().join("xdg");
    ok(kgate_data(&xdg)
        .args(["cve", "import"])
        .arg(shared.join("kernel-cve-files.csv.gz")));
    dir.write(
        "policy.toml",
        "version = 1\n[modules]\nmode = \"enforce\"\nallow = [\"xfs\", \"sctp\"]\n",
    );
    let policy = dir.path().join("policy.toml");
    // A real HAP profile: the lab capture of Debian 6.12 through the
    // offline path.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kgate-hap/tests/data");
    let gunzip = |name: &str| {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(data.join(format!("{name}.gz"))).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        dir.write(name, &text);
        dir.path().join(name)
    };
    let trace = gunzip("cloud-6.12-sctp.trace");
    let syms = gunzip("cloud-6.12-sctp.kallsyms");
    let hap_file = dir.path().join("sctp-socket.json");
    ok(kgate_data(&xdg)
        .args(["hap", "--from-trace"])
        .arg(&trace)
        .arg("--kallsyms")
        .arg(&syms)
        .arg("-o")
        .arg(&hap_file));
    let hap: Value = serde_json::from_str(&std::fs::read_to_string(&hap_file).unwrap()).unwrap();

    // The figures the page must show, from the JSON commands.
    let survey: Value = serde_json::from_str(&ok(kgate()
        .args(["survey", "--format", "json", "--root"])
        .arg(&root)))
    .unwrap();
    let diff: Value = serde_json::from_str(&ok(kgate()
        .args(["policy", "diff", "--format", "json"])
        .arg(&policy)
        .arg("--root")
        .arg(&root)))
    .unwrap();
    let release = survey["kernel"]["release"].as_str().unwrap().to_owned();
    let reachable = survey["summary"]["modules_unprivileged_reachable"]
        .as_u64()
        .unwrap();
    let after = diff["report"]["after_with_settings"]["modules"]
        .as_u64()
        .or_else(|| diff["after_with_settings"]["modules"].as_u64())
        .unwrap_or_else(|| panic!("no after_with_settings in {diff}"));
    assert!(after < reachable, "the policy must remove something");
    let score: Value = serde_json::from_str(&ok(kgate_data(&xdg)
        .args(["score", "--format", "json", "--root"])
        .arg(&root)
        .arg("--policy")
        .arg(&policy)))
    .unwrap();
    let cves_before = score["before"]["total"]["cves_any"]["all"]
        .as_u64()
        .unwrap();
    let cves_removed = score["removed_with_settings"]["cves_any"]["all"]
        .as_u64()
        .unwrap();
    let top_cve_module = score["modules"][0]["name"].as_str().unwrap().to_owned();
    assert!(
        cves_before > 100 && cves_removed > 0,
        "{cves_before} {cves_removed}"
    );
    let biggest = survey["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["unprivileged_reachable"] == true)
        .max_by_key(|m| m["text_bytes"].as_u64().unwrap())
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();

    let html_path = dir.path().join("report.html");
    ok(kgate_data(&xdg)
        .args(["report", "--root"])
        .arg(&root)
        .arg("--html")
        .arg(&html_path)
        .arg("--policy")
        .arg(&policy)
        .arg("--hap")
        .arg(&hap_file));
    let html = std::fs::read_to_string(&html_path).unwrap();

    // Self-contained: nothing that could make a browser fetch anything.
    let lower = html.to_lowercase();
    for banned in [
        "http://", "https://", "<script", "<link", "<img", "<iframe", "@import", "url(", "src=",
    ] {
        assert!(!lower.contains(banned), "the report contains {banned:?}");
    }
    assert!(!lower.contains("href="), "the report contains a link");

    let png = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kgate-report.png");
    let dom = render(
        &chromium,
        &html_path,
        &png,
        &dir.path().join("chromium-profile"),
    );
    eprintln!("screenshot: {}", png.display());
    let shot = std::fs::read(&png).unwrap();
    assert!(shot.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        shot.len() > 20_000,
        "screenshot suspiciously small: {} bytes",
        shot.len()
    );

    // The rendered DOM carries the key figures.
    for (what, needle) in [
        (
            "kernel release",
            format!("<b id=\"kernel-release\">{release}</b>"),
        ),
        ("largest reachable module", format!("<td>{biggest}</td>")),
        ("subsystem chart", "<svg id=\"subsystem-chart\"".to_owned()),
        ("HAP anchor", "Nabla containers (Bottomley 2018)".to_owned()),
        (
            "top CVE module",
            "<table id=\"cve-modules\"><tbody><tr><th>module</th>".to_owned(),
        ),
        (
            "top CVE module row",
            format!("<tr><td>{top_cve_module}</td>"),
        ),
        (
            "CVE provenance",
            "CVE(R) records are used under the CVE Terms of Use".to_owned(),
        ),
    ] {
        assert!(
            dom.contains(&needle),
            "{what}: {needle:?} is not in the rendered DOM"
        );
    }
    let hap_value = hap["hap"].as_u64().unwrap();
    for (what, before, n, after) in [
        (
            "reachable modules",
            "<div class=\"n\">",
            reachable,
            "</div>",
        ),
        ("modules after the policy", "→ ", after, " with the policy"),
        ("HAP", "<span class=\"hap-value\">", hap_value, "</span>"),
        ("reachable CVEs", "<div class=\"n\">", cves_before, "</div>"),
        ("CVEs removed", "and ", cves_removed, " of the "),
        (
            "CVEs reachable, in the removal line",
            " of the ",
            cves_before,
            " CVEs in it",
        ),
    ] {
        assert!(
            shows_number(&dom, before, n, after),
            "{what}: {before}{n}{after} (with thousands separators) is not in the rendered DOM"
        );
    }
    let largest = [reachable, after, hap_value, cves_before, cves_removed]
        .into_iter()
        .max()
        .unwrap();
    assert!(
        largest >= 1000,
        "no figure checked is over 999 (largest {largest}): the separators went untested"
    );
    let bars = dom.matches("<rect ").count();
    assert!(bars > 15, "only {bars} SVG bars rendered");
}

#[test]
fn bad_inputs_write_nothing() {
    let dir = TempDir::new("report-bad");
    dir.write("not-hap.json", "{\"schema\": \"kgate.survey/1\"}");
    let out = dir.path().join("r.html");
    let o = kgate()
        .args(["report", "--html"])
        .arg(&out)
        .arg("--hap")
        .arg(dir.path().join("not-hap.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected kgate.hap/1"));
    assert!(!out.exists());

    dir.write("bad.toml", "version = 1\n[modules]\nmode = \"sometimes\"\n");
    let o = kgate()
        .args(["report", "--html"])
        .arg(&out)
        .arg("--policy")
        .arg(dir.path().join("bad.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(!out.exists());
}
