//! One CVE JSON 5 record (the kernel CNA's vulns repository, cvelistV5).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::cve_json::run(data));
