//! A module file's ELF image (after decompression): sections, `.modinfo`,
//! code size, function count. Must never panic or loop on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kgate_kernel::ko::parse_module_elf(data);
});
