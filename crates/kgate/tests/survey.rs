//! CLI tests of `kgate survey`: the live host, fixture trees with broken
//! modules, and real Debian kernel packages fetched by `cargo xtask fetch`.
//!
//! The Debian-package tests skip (loudly) when the packages are not in the
//! lab cache, unless `KGATE_REQUIRE_KERNELS=1`, which `scripts/test.sh` and
//! CI set so that a missing package fails the run instead of passing it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::*;

fn kgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kgate"))
}

#[track_caller]
fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("failed to start kgate");
    assert!(
        out.status.success(),
        "kgate failed with {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[track_caller]
fn module<'a>(survey: &'a Value, name: &str) -> &'a Value {
    survey["modules"]
        .as_array()
        .expect("modules[] missing")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("module {name} missing from the survey"))
}

#[test]
fn live_survey_runs_and_explains_the_host() {
    let dir = TempDir::new("live");
    let out = run_ok(kgate().arg("survey").arg("--cache-dir").arg(dir.path()));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "kernel.unprivileged_bpf_disabled",
        "kernel.kexec_load_disabled",
        "kernel.yama.ptrace_scope",
        "BPF-LSM",
        "lockdown",
        "seccomp",
        "user namespaces",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    // The default command is the survey.
    let bare = run_ok(kgate().env("XDG_CACHE_HOME", dir.path()));
    assert!(String::from_utf8_lossy(&bare.stdout).contains("Attack-surface sysctls"));

    let json = json_of(&run_ok(kgate().args([
        "survey",
        "--format",
        "json",
        "--no-cache",
    ])));
    assert_eq!(json["schema"], "kgate.survey/1");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(json["kernel"]["release"], release.trim());
    assert!(json["host"]["sysctls"].as_array().unwrap().len() >= 12);
    if !Path::new("/proc/modules").exists() {
        // A kernel without CONFIG_MODULES (this project's development VM).
        assert_eq!(json["kernel"]["modules_supported"], false);
        assert_eq!(json["summary"]["modules_unprivileged_reachable"], 0);
        assert!(
            text.contains("empty: this kernel cannot load modules"),
            "no explanation of the empty module surface:\n{text}"
        );
    }
}

#[test]
fn fixture_tree_computes_deps_aliases_and_reachability_from_modinfo() {
    let root = TempDir::new("fixture");
    let tree = FixtureTree::new(root.path(), "6.99.0-test");
    tree.module("kernel/net/vmw_vsock/vsock.ko.xz", &["net-pf-40"], &[], "");
    tree.module(
        "kernel/net/sctp/sctp.ko.zst",
        &["net-pf-2-proto-132", "net-pf-10-proto-132"],
        &["libcrc32c", "udp_tunnel"],
        "",
    );
    tree.module("kernel/lib/libcrc32c.ko.gz", &[], &[], "pre: crc32c");
    tree.module("kernel/crypto/crc32c.ko", &["crypto-crc32c"], &[], "");
    tree.module("kernel/net/ipv4/udp_tunnel.ko", &[], &[], "");
    tree.module("kernel/fs/xfs/xfs.ko.xz", &["fs-xfs"], &[], "");
    tree.module(
        "kernel/drivers/net/e1000e.ko.xz",
        &["pci:v00008086d000010D3sv*sd*bc*sc*i*"],
        &[],
        "",
    );
    tree.builtin(&["ext4", "af_alg"]);

    let out = run_ok(
        kgate()
            .args(["survey", "--no-cache", "--format", "json", "--root"])
            .arg(root.path()),
    );
    let s = json_of(&out);
    assert_eq!(s["kernel"]["release"], "6.99.0-test");
    assert_eq!(s["kernel"]["source"], "offline");
    assert_eq!(s["depmod"]["dep_source"], "modinfo");
    assert_eq!(s["summary"]["modules_loadable"], 7);
    assert_eq!(s["summary"]["modules_builtin"], 2);

    let sctp = module(&s, "sctp");
    assert_eq!(sctp["unprivileged_reachable"], true);
    assert_eq!(sctp["needs_userns"], false);
    assert_eq!(sctp["via"]["alias"], "net-pf-2-proto-132");
    assert_eq!(sctp["builtin"], false);
    assert!(sctp["text_bytes"].as_u64().unwrap() > 0);
    assert_eq!(sctp["functions"], 2);
    let closure: Vec<&str> = sctp["dependency_closure"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(closure, ["crc32c", "libcrc32c", "udp_tunnel"]);
    // Dependencies and softdeps of a reachable module are reachable too.
    assert_eq!(module(&s, "libcrc32c")["via"]["of"], "sctp");
    assert_eq!(module(&s, "crc32c")["unprivileged_reachable"], true);
    assert_eq!(module(&s, "vsock")["via"]["alias"], "net-pf-40");
    assert_eq!(module(&s, "vsock")["triggers"][0]["kind"], "socket_family");
    // Filesystems: only through a user namespace.
    assert_eq!(module(&s, "xfs")["unprivileged_reachable"], true);
    assert_eq!(module(&s, "xfs")["needs_userns"], true);
    // Hardware aliases are udev's business.
    assert_eq!(module(&s, "e1000e")["unprivileged_reachable"], false);
    assert_eq!(module(&s, "e1000e")["triggers"][0]["kind"], "hardware");
    assert_eq!(module(&s, "ext4")["builtin"], true);
}

#[test]
fn depmod_output_is_used_and_checked() {
    let root = TempDir::new("depmod");
    let tree = FixtureTree::new(root.path(), "6.99.0-test");
    tree.module("kernel/net/vmw_vsock/vsock.ko.xz", &["net-pf-40"], &[], "");
    tree.module(
        "kernel/net/vmw_vsock/vsock_diag.ko.xz",
        &["net-pf-16-proto-4-type-40"],
        &["vsock"],
        "",
    );
    tree.write(
        "modules.dep",
        "kernel/net/vmw_vsock/vsock.ko.xz:\nkernel/net/vmw_vsock/vsock_diag.ko.xz: kernel/net/vmw_vsock/vsock.ko.xz\n",
    );
    tree.write(
        "modules.alias",
        "alias net-pf-40 vsock\nalias net-pf-16-proto-4-type-40 vsock_diag\n",
    );
    let s = json_of(&run_ok(
        kgate()
            .args(["survey", "--no-cache", "--format", "json", "--root"])
            .arg(root.path()),
    ));
    assert_eq!(s["depmod"]["dep_source"], "depmod");
    assert_eq!(s["depmod"]["agrees"], true, "{}", s["depmod"]);

    // A stale modules.dep (one module missing, one alias changed) is reported.
    tree.write("modules.dep", "kernel/net/vmw_vsock/vsock.ko.xz:\n");
    tree.write("modules.alias", "alias net-pf-41 vsock\n");
    let s = json_of(&run_ok(
        kgate()
            .args(["survey", "--no-cache", "--format", "json", "--root"])
            .arg(root.path()),
    ));
    assert_eq!(s["depmod"]["agrees"], false);
    assert_eq!(s["depmod"]["missing_from_depmod"][0], "vsock_diag");
    assert_eq!(s["depmod"]["alias_mismatches"][0], "vsock");
    let text = run_ok(
        kgate()
            .args(["survey", "--no-cache", "--root"])
            .arg(root.path()),
    );
    assert!(String::from_utf8_lossy(&text.stdout).contains("depmod output disagrees"));
}

#[test]
fn bad_modules_are_reported_and_skipped() {
    let root = TempDir::new("bad");
    let tree = FixtureTree::new(root.path(), "6.99.0-test");
    tree.module("kernel/net/vmw_vsock/vsock.ko.xz", &["net-pf-40"], &[], "");
    // Truncated .ko.xz.
    let good = xz(&elf_module("sctp", &["net-pf-2-proto-132"], &[], ""));
    tree.write_bytes("kernel/net/sctp/sctp.ko.xz", &good[..good.len() / 2]);
    // Not an ELF file.
    tree.write("kernel/net/kcm/kcm.ko", "this is not an ELF object\n");
    // Unreadable (exercised below with a non-root reader).
    tree.module("kernel/net/smc/smc.ko", &["net-pf-43"], &[], "");
    let smc = tree.path("kernel/net/smc/smc.ko");
    set_mode(&smc, 0o000);

    let out = kgate()
        .args(["survey", "--no-cache", "--format", "json", "--root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = json_of(&out);
    let problems = s["problems"].as_array().unwrap();
    let problem = |path: &str| survey_problem(&s, path);
    assert!(
        problem("kernel/net/sctp/sctp.ko.xz").contains("xz"),
        "{problems:?}"
    );
    assert!(
        problem("kernel/net/kcm/kcm.ko").contains("not an ELF"),
        "{problems:?}"
    );
    // The survey went on: the good module is there.
    assert_eq!(module(&s, "vsock")["unprivileged_reachable"], true);

    // A file the surveying user cannot read. Root reads anything, so drop to
    // nobody when running as root.
    let mut cmd = as_unprivileged(env!("CARGO_BIN_EXE_kgate"));
    cmd.args(["survey", "--no-cache", "--format", "json", "--root"])
        .arg(root.path());
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = json_of(&out);
    let smc_problem = s["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "kernel/net/smc/smc.ko")
        .expect("unreadable smc.ko not reported");
    assert!(
        smc_problem["error"]
            .as_str()
            .unwrap()
            .contains("ermission denied"),
        "{smc_problem}"
    );
}

#[test]
fn missing_root_is_a_clear_error() {
    let out = kgate()
        .args(["survey", "--root", "/nonexistent/kgate-root"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/kgate-root: no such directory"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let root = TempDir::new("twokernels");
    FixtureTree::new(root.path(), "6.1.0-a");
    FixtureTree::new(root.path(), "6.1.0-b");
    let out = kgate()
        .args(["survey", "--root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("several kernels (6.1.0-a, 6.1.0-b); choose one with --kernel"),
        "{err}"
    );

    let out = kgate()
        .args(["survey", "--kernel", "9.9.9", "--root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("lib/modules/9.9.9: no such modules directory"));
}

#[test]
fn warm_cache_gives_identical_results() {
    let root = TempDir::new("cache");
    let cache = TempDir::new("cache-dir");
    let tree = FixtureTree::new(root.path(), "6.99.0-test");
    tree.module("kernel/net/vmw_vsock/vsock.ko.xz", &["net-pf-40"], &[], "");
    tree.module(
        "kernel/net/sctp/sctp.ko.xz",
        &["net-pf-2-proto-132"],
        &[],
        "",
    );
    let survey = || {
        let mut s = json_of(&run_ok(
            kgate()
                .args(["survey", "--format", "json", "--cache-dir"])
                .arg(cache.path())
                .arg("--root")
                .arg(root.path()),
        ));
        s.as_object_mut().unwrap().remove("host");
        s
    };
    let cold = survey();
    let warm = survey();
    assert_eq!(cold, warm);
    // A changed module is re-read, not served stale from the cache.
    std::thread::sleep(std::time::Duration::from_millis(20));
    tree.module(
        "kernel/net/vmw_vsock/vsock.ko.xz",
        &["net-pf-40", "vsock-new"],
        &[],
        "",
    );
    let changed = survey();
    let aliases = &module(&changed, "vsock")["aliases"];
    assert_eq!(aliases.as_array().unwrap().len(), 2, "{aliases}");
}

/// The real Debian cloud kernel package, unpacked: no modules.dep, no
/// modules.alias, 1,138 modules.
#[test]
fn debian_cloud_6_12_package() {
    let Some(root) = debian_kernel("linux-image-6.12.113+deb12-cloud-amd64-unsigned") else {
        return;
    };
    let cache = TempDir::new("deb-cache");
    let out = run_ok(
        kgate()
            .args(["survey", "--format", "json", "--cache-dir"])
            .arg(cache.path())
            .arg("--root")
            .arg(&root),
    );
    let s = json_of(&out);
    assert_eq!(s["kernel"]["release"], "6.12.113+deb12-cloud-amd64");
    assert_eq!(s["summary"]["modules_loadable"], 1138);
    assert_eq!(s["summary"]["problems"], 0);
    assert_eq!(s["depmod"]["dep_source"], "modinfo");

    let sctp = module(&s, "sctp");
    assert_eq!(sctp["unprivileged_reachable"], true);
    assert!(
        sctp["triggers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["alias"] == "net-pf-2-proto-132"
                && t["kind"] == "socket_protocol"
                && t["access"] == "any"),
        "{}",
        sctp["triggers"]
    );
    assert!(sctp["functions"].as_u64().unwrap() > 500);
    assert!(sctp["text_bytes"].as_u64().unwrap() > 200_000);
    let vsock = module(&s, "vsock");
    assert_eq!(vsock["unprivileged_reachable"], true);
    assert_eq!(vsock["via"]["alias"], "net-pf-40");
    assert_eq!(vsock["needs_userns"], false);

    // The "Copy Fail" path: AF_ALG, its aead interface and authencesn.
    for name in ["af_alg", "algif_aead", "authencesn"] {
        assert_eq!(module(&s, name)["unprivileged_reachable"], true, "{name}");
    }
    // nf_tables only through a user namespace.
    let nft = module(&s, "nf_tables");
    assert_eq!(nft["unprivileged_reachable"], true);
    assert_eq!(nft["needs_userns"], true, "{}", nft["via"]);
    let summary = &s["summary"];
    assert!(
        summary["modules_unprivileged_reachable"].as_u64().unwrap() > 300,
        "{summary}"
    );
    assert!(
        summary["reachable_text_bytes"].as_u64().unwrap() > 10_000_000,
        "{summary}"
    );

    // Same answer from the warm cache.
    let warm = json_of(&run_ok(
        kgate()
            .args(["survey", "--format", "json", "--cache-dir"])
            .arg(cache.path())
            .arg("--root")
            .arg(&root),
    ));
    assert_eq!(warm["summary"], s["summary"]);
}

/// With depmod's output in place, kgate uses it and it must agree with the
/// .modinfo-derived data on a real kernel.
#[test]
fn debian_cloud_6_12_depmod_agrees() {
    let Some(root) = debian_kernel("linux-image-6.12.113+deb12-cloud-amd64-unsigned") else {
        return;
    };
    let Some(depmod) = which("depmod") else {
        panic!("depmod (package kmod) is needed for this test; scripts/test.sh installs it");
    };
    // Copy the tree (hard links would make depmod write into the cache).
    let work = TempDir::new("deb-depmod");
    let status = Command::new("cp")
        .args(["-a"])
        .arg(root.join("lib"))
        .arg(work.path())
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new(depmod)
        .args(["-b"])
        .arg(work.path())
        .arg("6.12.113+deb12-cloud-amd64")
        .status()
        .unwrap();
    assert!(status.success());
    let s = json_of(&run_ok(
        kgate()
            .args(["survey", "--no-cache", "--format", "json", "--root"])
            .arg(work.path()),
    ));
    assert_eq!(s["depmod"]["dep_source"], "depmod");
    assert_eq!(s["depmod"]["agrees"], true, "{}", s["depmod"]);
    assert_eq!(s["summary"]["modules_loadable"], 1138);
}

fn which(cmd: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.exists())
}

/// After `install M /bin/false` (what `kgate apply --backend modprobe`
/// writes) the survey no longer counts M; `blacklist` only stops aliases.
#[test]
fn modprobe_d_rules_in_the_surveyed_root_are_honoured() {
    let root = TempDir::new("modprobe-d");
    let tree = FixtureTree::new(root.path(), "6.99.0-test");
    tree.module(
        "kernel/net/sctp/sctp.ko.xz",
        &["net-pf-2-proto-132"],
        &["libcrc32c"],
        "",
    );
    tree.module("kernel/lib/libcrc32c.ko.xz", &[], &[], "");
    tree.module("kernel/net/vmw_vsock/vsock.ko.xz", &["net-pf-40"], &[], "");
    tree.module(
        "kernel/net/bridge/bridge.ko.xz",
        &["rtnl-link-bridge"],
        &[],
        "",
    );
    let conf = root.path().join("etc/modprobe.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("local.conf"),
        "install sctp /bin/false\nblacklist vsock\nblacklist bridge\n",
    )
    .unwrap();
    let s = json_of(&run_ok(
        kgate()
            .args(["survey", "--no-cache", "--format", "json", "--root"])
            .arg(root.path()),
    ));
    assert_eq!(s["summary"]["modules_blocked_by_modprobe_conf"], 1);
    assert_eq!(module(&s, "sctp")["unprivileged_reachable"], false);
    // Only sctp pulled libcrc32c in.
    assert_eq!(module(&s, "libcrc32c")["unprivileged_reachable"], false);
    assert_eq!(module(&s, "vsock")["unprivileged_reachable"], false);
    // SIOCBRADDBR requests "bridge" by name, which blacklist does not stop.
    assert_eq!(module(&s, "bridge")["unprivileged_reachable"], true);
    assert_eq!(module(&s, "bridge")["via"]["kind"], "socket_ioctl");
}

/// `kgate survey --format json | head -1` is not an error (regression: the
/// JSON writer's EPIPE used to exit 1 with "failed to write JSON").
#[test]
fn broken_pipe_is_not_an_error() {
    use std::io::Read;
    let root = TempDir::new("pipe");
    let tree = FixtureTree::new(root.path(), "6.99.0-test");
    for i in 0..200 {
        tree.module(&format!("kernel/m/mod{i}.ko"), &["net-pf-40"], &[], "");
    }
    for format in ["json", "text"] {
        let mut child = kgate()
            .args(["survey", "--no-cache", "--format", format, "--root"])
            .arg(root.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Which splice paths can be gated, from the real Debian kernel's config:
/// the file_permission paths by BPF-LSM, vmsplice/tee by seccomp only
/// (Debian has no CONFIG_FUNCTION_ERROR_INJECTION, so no fmod_ret).
#[test]
fn survey_reports_splice_paths_and_their_gates() {
    let Some(root) = debian_kernel("linux-image-6.12.113+deb12-cloud-amd64-unsigned") else {
        return;
    };
    let dir = TempDir::new("splice-paths");
    let out = run_ok(
        kgate()
            .env("XDG_CACHE_HOME", dir.path())
            .args(["survey", "--format", "json", "--root"])
            .arg(&root),
    );
    let s = json_of(&out);
    assert_eq!(s["host"]["error_injection"], false);
    let paths = s["splice_paths"].as_array().unwrap();
    let path = |name: &str| {
        paths
            .iter()
            .find(|p| p["path"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {paths:?}"))
    };
    let gate = |p: &serde_json::Value, m: &str| {
        p["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["mechanism"] == m)
            .cloned()
            .unwrap_or_else(|| panic!("no {m} gate in {p}"))
    };
    let splice = path("splice(2) pipe");
    assert_eq!(splice["lsm_hook"], "file_permission");
    assert_eq!(gate(splice, "bpf-lsm")["status"], "available");
    let vmsplice = path("vmsplice(2)");
    assert!(vmsplice["lsm_hook"].is_null());
    let f = gate(vmsplice, "fmod_ret");
    assert_eq!(f["status"], "unavailable");
    assert!(f["detail"]
        .as_str()
        .unwrap()
        .contains("CONFIG_FUNCTION_ERROR_INJECTION is off"));
    assert_eq!(gate(vmsplice, "seccomp")["status"], "available");

    let text = run_ok(
        kgate()
            .env("XDG_CACHE_HOME", dir.path())
            .args(["survey", "--root"])
            .arg(&root),
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("vmsplice(2) (no LSM hook): not gated"),
        "{text}"
    );
}

/// Issue 19, item 6: `.modinfo` strings and file names reached the
/// terminal raw, so a crafted module set the terminal's title (OSC 0) and
/// cleared the screen. Text output escapes control characters; JSON keeps
/// the exact strings.
#[test]
fn issue19_terminal_escapes_in_module_strings_are_escaped_in_text_output() {
    use kgate_kernel::testutil::modinfo_elf;
    const OSC: &str = "\x1b]0;pwned\x07";
    const CLEAR: &str = "\x1b[2J";
    let dir = TempDir::new("escapes");
    let root = dir.path().join("root");
    let tree = FixtureTree::new(&root, "6.99.0-test");
    // A valid name, with hostile aliases (a reachable socket trigger among
    // them), dependencies and softdeps. (elf_module, not modinfo_elf: the
    // OSC sequence has a `;`.)
    let fs_alias = format!("fs-evil{OSC}");
    let net_alias = format!("net-pf-40-proto-{CLEAR}");
    tree.write_bytes(
        "kernel/fs/evilfs.ko",
        &elf_module(
            "evilfs",
            &[&fs_alias, &net_alias],
            &[&format!("dep{CLEAR}")],
            &format!("pre: soft{OSC}"),
        ),
    );
    tree.module("kernel/net/vmw_vsock/vsock.ko.xz", &["net-pf-40"], &[], "");
    // Hostile names: a `.modinfo` name= and a file name.
    tree.write_bytes(
        "kernel/fs/evil2.ko",
        &elf_module(&format!("evil{OSC}{CLEAR}"), &[], &[], ""),
    );
    tree.write_bytes(&format!("kernel/fs/evil{CLEAR}.ko"), &modinfo_elf(""));

    let survey = |format: &str| {
        kgate()
            .args(["survey", "--no-cache", "--format", format, "--root"])
            .arg(&root)
            .output()
            .unwrap()
    };
    let text = survey("text");
    assert_eq!(text.status.code(), Some(3), "{text:?}");
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(!text.stdout.contains(&0x1b), "ESC in survey text:\n{shown}");
    assert!(!text.stderr.contains(&0x1b), "ESC in survey stderr");
    assert!(!text.stdout.contains(&0x07), "BEL in survey text:\n{shown}");
    // The escaped form is shown, so the user can see what the file says.
    assert!(shown.contains("\\x1b[2J"), "{shown}");
    assert!(shown.contains("net-pf-40-proto-\\x1b[2J"), "{shown}");

    let json = survey("json");
    let s = json_of(&json);
    assert!(
        s["problems"]
            .to_string()
            .contains(&serde_json::to_string(&format!("kernel/fs/evil{CLEAR}.ko")).unwrap()),
        "{}",
        s["problems"]
    );
    let evilfs = module(&s, "evilfs");
    assert_eq!(evilfs["via"]["alias"], net_alias.as_str(), "{evilfs}");
    assert!(
        evilfs["aliases"]
            .to_string()
            .contains(&serde_json::to_string(&fs_alias).unwrap()),
        "{evilfs}"
    );

    // freeze's report names the same strings (the module is loaded).
    let lsmod = dir.path().join("lsmod");
    std::fs::write(&lsmod, "evilfs 100 0\n").unwrap();
    let frozen = kgate()
        .args(["freeze", "--no-cache", "--root"])
        .arg(&root)
        .arg("--loaded")
        .arg(&lsmod)
        .arg("-o")
        .arg(dir.path().join("p.toml"))
        .output()
        .unwrap();
    assert!(frozen.status.success(), "{frozen:?}");
    let shown = String::from_utf8_lossy(&frozen.stdout);
    assert!(
        !frozen.stdout.contains(&0x1b),
        "ESC in freeze text:\n{shown}"
    );
    assert!(!frozen.stderr.contains(&0x1b), "ESC in freeze stderr");
}
