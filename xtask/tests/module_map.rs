//! docs/ARCHITECTURE.md's "Module map" is true: it lists every source file
//! of every crate (`crates/*/src/**/*.rs`, `xtask/src/**/*.rs`) and no file
//! that does not exist, and no source file is over [`MAX_LINES`] lines
//! unless the map lists it under "Data tables". Each failure names the file
//! and what to change.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The most lines a source file may have, data tables excepted.
const MAX_LINES: usize = 800;

const MAP_HEADING: &str = "## Module map";
const DATA_TABLES_HEADING: &str = "### Data tables";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_path_buf()
}

/// The map's entries: (files of the per-crate lists, files of the data
/// table list), as written between backticks at the start of `- ` lines.
fn read_map(root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let path = root.join("docs/ARCHITECTURE.md");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut in_map = false;
    let mut in_tables = false;
    let (mut files, mut tables) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        if line.starts_with("## ") {
            in_map = line.trim_end() == MAP_HEADING;
            in_tables = false;
            continue;
        }
        if !in_map {
            continue;
        }
        if line.starts_with("### ") {
            in_tables = line.starts_with(DATA_TABLES_HEADING);
            continue;
        }
        let Some(entry) = line
            .strip_prefix("- `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(path, _)| path.to_string())
        else {
            continue;
        };
        if in_tables {
            tables.insert(entry);
        } else {
            files.insert(entry);
        }
    }
    assert!(
        !files.is_empty(),
        "docs/ARCHITECTURE.md has no `{MAP_HEADING}` section with `- `path` — role` entries"
    );
    (files, tables)
}

fn rust_files(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path.strip_prefix(root).expect("below the root");
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Every source file of the workspace, relative to its root.
fn source_files(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let crates = fs::read_dir(root.join("crates")).expect("crates/ exists");
    for krate in crates {
        let src = krate.expect("directory entry").path().join("src");
        if src.is_dir() {
            rust_files(&src, root, &mut out);
        }
    }
    rust_files(&root.join("xtask/src"), root, &mut out);
    out
}

fn line_count(path: &Path) -> usize {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .count()
}

#[test]
fn module_map_lists_exactly_the_source_files() {
    let root = workspace_root();
    let (map, tables) = read_map(&root);
    let sources = source_files(&root);
    let mut problems = Vec::new();
    for missing in sources.difference(&map) {
        problems.push(format!(
            "{missing}: not in the module map: add `- `{missing}` — ROLE` under its crate"
        ));
    }
    for stale in map.difference(&sources) {
        problems.push(format!(
            "{stale}: listed in the module map but no such source file: remove or rename the entry"
        ));
    }
    for table in &tables {
        if !sources.contains(table) {
            problems.push(format!(
                "{table}: listed as a data table but no such source file: remove the entry"
            ));
        } else if !map.contains(table) {
            problems.push(format!(
                "{table}: listed as a data table but not under its crate: add it there too"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/ARCHITECTURE.md, section \"Module map\", is out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn no_source_file_over_800_lines_unless_a_data_table() {
    let root = workspace_root();
    let (_, tables) = read_map(&root);
    let mut problems = Vec::new();
    for file in source_files(&root) {
        let lines = line_count(&root.join(&file));
        if lines > MAX_LINES && !tables.contains(&file) {
            problems.push(format!(
                "{file}: {lines} lines: split it by concern (at most {MAX_LINES} lines each), \
                 or, if it is a data table, list it under \"Data tables\" in the module map"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "source files over {MAX_LINES} lines that are not data tables:\n  {}",
        problems.join("\n  ")
    );
}

/// The subcommand a CLI source file belongs to: `cmd/NAME.rs` and
/// `cmd/NAME/*.rs` both belong to NAME.
fn subcommand_of(rel: &str) -> Option<&str> {
    let rest = rel.strip_prefix("crates/kgate/src/cmd/")?;
    let name = rest.split('/').next()?;
    Some(name.strip_suffix(".rs").unwrap_or(name))
}

/// The subcommands (of `known`) a line of Rust names through
/// `crate::cmd::NAME` or `super::NAME`.
fn named_subcommands(line: &str, known: &BTreeSet<String>) -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["crate::cmd::", "super::"] {
        for (at, _) in line.match_indices(prefix) {
            let name: String = line[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if known.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

#[test]
fn subcommands_never_import_each_other() {
    let root = workspace_root();
    let sources = source_files(&root);
    let known: BTreeSet<String> = sources
        .iter()
        .filter_map(|f| subcommand_of(f))
        .filter(|n| *n != "mod")
        .map(str::to_owned)
        .collect();
    assert!(known.contains("survey"), "no subcommands found: {known:?}");
    let mut problems = Vec::new();
    for file in &sources {
        let Some(own) = subcommand_of(file) else {
            continue;
        };
        if own == "mod" {
            continue;
        }
        let text = fs::read_to_string(root.join(file)).expect("readable source");
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for name in named_subcommands(line, &known) {
                if name != own {
                    problems.push(format!(
                        "{file}:{}: uses subcommand `{name}`: move what both need to a crate-level module (inputs, cvedata, backend, output, target)",
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_import_check_sees_imports() {
    let known: BTreeSet<String> = ["cve", "bpf", "survey"].map(String::from).into();
    assert_eq!(
        named_subcommands("use crate::cmd::cve::DataArgs;", &known),
        ["cve"]
    );
    assert_eq!(
        named_subcommands("    super::bpf::pin_dir();", &known),
        ["bpf"]
    );
    assert!(named_subcommands("    use super::*;", &known).is_empty());
    assert!(named_subcommands("    super::check(x);", &known).is_empty());
    assert!(named_subcommands("use crate::cvedata::DataArgs;", &known).is_empty());
    assert_eq!(
        subcommand_of("crates/kgate/src/cmd/policy/generate.rs"),
        Some("policy")
    );
    assert_eq!(subcommand_of("crates/kgate/src/cmd/cve.rs"), Some("cve"));
    assert_eq!(subcommand_of("crates/kgate/src/cvedata.rs"), None);
}
