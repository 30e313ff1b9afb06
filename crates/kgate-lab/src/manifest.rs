//! What each lab kernel lacks, and why: the only reasons a scenario may
//! SKIP a result there.
//!
//! A scenario that cannot run a check names the feature it needs at the
//! start of its detail, `result NAME SKIP "needs:FEATURE why..."`, and
//! [`LabRun::check`](crate::LabRun::check) passes the SKIP only when the
//! kernel's manifest below declares FEATURE missing. Any other SKIP (no
//! `needs:`, or a feature the manifest does not declare) fails: a check
//! that silently stops running on a kernel that should run it is a failure,
//! not a pass.
//!
//! Features (the vocabulary the scenarios use):
//!
//! | feature | what the scenario needs |
//! |---|---|
//! | `function_error_injection` | `CONFIG_FUNCTION_ERROR_INJECTION`: BPF `fmod_ret` on syscalls |
//! | `modules` | loadable modules at all (a non-empty `modules.dep`) |
//! | `module:NAME` | NAME shipped as a loadable module (not absent, not built in) |
//! | `x32_abi` | `CONFIG_X86_X32_ABI` (x32 syscall entry points) |
//! | `ns_last_pid` | `/proc/sys/kernel/ns_last_pid` (`CONFIG_CHECKPOINT_RESTORE`): a process on a chosen pid |
//! | `run:SCENARIO` | the scenario runs on this kernel at all (the lab may run it on another kernel with the same code instead: [`Why::CoveredBy`]) |
//!
//! Scenarios also name features that no kernel declares missing (e.g.
//! `af_alg_sha256`, `module:vsock`): their SKIP always fails, with the
//! reason in the message.

use crate::Flavour;

/// One feature a kernel lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    /// The feature, as a scenario names it after `needs:`.
    pub feature: &'static str,
    /// Why the kernel lacks it.
    pub why: Why,
}

/// Why a kernel lacks a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The kernel is built or packaged without it (the config option or
    /// packaging fact that says so).
    NotBuilt(&'static str),
    /// The kernel has it, but the lab runs the check on another kernel
    /// with the same code instead, to keep the lab fast (CI has 2 cores):
    /// which kernel, and why that one proves the same thing.
    CoveredBy(Flavour, &'static str),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::NotBuilt(why) => write!(f, "not built: {why}"),
            Why::CoveredBy(other, why) => write!(f, "covered by {other}: {why}"),
        }
    }
}

const NO_FEI: Missing = Missing {
    feature: "function_error_injection",
    why: Why::NotBuilt(
        "CONFIG_FUNCTION_ERROR_INJECTION is not set in any Debian kernel; fei-6.12 is built with it",
    ),
};

const NO_X32: Missing = Missing {
    feature: "x32_abi",
    why: Why::NotBuilt(
        "CONFIG_X86_X32_ABI is not set in Debian's cloud kernels; generic-6.12 has it",
    ),
};

/// Modules Debian's cloud flavour does not ship (the generic one does).
const CLOUD_NO_MODULES: [Missing; 4] = {
    const WHY: Why = Why::NotBuilt(
        "Debian's cloud flavour leaves out hardware protocols; generic-6.12 ships the module",
    );
    [
        Missing {
            feature: "module:appletalk",
            why: WHY,
        },
        Missing {
            feature: "module:bluetooth",
            why: WHY,
        },
        Missing {
            feature: "module:can",
            why: WHY,
        },
        Missing {
            feature: "module:can_bcm",
            why: WHY,
        },
    ]
};

const CLOUD_612: [Missing; 6] = [
    NO_FEI,
    NO_X32,
    CLOUD_NO_MODULES[0],
    CLOUD_NO_MODULES[1],
    CLOUD_NO_MODULES[2],
    CLOUD_NO_MODULES[3],
];

const CLOUD_61: [Missing; 6] = CLOUD_612;

const GENERIC_612: [Missing; 3] = [
    NO_FEI,
    Missing {
        feature: "run:splice",
        why: Why::CoveredBy(
            Flavour::Cloud612,
            "the same 6.12 source (fs/splice.c) and BPF programs; generic-6.12 boots slowest, so it runs the module scenarios only",
        ),
    },
    Missing {
        feature: "run:hap",
        why: Why::CoveredBy(
            Flavour::Cloud612,
            "the same 6.12 source (ftrace is identical); the hap scenario is slow under TCG",
        ),
    },
];

const FEI_612: [Missing; 2] = [
    Missing {
        feature: "modules",
        why: Why::NotBuilt(
            "every option is built in (lab/kernel/fei-6.12.config); the Debian kernels test modules",
        ),
    },
    Missing {
        feature: "ns_last_pid",
        why: Why::NotBuilt(
            "CONFIG_CHECKPOINT_RESTORE is not set in lab/kernel/fei-6.12.config (tinyconfig); every Debian kernel has /proc/sys/kernel/ns_last_pid",
        ),
    },
];

impl Flavour {
    /// What this kernel lacks: the features a scenario may SKIP on here.
    pub fn missing(self) -> &'static [Missing] {
        match self {
            Flavour::Cloud612 => &CLOUD_612,
            Flavour::Generic612 => &GENERIC_612,
            Flavour::Cloud61 => &CLOUD_61,
            Flavour::Fei612 => &FEI_612,
        }
    }
}

/// The feature a SKIP detail names: its first word, `needs:FEATURE`.
pub fn needs(detail: &str) -> Option<&str> {
    detail
        .split_whitespace()
        .next()?
        .strip_prefix("needs:")
        .filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_is_the_first_word() {
        assert_eq!(needs("needs:x32_abi no x32"), Some("x32_abi"));
        assert_eq!(needs("needs:module:can"), Some("module:can"));
        assert_eq!(needs("no x32 needs:x32_abi"), None);
        assert_eq!(needs("needs: x32_abi"), None);
        assert_eq!(needs(""), None);
    }

    /// Every missing feature is present on some other lab kernel (nothing
    /// is untested everywhere), and a kernel that covers for another has
    /// the feature itself.
    #[test]
    fn every_missing_feature_is_tested_somewhere() {
        for k in Flavour::ALL {
            for m in k.missing() {
                let has = |f: Flavour| !f.missing().iter().any(|o| o.feature == m.feature);
                assert!(
                    Flavour::ALL.into_iter().any(has),
                    "{} is missing on every lab kernel",
                    m.feature
                );
                if let Why::CoveredBy(other, _) = m.why {
                    assert!(
                        other != k && has(other),
                        "{k}: {} is covered by {other}, which lacks it too",
                        m.feature
                    );
                }
            }
        }
    }
}
