//! `git cat-file --batch` output read from a vulns clone
//! (`kgate_score::import`): `<oid> blob <size>\n`, the contents, a newline;
//! the size is git's (the repository's) word. A blob handed on is never
//! over `MAX_RECORD_BYTES`.
#![no_main]
use kgate_score::import::{read_cat_file_batch, BatchBlob, MAX_RECORD_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let names: Vec<String> = (0..4)
        .map(|i| format!("cve/published/2024/CVE-2024-{i}.json"))
        .collect();
    let mut reader = data;
    let _ = read_cat_file_batch(&mut reader, &names, |_, _, blob| {
        if let BatchBlob::Contents(b) = blob {
            assert!(b.len() <= MAX_RECORD_BYTES);
            let _ = kgate_score::import::parse_cve_json(b, true, None);
        }
    });
});
