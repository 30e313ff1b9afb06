//! A recorded workload profile (`kgate record -o FILE`, JSON), as merged
//! from a fleet.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = kgate_policy::profile::Profile::from_json(text, std::path::Path::new("f.json")) {
        let _ = p.syscall_names();
    }
});
