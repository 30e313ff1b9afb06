//! One module per subcommand: an `Args` struct and a `run` function.

pub mod freeze;
pub mod policy;
pub mod survey;
