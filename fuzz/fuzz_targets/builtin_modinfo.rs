//! `modules.builtin.modinfo` (`module.key=value\0` records, read by
//! `tree::read_depmod`) and `modules.builtin` as the CVE attribution reads
//! it (`kgate_score::attr`: module name → source directory).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::builtin_modinfo::run(data));
