//! A record from the BPF-LSM event ring buffer (`struct kg_event`), as
//! `kgate bpf events` reads it, with a clock offset from the input too.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (offset, record) = match data.split_first_chunk::<16>() {
        Some((o, rest)) => (i128::from_ne_bytes(*o), rest),
        None => (0, data),
    };
    let _ = kgate_bpf::decode_event(record, offset);
});
