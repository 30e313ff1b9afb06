//! An initramfs image (`boot::initramfs_modules`): cpio archives back to
//! back, each plain or gzip/zstd/xz-compressed, with zero padding; each
//! decompressed segment capped at 1 MiB here.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::initramfs::run(data));
