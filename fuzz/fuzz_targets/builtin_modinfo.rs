//! `modules.builtin.modinfo` (`module.key=value\0` records, read by
//! `tree::read_depmod`) and `modules.builtin` as the CVE attribution reads
//! it (`kgate_score::attr`: module name → source directory).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kgate_kernel::modinfo::parse_builtin_modinfo(data);
    let _ = kgate_score::attr::parse_builtin_dirs(&String::from_utf8_lossy(data));
});
