//! Replays the fuzz corpora (`fuzz/corpus/<target>/`, the minimized inputs `cargo fuzz`
//! found plus the seeds) and the inputs of fixed findings (`fuzz/regressions/<target>/`)
//! through the same entries the fuzz targets call (`posescope::fuzzing`), on stable Rust:
//! every input must give `Ok` or `Err`, never a panic, so a fixed crash stays fixed.
//! See docs/fuzzing.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; empty when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_corpus_and_regression_input_replays_without_panicking() {
    let mut report = Vec::new();
    for &(target, entry) in posescope::fuzzing::TARGETS {
        let corpus = inputs(&fuzz_dir().join("corpus").join(target));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{target}/ is missing or empty: every fuzz target needs its corpus"
        );
        let regressions = inputs(&fuzz_dir().join("regressions").join(target));
        let mut accepted = 0;
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            // A panic here names the input through the message below.
            let ok = std::panic::catch_unwind(|| entry(&data))
                .unwrap_or_else(|_| panic!("{target}: {} panicked", path.display()));
            accepted += usize::from(ok);
        }
        // The seeds are valid files: a target that accepts nothing no longer reaches the
        // reader's deeper code (e.g. the entry lost its format label).
        assert!(
            accepted > 0,
            "{target}: no input of fuzz/corpus/{target}/ was accepted"
        );
        report.push(format!(
            "{target}: {} corpus + {} regression inputs replayed ({accepted} accepted)",
            corpus.len(),
            regressions.len()
        ));
    }
    // The fuzz targets and the entries are the same list.
    let targets_dir = fuzz_dir().join("fuzz_targets");
    let mut names: Vec<String> = inputs(&targets_dir)
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    names.sort();
    let mut listed: Vec<String> = posescope::fuzzing::TARGETS
        .iter()
        .map(|t| t.0.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        names, listed,
        "fuzz/fuzz_targets/ and posescope::fuzzing::TARGETS differ"
    );
    println!("{}", report.join("\n"));
}
