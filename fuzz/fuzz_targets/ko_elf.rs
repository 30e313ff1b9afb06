//! A module file's ELF image (after decompression): sections, `.modinfo`,
//! code size, function count. Must never panic or loop on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::ko_elf::run(data));
