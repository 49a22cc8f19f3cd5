//! posegen-v1 against the fixtures' `posegen_sha256.txt`: every tensor of the CPM and the
//! HigherHRNet-W8 state_dicts, generated from its name and shape, hashed byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;

use posescope::weights::posegen;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks every key of `dir/keys.txt` against `dir/posegen_sha256.txt`; returns how many.
fn check_folder(dir: &Path, gain: f64) -> usize {
    let keys =
        posegen::parse_keys(&std::fs::read_to_string(dir.join("keys.txt")).unwrap()).unwrap();
    let sums: HashMap<String, String> = std::fs::read_to_string(dir.join("posegen_sha256.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.to_string(), v.trim().to_string())
        })
        .collect();
    assert_eq!(
        sums.len(),
        keys.len(),
        "{}: sha list vs keys.txt",
        dir.display()
    );
    let mut bad = Vec::new();
    for (key, shape) in &keys {
        let bytes: Vec<u8> = if key.ends_with("num_batches_tracked") {
            0i64.to_le_bytes().to_vec()
        } else {
            posegen::values(key, shape, gain)
                .unwrap()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        };
        let got = hex(&Sha256::digest(&bytes));
        if sums.get(key) != Some(&got) {
            bad.push(key.clone());
        }
    }
    assert!(
        bad.is_empty(),
        "{}: sha256 mismatch for {bad:?}",
        dir.display()
    );
    keys.len()
}

#[test]
fn cpm_tensors_match_the_reference_sha256() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let n = check_folder(&shared.join("fixtures/posegen/cpm_368"), posegen::GAIN_CPM);
    assert_eq!(n, 80);
}

#[test]
fn higherhrnet_w8_tensors_match_the_reference_sha256() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let n = check_folder(
        &shared.join("fixtures/posegen/higherhrnet_w8_pth"),
        posegen::GAIN_HIGHERHRNET,
    );
    assert_eq!(n, 1810);
}
