//! `/proc/self/mountinfo` and `/proc/mounts` (`boot`: the filesystems a
//! host needs to boot), with the kernel's octal escapes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = kgate_kernel::boot::parse_mountinfo(&text);
    let _ = kgate_kernel::boot::parse_proc_mounts(&text);
});
