//! MMPose's published networks that share the official code's modules (HigherHRNet-W32,
//! top-down HRNet-W32, SimpleBaseline ResNet-50), loaded the way a user loads a downloaded
//! MMPose checkpoint: a file with MMPose's `backbone.` / `keypoint_head.` names opened by
//! path, recognised by its keys as the MMPose catalogue entry, every key read, and run
//! through `Model::run`. Parity with the MMPose 0.29 fixtures (`../shared/fixtures/
//! posegen-mmpose`, posegen-v1 weights): every output within 5e-4·std(ref).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use common::parity::{check, header, keys_of, load};
use posescope::models::{Model, RunOptions};
use posescope::weights::posegen;

/// Writes the fixture's posegen weights under their MMPose names to a safetensors file.
fn mmpose_checkpoint(fixture: &Path, gain: f64, out: &Path) {
    let tensors: HashMap<String, Tensor> = keys_of(fixture)
        .into_iter()
        .map(|(name, shape)| {
            let t = posegen::tensor(&name, &shape, gain, &Device::Cpu).unwrap();
            (name, t)
        })
        .collect();
    candle_core::safetensors::save(&tensors, out).unwrap();
}

/// Loads the fixture's network from an MMPose-named file and checks which entry it is.
fn load_as_mmpose(fixture: &Path, gain: f64, file: &str, entry: &str) -> (Model, Tensor) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    mmpose_checkpoint(fixture, gain, &path);
    let model = Model::load(path.to_str().unwrap(), &Device::Cpu).unwrap();
    assert_eq!(model.info().id, entry, "recognised as the MMPose entry");
    assert!(
        model.unused_keys().is_empty(),
        "unread keys: {:?}",
        model.unused_keys()
    );
    let input = load(&fixture.join("input.safetensors"))
        .remove("input")
        .unwrap();
    (model, input)
}

fn channels(t: &candle_core::Tensor, start: usize, len: usize) -> Tensor {
    t.narrow(1, start, len).unwrap()
}

fn maps_tensor(m: &posescope::pose::Maps) -> Tensor {
    let [k, h, w] = m.shape();
    Tensor::from_vec(m.as_slice().to_vec(), (1, k, h, w), &Device::Cpu).unwrap()
}

#[test]
fn mmpose_higherhrnet_w32_checkpoint_matches_mmpose() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let fixture = shared.join("fixtures/posegen-mmpose/higherhrnet_w32_coco_512x512");
    let (model, input) = load_as_mmpose(
        &fixture,
        posegen::GAIN_HIGHERHRNET,
        "higher_hrnet32_coco_512x512-test.safetensors",
        "higherhrnet-w32-512",
    );
    let out = model.run(&input, &RunOptions::default()).unwrap();
    let want = load(&fixture.join("outputs.safetensors"));
    let output_0 = &want["output_0"];
    header();
    let mut failures = Vec::new();
    let res0 = &out.stages[0];
    failures.extend(check(
        "output_0 heatmaps",
        &maps_tensor(&res0.heatmaps),
        &channels(output_0, 0, 17),
    ));
    failures.extend(check(
        "output_0 tags",
        &maps_tensor(res0.tags.as_ref().unwrap()),
        &channels(output_0, 17, 17),
    ));
    failures.extend(check(
        "output_1",
        &maps_tensor(&out.stages[1].heatmaps),
        &want["output_1"],
    ));
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn mmpose_top_down_checkpoints_match_mmpose() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for (folder, gain, file, entry) in [
        (
            "hrnet_w32_coco_256x192",
            posegen::GAIN_HRNET,
            "hrnet_w32_coco_256x192-test.safetensors",
            "hrnet-w32-256x192-mmpose",
        ),
        (
            "res50_coco_256x192",
            posegen::GAIN_SIMPLEBASELINE,
            "res50_coco_256x192-test.safetensors",
            "simplebaseline-res50-256x192-mmpose",
        ),
    ] {
        let fixture = shared.join("fixtures/posegen-mmpose").join(folder);
        let (model, input) = load_as_mmpose(&fixture, gain, file, entry);
        // MMPose trains and tests on RGB, ImageNet-normalised (the official SimpleBaseline
        // feeds BGR): the entry says so.
        assert_eq!(
            model.info().norm,
            posescope::preprocess::InputNorm::RgbImageNet,
            "{entry}"
        );
        let out = model.run(&input, &RunOptions::default()).unwrap();
        let want = load(&fixture.join("outputs.safetensors"));
        header();
        let failures: Vec<String> = check(
            &format!("{folder} heatmaps"),
            &maps_tensor(&out.stages[0].heatmaps),
            &want["heatmaps"],
        )
        .into_iter()
        .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}

/// The two real MMPose checkpoint files of the fixtures (the same state dict in the zip and
/// the legacy `torch.save` format, named as MMPose publishes them), opened by path exactly as
/// a user opens a download: recognised as MMPose HigherHRNet, every key read, outputs
/// within tolerance of MMPose's.
#[test]
fn real_mmpose_checkpoint_files_in_both_torch_formats_run_like_mmpose() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let fixture = shared.join("fixtures/posegen-mmpose/higherhrnet_w8_coco_ckpt");
    let input = load(&fixture.join("input.safetensors"))
        .remove("input")
        .unwrap();
    let want = load(&fixture.join("outputs.safetensors"));
    for file in [
        "higherhrnet_w8_coco_128x128-aab8d5ee_20261206.pth",
        "higherhrnet_w8_coco_128x128_legacy-1dd7fdc7_20261206.pth",
    ] {
        let path = fixture.join(file);
        let model = Model::load(path.to_str().unwrap(), &Device::Cpu).unwrap();
        assert_eq!(model.info().id, "higherhrnet-w32-512", "{file}");
        assert!(
            model.unused_keys().is_empty(),
            "{file}: {:?}",
            model.unused_keys()
        );
        let out = model.run(&input, &RunOptions::default()).unwrap();
        let output_0 = &want["output_0"];
        header();
        let mut failures = Vec::new();
        failures.extend(check(
            &format!("{file} output_0 heatmaps"),
            &maps_tensor(&out.stages[0].heatmaps),
            &channels(output_0, 0, 17),
        ));
        failures.extend(check(
            &format!("{file} output_0 tags"),
            &maps_tensor(out.stages[0].tags.as_ref().unwrap()),
            &channels(output_0, 17, 17),
        ));
        failures.extend(check(
            &format!("{file} output_1"),
            &maps_tensor(&out.stages[1].heatmaps),
            &want["output_1"],
        ));
        assert!(failures.is_empty(), "{failures:#?}");
    }
}

/// The parity tests above again in a child process on the portable path (candle's own ops,
/// what CUDA and Metal run; every custom CPU kernel fails if entered), same tolerances.
#[test]
fn parity_holds_on_the_portable_path() {
    common::rerun_portable(&["mmpose_higherhrnet_w32", "mmpose_top_down"], 2);
}
