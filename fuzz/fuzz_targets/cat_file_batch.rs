//! `git cat-file --batch` output read from a vulns clone
//! (`kgate_score::import`): `<oid> blob <size>\n`, the contents, a newline;
//! the size is git's (the repository's) word. A blob handed on is never
//! over `MAX_RECORD_BYTES`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::cat_file_batch::run(data));
