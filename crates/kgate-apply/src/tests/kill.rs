//! A kill -9 at every step of apply and revert (debug-only crash points).

use super::*;

/// Runs `f` in a forked child that dies of SIGKILL at crash point `step`
/// (youki's test_in_child_process: a kill cannot happen in the test's own
/// process). Fails the test if the child did not die there.
#[cfg(debug_assertions)]
#[track_caller]
fn kill_child_at(step: &str, f: impl FnOnce()) {
    // SAFETY: the child only runs `f` (file I/O and allocation, which
    // glibc makes safe after fork) on its single thread and then _exits;
    // it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        crash::set(step);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        // SAFETY: _exit ends the child without running the parent's
        // destructors or atexit handlers.
        unsafe { libc::_exit(if r.is_ok() { 0 } else { 101 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is writable.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "the child did not die at {step} (status {status:#x})"
    );
}

/// A root and a fake /proc/sys with the values from before kgate.
#[cfg(debug_assertions)]
struct LiveCase {
    f: Fixture,
    live: TempDir,
}

#[cfg(debug_assertions)]
impl LiveCase {
    const BEFORE: [(&'static str, &'static str); 2] = [
        ("proc/sys/kernel/unprivileged_bpf_disabled", "0\n"),
        ("proc/sys/dev/tty/ldisc_autoload", "1\n"),
    ];

    fn new() -> LiveCase {
        let f = Fixture::new();
        f.root
            .write("etc/sysctl.d/10-admin.conf", "kernel.kptr_restrict = 1\n");
        f.root
            .write("etc/modprobe.d/other.conf", "blacklist pcspkr\n");
        let live = TempDir::new("live");
        for (rel, v) in Self::BEFORE {
            live.write(rel, v);
        }
        LiveCase { f, live }
    }

    fn apply(&self) {
        let p = plan_with_live(
            &self.f.input(),
            self.f.root.path(),
            Some(self.live.path().to_owned()),
            true,
        )
        .unwrap();
        apply(&p, self.f.root.path(), false).unwrap();
    }

    fn revert(&self) -> RevertReport {
        revert_with_live(self.f.root.path(), false, Some(self.live.path())).unwrap()
    }

    fn values(&self) -> Vec<String> {
        Self::BEFORE.map(|(rel, _)| self.live.read(rel)).to_vec()
    }

    #[track_caller]
    fn assert_original(&self, what: &str) {
        assert_eq!(
            self.values(),
            Self::BEFORE.map(|(_, v)| v.to_owned()).to_vec(),
            "{what}: sysctls not restored"
        );
        let mut listing = self.f.root.listing();
        listing.retain(|p| p != "var" && p != "var/lib" && p != "var/lib/kgate");
        assert_eq!(
            listing,
            [
                "etc",
                "etc/modprobe.d",
                "etc/modprobe.d/other.conf",
                "etc/sysctl.d",
                "etc/sysctl.d/10-admin.conf"
            ],
            "{what}"
        );
        assert_eq!(
            self.f.root.read("etc/sysctl.d/10-admin.conf"),
            "kernel.kptr_restrict = 1\n"
        );
    }

    #[track_caller]
    fn assert_applied(&self, what: &str) {
        assert_eq!(self.values(), ["2\n", "0\n"], "{what}: sysctls not set");
        let m: Manifest = serde_json::from_str(&self.f.root.read(STATE_FILE)).unwrap();
        assert_eq!(m.state, ManifestState::Complete, "{what}");
        assert_eq!(
            m.sysctls,
            [
                ManifestSysctl {
                    name: "dev.tty.ldisc_autoload".into(),
                    previous: "1".into()
                },
                ManifestSysctl {
                    name: "kernel.unprivileged_bpf_disabled".into(),
                    previous: "0".into()
                }
            ],
            "{what}: the values from before kgate are not recorded"
        );
        assert_eq!(m.files.len(), 2, "{what}");
        for f in &m.files {
            assert_eq!(
                sha256_hex(self.f.root.read(&f.path).as_bytes()),
                f.sha256,
                "{what}: {}",
                f.path
            );
        }
    }
}

/// Issue 19, item 4: a kill -9 at every step of an apply with live sysctls
/// is completed by the next apply and undone exactly by the next revert.
#[cfg(debug_assertions)]
#[test]
fn regression_issue19_kill_at_every_apply_step_live_sysctls() {
    let steps = crash::steps(|| LiveCase::new().apply());
    assert!(
        steps.contains(&"apply-set:dev.tty.ldisc_autoload".to_owned()),
        "{steps:?}"
    );
    for step in &steps {
        let c = LiveCase::new();
        kill_child_at(step, || c.apply());
        let r = c.revert();
        assert!(r.problems.is_empty(), "{step}: {:?}", r.problems);
        c.assert_original(&format!("revert after a kill at {step}"));

        let c = LiveCase::new();
        kill_child_at(step, || c.apply());
        c.apply();
        c.assert_applied(&format!("apply after a kill at {step}"));
        c.revert();
        c.assert_original(&format!("revert after apply after a kill at {step}"));
    }
}

/// Issue 19, item 4: the same for every step of a revert.
#[cfg(debug_assertions)]
#[test]
fn regression_issue19_kill_at_every_revert_step_live_sysctls() {
    let steps = crash::steps(|| {
        let c = LiveCase::new();
        c.apply();
        c.revert();
    });
    let steps: Vec<&String> = steps.iter().filter(|s| s.starts_with("revert-")).collect();
    assert!(
        steps.contains(&&"revert-restored:dev.tty.ldisc_autoload".to_owned()),
        "{steps:?}"
    );
    for step in steps {
        let c = LiveCase::new();
        c.apply();
        kill_child_at(step, || {
            c.revert();
        });
        let r = c.revert();
        assert!(r.problems.is_empty(), "{step}: {:?}", r.problems);
        c.assert_original(&format!("revert after a kill at {step}"));

        let c = LiveCase::new();
        c.apply();
        kill_child_at(step, || {
            c.revert();
        });
        c.apply();
        c.assert_applied(&format!("apply after a kill at {step}"));
    }
}
