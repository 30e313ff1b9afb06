//! `kgate apply --mode audit|enforce`: one mode for every section of a
//! policy, without editing its file. A week of audit, then enforce, is how
//! a host moves to a policy; the file stays the same throughout.

use crate::model::{Mode, RootMode, UsernsMode};
use crate::Policy;

/// The mode `kgate apply --mode` puts every section in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// Every section that is on decides: denies what it does not allow.
    Enforce,
    /// Every section that is on only reports what enforce would deny.
    Audit,
}

impl Policy {
    /// This policy with every section that is on in `mode`. Sections that
    /// are off (`mode = "off"`, `[userns] unprivileged = "allow"`) stay
    /// off: `--mode` switches how a section decides, never whether the
    /// policy has it. `[modules] root = "policy"` becomes `"audit"` under
    /// audit (root's requests are reported, not denied); `root = "allow"`
    /// is kept either way, and `"audit"` stays `"audit"` under enforce
    /// (the file asked for root to be reported only). `[seccomp]` is a
    /// per-workload filter, not enforced by apply, and is left as it is.
    pub fn with_mode(&self, mode: ApplyMode) -> Policy {
        let mut p = self.clone();
        let switch = |m: Mode| match (m, mode) {
            (Mode::Off, _) => Mode::Off,
            (_, ApplyMode::Enforce) => Mode::Enforce,
            (_, ApplyMode::Audit) => Mode::Audit,
        };
        p.modules.mode = switch(p.modules.mode);
        p.sockets.mode = switch(p.sockets.mode);
        p.splice.mode = switch(p.splice.mode);
        if mode == ApplyMode::Audit && p.modules.root == RootMode::Policy {
            p.modules.root = RootMode::Audit;
        }
        p.userns.unprivileged = match (p.userns.unprivileged, mode) {
            (UsernsMode::Allow, _) => UsernsMode::Allow,
            (_, ApplyMode::Enforce) => UsernsMode::Deny,
            (_, ApplyMode::Audit) => UsernsMode::Audit,
        };
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Policy {
        Policy::parse(text, "t.toml").unwrap().policy
    }

    const FULL: &str = r#"
version = 1
[modules]
mode = "enforce"
root = "policy"
allow = ["ext4"]
[sockets]
mode = "audit"
allow = ["unix", "inet"]
[splice]
mode = "off"
[userns]
unprivileged = "deny"
"#;

    #[test]
    fn audit_switches_every_section_that_is_on() {
        let p = parse(FULL).with_mode(ApplyMode::Audit);
        assert_eq!(p.modules.mode, Mode::Audit);
        assert_eq!(p.modules.root, RootMode::Audit);
        assert_eq!(p.sockets.mode, Mode::Audit);
        assert_eq!(p.splice.mode, Mode::Off, "off stays off");
        assert_eq!(p.userns.unprivileged, UsernsMode::Audit);
        // What is allowed does not change.
        assert_eq!(p.modules.allow, parse(FULL).modules.allow);
        assert_eq!(p.sockets.allow, parse(FULL).sockets.allow);
    }

    #[test]
    fn enforce_switches_audit_sections_to_enforce() {
        let p = parse(FULL).with_mode(ApplyMode::Enforce);
        assert_eq!(p.modules.mode, Mode::Enforce);
        assert_eq!(p.modules.root, RootMode::Policy);
        assert_eq!(p.sockets.mode, Mode::Enforce);
        assert_eq!(p.splice.mode, Mode::Off);
        assert_eq!(p.userns.unprivileged, UsernsMode::Deny);
    }

    #[test]
    fn off_and_allow_sections_stay_off() {
        let p = parse("version = 1\n[userns]\nunprivileged = \"allow\"\n");
        for mode in [ApplyMode::Audit, ApplyMode::Enforce] {
            let q = p.with_mode(mode);
            assert_eq!(q.modules.mode, Mode::Off);
            assert_eq!(q.sockets.mode, Mode::Off);
            assert_eq!(q.userns.unprivileged, UsernsMode::Allow);
        }
    }

    #[test]
    fn the_switched_policy_renders_and_parses_back() {
        for mode in [ApplyMode::Audit, ApplyMode::Enforce] {
            let q = parse(FULL).with_mode(mode);
            assert_eq!(parse(&q.to_toml()), q);
        }
    }
}
