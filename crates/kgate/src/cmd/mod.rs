//! One module per subcommand: an `Args` struct and a `run` function.

pub mod apply;
pub mod bpf;
pub mod cve;
pub mod explain;
pub mod freeze;
pub mod policy;
pub mod score;
pub mod survey;
