//! modprobe.d files of a host or image (`install`, `blacklist`, ...).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::modprobe_conf::run(data));
