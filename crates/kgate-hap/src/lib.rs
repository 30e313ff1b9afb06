//! The horizontal attack profile (HAP) of a workload: the distinct kernel
//! functions it makes the kernel run, after James Bottomley's HAP method
//! (the ftrace `function` tracer, a pid filter that follows forks, and
//! interrupt noise removed).
//!
//! This crate is the pure half: it parses trace text ([`trace`]), resolves
//! functions to modules through `/proc/kallsyms` text ([`kallsyms`]), maps
//! them to kernel subsystems ([`subsys`]) and builds, saves and compares
//! HAP profiles ([`hap`], JSON schema `kgate.hap/1`). It never touches
//! tracefs; the `kgate hap` command drives ftrace and feeds this crate.
//!
//! # Words
//!
//! A *HAP* ([`Hap`], module [`hap`], JSON `kgate.hap/1`, "HAP profile" in
//! help texts and docs) is the kernel functions one run of a workload made
//! the kernel execute, written by `kgate hap -o FILE`. It is not a
//! *workload profile* (`kgate_policy::profile::Profile`, `kgate.profile/1`,
//! written by `kgate record`), which lists the syscalls, socket families
//! and module requests a workload used, to generate its seccomp filter. In
//! Rust names, `profile` always means the workload profile.
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

pub mod hap;
pub mod kallsyms;
pub mod subsys;
pub mod trace;

pub use hap::{Comparison, CveCounts, CveLookup, Hap, RunInfo, SCHEMA};
pub use kallsyms::Kallsyms;
pub use subsys::{How, Mapper};
pub use trace::{Collector, Context};
