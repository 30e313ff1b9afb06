//! depmod's text files (modules.dep, modules.alias, modules.softdep,
//! modules.builtin) and /proc/modules, as read from a `--root` image.
#![no_main]
use kgate_kernel::depmod;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = depmod::parse_modules_dep(&text);
    let _ = depmod::parse_modules_alias(&text);
    let _ = depmod::parse_modules_softdep(&text);
    let _ = depmod::parse_modules_builtin(&text);
    let _ = depmod::parse_proc_modules(&text);
});
