//! A record from the BPF-LSM event ring buffer (`struct kg_event`), as
//! `kgate events` reads it, with a clock offset from the input too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::bpf_event::run(data));
