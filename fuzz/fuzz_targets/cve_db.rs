//! The CVE database `cve-db.json` (`kgate_score::db`), written by `kgate
//! cve import` but read from a directory the user names.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::cve_db::run(data));
