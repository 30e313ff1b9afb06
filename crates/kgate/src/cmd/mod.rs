//! One module per subcommand: an `Args` struct and a `run` function.

pub mod apply;
pub mod cve;
pub mod docs;
pub mod events;
pub mod explain;
pub mod export;
pub mod freeze;
pub mod hap;
pub mod policy;
pub mod record;
pub mod report;
pub mod run;
pub mod score;
pub mod status;
pub mod survey;
