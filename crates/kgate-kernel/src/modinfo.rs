//! Parsing `.modinfo` sections and `modules.builtin.modinfo`.
//!
//! CONTRACT:
//!
//! ```ignore
//! #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
//! pub struct ModInfo {
//!     pub name: Option<String>, pub aliases: Vec<String>, pub depends: Vec<String>,
//!     pub softdep_pre: Vec<String>, pub softdep_post: Vec<String>, pub weakdeps: Vec<String>,
//!     pub intree: bool, pub vermagic: Option<String>, pub description: Option<String>, pub license: Option<String>,
//! }
//! pub fn parse_modinfo(blob: &[u8]) -> ModInfo;
//! /// `modules.builtin.modinfo`: `module.key=value\0` records.
//! pub fn parse_builtin_modinfo(blob: &[u8]) -> BTreeMap<String, ModInfo>;
//! ```
