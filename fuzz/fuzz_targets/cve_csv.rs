//! A CVE table in kgate's CSV layout (`kgate cve import FILE.csv`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::cve_csv::run(data));
