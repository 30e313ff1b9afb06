//! Regression tests of issue 19, item 2: `kgate cve import` and `kgate cve
//! update` run as root on git repositories that others control, so nothing
//! in such a repository (its `config`, its hooks) may make git run a
//! program, and `--url` may not smuggle options or transports into git.
//!
//! The fixtures are real repositories: a commit carrying a `gpgsig` header
//! (so that `log.showSignature=true` makes `git log` run `gpg.program`), a
//! config naming a program for every key that runs one, and every hook.
//! Each program touches a marker; no marker may appear.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

fn record(id: &str) -> String {
    format!(
        r#"{{"cveMetadata":{{"cveId":"{id}","state":"PUBLISHED","assignerShortName":"Linux","datePublished":"2024-05-01T10:00:00.000Z"}},"containers":{{"cna":{{"descriptions":[{{"value":"In the Linux kernel, the following vulnerability has been resolved:\n\nsctp: fix {id}"}}],"affected":[{{"programFiles":["net/sctp/socket.c"]}}]}}}}}}"#
    )
}

/// Adds `id` to the working tree `dir` in a commit that carries a
/// `gpgsig` header (its signature is junk: what matters is that git
/// would hand it to `gpg.program` to verify).
fn signed_commit_adding(dir: &Path, id: &str) {
    let rel = format!("cve/published/2024/{id}.json");
    std::fs::create_dir_all(dir.join("cve/published/2024")).unwrap();
    std::fs::write(dir.join(&rel), record(id)).unwrap();
    git(dir, &["add", &rel]);
    let tree = git(dir, &["write-tree"]);
    let parent = git(dir, &["rev-parse", "HEAD"]);
    let commit = format!(
        "tree {tree}\nparent {parent}\nauthor t <t@example.org> 1700000000 +0000\n\
         committer t <t@example.org> 1700000000 +0000\n\
         gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\n\
         add {id}\n"
    );
    let obj = dir.join(".commit");
    std::fs::write(&obj, commit).unwrap();
    let oid = git(
        dir,
        &["hash-object", "-t", "commit", "-w", obj.to_str().unwrap()],
    );
    std::fs::remove_file(obj).unwrap();
    git(dir, &["update-ref", "HEAD", &oid]);
}

/// A vulns working tree: one plain commit, one "signed" commit.
fn vulns_upstream(dir: &Path) {
    std::fs::create_dir_all(dir.join("cve/published/2024")).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.join("cve/published/2024/CVE-2024-1001.json"),
        record("CVE-2024-1001"),
    )
    .unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "first"]);
    signed_commit_adding(dir, "CVE-2024-1002");
}

/// Every hook git knows, for `run_hook` to find.
const HOOKS: &[&str] = &[
    "applypatch-msg",
    "pre-applypatch",
    "post-applypatch",
    "pre-commit",
    "pre-merge-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-rebase",
    "post-checkout",
    "post-merge",
    "pre-push",
    "pre-receive",
    "update",
    "proc-receive",
    "post-receive",
    "post-update",
    "reference-transaction",
    "push-to-checkout",
    "pre-auto-gc",
    "post-rewrite",
    "sendemail-validate",
    "fsmonitor-watchman",
    "p4-changelist",
    "p4-prepare-changelist",
    "p4-post-changelist",
    "p4-pre-submit",
    "post-index-change",
];

/// Marks `git_dir` (a bare repository or a `.git`) hostile: every config
/// key that names a program, and every hook, points at a script that
/// leaves a marker in `marks`.
fn make_hostile(git_dir: &Path, marks: &Path) -> PathBuf {
    std::fs::create_dir_all(marks).unwrap();
    let script = |name: &str| -> PathBuf {
        let p = marks.join(format!("{name}.sh"));
        std::fs::write(
            &p,
            format!("#!/bin/sh\ntouch '{}/ran-{name}'\n", marks.display()),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let hooks = git_dir.join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for h in HOOKS {
        let s = script(h);
        std::fs::copy(&s, hooks.join(h)).unwrap();
        std::fs::set_permissions(hooks.join(h), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cfg = |key: &str, value: &str| {
        let out = Command::new("git")
            .arg("config")
            .arg("--file")
            .arg(git_dir.join("config"))
            .args([key, value])
            .output()
            .unwrap();
        assert!(out.status.success(), "git config {key}");
    };
    cfg("log.showSignature", "true");
    for key in [
        "gpg.program",
        "gpg.openpgp.program",
        "gpg.x509.program",
        "gpg.ssh.program",
        "core.fsmonitor",
        "core.pager",
        "pager.log",
        "core.sshCommand",
        "core.askPass",
        "core.gitProxy",
        "core.alternateRefsCommand",
        "diff.external",
        "uploadpack.packObjectsHook",
    ] {
        let s = script(key);
        cfg(key, s.to_str().unwrap());
    }
    let s = script("credential.helper");
    cfg("credential.helper", &format!("!{}", s.display()));
    marks.to_owned()
}

#[track_caller]
fn assert_nothing_ran(marks: &Path) {
    let ran: Vec<String> = std::fs::read_dir(marks)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ran-"))
        .collect();
    assert!(ran.is_empty(), "the repository ran programs: {ran:?}");
}

/// Issue 19, item 2: a bare clone whose config sets `log.showSignature`
/// and `gpg.program` (and every other program-running key, and every
/// hook) is imported without running any of them; so is a working tree
/// with the same `.git/config`.
#[test]
fn cve_import_runs_nothing_from_the_repository() {
    let work = TempDir::new("hostile-git");
    let upstream = work.path().join("upstream");
    vulns_upstream(&upstream);
    let bare = work.path().join("vulns.git");
    git(
        work.path(),
        &["clone", "-q", "--bare", "upstream", "vulns.git"],
    );

    for (src, marks) in [
        (&bare, make_hostile(&bare, &work.path().join("marks-bare"))),
        (
            &upstream,
            make_hostile(&upstream.join(".git"), &work.path().join("marks-tree")),
        ),
    ] {
        let home = TempDir::new("cve-home");
        let out = run(kgate(home.path()).args(["cve", "import"]).arg(src), true);
        assert_nothing_ran(&marks);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("imported 2 CVE records"), "{text}");
    }
}

/// A `kgate cve update` from a local upstream, after which the clone it
/// made in the data directory was made hostile ([`make_hostile`]).
struct Updated {
    work: TempDir,
    home: TempDir,
    upstream: PathBuf,
    url: String,
    clone: PathBuf,
    marks: PathBuf,
}

fn updated_then_made_hostile(tag: &str) -> Updated {
    let work = TempDir::new(tag);
    let upstream = work.path().join("upstream");
    vulns_upstream(&upstream);
    let url = upstream.display().to_string();
    let home = TempDir::new("cve-home");
    run(
        kgate(home.path()).args(["cve", "update", "--url", &url]),
        true,
    );
    let clone = home.path().join("kgate/vulns.git");
    let marks = make_hostile(&clone, &work.path().join("marks"));
    Updated {
        work,
        home,
        upstream,
        url,
        clone,
        marks,
    }
}

/// Issue 19, item 2: `kgate cve update` fetching into an existing clone
/// whose hooks and config are hostile runs none of them, and still
/// updates.
#[test]
fn cve_update_fetch_runs_no_hook_of_the_existing_clone() {
    let Updated {
        work: _work,
        home,
        upstream,
        url,
        clone: _,
        marks,
    } = updated_then_made_hostile("hostile-fetch");
    signed_commit_adding(&upstream, "CVE-2024-1003");
    let out = run(
        kgate(home.path()).args(["cve", "update", "--url", &url]),
        true,
    );
    assert_nothing_ran(&marks);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("updated 3 CVE records"), "{text}");
}

/// Issue 19, item 2: an existing clone that is not the caller's alone
/// (another owner, as git accepts under sudo through `SUDO_UID`, or
/// writable by others) is not fetched into.
#[test]
fn cve_update_refuses_a_clone_it_does_not_own() {
    let Updated {
        work: _work,
        home,
        upstream: _,
        url,
        clone,
        marks,
    } = updated_then_made_hostile("foreign-clone");
    // `kgate cve update` fails, says why on stderr, and runs nothing.
    let refused = |sudo_uid: Option<&str>| {
        let mut cmd = kgate(home.path());
        cmd.args(["cve", "update", "--url", &url]);
        if let Some(uid) = sudo_uid {
            cmd.env("SUDO_UID", uid);
        }
        let out = run(&mut cmd, false);
        assert_nothing_ran(&marks);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    set_mode(&clone, 0o777);
    let err = refused(None);
    assert!(err.contains("vulns.git"), "{err}");
    assert!(err.contains("group or other users write it"), "{err}");
    set_mode(&clone, 0o755);
    // Under sudo git itself accepts a repository owned by SUDO_UID.
    if Command::new("id").arg("-u").output().unwrap().stdout == b"0\n" {
        let out = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&clone)
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = refused(Some("65534"));
        assert!(err.contains("owned by uid 65534"), "{err}");
    }
}

/// Issue 19, item 2: `--url` values that git would read as options or as
/// a program-running transport are refused before git runs.
#[test]
fn cve_update_refuses_option_and_transport_urls() {
    let work = TempDir::new("hostile-url");
    let marker = work.path().join("ran");
    for url in [
        format!("-oProxyCommand=touch {}", marker.display()),
        format!("--upload-pack=touch {}", marker.display()),
        format!("ext::sh -c touch% {}", marker.display()),
        "fd::17".to_owned(),
        "".to_owned(),
    ] {
        let home = TempDir::new("cve-home");
        let out = run(
            kgate(home.path()).args(["cve", "update", &format!("--url={url}")]),
            false,
        );
        assert_eq!(out.status.code(), Some(1), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--url"), "{url}: {err}");
        assert!(!marker.exists(), "{url} ran a program");
        assert!(!home.exists("kgate/vulns.git"), "{url}");
    }
}

/// Issue 19, item 5 ("git blob sizes are trusted"): a blob larger than
/// the documented cap (`MAX_RECORD_BYTES`, 1 MiB, as for a record file) is skipped and counted,
/// not read.
#[test]
fn cve_import_skips_blobs_over_the_cap() {
    let work = TempDir::new("big-blob");
    let upstream = work.path().join("upstream");
    vulns_upstream(&upstream);
    // A valid record, padded past the cap.
    let mut big = record("CVE-2024-1999");
    big.push_str(&" ".repeat(1 << 20));
    std::fs::write(upstream.join("cve/published/2024/CVE-2024-1999.json"), big).unwrap();
    git(&upstream, &["add", "."]);
    git(&upstream, &["commit", "-q", "-m", "big"]);
    let bare = work.path().join("vulns.git");
    git(
        work.path(),
        &["clone", "-q", "--bare", "upstream", "vulns.git"],
    );
    let home = TempDir::new("cve-home");
    let out = run(kgate(home.path()).args(["cve", "import"]).arg(&bare), true);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("imported 2 CVE records"), "{text}");
    assert!(
        text.contains("skipped:   1 records larger than the 1 MiB cap"),
        "{text}"
    );
}
