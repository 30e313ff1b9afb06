//! `kgate hap`: the ftrace `function` tracer's text (`trace_pipe`, or a
//! saved trace) line by line into the collector, and a saved HAP profile
//! (`kgate.hap/1` JSON, `kgate hap --baseline`, `kgate report`).
#![no_main]
use kgate_hap::{trace, Collector, Hap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(256) {
        let _ = trace::parse_line(line);
    }
    let mut c = Collector::new();
    c.text(&text);
    let _ = c.totals();
    if let Ok(p) = Hap::from_json(&text) {
        let _ = p.compare(&p);
    }
});
