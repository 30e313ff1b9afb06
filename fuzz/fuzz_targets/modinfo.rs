//! `.modinfo` sections and `modules.builtin.modinfo`: NUL-separated
//! `key=value` strings from a module chosen by whoever built it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::modinfo::run(data));
