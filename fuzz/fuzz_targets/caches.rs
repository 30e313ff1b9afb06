//! The caches: the fact cache (`kgate_kernel::cache`, bincode) and the
//! object-evidence cache (`kgate_score::objects`, JSON). A bad cache must be
//! ignored, never trusted or crash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kgate_kernel::cache::parse_cache(data, "/lib/modules/6.12.0");
    let _ = kgate_score::objects::parse_cache(data);
});
