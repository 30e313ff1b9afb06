//! The caches: the fact cache (`kgate_kernel::cache`, bincode) and the
//! object-evidence cache (`kgate_score::objects`, JSON). A bad cache must be
//! ignored, never trusted or crash.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::caches::run(data));
