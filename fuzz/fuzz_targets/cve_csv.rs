//! A CVE table in kgate's CSV layout (`kgate cve import FILE.csv`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = kgate_score::import::ImportOptions {
        terms: None,
        progress: None,
    };
    let _ = kgate_score::import::parse_csv(
        &String::from_utf8_lossy(data),
        std::path::Path::new("f.csv"),
        &opts,
    );
});
