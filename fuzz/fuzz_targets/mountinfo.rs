//! `/proc/self/mountinfo` and `/proc/mounts` (`boot`: the filesystems a
//! host needs to boot), with the kernel's octal escapes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::mountinfo::run(data));
