//! `/proc/kallsyms` or `kgate hap --kallsyms FILE`: parsed by `kgate-hap`
//! (symbols, modules, lookups by name and address, mapping to subsystems)
//! and scanned by `host` for the error-injection list.
#![no_main]
use std::collections::BTreeMap;

use kgate_hap::{Kallsyms, Mapper};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = kgate_kernel::host::kallsyms_error_injection(&text);
    let syms = Kallsyms::parse(&text);
    let _ = syms.addresses_hidden();
    let dirs = BTreeMap::new();
    let mapper = Mapper::new(&syms, &dirs);
    for s in syms.symbols().iter().take(64) {
        let _ = syms.find(&s.name, Some(s.address));
        let _ = syms.find(&s.name, None);
        let _ = mapper.map(&s.name, Some(s.address.wrapping_add(1)));
    }
});
