//! A kernel config (`/boot/config-*`, `/proc/config.gz` contents).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = kgate_kernel::config::KernelConfig::parse(&String::from_utf8_lossy(data));
    let _ = c.tristate("CONFIG_BPF_LSM");
    let _ = c.get("CONFIG_LSM");
});
