//! The horizontal attack profile (HAP) of a workload: the distinct kernel
//! functions it makes the kernel run, after James Bottomley's HAP method
//! (the ftrace `function` tracer, a pid filter that follows forks, and
//! interrupt noise removed).
//!
//! This crate is the pure half: it parses trace text ([`trace`]), resolves
//! functions to modules through `/proc/kallsyms` text ([`kallsyms`]), maps
//! them to kernel subsystems ([`subsys`]) and builds, saves and compares
//! profiles ([`profile`], JSON schema `kgate.hap/1`). It never touches
//! tracefs; the `kgate hap` command drives ftrace and feeds this crate.
//!
//! # Compatibility
//!
//! The `function` tracer's text output of Linux 4.x to 6.18: 4- or
//! 5-character latency flags, with or without `sym-addr`, `sym-offset`,
//! `record-tgid` and `irq-info`.
//!
//! # Tests
//!
//! Unit tests on handwritten lines, and integration tests on trace text
//! and kallsyms captured from Debian's 6.12 cloud kernel in the kgate lab
//! (`tests/data`).

pub mod kallsyms;
pub mod profile;
pub mod subsys;
pub mod trace;

pub use kallsyms::Kallsyms;
pub use profile::{Comparison, CveCounts, CveLookup, HapProfile, RunInfo, SCHEMA};
pub use subsys::{How, Mapper};
pub use trace::{Collector, Context};
