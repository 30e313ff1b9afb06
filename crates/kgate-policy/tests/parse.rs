//! Parsing, validation diagnostics and the canonical rendering.

use kgate_policy::*;

const FULL: &str = r#"# a hand-written policy
version = 1

[meta]
name = "web-01 freeze"
kernel = "6.12.113+deb12-cloud-amd64"
generated_by = "kgate freeze 0.1.0"

[modules]
mode = "enforce"
root = "allow"
allow = ["ext4", { name = "sctp", reason = "SIP trunk to the PBX" }, "nf-tables"]

[sockets]
mode = "enforce"
allow = ["unix", "inet/tcp", "inet/udp", "inet/icmp", "inet6/tcp", "inet6/udp", "netlink/route", "packet"]

[splice]
mode = "enforce"
allow = ["pipe", "file:ext4", "file:xfs", "file:tmpfs", "socket:inet/tcp", "socket:unix", "chardev:null", "other"]
pairs = ["file:ext4 -> socket:inet/tcp"]
on_deny = "einval"

[userns]
unprivileged = "deny"
allow_exe = [{ name = "/usr/bin/bwrap", reason = "flatpak" }]

[sysctl]
"kernel.unprivileged_bpf_disabled" = 2
"kernel.modprobe" = "/sbin/modprobe"
"#;

#[track_caller]
fn errors(text: &str) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    match Policy::parse(text, "web.toml") {
        Ok(l) => panic!("expected errors, got {:#?}", l.policy),
        Err(PolicyError::Invalid { errors, warnings }) => (errors, warnings),
        Err(e) => panic!("{e}"),
    }
}

#[track_caller]
fn ok(text: &str) -> Loaded {
    Policy::parse(text, "web.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn full_example_parses() {
    let l = ok(FULL);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.policy;
    assert_eq!(p.meta.name.as_deref(), Some("web-01 freeze"));
    assert_eq!(p.modules.mode, Mode::Enforce);
    assert_eq!(p.modules.root, RootMode::Allow);
    let names: Vec<&str> = p.modules.allow.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(names, ["ext4", "nf_tables", "sctp"]);
    let sctp = p.lists_module("sctp").unwrap();
    assert_eq!(sctp.reason.as_deref(), Some("SIP trunk to the PBX"));
    assert_eq!(sctp.line(), Some(12));
    assert_eq!(p.sockets.allow.len(), 8);
    assert!(p.sockets.allows(2, socket::SOCK_STREAM, 0));
    assert!(!p.sockets.allows(40, socket::SOCK_STREAM, 0));
    assert!(!p.sockets.allows(2, socket::SOCK_STREAM, 132));
    assert_eq!(p.splice.pairs.len(), 1);
    let ext4 = Endpoint::File("ext4".into());
    let tcp = Endpoint::Socket(SocketRule::protocol(2, 6));
    assert!(p.splice.allows(&ext4, &tcp));
    assert!(!p.splice.allows(&tcp, &ext4));
    assert_eq!(p.userns.unprivileged, UsernsMode::Deny);
    assert_eq!(p.userns.allow_exe[0].value, "/usr/bin/bwrap");
    assert_eq!(
        p.sysctl["kernel.unprivileged_bpf_disabled"].value,
        SysctlValue::Int(2)
    );
    assert_eq!(
        p.sysctl["kernel.modprobe"].value,
        SysctlValue::Str("/sbin/modprobe".into())
    );
}

#[test]
fn empty_policy_is_all_off() {
    let p = ok("version = 1\n").policy;
    assert_eq!(p, Policy::default());
    assert_eq!(p.modules.mode, Mode::Off);
    assert_eq!(p.userns.unprivileged, UsernsMode::Allow);
    assert_eq!(
        p.to_toml().lines().filter(|l| !l.starts_with('#')).count(),
        1
    );
}

#[test]
fn wrong_type() {
    let (errs, _) = errors("version = 1\n[modules]\nmode = 1\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = &errs[0];
    assert_eq!((e.line, e.column), (3, 8));
    assert_eq!(e.key, "modules.mode");
    assert_eq!(e.message, "expected a string, found an integer");
    assert_eq!(
        e.to_string(),
        "web.toml:3:8: modules.mode: expected a string, found an integer"
    );

    let (errs, _) = errors("version = 1\nmodules = 3\n[sockets]\nallow = \"unix\"\n");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].key, "modules");
    assert_eq!(errs[1].key, "sockets.allow");
    assert!(
        errs[1].message.starts_with("expected an array"),
        "{}",
        errs[1]
    );

    let (errs, _) = errors("version = 1\n[modules]\nallow = [\"ext4\", 7, { name = 3 }]\n");
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["modules.allow[1]", "modules.allow[2].name"]);
}

#[test]
fn unknown_value() {
    let (errs, _) = errors("version = 1\n\n[modules]\nmode = \"enforcing\"\n");
    assert_eq!(
        errs[0].to_string(),
        "web.toml:4:8: modules.mode: unknown value \"enforcing\"; allowed: enforce, audit, off; did you mean `enforce`?"
    );
    let (errs, _) = errors("version = 1\n[splice]\non_deny = \"eperm\"\n");
    assert_eq!(errs[0].allowed, ["einval"]);
    let (errs, _) = errors("version = 1\n[userns]\nunprivileged = \"no\"\n");
    assert_eq!(errs[0].allowed, ["deny", "allow", "audit"]);
}

#[test]
fn unknown_key() {
    let (errs, _) = errors("version = 1\n[modules]\nmode = \"audit\"\nalow = [\"ext4\"]\n");
    assert_eq!(errs.len(), 1);
    let e = &errs[0];
    assert_eq!((e.line, e.column), (4, 1));
    assert_eq!(e.key, "modules.alow");
    assert_eq!(e.message, "unknown key `alow`");
    assert_eq!(e.allowed, ["mode", "root", "allow"]);
    assert_eq!(e.hint.as_deref(), Some("did you mean `allow`?"));
    assert_eq!(
        e.to_string(),
        "web.toml:4:1: modules.alow: unknown key `alow`; allowed: mode, root, allow; did you mean `allow`?"
    );
    // At the top level, in inline tables and in entries too.
    let (errs, _) = errors(
        "version = 1\nmodule = {}\n[sockets]\nallow = [{ name = \"unix\", reson = \"x\" }]\n",
    );
    assert_eq!(errs[0].key, "module");
    assert_eq!(errs[0].hint.as_deref(), Some("did you mean `modules`?"));
    assert_eq!(errs[1].key, "sockets.allow[0].reson");
    assert_eq!(errs[1].hint.as_deref(), Some("did you mean `reason`?"));
}

#[test]
fn all_errors_are_collected() {
    let text = "version = 2\n\
                [modules]\n\
                mode = \"enforcing\"\n\
                allow = [\"ext 4\"]\n\
                [sockets]\n\
                allow = [\"inet/tpc\", \"vsok\", \"unix/raw\"]\n\
                [splice]\n\
                allow = [\"file:ext5\", \"fifo\"]\n\
                pairs = [\"pipe\"]\n\
                [userns]\n\
                allow_exe = [\"bwrap\"]\n\
                [sysctl]\n\
                \"kernel.io_uring_disabled\" = 3\n";
    let (errs, _) = errors(text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "version",
            "modules.mode",
            "modules.allow[0]",
            "sockets.allow[0]",
            "sockets.allow[1]",
            "sockets.allow[2]",
            "splice.allow[0]",
            "splice.allow[1]",
            "splice.pairs[0]",
            "userns.allow_exe[0]",
            "sysctl.\"kernel.io_uring_disabled\"",
        ],
        "{errs:#?}"
    );
    let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 3, 4, 6, 6, 6, 8, 8, 9, 11, 13]);
    assert!(
        errs[3].hint.as_deref() == Some("did you mean `tcp`?"),
        "{}",
        errs[3]
    );
    assert!(errs[4].allowed.contains(&"vsock".to_string()));
    assert!(errs[6].message.contains("unknown filesystem `ext5`"));
    assert!(errs[6].allowed.contains(&"ext4".to_string()));
    assert!(errs[9].message.contains("relative path `bwrap`"));
    // The whole error displays one line per diagnostic.
    let e = Policy::parse(text, "web.toml").unwrap_err();
    assert_eq!(e.to_string().lines().count(), 12);
    assert!(e.to_string().ends_with("policy rejected: 11 errors"));
}

#[test]
fn version_is_required() {
    let (errs, _) = errors("[modules]\nmode = \"off\"\n");
    assert_eq!(errs[0].key, "version");
    assert_eq!((errs[0].line, errs[0].column), (1, 1));
    let (errs, _) = errors("version = \"1\"\n");
    assert_eq!(errs[0].message, "expected an integer, found a string");
}

#[test]
fn syntax_error_has_position() {
    let (errs, _) = errors("version = 1\n[modules]\nmode = \"enforce\nallow = []\n");
    assert_eq!(errs.len(), 1);
    let e = &errs[0];
    assert_eq!(e.line, 3, "{e}");
    assert_eq!(e.key, "modules.mode");
    assert!(e.message.starts_with("TOML syntax"), "{e}");

    let (errs, _) = errors("version = 1\n[modules]\nmode = \"off\"\nmode = \"audit\"\n");
    assert_eq!(errs[0].line, 4, "{}", errs[0]);
    assert!(errs[0].message.contains("duplicate key"), "{}", errs[0]);
}

#[test]
fn bad_sysctl_values() {
    let (errs, warns) = errors(
        "version = 1\n[sysctl]\n\
         \"kernel.unprivileged_bpf_disabled\" = 3\n\
         \"kernel.perf_event_paranoid\" = -2\n\
         \"dev.tty.ldisc_autoload\" = true\n\
         \"kernel.modprobe\" = \"sbin/modprobe\"\n\
         \"user.max_user_namespaces\" = -1\n\
         \"Not A Sysctl\" = 1\n\
         \"net.ipv4.tcp_syncookies\" = 1.5\n",
    );
    assert!(warns.is_empty());
    let e = &errs[0];
    assert_eq!(
        e.to_string(),
        "web.toml:3:38: sysctl.\"kernel.unprivileged_bpf_disabled\": value 3 is out of range; allowed: 0, 1, 2"
    );
    assert_eq!(errs[1].allowed, ["-1", "0", "1", "2", "3", "4"]);
    assert_eq!(errs[2].message, "expected an integer, found a boolean");
    assert!(errs[3].message.contains("not an absolute path"));
    assert_eq!(errs[4].allowed, ["an integer >= 0"]);
    assert!(errs[5].message.contains("is not a sysctl name"));
    assert!(errs[6].message.contains("found a float"));
    assert_eq!(errs.len(), 7);
}

#[test]
fn sysctl_warnings() {
    let l = ok("version = 1\n[sysctl]\n\
                \"kernel.modules_disabled\" = 1\n\
                \"net.ipv4.tcp_syncookies\" = 1\n\
                \"kernel.io_uring_disabld\" = 2\n\
                \"kernel.modprobe\" = \"\"\n");
    let w = &l.warnings;
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(
        w[0].message.contains("cannot be reverted until reboot"),
        "{}",
        w[0]
    );
    assert!(w[1]
        .message
        .contains("not one of kgate's attack-surface sysctls"));
    assert_eq!(
        w[2].hint.as_deref(),
        Some("did you mean `kernel.io_uring_disabled`?")
    );
    assert_eq!(w[2].line, 5);
    assert!(w[2].to_string().contains(": warning: "));
}

#[test]
fn unquoted_dotted_sysctl_keys() {
    let p = ok(
        "version = 1\n[sysctl]\nkernel.modprobe = \"/sbin/modprobe\"\ndev.tty.ldisc_autoload = 0\n",
    )
    .policy;
    assert_eq!(p.sysctl.len(), 2);
    assert_eq!(
        p.sysctl["dev.tty.ldisc_autoload"].value,
        SysctlValue::Int(0)
    );
}

#[test]
fn duplicates_warn() {
    let l = ok("version = 1\n[modules]\nallow = [\"nf_tables\", \"ext4\", \"nf-tables\"]\n[sockets]\nallow = [\"inet/sctp\", \"inet/132\"]\n");
    assert_eq!(l.policy.modules.allow.len(), 2);
    assert_eq!(l.warnings.len(), 2);
    assert_eq!(l.warnings[0].key, "modules.allow[2]");
    assert!(
        l.warnings[0].message.contains("first at line 3"),
        "{}",
        l.warnings[0]
    );
    assert!(
        l.warnings[1].message.contains("same as `inet/sctp`"),
        "{}",
        l.warnings[1]
    );
}

#[test]
fn round_trip() {
    let p = ok(FULL).policy;
    let text = p.to_toml();
    let again = ok(&text);
    assert!(again.warnings.is_empty());
    assert_eq!(again.policy, p);
    assert_eq!(again.policy.to_toml(), text, "rendering is a fixed point");
    assert_eq!(again.policy.hash(), p.hash());
    assert_eq!(p.hash().len(), 64);
    assert!(text.contains("    { name = \"sctp\", reason = \"SIP trunk to the PBX\" },\n"));
    assert!(text.contains("\"kernel.modprobe\" = \"/sbin/modprobe\"\n"));

    // Comments and order in the source do not change the hash.
    let shuffled = FULL
        .replace("# a hand-written policy\n", "")
        .replace("\"unix\", \"inet/tcp\"", "\"inet/tcp\", \"unix\"");
    assert_eq!(ok(&shuffled).policy.hash(), p.hash());

    // A changed value does.
    let mut q = p.clone();
    q.modules.allow.push(Entry::new("vsock".into()));
    q.normalize();
    assert_ne!(q.hash(), p.hash());
    assert_eq!(ok(&q.to_toml()).policy, q);
}

#[test]
fn round_trip_escapes_and_presets() {
    let mut p = Policy::default();
    p.meta.name = Some("quote \" backslash \\ newline \n tab \t é".into());
    p.splice = SpliceSection::preset(SplicePreset::Strict, Mode::Enforce);
    p.sysctl.insert(
        "kernel.modprobe".into(),
        Entry::new(SysctlValue::Str("".into())),
    );
    p.sysctl.insert(
        "net.core.bpf_jit_harden".into(),
        Entry::new(SysctlValue::Int(2)),
    );
    p.normalize();
    let l = ok(&p.to_toml());
    assert_eq!(l.policy, p);
    assert!(l.policy.to_toml().contains("\"file:* -> socket:*\""));
}

#[test]
fn load_reads_files() {
    let dir = std::env::temp_dir().join(format!("kgate-policy-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("web.toml");
    std::fs::write(&path, FULL).unwrap();
    let l = Policy::load(&path).unwrap();
    assert_eq!(l.policy.source.as_deref(), Some(path.as_path()));
    let missing = Policy::load(dir.join("nope.toml")).unwrap_err();
    assert!(matches!(missing, PolicyError::Read { .. }));
    std::fs::write(&path, "version = 1\n[modules]\nmode = 1\n").unwrap();
    let e = Policy::load(&path).unwrap_err();
    assert!(e
        .to_string()
        .starts_with(&format!("{}:3:8: modules.mode", path.display())));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn splice_preset_gives_the_base_lists_and_allow_adds() {
    let l = ok("version = 1\n[splice]\nmode = \"enforce\"\npreset = \"strict\"\nallow = [\"socket:alg\"]\n");
    let s = &l.policy.splice;
    let strict = SpliceSection::preset(SplicePreset::Strict, Mode::Enforce);
    assert_eq!(s.pairs, strict.pairs);
    assert_eq!(s.allow.len(), strict.allow.len() + 1);
    let file = Endpoint::parse("file:ext4").unwrap();
    let tcp = Endpoint::parse("socket:inet/tcp").unwrap();
    // Dirty Pipe's primitive is out, sendfile to a socket stays.
    assert!(!s.allows(&file, &Endpoint::Pipe));
    assert!(s.allows(&file, &tcp));
    assert!(s.allows(&Endpoint::Pipe, &tcp));

    let (errs, _) = errors("version = 1\n[splice]\npreset = \"strikt\"\n");
    assert_eq!(errs[0].line, 3, "{errs:?}");
    assert!(
        errs[0].message.contains("unknown value \"strikt\""),
        "{errs:?}"
    );
}
