//! A kernel config (`/boot/config-*`, `/proc/config.gz` contents).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::kernel_config::run(data));
