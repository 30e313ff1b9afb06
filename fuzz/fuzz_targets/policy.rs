//! A policy file (TOML). A policy that parses must render and parse again
//! to the same hash: the canonical form is a fixed point.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::policy::run(data));
