//! Parity of the top-down networks with their official PyTorch code on the posegen-v1
//! fixtures of `fixtures/posegen-topdown` (README there): every stored output and
//! intermediate within 5e-4 · std(ref) (§4), and every `keys.txt` entry (except
//! `num_batches_tracked` and the unused keys of §5) requested exactly once with its shape.
//!
//! * HRNet-W32 256×192: leoxiaobin/deep-high-resolution-net.pytorch @ 6f69e46,
//!   `pose_hrnet.py`, G = 0.45.
//! * SimpleBaseline ResNet-50 256×192: the same commit, `pose_resnet.py`, G = 0.75 (the
//!   stored input is already B,G,R).
//! * Stacked Hourglass, 8 stacks: princeton-vl/pytorch_stacked_hourglass @ ceedc14,
//!   `PoseNet(nstack=8, inp_dim=256, oup_dim=16)`, G = 0.35; the unused `skip_layer`s are
//!   exempt from the key check (README §5) and must not be read.
//!
//! The `#[ignore]`d `timing_*` tests print a forward time at the standard input size; run
//! them in release with `RAYON_NUM_THREADS=1 cargo test --release --test parity_topdown
//! -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::parity::{check_fixture, keys_of, load, median_time};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use posescope::models::nets::hrnet::{self, Hrnet};
use posescope::models::nets::simple_baseline::{self, SimpleBaseline};
use posescope::models::nets::stacked_hourglass::{self, StackedHourglass};
use posescope::weights::posegen;

fn fixture(shared: &Path, name: &str) -> PathBuf {
    shared.join("fixtures/posegen-topdown").join(name)
}

fn named<'a>(items: impl IntoIterator<Item = (String, &'a Tensor)>) -> HashMap<String, Tensor> {
    items.into_iter().map(|(k, t)| (k, t.clone())).collect()
}

fn list<'a>(name: &'a str, ts: &'a [Tensor]) -> impl Iterator<Item = (String, &'a Tensor)> + 'a {
    ts.iter()
        .enumerate()
        .map(move |(i, t)| (format!("{name}[{i}]"), t))
}

#[test]
fn hrnet_w32_256x192_matches_the_official_code() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared, "hrnet_w32_256x192");
    let (vb, recorder) = posegen::var_builder(posegen::GAIN_HRNET, &Device::Cpu);
    let net = Hrnet::load(vb, hrnet::Config::w32_256x192()).unwrap();
    let keys = keys_of(&dir);
    assert_eq!(keys.len(), 1754);
    let problems = recorder.mismatches(&keys);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(recorder.requests().len(), 1754 - 292);

    let input = load(&dir.join("input.safetensors"));
    let (out, times) = net.forward_profiled(&input["input"]).unwrap();
    for s in &times {
        println!("  {:>8}: {:.2?}", s.name, s.time);
    }
    assert_eq!(out.stage4_branches.len(), 4);
    assert_eq!(out.stage4_branches[3].dims(), &[1, 256, 8, 6]);
    let ours = named(
        [("heatmaps".to_string(), &out.heatmaps)]
            .into_iter()
            .chain(list("stage2", &out.stage2))
            .chain(list("stage3", &out.stage3))
            .chain(list("stage4", &out.stage4)),
    );
    let failures = check_fixture(&dir, |k| ours.get(k).cloned());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "timing; run in release with RAYON_NUM_THREADS=1"]
fn timing_hrnet_w32_256x192() {
    let (vb, _) = posegen::var_builder(posegen::GAIN_HRNET, &Device::Cpu);
    let net = Hrnet::load(vb, hrnet::Config::w32_256x192()).unwrap();
    let x = Tensor::zeros((1, 3, 256, 192), DType::F32, &Device::Cpu).unwrap();
    let t = median_time(5, || {
        net.forward(&x).unwrap();
    });
    println!("HRNet-W32 256×192 forward (median of 5): {t:.2?}");
}

#[test]
fn simplebaseline_res50_256x192_matches_the_official_code() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared, "simplebaseline_res50_256x192");
    let (vb, recorder) = posegen::var_builder(posegen::GAIN_SIMPLEBASELINE, &Device::Cpu);
    let net = SimpleBaseline::load(vb, simple_baseline::Config::res50_256x192()).unwrap();
    let keys = keys_of(&dir);
    assert_eq!(keys.len(), 338);
    let problems = recorder.mismatches(&keys);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(recorder.requests().len(), 338 - 56);

    let input = load(&dir.join("input.safetensors"));
    let (out, times) = net.forward_profiled(&input["input"]).unwrap();
    for s in &times {
        println!("  {:>8}: {:.2?}", s.name, s.time);
    }
    let [_, _, _, layer4] = &out.layers;
    let ours = named(
        [
            ("heatmaps".to_string(), &out.heatmaps),
            ("layer4".to_string(), layer4),
        ]
        .into_iter()
        .chain(
            out.deconv
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("deconv_layers.{}", 3 * i + 2), t)),
        ),
    );
    let failures = check_fixture(&dir, |k| ours.get(k).cloned());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "timing; run in release with RAYON_NUM_THREADS=1"]
fn timing_simplebaseline_res50_256x192() {
    let (vb, _) = posegen::var_builder(posegen::GAIN_SIMPLEBASELINE, &Device::Cpu);
    let net = SimpleBaseline::load(vb, simple_baseline::Config::res50_256x192()).unwrap();
    let x = Tensor::zeros((1, 3, 256, 192), DType::F32, &Device::Cpu).unwrap();
    let t = median_time(5, || {
        net.forward(&x).unwrap();
    });
    println!("SimpleBaseline-R50 256×192 forward (median of 5): {t:.2?}");
}

/// The Hourglass `skip_layer` keys the forward pass uses: only the width-changing
/// Residuals `pre.1` and `pre.4` (README §5).
fn used_by_hourglass(key: &str) -> bool {
    !key.contains(".skip_layer.") || key.starts_with("pre.1.") || key.starts_with("pre.4.")
}

#[test]
fn hourglass8_mpii_256_matches_the_official_code() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared, "hourglass8_mpii_256");
    let (vb, recorder) = posegen::var_builder(posegen::GAIN_HOURGLASS, &Device::Cpu);
    let net = StackedHourglass::load(vb, stacked_hourglass::Config::mpii_8stack()).unwrap();
    let all = keys_of(&dir);
    assert_eq!(all.len(), 2752);
    let keys: Vec<posegen::Request> = all
        .into_iter()
        .filter(|(k, _)| used_by_hourglass(k))
        .collect();
    // 113 unused skip layers, weight and bias each.
    assert_eq!(keys.len(), 2752 - 2 * 113);
    let problems = recorder.mismatches(&keys);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(recorder.requests().len(), 2752 - 2 * 113 - 354);

    let input = load(&dir.join("input.safetensors"));
    let nchw = input["imgs"].permute((0, 3, 1, 2)).unwrap();
    let (out, times) = net.forward_profiled(&nchw).unwrap();
    for s in &times {
        println!("  {:>8}: {:.2?}", s.name, s.time);
    }
    let ours = named(
        [("pre".to_string(), &out.pre)].into_iter().chain(
            out.stacks
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("stack{i}"), t)),
        ),
    );
    let failures = check_fixture(&dir, |k| ours.get(k).cloned());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "timing; run in release with RAYON_NUM_THREADS=1"]
fn timing_hourglass8_256() {
    let (vb, _) = posegen::var_builder(posegen::GAIN_HOURGLASS, &Device::Cpu);
    let net = StackedHourglass::load(vb, stacked_hourglass::Config::mpii_8stack()).unwrap();
    let x = Tensor::zeros((1, 3, 256, 256), DType::F32, &Device::Cpu).unwrap();
    let t = median_time(5, || {
        net.forward(&x).unwrap();
    });
    println!("Stacked Hourglass 8×256 256×256 forward (median of 5): {t:.2?}");
}

/// The parity tests above again in a child process on the portable path (candle's own ops,
/// what CUDA and Metal run; every custom CPU kernel fails if entered), same tolerances.
#[test]
fn parity_holds_on_the_portable_path() {
    common::rerun_portable(&["_matches_the_official_code"], 3);
}
