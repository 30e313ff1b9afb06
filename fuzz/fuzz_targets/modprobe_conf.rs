//! modprobe.d files of a host or image (`install`, `blacklist`, ...).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut conf = kgate_kernel::modprobe_conf::ModprobeConf::default();
    conf.add(&String::from_utf8_lossy(data), "fuzz.conf");
});
