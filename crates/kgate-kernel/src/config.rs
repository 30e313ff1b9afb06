//! The kernel's build configuration (`.config`), read from `/proc/config.gz`
//! on a live host or from `/boot/config-<release>`.
//!
//! Every path is joined under a `root` (or `dir`) prefix so tests can use a
//! fake tree; on a live host `root` is `/`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bounded::{self, Limit};

/// Errors while loading a kernel config. Each variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists (or could not be probed) but reading it failed.
    #[error("cannot read kernel config {}: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `/proc/config.gz` is not a valid gzip stream.
    #[error("cannot decompress kernel config {}: {source}", path.display())]
    Decompress {
        /// The gzip file.
        path: PathBuf,
        /// The underlying decompression error.
        #[source]
        source: std::io::Error,
    },
}

/// Value of a tristate (`bool`/`tristate` Kconfig) option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tristate {
    /// `=y`: built into the kernel image.
    Yes,
    /// `=m`: built as a loadable module.
    Module,
    /// `is not set`, missing, or any other value.
    No,
}

/// A parsed kernel `.config`: `CONFIG_X` → value.
///
/// `# CONFIG_X is not set` is recorded as `"n"`. String values are stored
/// without their surrounding quotes (`CONFIG_LSM="a,b"` → `a,b`), with `\"`
/// and `\\` unescaped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelConfig {
    /// All options, keyed by their full name including the `CONFIG_` prefix.
    pub options: BTreeMap<String, String>,
}

impl KernelConfig {
    /// Parses the text of a kernel `.config`. Unknown or malformed lines are
    /// ignored; later assignments win, as in Kconfig.
    pub fn parse(text: &str) -> KernelConfig {
        let mut options = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# ") {
                if let Some(name) = rest.strip_suffix(" is not set") {
                    let name = name.trim();
                    if name.starts_with("CONFIG_") && !name.contains(char::is_whitespace) {
                        options.insert(name.to_string(), "n".to_string());
                    }
                }
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if !name.starts_with("CONFIG_") {
                continue;
            }
            options.insert(name.to_string(), unquote(value.trim()));
        }
        KernelConfig { options }
    }

    /// Loads the running kernel's config: `root/proc/config.gz` (gzip) first,
    /// then `root/boot/config-<release>`. `Ok(None)` when neither exists.
    /// Returns the config and the file it came from.
    pub fn load_live(
        root: &Path,
        release: &str,
    ) -> Result<Option<(KernelConfig, PathBuf)>, ConfigError> {
        let gz = root.join("proc/config.gz");
        let gz_err = match read_gz(root, &gz) {
            Ok(Some(text)) => return Ok(Some((KernelConfig::parse(&text), gz))),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        let boot = match KernelConfig::load_offline(root, release) {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        match (gz_err, boot) {
            (Some(e), _) | (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// Loads `dir/boot/config-<release>` (an unpacked kernel package or a
    /// mounted image). `Ok(None)` when the file does not exist or `release`
    /// is empty.
    pub fn load_offline(
        dir: &Path,
        release: &str,
    ) -> Result<Option<(KernelConfig, PathBuf)>, ConfigError> {
        if release.is_empty() || release.contains('/') {
            return Ok(None);
        }
        let path = dir.join("boot").join(format!("config-{release}"));
        match bounded::read(dir, &path, Limit::KERNEL_CONFIG) {
            Ok(bytes) => Ok(Some((
                KernelConfig::parse(&String::from_utf8_lossy(&bytes)),
                path,
            ))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(ConfigError::Read {
                path,
                source: std::io::Error::other(e),
            }),
        }
    }

    /// Raw value of an option; `name` may omit the `CONFIG_` prefix.
    /// `# CONFIG_X is not set` yields `Some("n")`.
    pub fn get(&self, name: &str) -> Option<&str> {
        if name.starts_with("CONFIG_") {
            self.options.get(name).map(String::as_str)
        } else {
            self.options
                .get(&format!("CONFIG_{name}"))
                .map(String::as_str)
        }
    }

    /// The option as a tristate; missing or any value other than `y`/`m` is
    /// [`Tristate::No`].
    pub fn tristate(&self, name: &str) -> Tristate {
        match self.get(name) {
            Some("y") => Tristate::Yes,
            Some("m") => Tristate::Module,
            _ => Tristate::No,
        }
    }

    /// `true` when the option is `=y` (built into the kernel image).
    pub fn is_builtin(&self, name: &str) -> bool {
        self.tristate(name) == Tristate::Yes
    }

    /// `true` when the option is `=y` or `=m`.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.tristate(name) != Tristate::No
    }

    /// `true` when the option appears in the config at all (set or `is not
    /// set`), i.e. the Kconfig symbol exists for this kernel and arch.
    pub fn mentions(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Reads a gzip file below `root`, file and content capped at
/// [`Limit::KERNEL_CONFIG`]; `Ok(None)` when it does not exist.
fn read_gz(root: &Path, path: &Path) -> Result<Option<String>, ConfigError> {
    let file = match bounded::open(root, path) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::other(e),
            })
        }
    };
    let mut bytes = Vec::new();
    // /proc/config.gz has no size in fstat; its stream is capped here.
    let input = std::io::BufReader::new(file).take(Limit::KERNEL_CONFIG.max);
    bounded::decompressed(
        flate2::bufread::GzDecoder::new(std::io::BufReader::new(input)),
        path,
        Limit::KERNEL_CONFIG,
        &mut bytes,
    )
    .map_err(|e| ConfigError::Decompress {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// `"a\"b"` → `a"b`; unquoted values are returned as they are.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::io::Write;

    const SAMPLE: &str = "\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_MODULES=y
# CONFIG_KEXEC is not set
CONFIG_EXT4_FS=m
CONFIG_LSM=\"landlock,lockdown,yama,bpf\"
CONFIG_MODPROBE_PATH=\"/sbin/mod\\\"probe\"
CONFIG_HZ=250
not a config line
";

    #[test]
    fn parse_values() {
        let c = KernelConfig::parse(SAMPLE);
        assert_eq!(c.get("CONFIG_MODULES"), Some("y"));
        assert_eq!(c.get("MODULES"), Some("y"));
        assert_eq!(c.get("KEXEC"), Some("n"));
        assert_eq!(c.get("LSM"), Some("landlock,lockdown,yama,bpf"));
        assert_eq!(c.get("MODPROBE_PATH"), Some("/sbin/mod\"probe"));
        assert_eq!(c.get("HZ"), Some("250"));
        assert_eq!(c.tristate("EXT4_FS"), Tristate::Module);
        assert_eq!(c.tristate("KEXEC"), Tristate::No);
        assert_eq!(c.tristate("MISSING"), Tristate::No);
        assert!(c.is_builtin("MODULES") && !c.is_builtin("EXT4_FS"));
        assert!(c.is_enabled("EXT4_FS") && !c.is_enabled("KEXEC"));
        assert!(c.mentions("KEXEC") && !c.mentions("MISSING"));
        assert_eq!(c.options.len(), 6);
    }

    #[test]
    fn load_live_prefers_config_gz() {
        let t = TempDir::new("cfg");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(SAMPLE.as_bytes()).unwrap();
        t.write("proc/config.gz", enc.finish().unwrap());
        t.write("boot/config-6.1.0-test", "CONFIG_MODULES=n\n");
        let (c, src) = KernelConfig::load_live(t.path(), "6.1.0-test")
            .unwrap()
            .unwrap();
        assert_eq!(src, t.path().join("proc/config.gz"));
        assert!(c.is_builtin("MODULES"));
        assert_eq!(c.get("LSM"), Some("landlock,lockdown,yama,bpf"));
    }

    #[test]
    fn load_live_falls_back_to_boot() {
        let t = TempDir::new("cfg");
        t.write("boot/config-6.1.0-test", "# CONFIG_MODULES is not set\n");
        let (c, src) = KernelConfig::load_live(t.path(), "6.1.0-test")
            .unwrap()
            .unwrap();
        assert_eq!(src, t.path().join("boot/config-6.1.0-test"));
        assert_eq!(c.get("MODULES"), Some("n"));
        assert!(KernelConfig::load_live(t.path(), "other")
            .unwrap()
            .is_none());
        assert!(KernelConfig::load_offline(t.path(), "6.1.0-test")
            .unwrap()
            .is_some());
    }

    #[test]
    fn corrupt_gz_is_an_error_naming_the_path() {
        let t = TempDir::new("cfg");
        t.write("proc/config.gz", "not gzip at all");
        let err = KernelConfig::load_live(t.path(), "x").unwrap_err();
        assert!(matches!(err, ConfigError::Decompress { .. }));
        assert!(err.to_string().contains("proc/config.gz"), "{err}");
    }
}
