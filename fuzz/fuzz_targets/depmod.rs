//! depmod's text files (modules.dep, modules.alias, modules.softdep,
//! modules.builtin) and /proc/modules, as read from a `--root` image.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::depmod::run(data));
