//! `/proc/kallsyms` or `kgate hap --kallsyms FILE`: parsed by `kgate-hap`
//! (symbols, modules, lookups by name and address, mapping to subsystems)
//! and scanned by `host` for the error-injection list.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::kallsyms::run(data));
