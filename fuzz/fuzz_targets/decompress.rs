//! A compressed module file (`.ko.xz`, `.ko.zst`, `.ko.gz`) through the
//! bounded decompression of the module reader (`ko::decompress`), with a
//! 1 MiB cap: a bomb must stop at the cap, the output never exceed it. The
//! first byte picks the decoder (the reader picks it by file name, so any
//! bytes reach any decoder).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::decompress::run(data));
