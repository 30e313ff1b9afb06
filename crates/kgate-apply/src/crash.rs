//! Crash points for testing crash safety (debug builds only).
//!
//! [`point`] marks a step of [`apply`](crate::apply) or
//! [`revert`](crate::revert) after which the host is in a state a crash
//! could leave. In a debug build, when `KGATE_TEST_CRASH_AT` is set, every
//! point passed is written to stderr as `kgate-crash-point: NAME`, and the
//! point whose name equals the variable kills the process with `SIGKILL`:
//! no destructor, no rollback, exactly what `kill -9` or a power cut leaves
//! (minus the page cache, which kgate's fsyncs cover). Tests first run with
//! a value that matches nothing to learn the steps, then kill at each one.
//! Release builds compile the points to nothing.

#[cfg(debug_assertions)]
mod imp {
    use std::cell::RefCell;

    thread_local! {
        /// Set by unit tests in a forked child instead of the environment
        /// (the child must not touch locks another thread may have held).
        static AT: RefCell<Option<String>> = const { RefCell::new(None) };
        /// The points passed on this thread while `AT` is set.
        static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    /// Kill this thread's process at `step` (unit tests, forked child).
    #[cfg(test)]
    pub(crate) fn set(step: &str) {
        AT.with(|a| *a.borrow_mut() = Some(step.to_owned()));
    }

    /// The points `f` passes on this thread, in order (unit tests).
    #[cfg(test)]
    pub(crate) fn steps(f: impl FnOnce()) -> Vec<String> {
        set("");
        SEEN.with(|s| s.borrow_mut().clear());
        f();
        AT.with(|a| *a.borrow_mut() = None);
        SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }

    pub(crate) fn point(step: &str) {
        let from_test = AT.with(|a| a.borrow().clone());
        let target = match &from_test {
            Some(t) => {
                SEEN.with(|s| s.borrow_mut().push(step.to_owned()));
                t.clone()
            }
            None => match std::env::var("KGATE_TEST_CRASH_AT") {
                Ok(t) => {
                    let line = format!("kgate-crash-point: {step}\n");
                    // SAFETY: writes a valid buffer of the given length to
                    // fd 2; no lock is taken, so this is safe after fork.
                    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
                    t
                }
                Err(_) => return,
            },
        };
        if target == step {
            // SAFETY: kill(2) on our own pid has no memory-safety effects.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }
}

#[cfg(debug_assertions)]
pub(crate) use imp::point;
#[cfg(all(debug_assertions, test))]
pub(crate) use imp::{set, steps};

/// Release builds: no crash points.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn point(_step: &str) {}
