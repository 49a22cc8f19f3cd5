//! Parity of the PoseEstimationForMobile ports (mobile CPM, mobile hourglass) with the
//! TFLite interpreter, on the three realweights fixtures; and bad `.tflite` files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use candle_core::{Device, Tensor};
use posescope::models::{pefm_cpm, pefm_hourglass, StepTime};
use posescope::weights::tflite::{builtin, load_tflite, Options, TfliteModel};
use posescope::weights::{read_file, TensorStore, WeightsError};

const FIXTURES: [&str; 3] = [
    "aic_ff945ae2.safetensors",
    "coco_000000196141.safetensors",
    "lspet_im08003.safetensors",
];
const TOLERANCE: f32 = 1e-4;

fn load_store(path: &Path) -> TensorStore {
    let bytes = read_file(path).unwrap();
    load_tflite(&bytes, &path.display().to_string(), &Device::Cpu).unwrap()
}

fn fixture(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

/// The fixture's NHWC input as NCHW.
fn image(tensors: &HashMap<String, Tensor>) -> Tensor {
    tensors["image"]
        .permute((0, 3, 1, 2))
        .unwrap()
        .contiguous()
        .unwrap()
}

/// Compares our NCHW tensor with the fixture's NHWC tensor `key`; returns max-abs.
fn check(file: &str, key: &str, ours: &Tensor, tensors: &HashMap<String, Tensor>) -> f32 {
    let want = tensors
        .get(key)
        .unwrap_or_else(|| panic!("{file}: no tensor {key}"))
        .permute((0, 3, 1, 2))
        .unwrap();
    assert_eq!(ours.dims(), want.dims(), "{file} {key}");
    let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    let got: Vec<f32> = ours.flatten_all().unwrap().to_vec1().unwrap();
    let (max_abs, rel_rms) = common::compare(&got, &want);
    println!("{file} {key}: max-abs {max_abs:.3e}, rms/std {rel_rms:.3e}");
    assert!(
        max_abs <= TOLERANCE,
        "{file} {key}: max-abs {max_abs} > {TOLERANCE}"
    );
    max_abs
}

fn total(times: &[StepTime]) -> Duration {
    times.iter().map(|t| t.time).sum()
}

#[test]
fn cpm_matches_tflite_on_every_stage() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let store = load_store(&shared.join("models/pefm_cpm.tflite"));
    let net = pefm_cpm::PefmCpm::load(&store, pefm_cpm::Config::released(), &Device::Cpu).unwrap();
    let dir = shared.join("fixtures/realweights/pefm_cpm");
    let mut worst = 0f32;
    for file in FIXTURES {
        let tensors = fixture(&dir.join(file));
        let (out, times) = net.forward_profiled(&image(&tensors)).unwrap();
        println!(
            "{file}: forward {:.1} ms ({})",
            total(&times).as_secs_f64() * 1e3,
            times
                .iter()
                .map(|t| format!("{} {:.1}", t.name, t.time.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", ")
        );
        worst = worst.max(check(file, "MobilenetV2/concat", &out.backbone, &tensors));
        assert_eq!(out.stages.len(), 6);
        for (k, stage) in out.stages.iter().enumerate() {
            let key =
                format!("Convolutional_Pose_Machine/stage_{k}_mv1/stage_{k}_mv1_2_pointwise/Relu");
            worst = worst.max(check(file, &key, stage, &tensors));
        }
        worst = worst.max(check(
            file,
            "Convolutional_Pose_Machine/stage_5_out",
            &out.upsampled,
            &tensors,
        ));
    }
    println!("CPM worst max-abs: {worst:.3e}");
}

#[test]
fn hourglass_matches_tflite_on_every_output() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let store = load_store(&shared.join("models/pefm_hourglass.tflite"));
    let net = pefm_hourglass::PefmHourglass::load(
        &store,
        pefm_hourglass::Config::released(),
        &Device::Cpu,
    )
    .unwrap();
    let dir = shared.join("fixtures/realweights/pefm_hourglass");
    let mut worst = 0f32;
    for file in FIXTURES {
        let tensors = fixture(&dir.join(file));
        let (out, times) = net.forward_profiled(&image(&tensors)).unwrap();
        println!(
            "{file}: forward {:.1} ms ({})",
            total(&times).as_secs_f64() * 1e3,
            times
                .iter()
                .map(|t| format!("{} {:.1}", t.name, t.time.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(out.outputs.len(), 4);
        for (k, o) in out.outputs.iter().enumerate() {
            worst = worst.max(check(file, &format!("hourglass_out_{k}"), o, &tensors));
        }
    }
    println!("hourglass worst max-abs: {worst:.3e}");
}

#[test]
fn the_real_files_decode_completely() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for (file, tensors, ops, convs, depthwise, resizes) in [
        ("pefm_cpm.tflite", 531, 237, 93, 52, 3),
        ("pefm_hourglass.tflite", 586, 267, 105, 52, 4),
    ] {
        let bytes = read_file(&shared.join("models").join(file)).unwrap();
        let m = TfliteModel::parse(&bytes).unwrap();
        assert_eq!(m.version, 3, "{file}");
        assert_eq!(m.description.as_deref(), Some("TOCO Converted."), "{file}");
        assert_eq!(m.subgraph_count, 1);
        assert_eq!(m.tensors.len(), tensors, "{file}");
        assert_eq!(m.operators.len(), ops, "{file}");
        let count = |code| m.operators.iter().filter(|o| o.code == code).count();
        assert_eq!(count(builtin::CONV_2D), convs, "{file}");
        assert_eq!(count(builtin::DEPTHWISE_CONV_2D), depthwise, "{file}");
        assert_eq!(count(builtin::RESIZE_BILINEAR), resizes, "{file}");
        let input = m.tensor(m.inputs[0]).unwrap();
        assert_eq!(
            (input.name.as_str(), input.shape.as_slice()),
            ("image", &[1, 192, 192, 3][..])
        );
        // The stem: 3×3 s2 SAME conv with fused ReLU6, OHWI filter.
        let stem = &m.operators[0];
        assert!(matches!(
            stem.options,
            Options::Conv2D {
                stride: (2, 2),
                dilation: (1, 1),
                activation: posescope::weights::tflite::Activation::Relu6,
                padding: posescope::weights::tflite::Padding::Same,
            }
        ));
        assert_eq!(m.tensor(stem.inputs[1]).unwrap().shape, vec![16, 3, 3, 3]);
        // Every resize is legacy TF1.
        for op in m
            .operators
            .iter()
            .filter(|o| o.code == builtin::RESIZE_BILINEAR)
        {
            assert_eq!(
                op.options,
                Options::Resize {
                    align_corners: false,
                    half_pixel_centers: false
                }
            );
        }
    }
}

#[test]
fn a_truncated_tflite_is_an_error_naming_the_file() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let bytes = read_file(&shared.join("models/pefm_cpm.tflite")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [bytes.len() / 2, 1000, 7] {
        let path = dir.path().join(format!("cut_{cut}.tflite"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let label = path.display().to_string();
        let e = load_tflite(&read_file(&path).unwrap(), &label, &Device::Cpu).unwrap_err();
        println!("{e}");
        assert!(matches!(e, WeightsError::Format { .. }), "{e}");
        assert!(e.to_string().contains(&label), "{e}");
    }
}

#[test]
fn a_tflite_missing_a_tensor_is_an_error_naming_it() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut bytes = read_file(&shared.join("models/pefm_hourglass.tflite")).unwrap();
    // Rename one weight in place (same length): the model then lacks that tensor.
    let name = b"hourglass_branch_jump_2_3_depthwise/depthwise_weights";
    let at = bytes
        .windows(name.len())
        .position(|w| w == name)
        .expect("tensor name present");
    bytes[at + name.len() - 1] = b'X';
    let store = load_tflite(&bytes, "renamed.tflite", &Device::Cpu).unwrap();
    let e = pefm_hourglass::PefmHourglass::load(
        &store,
        pefm_hourglass::Config::released(),
        &Device::Cpu,
    )
    .unwrap_err();
    println!("{e}");
    assert!(matches!(e, WeightsError::Missing { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("renamed.tflite"), "{msg}");
    assert!(
        msg.contains("hourglass_branch_jump_2_3_depthwise/depthwise_weights"),
        "{msg}"
    );
    // The hourglass file is not a CPM: the first CPM-only tensor is named.
    let e =
        pefm_cpm::PefmCpm::load(&store, pefm_cpm::Config::released(), &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("MobilenetV2_part_0"), "{e}");
}

/// The parity tests above again in a child process on the portable path (candle's own ops,
/// what CUDA and Metal run; every custom CPU kernel fails if entered), same tolerances.
#[test]
fn parity_holds_on_the_portable_path() {
    common::rerun_portable(&["_matches_tflite"], 2);
}
