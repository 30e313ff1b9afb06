//! A compressed module file (`.ko.xz`, `.ko.zst`, `.ko.gz`) through the
//! bounded decompression of the module reader (`ko::decompress`), with a
//! 1 MiB cap: a bomb must stop at the cap, the output never exceed it. The
//! first byte picks the decoder (the reader picks it by file name, so any
//! bytes reach any decoder).
#![no_main]
use kgate_kernel::ko::{decompress, Compression};
use libfuzzer_sys::fuzz_target;

const CAP: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    let compression = match which % 4 {
        0 => Compression::Xz,
        1 => Compression::Zstd,
        2 => Compression::Gzip,
        _ => Compression::None,
    };
    let mut out = Vec::new();
    let result = decompress(compression, input, &mut out, CAP);
    assert!(out.len() as u64 <= CAP + 1, "{} bytes held", out.len());
    if result.is_ok() {
        assert!(out.len() as u64 <= CAP, "{} bytes returned", out.len());
        let _ = kgate_kernel::ko::parse_module_elf(&out);
    }
});
