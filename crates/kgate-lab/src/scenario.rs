//! Scenario scripts: `lab/scenarios/NN-name.sh`.
//!
//! A scenario is a busybox `sh` script run as root in the guest after
//! `lab/lib.sh` is sourced. It reports one or more named results with
//! `result NAME PASS|FAIL|SKIP "detail"`. The names it reports are declared
//! in a comment line `# results: name1 name2 ...` so the host knows which
//! results to expect (a crash mid-run then fails exactly the missing ones);
//! without that line the single result is the file name without its `NN-`
//! prefix and `.sh`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// One scenario script.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// File name without `.sh`, e.g. `10-stock_autoload`; scripts run in
    /// this order.
    pub name: String,
    /// The script on the host.
    pub path: PathBuf,
    /// Result names the script reports.
    pub results: Vec<String>,
}

impl Scenario {
    /// Read one script.
    pub fn from_file(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".sh"))
            .with_context(|| format!("{}: scenario files end in .sh", path.display()))?
            .to_owned();
        if name.contains(char::is_whitespace) {
            bail!("{}: scenario names cannot contain spaces", path.display());
        }
        let mut results: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("# results:"))
            .flat_map(|l| l.split_whitespace().map(str::to_owned))
            .collect();
        if results.is_empty() {
            let bare = match name.split_once('-') {
                Some((nn, rest)) if nn.bytes().all(|b| b.is_ascii_digit()) => rest,
                _ => &name,
            };
            results.push(bare.to_owned());
        }
        Ok(Scenario {
            name,
            path: path.to_owned(),
            results,
        })
    }

    /// Every `*.sh` in `dir`, sorted by name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read scenario dir {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sh"))
            .collect();
        paths.sort();
        let scenarios = paths
            .iter()
            .map(|p| Scenario::from_file(p))
            .collect::<Result<Vec<_>>>()?;
        let mut seen = std::collections::BTreeSet::new();
        for s in &scenarios {
            for r in &s.results {
                if !seen.insert(r) {
                    bail!("result name {r} is declared by two scenarios");
                }
            }
        }
        Ok(scenarios)
    }
}
