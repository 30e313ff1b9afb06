//! `.modinfo` sections and `modules.builtin.modinfo`: NUL-separated
//! `key=value` strings from a module chosen by whoever built it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kgate_kernel::modinfo::parse_modinfo(data);
    let _ = kgate_kernel::modinfo::parse_builtin_modinfo(data);
});
