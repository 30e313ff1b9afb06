//! The `/proc` and `/sys` host facts under `--root`: the LSM list, the
//! lockdown mode, sysctl values (judged by every attack-surface rule), the
//! kernel command line (`lsm=`, `security=`), the effective LSM order,
//! `osrelease`, and the dm/md facts of `/sys/class/block` (`dm/uuid`,
//! `md/level`).
#![no_main]
use kgate_kernel::{boot, host, sysctl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let value = sysctl::parse_value(data);
    for spec in sysctl::ATTACK_SURFACE_SYSCTLS {
        let r = sysctl::SysctlReading::judge(
            spec,
            Some(value.clone()),
            sysctl::SysctlStatus::Unreadable,
            sysctl::SysctlSource::Live,
            None,
        );
        let _ = r.int();
    }
    let text = value.as_str();
    let _ = host::parse_lsm_list(text);
    let _ = host::lockdown_mode(text);
    let _ = host::kernel_version(text);
    for name in ["lsm", "security"] {
        if let Some(order) = host::cmdline_param(text, name) {
            let _ = host::effective_lsm_list(&order, None, text);
        }
    }
    let _ = host::effective_lsm_list(text, None, "6.12.0");
    let _ = boot::dm_modules(text);
    let _ = boot::md_personality(text);
});
