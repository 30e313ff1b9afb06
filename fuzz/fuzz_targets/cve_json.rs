//! One CVE JSON 5 record (the kernel CNA's vulns repository, cvelistV5).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kgate_score::import::parse_cve_json(data, true, None);
    let _ = kgate_score::import::parse_cve_json(data, false, Some("2026-01-01"));
});
