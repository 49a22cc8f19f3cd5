//! Parity of MMPose's Hourglass-52 (`HourglassNet(num_stacks=1)` +
//! `TopdownHeatmapMultiStageHead`, MMPose 0.29.0) with the posegen-v1 fixture
//! `fixtures/posegen-mmpose/hourglass52_coco_256x256` (README there, §6), G = 0.65 (§1):
//!
//! * every stored output and intermediate (`stack0`, `backbone.hourglass_modules.0.low1`,
//!   `….low2`, `….low2.low2.low2.low2`) within 5e-4 · std(ref) (§4);
//! * every `keys.txt` entry requested exactly once with its shape, except
//!   `num_batches_tracked` and the never-applied `backbone.inters.0.*` (§6), which must not
//!   be read; and the configuration read back from the `keys.txt` shapes;
//! * the catalogue path: the same weights, saved with their MMPose names as safetensors,
//!   loaded through `Model::load_with_weights("hourglass52-mmpose-coco-256", …)`, with no
//!   unused key reported, the run's shapes, and the same heatmaps.
//!
//! The `#[ignore]`d `timing_*` test prints a forward time; run it in release with
//! `RAYON_NUM_THREADS=1 cargo test --release --test parity_mmpose_hourglass -- --ignored
//! --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::parity::{check, check_fixture, keys_of, load, median_time};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use posescope::models::nets::mmpose_hourglass::{
    self, MmposeHourglass, MmposeHourglassOutputs, UNUSED_INTERS_PREFIX,
};
use posescope::models::{Model, RunOptions};
use posescope::weights::posegen;

/// posegen-v1 gain of the Hourglass-52 fixture (README §1).
const GAIN: f64 = 0.65;
/// `keys.txt` entries: all of them, `num_batches_tracked`, and those under `inters.0`.
const ENTRIES: usize = 494;
const NUM_BATCHES_TRACKED: usize = 82;
const INTERS_ENTRIES: usize = 12;
const INTERS_NUM_BATCHES_TRACKED: usize = 2;

fn fixture(shared: &Path) -> PathBuf {
    shared.join("fixtures/posegen-mmpose/hourglass52_coco_256x256")
}

/// The fixture tensors by their names, from a forward pass.
fn named(out: &MmposeHourglassOutputs) -> HashMap<String, Tensor> {
    HashMap::from([
        ("stack0".to_string(), out.heatmaps.clone()),
        (MmposeHourglassOutputs::low1_path(0), out.low1[0].clone()),
        (MmposeHourglassOutputs::low2_path(0), out.low2[0].clone()),
        (MmposeHourglassOutputs::low2_path(3), out.low2[3].clone()),
    ])
}

#[test]
fn posegen_test_vectors_of_the_hourglass_keys() {
    // README §1: the first three values as f32 bit patterns.
    let cases: [(&str, &[usize], [u32; 3]); 3] = [
        (
            "backbone.hourglass_modules.0.low2.low2.low2.low2.low2.3.conv2.weight",
            &[512, 512, 3, 3],
            [0x3ca6cc5f, 0x3bcbf4ce, 0xbca7d843],
        ),
        (
            "backbone.inters.0.bn1.running_mean",
            &[256],
            [0x3e3418eb, 0xbd31d360, 0x3e2b71fd],
        ),
        (
            "keypoint_head.multi_final_layers.0.weight",
            &[17, 256, 1, 1],
            [0xbd875759, 0xbc951a8b, 0x3d9de2c9],
        ),
    ];
    for (key, shape, want) in cases {
        let v = posegen::values(key, shape, GAIN).unwrap();
        let got: Vec<u32> = v[..3].iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, want, "{key}");
    }
}

#[test]
fn hourglass52_coco_256_matches_mmpose() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared);
    let all = keys_of(&dir);
    assert_eq!(all.len(), ENTRIES);
    let shape_of = |k: &str| all.iter().find(|(key, _)| key == k).map(|(_, s)| s.clone());
    let config = mmpose_hourglass::Config::from_shapes(shape_of, (256, 256)).unwrap();
    assert_eq!(config, mmpose_hourglass::Config::hourglass52_coco_256());

    let (vb, recorder) = posegen::var_builder(GAIN, &Device::Cpu);
    let net = MmposeHourglass::load(vb, config).unwrap();
    let keys: Vec<posegen::Request> = all
        .into_iter()
        .filter(|(k, _)| !k.starts_with(UNUSED_INTERS_PREFIX))
        .collect();
    assert_eq!(keys.len(), ENTRIES - INTERS_ENTRIES);
    // Every expected key exactly once with its shape, and nothing else (so no `inters`).
    let problems = recorder.mismatches(&keys);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let requests = recorder.requests().len();
    assert_eq!(
        requests,
        ENTRIES - INTERS_ENTRIES - (NUM_BATCHES_TRACKED - INTERS_NUM_BATCHES_TRACKED)
    );
    println!(
        "keys: {requests} of {ENTRIES} keys.txt entries read once each; not read: \
         {NUM_BATCHES_TRACKED} num_batches_tracked, {} backbone.inters.0.* tensors",
        INTERS_ENTRIES - INTERS_NUM_BATCHES_TRACKED
    );

    let input = load(&dir.join("input.safetensors"));
    let (out, times) = net.forward_profiled(&input["input"]).unwrap();
    for s in &times {
        println!("  {:>9}: {:.2?}", s.name, s.time);
    }
    assert_eq!(out.low1.len(), 5);
    assert_eq!(out.low2.len(), 5);
    assert_eq!(out.low2[4].dims(), &[1, 512, 2, 2]);
    let ours = named(&out);
    let failures = check_fixture(&dir, |k| ours.get(k).cloned());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hourglass52_loads_through_the_catalogue_from_an_mmpose_safetensors_file() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared);
    // Every state_dict entry under its MMPose name, `num_batches_tracked` (int64) and the
    // unused `inters.0` included, as MMPose saves it.
    let tensors: HashMap<String, Tensor> = keys_of(&dir)
        .into_iter()
        .map(|(k, s)| {
            let t = posegen::tensor(&k, &s, GAIN, &Device::Cpu).unwrap();
            (k, t)
        })
        .collect();
    assert_eq!(tensors.len(), ENTRIES);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hourglass52_coco_256x256.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    drop(tensors);

    let model =
        Model::load_with_weights("hourglass52-mmpose-coco-256", &path, &Device::Cpu).unwrap();
    assert_eq!(model.info().id, "hourglass52-mmpose-coco-256");
    assert!(model.info().architecture.is_top_down());
    assert!(model.info().architecture.flip_shifts_heatmap());
    assert!(
        model.unused_keys().is_empty(),
        "unused: {:?}",
        model.unused_keys()
    );

    let input = load(&dir.join("input.safetensors"));
    let out = model.run(&input["input"], &RunOptions::default()).unwrap();
    assert_eq!(out.stages.len(), 1);
    let stage = &out.stages[0];
    assert_eq!(
        (stage.key.as_str(), stage.label.as_str()),
        ("stage1", "stack 1")
    );
    assert_eq!(stage.heatmaps.shape(), [17, 64, 64]);
    assert!(stage.pafs.is_none() && stage.tags.is_none());
    let features: Vec<(&str, [usize; 3], usize)> = out
        .features
        .iter()
        .map(|f| (f.key.as_str(), f.energy.shape(), f.channels))
        .collect();
    assert_eq!(
        features,
        [
            ("stem", [1, 64, 64], 256),
            ("low1.1", [1, 32, 32], 256),
            ("low1.2", [1, 16, 16], 384),
            ("low1.3", [1, 8, 8], 384),
            ("low1.4", [1, 4, 4], 384),
            ("low1.5", [1, 2, 2], 512),
            ("hourglass", [1, 64, 64], 256),
            ("out_conv", [1, 64, 64], 256),
        ]
    );
    assert_eq!(out.features[1].label, "low1 level 1 (1/8)");
    assert_eq!(
        out.steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["stem", "hourglass", "head"]
    );
    // The same maps as the fixture's.
    let reference = &load(&dir.join("outputs.safetensors"))["stack0"];
    let ours = Tensor::from_vec(
        stage.heatmaps.as_slice().to_vec(),
        (1, 17, 64, 64),
        &Device::Cpu,
    )
    .unwrap();
    common::parity::header();
    let failure = check("stack0 (Model::run)", &ours, reference);
    assert!(failure.is_none(), "{failure:?}");

    // A 384×384 crop runs on the same weights (the 384 entry's checkpoint has the same keys).
    let m384 =
        Model::load_with_weights("hourglass52-mmpose-coco-384", &path, &Device::Cpu).unwrap();
    assert!(m384.unused_keys().is_empty());
    let x = Tensor::zeros((1, 3, 384, 384), DType::F32, &Device::Cpu).unwrap();
    let out = m384.run(&x, &RunOptions::default()).unwrap();
    assert_eq!(out.stages[0].heatmaps.shape(), [17, 96, 96]);
}

#[test]
#[ignore = "timing; run in release with RAYON_NUM_THREADS=1"]
fn timing_hourglass52_256() {
    let (vb, _) = posegen::var_builder(GAIN, &Device::Cpu);
    let net = MmposeHourglass::load(vb, mmpose_hourglass::Config::hourglass52_coco_256()).unwrap();
    let x = Tensor::zeros((1, 3, 256, 256), DType::F32, &Device::Cpu).unwrap();
    let t = median_time(5, || {
        net.forward(&x).unwrap();
    });
    println!("MMPose Hourglass-52 256×256 forward (median of 5): {t:.2?}");
}

/// The parity tests above again in a child process on the portable path (candle's own ops,
/// what CUDA and Metal run; every custom CPU kernel fails if entered), same tolerances.
#[test]
fn parity_holds_on_the_portable_path() {
    common::rerun_portable(&["_matches_mmpose"], 1);
}
