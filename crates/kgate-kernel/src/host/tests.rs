use super::*;
use crate::testutil::TempDir;

const REL: &str = "6.12.0-test";

fn base_config(extra: &str) -> String {
    format!(
        "CONFIG_MODULES=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_BPF_LSM=y\nCONFIG_DEBUG_INFO_BTF=y\n\
         CONFIG_SECURITY_LOCKDOWN_LSM=y\nCONFIG_SECURITY_LOCKDOWN_LSM_EARLY=y\n\
         CONFIG_SECURITY_LANDLOCK=y\nCONFIG_SECURITY_YAMA=y\nCONFIG_SECURITY_APPARMOR=y\n\
         CONFIG_SECURITY_SELINUX=y\nCONFIG_USER_NS=y\nCONFIG_SECCOMP_FILTER=y\n\
         CONFIG_LSM=\"landlock,lockdown,yama,integrity,apparmor,selinux,bpf\"\n{extra}"
    )
}

/// A fake live host: osrelease, /boot config, BTF, modules.
fn fake_host(config: &str) -> TempDir {
    let t = TempDir::new("host");
    t.write("proc/sys/kernel/osrelease", format!("{REL}\n"));
    t.write(&format!("boot/config-{REL}"), config);
    t.write("proc/modules", "");
    t.write("sys/kernel/btf/vmlinux", "BTF");
    t
}

#[test]
fn a_bpf_lsm_active() {
    let t = fake_host(&base_config(""));
    t.write(
        "sys/kernel/security/lsm",
        "lockdown,capability,landlock,yama,apparmor,bpf",
    );
    t.write(
        "sys/kernel/security/lockdown",
        "[none] integrity confidentiality\n",
    );
    let h = read_host(t.path());
    assert_eq!(h.release, REL);
    assert!(h.bpf_lsm.is_active(), "{:?}", h.bpf_lsm);
    assert!(h.modules.supported);
    assert_eq!(h.lockdown.as_deref(), Some("none"));
    assert_eq!(h.lsm.contains("bpf"), Some(true));
    assert!(h
        .config_source
        .unwrap()
        .ends_with(&format!("boot/config-{REL}")));
    let json = serde_json::to_value(&h.bpf_lsm).unwrap();
    assert_eq!(json["state"], "active");
}

#[test]
fn b_bpf_missing_from_lsm_list() {
    let t = fake_host(&base_config(""));
    t.write(
        "sys/kernel/security/lsm",
        "lockdown,capability,landlock,yama,apparmor\n",
    );
    let h = read_host(t.path());
    let BpfLsm::NotInLsmList { current, fix } = &h.bpf_lsm else {
        panic!("{:?}", h.bpf_lsm)
    };
    assert_eq!(
        current.join(","),
        "lockdown,capability,landlock,yama,apparmor"
    );
    assert!(
        fix.contains("now: lockdown,capability,landlock,yama,apparmor)"),
        "{fix}"
    );
    assert!(
        fix.contains("lsm=lockdown,capability,landlock,yama,apparmor,bpf"),
        "{fix}"
    );
    let e = h.bpf_lsm.explain();
    assert!(
        e.starts_with("BPF-LSM is compiled in but not active: add `bpf`"),
        "{e}"
    );
    assert!(e.contains("GRUB_CMDLINE_LINUX") && e.contains("update-grub") && e.contains("reboot"));
    assert!(!h.bpf_lsm.is_active());
}

#[test]
fn c_securityfs_not_mounted_with_cmdline_lsm() {
    let t = fake_host(&base_config(""));
    std::fs::create_dir_all(t.path().join("sys/kernel/security")).unwrap();
    t.write(
        "proc/cmdline",
        "BOOT_IMAGE=/vmlinuz root=/dev/sda1 lsm=landlock,yama,apparmor quiet -- lsm=bogus\n",
    );
    let h = read_host(t.path());
    assert!(h.lsm.active.is_none());
    assert!(h.lsm.why.as_deref().unwrap().contains(MOUNT_SECURITYFS));
    assert_eq!(
        h.lsm.derived.as_ref().unwrap().join(","),
        "lockdown,capability,landlock,yama,apparmor"
    );
    assert!(h
        .lsm
        .derived_from
        .as_deref()
        .unwrap()
        .contains("lsm= on /proc/cmdline"));
    let BpfLsm::NotInLsmList { fix, .. } = &h.bpf_lsm else {
        panic!("{:?}", h.bpf_lsm)
    };
    assert!(
        fix.contains("lsm=lockdown,capability,landlock,yama,apparmor,bpf"),
        "{fix}"
    );
    assert!(fix.contains("securityfs is not mounted"), "{fix}");
    assert!(
        h.lockdown
            .as_deref()
            .unwrap()
            .contains("from the kernel config, securityfs is not mounted"),
        "{:?}",
        h.lockdown
    );

    // Without lsm= the list comes from CONFIG_LSM, which has bpf.
    t.write("proc/cmdline", "root=/dev/sda1 quiet\n");
    let h = read_host(t.path());
    assert_eq!(
        h.lsm.derived.as_ref().unwrap().join(","),
        "lockdown,capability,landlock,yama,apparmor,bpf"
    );
    assert!(h
        .lsm
        .derived_from
        .as_deref()
        .unwrap()
        .contains("CONFIG_LSM"));
    assert!(h.bpf_lsm.is_active());
}

#[test]
fn d_config_bpf_lsm_not_set() {
    let cfg = base_config("").replace("CONFIG_BPF_LSM=y", "# CONFIG_BPF_LSM is not set");
    let t = fake_host(&cfg);
    t.write(
        "sys/kernel/security/lsm",
        "lockdown,capability,landlock,yama,apparmor",
    );
    let h = read_host(t.path());
    assert!(
        matches!(h.bpf_lsm, BpfLsm::NotCompiled { .. }),
        "{:?}",
        h.bpf_lsm
    );
    let e = h.bpf_lsm.explain();
    assert!(
        e.starts_with("CONFIG_BPF_LSM is not set in this kernel's config"),
        "{e}"
    );
    assert!(
        e.contains("CONFIG_BPF_LSM=y") && e.contains("modprobe backend"),
        "{e}"
    );
    let off = offline_facts(REL, Some(&KernelConfig::parse(&cfg)));
    assert!(matches!(off.bpf_lsm, BpfLsm::NotCompiled { .. }));
}

#[test]
fn e_no_btf() {
    let cfg = base_config("").replace(
        "CONFIG_DEBUG_INFO_BTF=y",
        "# CONFIG_DEBUG_INFO_BTF is not set",
    );
    let t = fake_host(&cfg);
    std::fs::remove_file(t.path().join("sys/kernel/btf/vmlinux")).unwrap();
    t.write("sys/kernel/security/lsm", "capability,bpf");
    let h = read_host(t.path());
    assert!(!h.btf);
    assert_eq!(h.bpf_lsm, BpfLsm::NoBtf);
    assert!(h.bpf_lsm.explain().contains("CONFIG_DEBUG_INFO_BTF"));
    assert_eq!(
        offline_facts(REL, Some(&KernelConfig::parse(&cfg))).bpf_lsm,
        BpfLsm::NoBtf
    );
}

#[test]
fn f_sysctls_and_accessors() {
    let t = fake_host(&base_config(""));
    t.write("proc/sys/dev/tty/ldisc_autoload", "1\n");
    t.write("proc/sys/kernel/modules_disabled", "0\n");
    let h = read_host(t.path());
    assert_eq!(h.ldisc_autoload(), Some(true));
    assert!(!h.modules_disabled());
    assert_eq!(
        h.sysctl("kernel.io_uring_disabled").unwrap().status,
        SysctlStatus::Absent
    );
    assert_eq!(
        h.sysctl("dev.tty.ldisc_autoload").unwrap().status,
        SysctlStatus::NotHardened
    );
    t.write("proc/sys/dev/tty/ldisc_autoload", "0\n");
    t.write("proc/sys/kernel/modules_disabled", "1\n");
    let h = read_host(t.path());
    assert_eq!(h.ldisc_autoload(), Some(false));
    assert!(h.modules_disabled());
    assert_eq!(
        h.sysctl("dev.tty.ldisc_autoload").unwrap().status,
        SysctlStatus::Hardened
    );
}

#[test]
fn g_debian_userns_clone_zero() {
    let t = fake_host(&base_config(""));
    t.write("proc/sys/user/max_user_namespaces", "63000\n");
    let h = read_host(t.path());
    assert!(h.unprivileged_userns(), "{}", h.userns.reason);
    t.write("proc/sys/kernel/unprivileged_userns_clone", "0\n");
    let h = read_host(t.path());
    assert!(!h.unprivileged_userns());
    assert!(
        h.userns.reason.contains("unprivileged_userns_clone=0"),
        "{}",
        h.userns.reason
    );
    // max_user_namespaces=0 and CONFIG_USER_NS off also block.
    t.write("proc/sys/kernel/unprivileged_userns_clone", "1\n");
    t.write("proc/sys/user/max_user_namespaces", "0\n");
    assert!(!read_host(t.path()).unprivileged_userns());
    let off = offline_facts(
        REL,
        Some(&KernelConfig::parse("# CONFIG_USER_NS is not set\n")),
    );
    assert!(!off.unprivileged_userns());
}

#[test]
fn ubuntu_apparmor_restriction() {
    let t = fake_host(&base_config(""));
    t.write(
        "sys/kernel/security/lsm",
        "lockdown,capability,landlock,yama,apparmor",
    );
    t.write(
        "proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1\n",
    );
    assert!(!read_host(t.path()).unprivileged_userns());
    t.write(
        "sys/kernel/security/lsm",
        "lockdown,capability,landlock,yama",
    );
    assert!(read_host(t.path()).unprivileged_userns());
}

#[test]
fn modules_absent_and_not_configured() {
    let t = fake_host("# CONFIG_MODULES is not set\n");
    std::fs::remove_file(t.path().join("proc/modules")).unwrap();
    let h = read_host(t.path());
    assert!(!h.modules.supported);
    assert_eq!(
        h.modules.evidence,
        "/proc/modules absent and CONFIG_MODULES is not set"
    );
    assert!(h.modules_disabled());
}

#[test]
fn empty_root_never_fails() {
    let t = TempDir::new("empty");
    let h = read_host(t.path());
    assert_eq!(h.release, "");
    assert!(
        matches!(h.bpf_lsm, BpfLsm::Unknown { .. }),
        "{:?}",
        h.bpf_lsm
    );
    assert!(h.unprivileged_userns());
    serde_json::to_string(&h).unwrap();
    let off = offline_facts("6.1.0", None);
    assert!(off.offline && matches!(off.bpf_lsm, BpfLsm::Unknown { .. }));
}

#[test]
fn offline_defaults() {
    let cfg = base_config(
        "CONFIG_BPF_UNPRIV_DEFAULT_OFF=y\nCONFIG_TTY=y\nCONFIG_LDISC_AUTOLOAD=y\nCONFIG_IO_URING=y\n\
         CONFIG_SECURITY_PERF_EVENTS_RESTRICT=y\nCONFIG_PERF_EVENTS=y\nCONFIG_LOCK_DOWN_KERNEL_FORCE_NONE=y\n\
         CONFIG_IMA=y\nCONFIG_EVM=y\nCONFIG_INTEGRITY=y\nCONFIG_MODPROBE_PATH=\"/sbin/modprobe\"\n",
    );
    let h = offline_facts("6.12.113+deb12-amd64", Some(&KernelConfig::parse(&cfg)));
    assert!(h.offline);
    assert_eq!(
        h.lsm.effective().unwrap().join(","),
        "lockdown,capability,landlock,yama,apparmor,bpf,ima,evm"
    );
    assert!(h.bpf_lsm.is_active());
    assert_eq!(h.lockdown.as_deref(), Some("none"));
    let v = |n: &str| h.sysctl(n).unwrap().value.clone();
    assert_eq!(v("kernel.unprivileged_bpf_disabled").as_deref(), Some("2"));
    assert_eq!(v("dev.tty.ldisc_autoload").as_deref(), Some("1"));
    assert_eq!(v("kernel.io_uring_disabled").as_deref(), Some("0"));
    assert_eq!(v("kernel.perf_event_paranoid").as_deref(), Some("3"));
    assert_eq!(v("kernel.modprobe").as_deref(), Some("/sbin/modprobe"));
    assert_eq!(v("kernel.unprivileged_userns_clone").as_deref(), Some("1"));
    assert!(h
        .sysctls
        .iter()
        .all(|r| r.source == SysctlSource::KernelDefault));
    assert_eq!(
        h.sysctl("user.max_user_namespaces").unwrap().status,
        SysctlStatus::NotHardened
    );
    assert_eq!(
        h.sysctl("kernel.kexec_load_disabled").unwrap().status,
        SysctlStatus::Absent
    );
    assert!(h.unprivileged_userns());
    assert_eq!(h.ldisc_autoload(), Some(true));
    // Pre-6.4: integrity stays where CONFIG_LSM puts it.
    let old = effective_lsm_list(
        "integrity,apparmor,selinux,bpf",
        Some(&KernelConfig::parse(&cfg)),
        "6.1.0-54-amd64",
    );
    assert_eq!(old.join(","), "lockdown,capability,integrity,apparmor,bpf");
}

#[test]
fn helpers() {
    assert_eq!(kernel_version("6.12.113+deb12-amd64"), Some((6, 12)));
    assert_eq!(kernel_version("5.4"), Some((5, 4)));
    assert_eq!(kernel_version(""), None);
    assert_eq!(
        lockdown_mode("none [integrity] confidentiality").as_deref(),
        Some("integrity")
    );
    assert_eq!(
        cmdline_param("a lsm=x lsm=y -- lsm=z", "lsm").as_deref(),
        Some("y")
    );
    assert_eq!(cmdline_param("a nolsm=x", "lsm"), None);
}

/// `cargo test -p kgate-kernel -- --ignored --nocapture print_live_host`
#[test]
#[ignore = "prints the facts of the machine running the tests"]
fn print_live_host() {
    let h = read_host(Path::new("/"));
    println!("{}", serde_json::to_string_pretty(&h).unwrap());
    println!("bpf_lsm: {}", h.bpf_lsm.explain());
}

/// The offline facts of the Debian cloud kernel that `cargo xtask fetch`
/// unpacks into the lab cache; skips loudly when it is not there (fails
/// under `KGATE_REQUIRE_KERNELS=1`), and fails when its config is
/// missing or unreadable. (It used to look in a directory the lab never
/// creates, and skipped everywhere.)
#[test]
fn print_debian_offline_if_present() {
    let rel = "6.12.113+deb12-cloud-amd64";
    let Some(dir) =
        crate::testutil::debian_kernel("linux-image-6.12.113+deb12-cloud-amd64-unsigned")
    else {
        return;
    };
    let (cfg, src) = KernelConfig::load_offline(&dir, rel)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .unwrap_or_else(|| panic!("{} has no boot/config-{rel}", dir.display()));
    let mut h = offline_facts(rel, Some(&cfg));
    h.config_source = Some(src.display().to_string());
    println!("{}", serde_json::to_string_pretty(&h).unwrap());
    println!("bpf_lsm: {}", h.bpf_lsm.explain());
    assert!(h.modules.supported);
    assert!(h.bpf_lsm.is_active(), "{}", h.bpf_lsm.explain());
    assert_eq!(h.lockdown.as_deref(), Some("none"));
}
