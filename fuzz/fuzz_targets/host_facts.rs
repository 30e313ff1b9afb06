//! The `/proc` and `/sys` host facts under `--root`: the LSM list, the
//! lockdown mode, sysctl values (judged by every attack-surface rule), the
//! kernel command line (`lsm=`, `security=`), the effective LSM order,
//! `osrelease`, and the dm/md facts of `/sys/class/block` (`dm/uuid`,
//! `md/level`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::host_facts::run(data));
