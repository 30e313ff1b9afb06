//! The CVE database `cve-db.json` (`kgate_score::db`), written by `kgate
//! cve import` but read from a directory the user names.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = kgate_score::db::CveDb::from_json(data, std::path::Path::new("cve-db.json")) {
        let _ = db.get("CVE-2024-1");
        let _ = db.under_prefix("net/").count();
    }
});
