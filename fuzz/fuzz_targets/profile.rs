//! A recorded workload profile (`kgate record -o FILE`, JSON), as merged
//! from a fleet.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::profile::run(data));
