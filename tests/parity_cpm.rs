//! Parity of the CPM port with the official PyTorch code (namedBen/Convolutional-Pose-
//! Machines-Pytorch @ 540d161, `CPM(k=14)`) on the posegen-v1 fixture `cpm_368`: every
//! stage and the centre-pool / pool3 intermediates, within 5e-4 · std(ref) (fixture
//! README §4). Also the MPII (Caffe) model's wiring on posegen weights.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use candle_core::{Device, Tensor};
use posescope::models::nets::cpm::{self, Config, Cpm};
use posescope::weights::posegen;

const REL_TOLERANCE: f32 = 5e-4;

fn std_of(v: &[f32]) -> f32 {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt() as f32
}

/// Compares `ours` with `reference`; prints and returns a failure line if out of tolerance.
fn check(name: &str, ours: &Tensor, reference: &Tensor) -> Option<String> {
    assert_eq!(ours.dims(), reference.dims(), "{name}: shape");
    let got: Vec<f32> = ours.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = reference.flatten_all().unwrap().to_vec1().unwrap();
    let (max_abs, rel_rms) = common::compare(&got, &want);
    let tol = REL_TOLERANCE * std_of(&want);
    println!(
        "{name:>13}: max-abs {max_abs:.3e} (tol {tol:.3e}), rms/std {rel_rms:.3e}, max-abs/std {:.3e}",
        max_abs / std_of(&want)
    );
    (max_abs > tol).then(|| format!("{name}: max-abs {max_abs:.3e} > {tol:.3e}"))
}

#[test]
fn lsp_matches_the_official_pytorch_cpm_on_every_stage() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/posegen/cpm_368");
    let dev = Device::Cpu;
    let input = candle_core::safetensors::load(dir.join("input.safetensors"), &dev).unwrap();
    let outputs = candle_core::safetensors::load(dir.join("outputs.safetensors"), &dev).unwrap();
    let inter =
        candle_core::safetensors::load(dir.join("intermediates.safetensors"), &dev).unwrap();

    // The centre map recipe of cpm_test.py reproduces the stored map bit for bit.
    let stored: Vec<f32> = input["center_map"]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let ours = cpm::center_map(368, 368, 200.0, 170.0, 3.0);
    assert_eq!(input["center_map"].dims(), &[1, 1, 368, 368]);
    assert!(
        ours.iter()
            .zip(&stored)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "center_map differs from the stored one"
    );

    let (vb, recorder) = posegen::var_builder(posegen::GAIN_CPM, &dev);
    let model = Cpm::load(vb, Config::lsp()).unwrap();
    let keys =
        posegen::parse_keys(&std::fs::read_to_string(dir.join("keys.txt")).unwrap()).unwrap();
    let problems = recorder.mismatches(&keys);
    assert!(
        problems.is_empty(),
        "parameter requests vs keys.txt:\n{}",
        problems.join("\n")
    );

    let t0 = Instant::now();
    let (out, times) = model
        .forward_profiled(&input["image"], &input["center_map"])
        .unwrap();
    println!("forward: {:.2?}", t0.elapsed());
    for step in &times {
        println!("  {:>12}: {:.2?}", step.name, step.time);
    }

    assert_eq!(out.stages.len(), 6);
    let mut failures = Vec::new();
    for (t, stage) in out.stages.iter().enumerate() {
        let key = format!("stage{}", t + 1);
        failures.extend(check(&key, stage, &outputs[&key]));
    }
    failures.extend(check(
        "pool_center",
        &out.pool_center,
        &inter["pool_center"],
    ));
    failures.extend(check(
        "pool3_stage1",
        &out.pool3_stage1,
        &inter["pool3_stage1"],
    ));
    failures.extend(check(
        "pool3_stage2",
        &out.pool3_stage2,
        &inter["pool3_stage2"],
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The MPII layer names of `pose_deploy_centerMap.prototxt` (Caffe release, `_trained_MPI`).
fn mpii_prototxt_layers() -> Vec<String> {
    let mut names: Vec<String> = [
        "conv1_1",
        "conv1_2",
        "conv2_1",
        "conv2_2",
        "conv3_1",
        "conv3_2",
        "conv3_3",
        "conv3_4",
        "conv4_1",
        "conv4_2",
        "conv4_3_CPM",
        "conv4_4_CPM",
        "conv4_5_CPM",
        "conv4_6_CPM",
        "conv4_7_CPM",
        "conv5_1_CPM",
        "conv5_2_CPM",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for t in 2..=6 {
        for i in 1..=7 {
            names.push(format!("Mconv{i}_stage{t}"));
        }
    }
    names
}

#[test]
fn mpii_runs_on_posegen_weights_with_the_prototxt_names() {
    let dev = Device::Cpu;
    let (vb, recorder) = posegen::var_builder(posegen::GAIN_CPM, &dev);
    let model = Cpm::load(vb, Config::mpii()).unwrap();

    let mut expected = Vec::new();
    let mut cin = 3;
    for name in mpii_prototxt_layers() {
        let (out, k) = match name.as_str() {
            n if n.starts_with("conv1_") => (64, 3),
            n if n.starts_with("conv2_") => (128, 3),
            n if n.starts_with("conv3_") => (256, 3),
            "conv4_1" | "conv4_2" => (512, 3),
            "conv4_7_CPM" => (128, 3),
            n if n.starts_with("conv4_") => (256, 3),
            "conv5_1_CPM" => (512, 1),
            "conv5_2_CPM" | "Mconv7_stage2" | "Mconv7_stage3" | "Mconv7_stage4"
            | "Mconv7_stage5" | "Mconv7_stage6" => (15, 1),
            n if n.starts_with("Mconv6") => (128, 1),
            _ => (128, 7),
        };
        let i = match name.as_str() {
            "conv5_1_CPM" => 128,
            n if n.starts_with("Mconv1_") => 15 + 128 + 1,
            _ => cin,
        };
        expected.push((format!("{name}.weight"), vec![out, i, k, k]));
        expected.push((format!("{name}.bias"), vec![out]));
        cin = out;
    }
    let problems = recorder.mismatches(&expected);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(recorder.requests().len(), 2 * (17 + 5 * 7));

    let image = Tensor::zeros((1, 3, 64, 64), candle_core::DType::F32, &dev).unwrap();
    let center = cpm::center_map_tensor(64, 64, 32.0, 32.0, 21.0, &dev).unwrap();
    let (out, times) = model.forward_profiled(&image, &center).unwrap();
    assert_eq!(out.stages.len(), 6);
    for s in &out.stages {
        assert_eq!(s.dims(), &[1, 15, 8, 8]);
    }
    assert_eq!(out.pool_center.dims(), &[1, 1, 8, 8]);
    assert_eq!(out.pool3_stage1.dims(), &[1, 256, 8, 8]);
    assert_eq!(out.pool3_stage2.dims(), &[1, 128, 8, 8]);
    assert_eq!(times.len(), 3 + 5);
    // 68 × 68 exercises Caffe's rounded-up pools: 68 → 34 → 17 → 9, and the centre pool
    // ceil((68 − 9) / 8) + 1 = 9.
    let image = Tensor::zeros((1, 3, 68, 68), candle_core::DType::F32, &dev).unwrap();
    let center = cpm::center_map_tensor(68, 68, 34.0, 34.0, 21.0, &dev).unwrap();
    let out = model.forward(&image, &center).unwrap();
    assert_eq!(out.stages[5].dims(), &[1, 15, 9, 9]);
}

/// The parity tests above again in a child process on the portable path (candle's own ops,
/// what CUDA and Metal run; every custom CPU kernel fails if entered), same tolerances.
#[test]
fn parity_holds_on_the_portable_path() {
    common::rerun_portable(&["lsp_", "mpii_"], 2);
}
