//! `kgate hap`: the ftrace `function` tracer's text (`trace_pipe`, or a
//! saved trace) line by line into the collector, and a saved HAP profile
//! (`kgate.hap/1` JSON, `kgate hap --baseline`, `kgate report`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kgate_fuzz::hap::run(data));
