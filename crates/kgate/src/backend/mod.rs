//! The CLI side of each backend: how `kgate apply` and `kgate revert`
//! drive it, and the section table both print. The backends themselves
//! live in their crates: bpf-lsm in kgate-bpf, modprobe.d/sysctl.d in
//! kgate-apply.

pub mod bpf_lsm;
pub mod sections;
