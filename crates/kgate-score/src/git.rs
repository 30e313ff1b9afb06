//! Running `git` on repositories others control, as root.
//!
//! A repository's own `config` is read by git whatever the environment
//! says, and its hooks run on ref updates (issue 19, item 2: a bare clone
//! with `log.showSignature=true` and `gpg.program=…` had its program run by
//! `kgate cve import`). Every git process of kgate is made by [`command`],
//! which
//!
//! - drops every inherited `GIT_*` variable, `HOME` and `XDG_CONFIG_HOME`,
//!   and reads neither the system nor the global config;
//! - overrides on the command line (`-c`, which wins over the
//!   repository's config) every key that names a program git could run
//!   for the commands kgate uses: hooks, `core.fsmonitor`, the pager,
//!   signature verification, `core.sshCommand`, credential helpers and
//!   askpass, `core.alternateRefsCommand`, external diff, and automatic
//!   gc and maintenance;
//! - allows only the transports in [`ALLOWED_PROTOCOLS`]
//!   (`GIT_ALLOW_PROTOCOL` overrides any `protocol.*.allow` in the
//!   repository), so `ext::` and `fd::` never run;
//! - never prompts, pages or takes optional locks.
//!
//! Reading uses plumbing only (`rev-parse`, `ls-tree`, `cat-file`, and
//! `log` without signatures), with `--end-of-options` or `--` before
//! anything that comes from outside. [`check_url`] refuses URLs that git
//! would read as an option or as a program-running transport.

use std::path::Path;
use std::process::{Command, Stdio};

/// The transports `kgate cve update` may use (`GIT_ALLOW_PROTOCOL`).
/// `git://` is left out: it is unauthenticated, and `core.gitProxy`, a
/// list whose first match wins, cannot be overridden from the command
/// line.
pub const ALLOWED_PROTOCOLS: &str = "https:http:ssh:file";

/// Configuration given on the command line to every git kgate runs. The
/// command line wins over the repository's own `config`; the keys are
/// those that run a program in the commands kgate uses.
const OVERRIDES: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.sshCommand=ssh",
    "core.askPass=",
    // A shell command that prints no refs: alternates are not asked.
    "core.alternateRefsCommand=true",
    "credential.helper=",
    "log.showSignature=false",
    "gpg.program=/dev/null",
    "gpg.openpgp.program=/dev/null",
    "gpg.x509.program=/dev/null",
    "gpg.ssh.program=/dev/null",
    "diff.external=",
    "gc.auto=0",
    "maintenance.auto=false",
    "fetch.writeCommitGraph=false",
    // The repositories read are named by the caller, or are kgate's own
    // clone, checked by the caller; what git may read in them is limited
    // by the rest of this list.
    "safe.directory=*",
];

/// A `git` command with configuration, hooks and transports neutralised
/// (see the module documentation), working in `dir` when given.
pub fn command(dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            c.env_remove(&k);
        }
    }
    c.env_remove("HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SSH_ASKPASS")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ALLOW_PROTOCOL", ALLOWED_PROTOCOLS)
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        // Set but empty: git then skips core.askPass and SSH_ASKPASS.
        .env("GIT_ASKPASS", "")
        .env("GIT_PAGER", "cat")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null());
    c.arg("--no-pager");
    for o in OVERRIDES {
        c.arg("-c").arg(o);
    }
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c
}

/// Why a URL is refused by [`check_url`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Empty.
    #[error("--url is empty")]
    Empty,
    /// Would be read by git as an option.
    #[error("--url {url:?} starts with '-', which git would read as an option")]
    Option {
        /// The URL.
        url: String,
    },
    /// Names a transport kgate does not allow.
    #[error("--url {url:?} uses the transport {transport:?}; kgate allows only https://, http://, ssh:// (or user@host:path) and local paths")]
    Transport {
        /// The URL.
        url: String,
        /// The `<transport>::` or `<scheme>://` part.
        transport: String,
    },
    /// Holds a control character.
    #[error("--url {url:?} holds a control character")]
    Control {
        /// The URL.
        url: String,
    },
}

/// Accept only URLs git reads as a repository over an allowed transport:
/// not empty, not starting with `-`, no control character, no
/// `<helper>::` remote helper, and a `scheme://` only of https, http, ssh
/// or file.
pub fn check_url(url: &str) -> Result<(), UrlError> {
    let owned = || url.to_owned();
    if url.is_empty() {
        return Err(UrlError::Empty);
    }
    if url.starts_with('-') {
        return Err(UrlError::Option { url: owned() });
    }
    if url.chars().any(char::is_control) {
        return Err(UrlError::Control { url: owned() });
    }
    if let Some((helper, _)) = url.split_once("::") {
        if !helper.contains('/') {
            return Err(UrlError::Transport {
                url: owned(),
                transport: format!("{helper}::"),
            });
        }
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if !["https", "http", "ssh", "file"].contains(&scheme.to_ascii_lowercase().as_str()) {
            return Err(UrlError::Transport {
                url: owned(),
                transport: format!("{scheme}://"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in [
            "https://git.kernel.org/pub/scm/linux/security/vulns.git",
            "ssh://git@example.org/vulns.git",
            "git@example.org:vulns.git",
            "/srv/mirror/vulns.git",
            "file:///srv/mirror/vulns.git",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "-oProxyCommand=x",
            "--upload-pack=x",
            "ext::sh -c x",
            "fd::17",
            "git://example.org/x",
            "https://x/\ny",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
