//! One module per subcommand: an `Args` struct and a `run` function.

pub mod apply;
pub mod bpf;
pub mod cve;
pub mod explain;
pub mod export;
pub mod freeze;
pub mod generate;
pub mod hap;
pub mod policy;
pub mod record;
pub mod report;
pub mod run;
pub mod score;
pub mod survey;
