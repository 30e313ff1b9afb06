//! The text of the files kgate writes: `modprobe.d/kgate.conf` (which
//! modules are blocked) and `sysctl.d/90-kgate.conf`, with kgate's header.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use kgate_kernel::name::ModuleName;
use kgate_kernel::tree::KernelTree;

use crate::error::ApplyError;
use crate::{ModprobeInput, HEADER_MARK};

/// Strips characters that would break a one-line comment.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

pub(crate) fn header(input: &ModprobeInput<'_>) -> String {
    format!(
        "{HEADER_MARK}{} for kernel {} — do not edit; run kgate revert to remove.\n\
         # policy: {} sha256:{}\n",
        env!("CARGO_PKG_VERSION"),
        one_line(input.kernel_release),
        one_line(input.policy_path),
        one_line(input.policy_hash),
    )
}

pub(crate) fn is_ours(content: &str) -> bool {
    content.starts_with(HEADER_MARK)
}

/// The modules `kgate.conf` blocks: loadable modules of the tree not in
/// `allowed`, canonical names, sorted. `allowed` must already be closed
/// over dependencies ([`KernelTree::load_closure`] resolves softdeps that
/// name aliases, as modprobe does). A tree module whose name is not a
/// [`ModuleName`] cannot be named in modprobe.d at all; the tree's reader
/// already drops such modules, and [`invalid_module_names`] lists any left.
pub fn blocked_modules(tree: &KernelTree, allowed: &BTreeSet<String>) -> Vec<ModuleName> {
    let allowed: BTreeSet<String> = allowed
        .iter()
        .map(|a| kgate_kernel::canonical_name(a))
        .collect();
    let set: BTreeSet<ModuleName> = tree
        .modules
        .iter()
        .filter(|m| !m.builtin)
        .filter_map(|m| ModuleName::new(&m.name).ok())
        .filter(|n| !allowed.contains(n.as_str()))
        .collect();
    set.into_iter().collect()
}

/// Loadable modules of the tree whose names are not module names, with why.
pub fn invalid_module_names(tree: &KernelTree) -> Vec<String> {
    tree.modules
        .iter()
        .filter(|m| !m.builtin)
        .filter_map(|m| ModuleName::new(&m.name).err())
        .map(|e| e.to_string())
        .collect()
}

/// `etc/modprobe.d/kgate.conf` for `blocked`. Only a [`ModuleName`] (letters,
/// digits and `_`, checked when it was made) goes into a line, so every
/// line is exactly `install NAME /bin/false` (issue 19).
pub fn render_modprobe(input: &ModprobeInput<'_>, blocked: &[ModuleName]) -> String {
    let mut s = header(input);
    s.push_str(
        "#\n\
         # Every module of this kernel that the policy does not allow is replaced by\n\
         # `install <module> /bin/false`, not `blacklist <module>`: blacklist only\n\
         # stops modprobe from picking a module through an alias (the kernel's\n\
         # request_module(\"net-pf-40\") etc.), while `modprobe <module>` by name and\n\
         # loading it as another module's dependency still work. `install` replaces\n\
         # the load itself on every path, so the module cannot be loaded by modprobe\n\
         # at all (insmod with a file path bypasses modprobe.d entirely).\n",
    );
    let _ = writeln!(s, "# {} modules blocked.", blocked.len());
    for m in blocked {
        let _ = writeln!(s, "install {m} /bin/false");
    }
    s
}

pub(crate) fn check_sysctl(name: &str, value: &str) -> Result<(), ApplyError> {
    let bad = |why| ApplyError::InvalidSysctl {
        name: name.to_owned(),
        value: value.to_owned(),
        why,
    };
    if name.is_empty()
        || name.starts_with('.')
        || name.ends_with('.')
        || name.contains("..")
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        return Err(bad("not a sysctl name (letters, digits, . _ - / only)"));
    }
    if value.chars().any(char::is_control) {
        return Err(bad(
            "the value contains a control character (e.g. a newline)",
        ));
    }
    if value.trim() != value {
        return Err(bad("the value has leading or trailing whitespace"));
    }
    Ok(())
}

/// `etc/sysctl.d/90-kgate.conf`.
pub fn render_sysctl(input: &ModprobeInput<'_>) -> Result<String, ApplyError> {
    let mut s = header(input);
    for (name, value) in input.sysctls {
        check_sysctl(name, value)?;
        let _ = writeln!(s, "{name} = {value}");
    }
    Ok(s)
}
