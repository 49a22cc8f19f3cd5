//! Parity of MMPose's CPM (`mmpose/models/backbones/cpm.py` of MMPose 0.29.0 with the
//! identity `TopdownHeatmapMultiStageHead`) on the posegen-v1 fixtures of
//! `fixtures/posegen-mmpose` (README there): `cpm_mpii_368x368` (16 joints, 368×368) and
//! `cpm_coco_256x192` (17 joints, H 256 × W 192), G = 0.9 (§1). Every stored output
//! (`stage1` … `stage6`) and intermediate (`backbone.stem.6`, `backbone.middle`,
//! `backbone.middle_conv.0`, `backbone.cpm_stages.0`) within 5e-4 · std(ref) (§4), and
//! every `keys.txt` entry except `num_batches_tracked` requested exactly once with its
//! shape.
//!
//! The catalogue path too: the generated weights written as a safetensors file under
//! MMPose's `backbone.` names (as MMPose saves them, `num_batches_tracked` included), loaded
//! with `Model::load_with_weights` for the catalogue entry, and run with `Model::run`.
//!
//! The `#[ignore]`d `timing_*` test prints a forward time at 368×368; run it in release with
//! `RAYON_NUM_THREADS=1 cargo test --release --test parity_mmpose_cpm -- --ignored
//! --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::parity::{check, check_fixture, header, keys_of, load, median_time};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use posescope::models::nets::mmpose_cpm::{self, MmposeCpm};
use posescope::models::{CellField, Model, RunOptions};
use posescope::weights::posegen;

/// posegen-v1 gain of the MMPose CPM fixtures (README §1: "CPM (MPII and COCO) 0.9").
const GAIN_MMPOSE_CPM: f64 = 0.9;
/// State-dict entries of both CPM fixtures, of which 34 are `num_batches_tracked`.
const ENTRIES: usize = 216;
const NUM_BATCHES_TRACKED: usize = 34;

fn fixture(shared: &Path, name: &str) -> PathBuf {
    shared.join("fixtures/posegen-mmpose").join(name)
}

/// Builds the network from posegen weights under `backbone.`, checks the key list, runs it
/// on the fixture input and compares every stored tensor.
fn parity(name: &str, config: mmpose_cpm::Config, joints: usize, maps: (usize, usize)) {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared, name);
    let (vb, recorder) = posegen::var_builder(GAIN_MMPOSE_CPM, &Device::Cpu);
    let net = MmposeCpm::load(vb.pp(mmpose_cpm::BACKBONE_PREFIX), config).unwrap();
    let keys = keys_of(&dir);
    assert_eq!(keys.len(), ENTRIES);
    let problems = recorder.mismatches(&keys);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(recorder.requests().len(), ENTRIES - NUM_BATCHES_TRACKED);
    println!(
        "{name}: {} of {ENTRIES} keys.txt entries read exactly once with their shapes \
         (the other {NUM_BATCHES_TRACKED} are num_batches_tracked)",
        recorder.requests().len()
    );

    let input = load(&dir.join("input.safetensors"));
    let (out, times) = net.forward_profiled(&input["input"]).unwrap();
    for s in &times {
        println!("  {:>8}: {:.2?}", s.name, s.time);
    }
    assert_eq!(out.stages.len(), 6);
    for s in &out.stages {
        assert_eq!(s.dims(), &[1, joints, maps.0, maps.1]);
    }
    let mut ours: HashMap<String, Tensor> = out
        .stages
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("stage{}", i + 1), t.clone()))
        .collect();
    ours.insert("backbone.stem.6".into(), out.stem6.clone());
    ours.insert("backbone.middle".into(), out.middle.clone());
    ours.insert("backbone.middle_conv.0".into(), out.middle_conv[0].clone());
    ours.insert("backbone.cpm_stages.0".into(), out.cpm_stages[0].clone());
    let failures = check_fixture(&dir, |k| ours.get(k).cloned());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cpm_mpii_368x368_matches_mmpose() {
    parity(
        "cpm_mpii_368x368",
        mmpose_cpm::Config::mpii_368(),
        16,
        (46, 46),
    );
}

#[test]
fn cpm_coco_256x192_matches_mmpose() {
    parity(
        "cpm_coco_256x192",
        mmpose_cpm::Config::coco_256x192(),
        17,
        (32, 24),
    );
}

/// Every `keys.txt` entry as a posegen-v1 tensor (`num_batches_tracked` as int64 0), under
/// the names given by `rename`.
fn state_dict(dir: &Path, rename: impl Fn(&str) -> String) -> HashMap<String, Tensor> {
    keys_of(dir)
        .into_iter()
        .map(|(k, shape)| {
            let t = posegen::tensor(&k, &shape, GAIN_MMPOSE_CPM, &Device::Cpu).unwrap();
            (rename(&k), t)
        })
        .collect()
}

/// Loads the fixture's weights through the catalogue entry `id` from a safetensors file in
/// MMPose's names, runs `Model::run` on the fixture input and compares the six stages.
fn through_model(name: &str, id: &str, joints: usize, maps: (usize, usize)) {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared, name);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(format!("{name}.safetensors"));
    let tensors = state_dict(&dir, str::to_string);
    assert!(tensors.keys().all(|k| k.starts_with("backbone.")));
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let model = Model::load_with_weights(id, &path, &Device::Cpu).unwrap();
    assert_eq!(model.info().architecture, &mmpose_cpm::ARCHITECTURE);
    assert!(model.info().architecture.is_top_down());
    assert!(model.info().architecture.flip_shifts_heatmap());
    assert_eq!(model.joints().len(), joints);
    assert!(
        model.unused_keys().is_empty(),
        "unused: {:?}",
        model.unused_keys()
    );
    assert!(!model.takes_center());

    let input = load(&dir.join("input.safetensors"));
    let out = model.run(&input["input"], &RunOptions::default()).unwrap();
    assert_eq!(out.stages.len(), 6);
    let reference = load(&dir.join("outputs.safetensors"));
    header();
    let mut failures = Vec::new();
    for (t, stage) in out.stages.iter().enumerate() {
        assert_eq!(stage.key, format!("stage{}", t + 1));
        assert_eq!(stage.label, format!("stage {}", t + 1));
        let m = &stage.heatmaps;
        assert_eq!(
            (m.channels(), m.height(), m.width()),
            (joints, maps.0, maps.1)
        );
        assert!(stage.pafs.is_none() && stage.tags.is_none());
        let ours =
            Tensor::from_slice(m.as_slice(), (1, joints, maps.0, maps.1), &Device::Cpu).unwrap();
        failures.extend(check(&stage.key, &ours, &reference[&stage.key]));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let steps: Vec<&str> = out.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        steps,
        ["stage1", "middle", "stage2", "stage3", "stage4", "stage5", "stage6"]
    );
    assert_eq!(out.features.len(), 1);
    let middle = &out.features[0];
    assert_eq!(middle.key, "middle");
    assert_eq!(middle.channels, 128);
    assert_eq!(middle.size(), maps);
    assert!(matches!(middle.field, CellField::Local(rf, _) if rf.size == 71.0));
    let (w, h) = model.info().input_size;
    let fields = model.receptive_fields((w, h));
    assert_eq!(fields.len(), 6);
    assert_eq!(fields[0].0.size, 167.0);
    assert_eq!(fields[5].0.size, 167.0 + 5.0 * 240.0);
}

#[test]
fn cpm_mpii_368x368_through_the_catalogue() {
    through_model("cpm_mpii_368x368", "cpm-mmpose-mpii-368", 16, (46, 46));
}

#[test]
fn cpm_coco_256x192_through_the_catalogue() {
    through_model("cpm_coco_256x192", "cpm-mmpose-coco-256x192", 17, (32, 24));
}

/// A checkpoint without the `backbone.` prefix loads too, extra keys are reported, and a
/// checkpoint whose joint count does not match the entry's joint set is refused.
#[test]
fn unprefixed_names_extra_keys_and_wrong_joint_sets() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared, "cpm_coco_256x192");
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = state_dict(&dir, |k| k.trim_start_matches("backbone.").to_string());
    tensors.insert(
        "keypoint_head.extra.weight".into(),
        Tensor::ones((2, 2), DType::F32, &Device::Cpu).unwrap(),
    );
    let path = tmp.path().join("bare.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    for id in ["cpm-mmpose-coco-256x192", "cpm-mmpose-coco-384x288"] {
        let model = Model::load_with_weights(id, &path, &Device::Cpu).unwrap();
        assert_eq!(model.unused_keys(), ["keypoint_head.extra.weight"]);
    }
    let err = Model::load_with_weights("cpm-mmpose-mpii-368", &path, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stem.9.conv.weight") && err.contains("17") && err.contains("16"),
        "{err}"
    );
}

#[test]
#[ignore = "timing; run in release with RAYON_NUM_THREADS=1"]
fn timing_mmpose_cpm_368() {
    let (vb, _) = posegen::var_builder(GAIN_MMPOSE_CPM, &Device::Cpu);
    let net = MmposeCpm::load(
        vb.pp(mmpose_cpm::BACKBONE_PREFIX),
        mmpose_cpm::Config::mpii_368(),
    )
    .unwrap();
    let x = Tensor::zeros((1, 3, 368, 368), DType::F32, &Device::Cpu).unwrap();
    let t = median_time(3, || {
        net.forward(&x).unwrap();
    });
    println!("MMPose CPM 368×368 forward (median of 3): {t:.2?}");
}

/// The parity tests above again in a child process on the portable path (candle's own ops,
/// what CUDA and Metal run; every custom CPU kernel fails if entered), same tolerances.
#[test]
fn parity_holds_on_the_portable_path() {
    common::rerun_portable(&["_matches_mmpose"], 2);
}
