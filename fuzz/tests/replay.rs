//! Replays the committed corpus (`corpus/TARGET/`) and every input that
//! once crashed a target (`regressions/TARGET/`) through the targets'
//! bodies, on stable Rust, as a plain test. A regression input is added
//! by copying the crash file from `artifacts/TARGET/` to
//! `regressions/TARGET/` with a name that says what it found.

use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Every `[[bin]]` of Cargo.toml is a target with a body here, and the
/// other way round.
#[test]
fn every_target_has_a_body() {
    let manifest = std::fs::read_to_string(dir().join("Cargo.toml")).unwrap();
    let mut bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .map(|b| {
            b.lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .expect("a [[bin]] without a name")
                .trim_matches('"')
        })
        .collect();
    bins.sort();
    let mut targets: Vec<&str> = kgate_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    targets.sort();
    assert_eq!(bins, targets);
}

#[test]
fn corpus_and_regressions_replay() {
    let mut ran = 0;
    let mut empty = Vec::new();
    for (name, run) in kgate_fuzz::TARGETS {
        let corpus = files(&dir().join("corpus").join(name));
        if corpus.is_empty() {
            empty.push(*name);
        }
        for f in corpus
            .iter()
            .chain(files(&dir().join("regressions").join(name)).iter())
        {
            let data = std::fs::read(f).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                panic!("{name}: {} crashes the target", f.display());
            }
            ran += 1;
        }
    }
    assert!(empty.is_empty(), "no committed corpus for {empty:?}");
    eprintln!("replayed {ran} inputs");
}
