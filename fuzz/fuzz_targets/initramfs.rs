//! An initramfs image (`boot::initramfs_modules`): cpio archives back to
//! back, each plain or gzip/zstd/xz-compressed, with zero padding; each
//! decompressed segment capped at 1 MiB here.
#![no_main]
use std::path::Path;

use kgate_kernel::bounded::Limit;
use libfuzzer_sys::fuzz_target;

const CAP: Limit = Limit {
    kind: "initramfs segment",
    max: 1 << 20,
};

fuzz_target!(|data: &[u8]| {
    let _ = kgate_kernel::boot::parse_initramfs(data, Path::new("initrd.img"), CAP);
});
