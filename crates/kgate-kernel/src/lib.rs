//! Facts about a Linux kernel, live or offline: which modules it ships, what
//! they contain, which kernel paths can load them and whether an unprivileged
//! user can reach those paths.
//!
//! This crate only reads. It never loads a module, writes a sysctl or attaches
//! a program; everything that changes a host lives in other crates. That keeps
//! almost all of kgate's logic testable without root and without a kernel.
//! The one exception is [`atomic`], kgate's single file writer, which sits
//! here because every crate depends on this one: it writes only what its
//! caller asks (and this crate's own fact cache).
//!
//! # Sources
//!
//! * A live host: `/proc/modules`, `/proc/sys`, `/sys/kernel/security`,
//!   `/proc/config.gz` or `/boot/config-$(uname -r)`, `/lib/modules/$(uname -r)`.
//! * An offline kernel (`--root DIR`): `DIR/lib/modules/VER` and
//!   `DIR/boot/config-VER`. An unpacked Debian package has no `modules.dep` or
//!   `modules.alias`; dependencies, aliases and softdeps are then computed from
//!   each module's own `.modinfo` section. When depmod output exists it is used
//!   and checked against the `.modinfo` data ([`tree::DepmodCheck`]).
//!
//! # Compatibility
//!
//! Module files may be `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz` (kmod's set).
//! Trigger classification follows the `request_module()` call sites of Linux
//! 6.1 to 6.18; `docs/triggers.md` cites each one.
//!
//! # Tests
//!
//! Unit tests build small ELF fixtures in memory and fake `/proc` trees in
//! temporary directories. The integration tests of the `kgate` crate survey
//! real Debian kernel packages fetched by `cargo xtask fetch`.

pub mod atomic;
pub mod boot;
pub mod bounded;
pub mod bpf_lsm;
pub mod cache;
pub mod config;
pub mod depmod;
pub mod host;
pub mod inventory;
pub mod ko;
pub mod lsm;
pub mod modinfo;
pub mod modprobe_conf;
pub mod name;
pub mod reach;
pub mod sysctl;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
pub mod tree;
pub mod trigger;

/// Canonical form of a module name: kmod treats `-` and `_` as the same
/// character, and the kernel itself uses `_` (`/proc/modules`, `/sys/module`).
pub fn canonical_name(name: &str) -> String {
    name.replace('-', "_")
}

/// An alias or request as kmod compares it: `-` becomes `_`, except inside
/// a `[...]` character class, where `-` is a range.
pub fn normalize_alias(alias: &str) -> String {
    let mut out = String::with_capacity(alias.len());
    let mut in_class = false;
    for c in alias.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            '-' if !in_class => {
                out.push('_');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalize_alias_keeps_ranges() {
        assert_eq!(super::normalize_alias("net-pf-[0-9]x"), "net_pf_[0-9]x");
        assert_eq!(super::canonical_name("crc32c-intel"), "crc32c_intel");
    }
}
